"""Looking at trace files: ``show`` (traces, events, one event), ``info``, ``verify``."""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from ..abi import AbiError, EncodedValue
from ..abi.pretty import iter_pretty_lines
from ..abi.text import format_value
from ..errors import MetadataError
from . import render
from .common import (
    JsonOpt,
    TraceArg,
    TraceRefOpt,
    complete_trace,
    open_store,
    open_trace,
    split_spec,
)
from .errors import DIFFERENT, fail

if TYPE_CHECKING:  # SQLite and wasmtime load when a command runs
    from ..storage import Trace, TraceInfo, TraceStore, VerifyReport

__all__ = ["register"]

Kind = Literal["export", "import", "return", "raw"]

_PRETTY_WIDTH = 80  # the widest line of a value shown in full
_PREVIEW_CHARS = 2000  # how much of a value too large to show in full is shown
_PRINT_BATCH = 2000  # lines of a value printed at once
#: Above this many events ``info`` shows the stored count alone unless asked for the
#: per-call breakdown (``--calls``), which decodes every event.
_COUNT_LIMIT = 1_000_000


def _width() -> int:
    return render.out().width


# ------------------------------------------------------------------ show


def _show_traces(path: str, infos: list[TraceInfo], as_json: bool) -> None:
    if as_json:
        render.emit_json({"store": path, "traces": [render.trace_json(i) for i in infos]})
        return
    console = render.out()
    console.print(render.traces_table(infos, title=f"{len(infos)} traces in {render.escape(path)}"))
    console.print(f"show a trace's events with: packr-replay show {render.escape(path)}#ID")


def _show_events(
    path: str, trace: Trace, filters: dict[str, Any], start: int, limit: int, as_json: bool
) -> None:
    events = trace.events(start=start, **filters)
    info = trace.info
    if as_json:
        write = sys.stdout.write
        write('{\n"store": ' + render.json_text(path) + ',\n"trace": ')
        write(render.json_text(render.trace_json(info)))
        write(',\n"events": [')
    else:
        console = render.out()
        console.print(
            f"[bold]{render.escape(render.trace_title(info))}[/bold] in "
            f"{render.escape(path)}: {info.event_count} events, {render.status_text(info)}"
        )
        width = _width()
        seq_width = max(len(str(max(info.event_count - 1, 0))), 3)
        header = f"{'seq':>{seq_width}}  call  kind    {'name':<28}  value"
        console.print(render.escape(header), style="dim")
    shown = 0
    next_start: int | None = None
    for event in events:
        if limit and shown >= limit:
            next_start = event.seq
            break
        if as_json:
            write(
                ("\n" if shown == 0 else ",\n")
                + render.json_text(render.event_json(event))
            )
        else:
            console.print(render.event_line(event, width, seq_width))
        shown += 1
    if as_json:
        write(f'\n],\n"next_start": {json.dumps(next_start)}\n}}\n')
        return
    if shown == 0:
        console.print("(no events match)")
    if next_start is not None:
        console.print(
            f"... more events: --start {next_start} for the next page, --limit 0 for all, "
            f"or show {render.escape(path)}#{info.id} SEQ for one event in full"
        )


def _value_block(label: str, data: bytes | None, width: int) -> list[str]:
    if data is None:
        return [f"{label}: -"]
    lines = [f"{label} ({len(data)} bytes):"]
    try:
        value = EncodedValue(data).value
    except AbiError as exc:
        return [*lines, f"  not valid CGRF: {exc}", f"  hex: {data.hex()}"]
    problem = render.too_large(value)
    if problem is not None:
        return [*lines, "  " + format_value(value, limit=_PREVIEW_CHARS), f"  (cut: {problem})"]
    lines.extend("  " + line for line in iter_pretty_lines(value, width=max(width - 2, 20)))
    return lines


def _show_event(path: str, trace: Trace, seq: int, as_json: bool) -> None:
    try:
        event = trace.event(seq)
    except IndexError:
        fail(f"{render.trace_title(trace.info)} has no event {seq} (it has {len(trace)})")
    if as_json:
        render.emit_json(
            {
                "store": path,
                "trace": render.trace_json(trace.info),
                "event": render.event_json(event),
            }
        )
        return
    console = render.out()
    status = "" if event.status is None else f" (status {event.status})"
    rows = [
        *([] if event.package is None else [("package", event.package)]),
        ("kind", str(event.kind)),
        ("name", event.name),
        ("call", f"{event.call} (depth {event.depth})"),
        ("outcome", f"{event.outcome}{status}"),
    ]
    if event.error is not None or event.error_kind is not None:
        rows.append(("error", f"{event.error_kind}: {event.error}"))
    if event.duration_ns:
        rows.append(("duration", f"{event.duration_ns / 1e6:.3f} ms"))
    rows.append(("hash", event.hash.hex()))
    console.print(
        f"[bold]event #{event.seq}[/bold] of {render.escape(render.trace_title(trace.info))} "
        f"in {render.escape(path)}"
    )
    for name, value in rows:
        console.print(f"  {name:<9} {render.escape(value)}")
    width = min(_width(), _PRETTY_WIDTH)  # one field a line reads better than a wide line
    lines = [*_value_block("input", event.input, width), *_value_block("output", event.output, width)]
    for start in range(0, len(lines), _PRINT_BATCH):  # one print per batch: a deep value
        batch = lines[start : start + _PRINT_BATCH]  # has a line per level
        console.print("\n".join(render.escape(line) for line in batch))


def _write_html(
    path: Path,
    ref: int | str | None,
    dest: Path,
    force: bool,
    interface: str | None,
    function: str | None,
    start: int,
    limit: int,
) -> None:
    from ..html import PageLimits, TimelineFilter, trace_page, write_html

    if dest.exists() and not force:
        fail(f"{dest} already exists (pass --force to overwrite it)")
    with open_trace(str(path), None if ref is None else str(ref)) as (store, chosen):
        flt = TimelineFilter(interface, function, start=start)
        events = limit if limit else max(len(chosen), 1)
        text = trace_page(store, chosen, source=str(path), flt=flt, limits=PageLimits(events=events))
    write_html(dest, text, overwrite=force)
    render.err().print(
        f"wrote {render.escape(render.trace_title(chosen.info))} to {render.escape(str(dest))} "
        f"({render.human_bytes(dest.stat().st_size)})"
    )


# ------------------------------------------------------------------ info


def _module_json(store: TraceStore, sha: str | None) -> tuple[dict[str, Any] | None, list[str]]:
    """The module's description and any notes (no metadata, unreadable module...)."""
    if sha is None:
        return None, ["the trace has no stored module"]
    from ..runtime import Runtime

    info = store.module_info(sha)
    mod = Runtime().load_module(store.module_bytes(sha), name=info.name)
    data: dict[str, Any] = {
        "name": info.name,
        "sha256": sha,
        "size": info.size,
        "added_at": info.added_at,
        "imports": [
            {"module": i.module, "name": i.name, "kind": i.kind, "signature": i.signature}
            for i in mod.imports
        ],
        "exports": [
            {"name": e.name, "kind": e.kind, "signature": e.signature} for e in mod.exports
        ],
        "metadata": None,
    }
    notes = []
    try:
        types = mod.types()
    except MetadataError as exc:
        notes.append(f"no package metadata: {exc}")
    else:
        data["metadata"] = {
            "imports": [str(f) for f in types.imports],
            "exports": [str(f) for f in types.exports],
            "import_hashes": {h.name: h.hex for h in types.import_hashes},
            "export_hashes": {h.name: h.hex for h in types.export_hashes},
        }
    return data, notes


def _counts(trace: Trace, breakdown: bool | None) -> dict[str, Any]:
    """The trace's events counted: the stored total always (no decoding); by kind,
    outcome and call when ``breakdown`` (``None``: when the trace is small enough)."""
    total = len(trace)  # where the last committed segment ends
    if breakdown is None:
        breakdown = total <= _COUNT_LIMIT
    if not breakdown:
        return {"events": total, "bytes": None, "by_kind": None, "outcomes": None, "calls": None}
    by_kind: Counter[str] = Counter()
    by_call: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    size = 0
    for event in trace.events():
        by_kind[str(event.kind)] += 1
        outcomes[str(event.outcome)] += 1
        size += len(event.input or b"") + len(event.output or b"")
        if event.kind != "return":
            by_call[f"{event.kind} {event.name}"] += 1
        elif event.outcome != "ok":
            failed[f"export {event.function}"] += 1
        if event.kind in ("import", "raw") and event.outcome != "ok":
            failed[f"{event.kind} {event.name}"] += 1
    return {
        "events": sum(by_kind.values()),
        "bytes": size,
        "by_kind": dict(by_kind),
        "outcomes": dict(outcomes),
        "calls": {name: {"count": n, "failed": failed.get(name, 0)} for name, n in by_call.items()},
    }


def _head_text(info: TraceInfo) -> str:
    """The sealed head hash, with what it covers and how to pin it."""
    from ..storage import header_covered

    if info.head_hash is None:
        return "- (not sealed)"
    covers = (
        "the header and every event" if header_covered(info)
        else "every event, not the header: a format-1/2 trace"
    )  # fmt: skip
    return f"{info.head_hash.hex()} (covers {covers}; check a copy with verify --expect)"


def _show_info(
    path: str, store: TraceStore, trace: Trace, as_json: bool, breakdown: bool | None
) -> None:
    info = trace.info
    total = len(store.traces())
    from ..storage.packages import composition_of

    composition = composition_of(info)
    module, notes = _module_json(store, info.module_sha256)
    if composition is not None:
        notes = []  # a composition's modules are its packages'
    packages: list[dict[str, Any]] = []
    for package in () if composition is None else composition.packages:
        package_module, package_notes = _module_json(store, package.module_sha256)
        packages.append({"name": package.name, "module": package_module})
        notes.extend(f"package {package.name}: {n}" for n in package_notes)
    counts = _counts(trace, breakdown)
    if counts["by_kind"] is None:
        notes.append(
            f"per-call counts skipped for {counts['events']:,} events (over "
            f"{_COUNT_LIMIT:,}): add --calls to count them (decodes every event)"
        )
    if as_json:
        render.emit_json(
            {
                "store": path,
                "traces_in_file": total,
                "trace": render.trace_json(info),
                "module": module,
                "packages": packages,
                "wires": [] if composition is None else [list(w) for w in composition.wires],
                "counts": counts,
                "notes": notes,
            }
        )
        return
    console = render.out()
    esc = render.escape
    console.print(
        f"[bold]{esc(render.trace_title(info))}[/bold] in {esc(path)} "
        f"({total} trace{'s' if total != 1 else ''} in the file)"
    )
    meta = ", ".join(f"{k}={v}" for k, v in sorted(info.meta.items()) if k != "composition")
    for name, value in (
        ("uuid", info.uuid),
        ("status", render.status_text(info)),
        ("created", info.created_at),
        ("completed", info.completed_at or "-"),
        ("host", info.host or "-"),
        ("recorded by", f"packr-replay {info.tool_version}, trace format {info.format_version}"),
        ("replay of", "-" if info.replay_of is None else str(info.replay_of)),
        ("head hash", _head_text(info)),
        ("meta", meta or "-"),
    ):
        console.print(f"  {name:<12} {esc(value)}")
    if module is not None:
        console.print(
            f"[bold]module[/bold] {esc(module['name'])} (sha256 {module['sha256'][:16]}…, "
            f"{render.human_bytes(module['size'])})"
        )
        imports = [f"{i['module']}.{i['name']}" for i in module["imports"]]
        exports = [e["name"] for e in module["exports"]]
        console.print(f"  wasm imports {esc(', '.join(imports) or '-')}")
        console.print(f"  wasm exports {esc(', '.join(exports) or '-')}")
        if module["metadata"] is not None:
            for kind in ("imports", "exports"):
                for sig in module["metadata"][kind]:
                    console.print(f"  declared {kind[:-1]:<6} {esc(sig)}")
    for entry in packages:
        pm: Any = entry["module"]
        what = "no stored module" if pm is None else (
            f"module {esc(pm['name'])} (sha256 {pm['sha256'][:16]}…, {render.human_bytes(pm['size'])})"
        )
        console.print(f"[bold]package[/bold] {esc(str(entry['name']))}: {what}")
    if composition is not None:
        for target, module_name, function, source, source_function in composition.wires:
            console.print(
                f"  wire {esc(target)}: {esc(module_name)}.{esc(function)} → "
                f"{esc(source)}.{esc(source_function)}"
            )
    for note in notes:
        console.print(f"  note: {esc(note)}")
    kinds = counts["by_kind"]
    if kinds is None:
        console.print(f"[bold]events[/bold] {counts['events']}")
        return
    console.print(
        f"[bold]events[/bold] {counts['events']} ({kinds.get('export', 0)} export calls, "
        f"{kinds.get('import', 0) + kinds.get('raw', 0)} host calls, {render.human_bytes(counts['bytes'])} of values)"
    )
    from rich.table import Table

    table = Table(show_edge=False, box=None, pad_edge=False)
    table.add_column("  call")
    table.add_column("count", justify="right")
    table.add_column("failed", justify="right")
    for name, row in counts["calls"].items():
        table.add_row("  " + esc(name), str(row["count"]), str(row["failed"] or ""))
    console.print(table)
    console.print("  outcomes " + ", ".join(f"{k} {v}" for k, v in counts["outcomes"].items()))


# ------------------------------------------------------------------ registration


def _expected_head(report: VerifyReport, expect: str) -> VerifyReport:
    """The report, failed when its chain is intact but does not end at ``expect``."""
    if not report.ok or report.matches(expect):
        return report
    head = "nothing" if report.head is None else report.head.hex()
    return replace(
        report,
        ok=False,
        message=f"trace {report.trace_id}: its head hash is {head}, not the expected "
        f"{expect.strip().lower()}: this is not the trace that was pinned",
    )


def register(app: typer.Typer) -> None:
    @app.command(no_args_is_help=True)
    def show(
        trace: TraceArg,
        seq: Annotated[
            int | None, typer.Argument(metavar="SEQ", help="Show this event in full.")
        ] = None,
        trace_ref: TraceRefOpt = None,
        kind: Annotated[
            Kind | None, typer.Option("--kind", help="Only events of this kind.")
        ] = None,
        interface: Annotated[
            str | None, typer.Option("--interface", "-i", help="Only calls to this interface.")
        ] = None,
        function: Annotated[
            str | None, typer.Option("--function", "-f", help="Only calls of this function.")
        ] = None,
        call: Annotated[
            int | None, typer.Option("--call", metavar="N", help="Only events of export call N.")
        ] = None,
        start: Annotated[
            int, typer.Option("--start", metavar="SEQ", help="Begin at event SEQ.")
        ] = 0,
        limit: Annotated[
            int | None,
            typer.Option(
                "--limit", "-n", metavar="N", help="At most N events (0: all; default 100, 500 with --html)."
            ),
        ] = None,
        html: Annotated[
            Path | None,
            typer.Option(
                "--html",
                metavar="OUT.html",
                help="Write the trace as one self-contained HTML page (header, timeline, values) instead.",
            ),
        ] = None,
        force: Annotated[bool, typer.Option("--force", help="Overwrite OUT.html if it exists.")] = False,
        as_json: JsonOpt = False,
    ) -> None:
        """List the traces in a file, a trace's events, or one event in full.

        Without SEQ: a file of several traces lists them (name one with FILE#ID); a single trace (or a filter) lists its events, one line each with value previews, a page at a time (--start, --limit). With SEQ: that event's values, indented. --html OUT.html writes the trace (its newest, or FILE#REF) as a page to open in a browser: the first --limit events, what it left out, no network needed.
        """
        path, ref = split_spec(trace, trace_ref)
        filters = {"kind": kind, "interface": interface, "function": function, "call": call}
        filtering = any(v is not None for v in filters.values()) or start
        if seq is not None and filtering:
            fail("SEQ shows one event; it cannot be combined with filters or --start")
        if start < 0 or (limit is not None and limit < 0):
            fail("--start and --limit must be >= 0")
        if html is not None:
            if seq is not None or kind is not None or call is not None or as_json:
                fail("--html writes a trace's page; it takes --interface, --function, --start and --limit, not SEQ, --kind, --call or --json")
            _write_html(path, ref, html, force, interface, function, start, 500 if limit is None else limit)
            return
        limit = 100 if limit is None else limit
        with open_store(path) as store:
            if ref is None and seq is None and not filtering:
                infos = store.traces()
                if len(infos) != 1:
                    _show_traces(str(path), infos, as_json)
                    return
                ref = infos[0].id
        with open_trace(str(path), None if ref is None else str(ref)) as (_, chosen):
            if seq is not None:
                _show_event(str(path), chosen, seq, as_json)
            else:
                _show_events(str(path), chosen, filters, start, limit, as_json)

    @app.command(no_args_is_help=True)
    def info(
        trace: TraceArg,
        trace_ref: TraceRefOpt = None,
        calls: Annotated[
            bool | None,
            typer.Option(
                "--calls/--no-calls",
                help=f"Count events per function and outcome (default: for traces of up to {_COUNT_LIMIT:,} events; it decodes every event).",
                show_default=False,
            ),
        ] = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Describe a trace: its header, the module it ran (imports, exports, declared types), and counts of its events per function and outcome."""
        with open_trace(trace, trace_ref) as (store, chosen):
            _show_info(str(store.path), store, chosen, as_json, calls)

    @app.command(no_args_is_help=True)
    def verify(
        trace: Annotated[
            str,
            typer.Argument(
                metavar="TRACE",
                help="A trace file (all its traces), or FILE#REF.",
                autocompletion=complete_trace,
            ),
        ],
        trace_ref: TraceRefOpt = None,
        expect: Annotated[
            str | None,
            typer.Option(
                "--expect",
                metavar="HEAD",
                help="The head hash the trace must end at (as info prints it; 16 to 64 hex "
                "digits), e.g. from a bug report's text: pins the attachment out of band.",
            ),
        ] = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Check the hash chains: exit 0 when intact, 1 when a trace was altered (naming the first bad event) or does not end at --expect.

        The chain detects edits and damage; it is not a signature: whoever edits a file can recompute every hash, and that file passes. --expect compares the head hash with one you got another way (it covers the events and, from trace format 3 on, the header: module, settings, label, host).
        """
        path, ref = split_spec(trace, trace_ref)
        if expect is not None:
            text = expect.strip().lower()
            if not 16 <= len(text) <= 64 or any(c not in "0123456789abcdef" for c in text):
                fail(f"--expect {expect}: give the head hash as 16 to 64 hex digits (info prints it)")
        with open_store(path) as store:
            infos = store.traces()
            if expect is not None and ref is None and len(infos) != 1:
                fail(f"--expect checks one trace; {path} holds {len(infos)}: name it as FILE#REF")
            refs: list[int | str] = [i.id for i in infos] if ref is None else [ref]
            results = []
            for one in refs:
                chosen = store.trace(one)
                results.append((chosen.info, store.verify(chosen.id)))
        if expect is not None:
            results = [(i, _expected_head(r, expect)) for i, r in results]
        ok = all(report.ok for _, report in results)
        if as_json:
            render.emit_json(
                {
                    "store": str(path),
                    "ok": ok,
                    "traces": [
                        {
                            "id": i.id,
                            "label": i.label,
                            "ok": r.ok,
                            "events": r.events,
                            "first_bad_seq": r.first_bad_seq,
                            "message": r.message or None,
                            "head": None if r.head is None else r.head.hex(),
                            "header_covered": r.header_covered,
                        }
                        for i, r in results
                    ],
                }
            )
        else:
            console = render.out()
            if not results:
                console.print(f"{render.escape(str(path))} holds no traces")
            for i, r in results:
                title = render.escape(render.trace_title(i))
                if r.ok:
                    covers = "" if r.header_covered else " (events only: a format-1/2 trace)"
                    pinned = ", head as expected" if expect is not None else ""
                    console.print(
                        f"[green]ok[/green]       {title}: {r.events} events, hash chain "
                        f"intact{covers}{pinned}"
                    )
                else:
                    where = "" if r.first_bad_seq is None else f" at event #{r.first_bad_seq}"
                    console.print(
                        f"[red bold]TAMPERED[/red bold] {title}{where}: {render.escape(r.message)}"
                    )
        if not ok:
            raise typer.Exit(DIFFERENT)
