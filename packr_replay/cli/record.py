"""``packr-replay record``: run export calls against a guest with a host, recorded."""

from __future__ import annotations

import contextlib
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from .._text import printable
from ..abi import EncodedValue, Value, encode
from ..errors import GuestRuntimeError, ReplayDivergence
from . import render
from .calls import Call, call_value, declared_types, read_calls_file, split_call
from .common import HostOpt, JsonOpt, check_output_dir
from .errors import DIFFERENT, fail
from .hosts import check_imports, resolve_hosts

if TYPE_CHECKING:  # wasmtime and SQLite load when a command runs, not for --help
    from .. import api
    from ..abi.metadata import PackageMetadata
    from ..runtime import Module
    from .hosts import Host

#: runtime.DEFAULT_FUEL, for the help text (tests/cli/test_startup.py keeps them equal).
DEFAULT_FUEL_TEXT = "5,000,000,000"

__all__ = ["host_output", "parse_call", "parse_calls_file", "register"]

def parse_call(text: str, types: PackageMetadata | None = None) -> Call:
    """``EXPORT`` (called with unit ``()``) or ``EXPORT=VALUE``, the value read as the
    export declares in ``types`` (plain packr text without them)."""
    pending = split_call(text)
    return pending.export, call_value(pending, types)


def parse_calls_file(path: Path, types: PackageMetadata | None = None) -> list[Call]:
    """The calls of a ``--calls`` file (see :func:`calls.read_calls_file`)."""
    return [(p.export, call_value(p, types)) for p in read_calls_file(path)]


def _check_exports(module: Module, exports: list[str]) -> None:
    names = {e.name for e in module.exports if e.kind == "func"}
    unknown = sorted(set(exports) - names)
    if unknown:
        callable_ = sorted(n for n in names if not n.startswith("__") and n != "_start")
        fail(
            f"{module.name} has no export {', '.join(map(repr, unknown))}; "
            f"it exports: {', '.join(callable_) or 'nothing callable'}"
        )


def _check_settings(fuel: int | None, timeout: float | None) -> None:
    """Refuse budgets a trace cannot hold before anything runs or is written (so what
    ``record`` writes, ``play`` accepts)."""
    if fuel is not None and fuel < 0:
        fail(f"--fuel {fuel}: expected 0 (no limit) or a positive instruction count")
    if timeout is not None and not (math.isfinite(timeout) and timeout > 0):
        fail(f"--timeout {timeout}: expected a positive number of seconds")


def _result_line(index: int, export: str, value: Value | bytes, output: Any, error: Any) -> str:
    data_in = value if isinstance(value, bytes) else EncodedValue.of(value).data
    head = render.escape(f"{index:>3}  {export}({render.preview(data_in, 60)})")
    if error is not None:
        return f"{head} [red]✗ {render.escape(type(error).__name__)}: {render.escape(str(error))}[/red]"
    data = output.data if isinstance(output, EncodedValue) else None
    return f"{head} → {render.escape(render.preview(data, 400))}"


def _call_json(
    index: int, export: str, value: Value | bytes, output: Any, error: Any
) -> dict[str, Any]:
    out = output.data if isinstance(output, EncodedValue) else output
    return {
        "call": index,
        "export": export,
        **render.value_fields("input", value),
        **render.value_fields("output", out if isinstance(out, bytes | Value) else None),
        "error": None if error is None else str(error),
        "error_type": None if error is None else type(error).__name__,
    }


def host_output(as_json: bool) -> contextlib.AbstractContextManager[Any]:
    """Under ``--json`` stdout holds one JSON document: what a host prints goes to stderr."""
    return contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext()


def _is_recording(path: Path, label: str, mode: str) -> bool:
    """Whether a record mode will run the live host (and so needs every import)."""
    if mode == "none":
        return False
    if mode in ("all", "new_episodes") or not path.exists():
        return True
    from ..storage import TraceStore

    with TraceStore(path, readonly=True) as store:
        return label not in store


def register(app: typer.Typer) -> None:
    @app.command(no_args_is_help=True)
    def record(
        module: Annotated[
            Path,
            typer.Argument(
                exists=True,
                dir_okay=False,
                metavar="MODULE",
                help="The guest: a .wasm file (or .wat text).",
            ),
        ],
        call: Annotated[
            list[str] | None,
            typer.Option(
                "--call",
                "-c",
                metavar="EXPORT[=VALUE]",
                help="Call EXPORT with VALUE in packr's text format, read as the guest "
                "declares the export's parameters (case names, numbers of the declared width, "
                "record fields); EXPORT alone passes unit '()'. Repeatable; calls run in order.",
            ),
        ] = None,
        calls_file: Annotated[
            Path | None,
            typer.Option(
                "--calls",
                metavar="FILE.jsonl",
                help='More calls, one JSON object a line: {"export": "run", "value": "\\"Ada\\""} '
                "with the value as packr text or as a typed JSON value (what --json prints "
                "as input_value); '-' reads stdin. They run after the --call ones.",
            ),
        ] = None,
        host: HostOpt = None,
        output: Annotated[
            Path, typer.Option("--output", "-o", help="The trace file (created if missing).")
        ] = Path("trace.db"),
        label: Annotated[
            str | None, typer.Option("--label", "-l", help="A name for the trace.")
        ] = None,
        mode: Annotated[
            Literal["none", "once", "new_episodes", "all"],
            typer.Option(
                "--mode",
                help="Record mode: 'all' records a new trace; 'once' replays the trace "
                "labelled --label if there is one, else records it; 'new_episodes' replays "
                "it and records calls beyond it; 'none' only replays.",
            ),
        ] = "all",
        timeout: Annotated[
            float | None,
            typer.Option("--timeout", metavar="SECONDS", help="Wall-clock limit per export call."),
        ] = None,
        fuel: Annotated[
            int | None,
            typer.Option(
                "--fuel",
                metavar="N",
                help=f"Instruction budget per export call (default {DEFAULT_FUEL_TEXT}; 0: unlimited).",
            ),
        ] = None,
        on_host_error: Annotated[
            Literal["status", "trap"],
            typer.Option(
                "--on-host-error",
                help="What a failing host function does to the guest: 'status' (packr's "
                "way: status -1, and a packr guest then spins until its budget runs out; "
                "the error names the failure) or 'trap' (stop the guest at the failing "
                "call). Recorded, so a replay does the same.",
            ),
        ] = "status",
        quiet: Annotated[
            bool, typer.Option("--quiet", "-q", help="Print only the summary.")
        ] = False,
        as_json: JsonOpt = False,
    ) -> None:
        """Run export calls against a guest with a live host and record every host call.

        Prints each call's result and a summary. Exit 0 when every call returned, 1 when one failed (its failure is recorded too), 2 on an error (a bad value, a missing import: the guest is refused with the list of imports no host provides).

        Example: [bold]packr-replay record guest.wasm --host demo --call 'run="Ada"' -o bug.db[/bold]
        """
        _check_settings(fuel, timeout)
        check_output_dir(output)
        pending = [split_call(c) for c in call or []]
        if calls_file is not None:
            pending += read_calls_file(calls_file)
        if not pending:
            fail("nothing to call: give --call EXPORT[=VALUE] or --calls FILE.jsonl")
        from ..runtime import DEFAULT_FUEL, Runtime

        runtime = Runtime(
            fuel=DEFAULT_FUEL if fuel is None else fuel,
            timeout=timeout,
            on_host_error=on_host_error,
        )
        mod = runtime.load_module(module)
        _check_exports(mod, [p.export for p in pending])
        def warn(line: str) -> None:
            print(printable(line), file=sys.stderr)

        types = declared_types(mod, warn=warn)
        calls = [(p.export, call_value(p, types, warn)) for p in pending]
        hosts = resolve_hosts(host or [])
        if mode == "all":
            _record(mod, calls, hosts, output, label, quiet, as_json)
        else:
            _session(mod, calls, hosts, output, label or mod.name, mode, quiet, as_json)


def _record(
    mod: Module,
    calls: list[Call],
    hosts: list[Host],
    output: Path,
    label: str | None,
    quiet: bool,
    as_json: bool,
) -> None:
    from .. import api
    from ..storage import TraceStore

    check_imports(mod, hosts)
    # Each call's value kept as its CGRF bytes only (a long --calls file stays small in
    # memory); nothing else is kept per call unless --json prints them all.
    encoded = [(export, encode(value)) for export, value in calls]
    del calls
    console = render.out()
    rows: list[dict[str, Any]] = []
    failed = done = 0
    with (
        host_output(as_json),
        render.LazyProgress("recording", len(encoded), enabled=not as_json, lines=True) as progress,
    ):

        def on_result(result: api.CallResult) -> None:
            nonlocal failed, done
            done += 1
            index = done
            value = encoded[index - 1][1]
            failed += result.error is not None
            if as_json:  # (only --json needs every call's result kept to the end)
                rows.append(_call_json(index, result.function, value, result.output, result.error))
            progress.advance()
            if not as_json and not quiet:
                console.print(
                    _result_line(index, result.function, value, result.output, result.error)
                )

        result = api.record_run(
            mod,
            encoded,
            host=hosts,
            store=output,
            label=label,
            runtime=mod.runtime,
            on_result=on_result,
            keep_results=False,
            meta={"mode": "all"},
        )
    with TraceStore(output, readonly=True) as store:
        info = store.trace(result.trace_id).info
    if as_json:
        render.emit_json(
            {
                "store": str(output),
                "mode": "all",
                "action": "recorded",
                "trace": render.trace_json(info),
                "calls": rows,
                "failed": failed,
                "events": result.events,
                "bytes": result.bytes,
                "duration_s": result.duration_s,
                "divergence": None,
            }
        )
    else:
        failures = f" ({failed} failed)" if failed else ""
        console.print(
            f"recorded {render.escape(render.trace_title(info))} in {render.escape(str(output))}: "
            f"{result.calls} call(s){failures}, {result.events} events, "
            f"{render.human_bytes(result.bytes)}, {render.human_seconds(result.duration_s)}"
        )
        console.print(f"replay it with: packr-replay play {render.escape(str(output))}#{info.id}")
    if failed:
        raise typer.Exit(DIFFERENT)


def _session(
    mod: Module,
    calls: list[Call],
    hosts: list[Host],
    output: Path,
    label: str,
    mode: str,
    quiet: bool,
    as_json: bool,
) -> None:
    """Record modes other than ``all`` go through :class:`api.Session`."""
    import time

    from .. import api
    from ..storage import TraceStore

    recording = _is_recording(output, label, mode)
    if recording:
        check_imports(mod, hosts)
    console = render.out()
    rows: list[dict[str, Any]] = []
    failed = 0
    t0 = time.perf_counter()
    divergence: ReplayDivergence | None = None
    written: int | None = None
    replaying = False
    try:
        with (
            host_output(as_json),
            api.Session(mod, store=output, label=label, mode=mode, host=hosts) as session,
        ):
            replaying = session.replaying
            written = session.writer.trace_id if session.writer is not None else None
            for index, (export, value) in enumerate(calls, 1):
                out: Value | None = None
                error: GuestRuntimeError | None = None
                try:
                    out = session.call(export, value)
                except GuestRuntimeError as exc:
                    error = exc
                    failed += 1
                rows.append(_call_json(index, export, value, out, error))
                if not as_json and not quiet:
                    shown = EncodedValue.of(out) if out is not None else None
                    console.print(_result_line(index, export, value, shown, error))
    except ReplayDivergence as exc:
        divergence = exc
    duration = time.perf_counter() - t0
    info = None
    size: int | None = None
    if written is not None:
        with TraceStore(output, readonly=True) as store:
            trace = store.trace(written)
            info = trace.info
            size = sum(len(e.input or b"") + len(e.output or b"") for e in trace.events())
    action = ("replayed+recorded" if replaying else "recorded") if written else "replayed"
    if as_json:
        render.emit_json(
            {
                "store": str(output),
                "mode": mode,
                "action": action,
                "trace": None if info is None else render.trace_json(info),
                "calls": rows,
                "failed": failed,
                "events": None if info is None else info.event_count,
                "bytes": size,
                "duration_s": duration,
                "divergence": None if divergence is None else render.divergence_json(divergence),
            }
        )
    elif divergence is not None:  # the verdict against, and why, as messages on stderr
        notes = render.err()
        notes.print(f"[red]{render.escape_lines(divergence.report)}[/red]")
        done = f"after {len(rows)} of {len(calls)} call(s)" if rows else "at the first call"
        notes.print(
            f"[red bold]diverged[/red bold]: the run did not reproduce trace {render.escape(repr(label))} "
            f"(mode {mode}) {done}; nothing recorded in {render.escape(str(output))}"
            if written is None
            else f"[red bold]diverged[/red bold] from trace {render.escape(repr(label))} (mode {mode}) "
            f"{done}"
        )
    else:
        what = {
            "replayed": f"reproduced trace {label!r} (mode {mode}); nothing new recorded",
            "recorded": f"recorded trace {label!r} (mode {mode})",
            "replayed+recorded": f"replayed trace {label!r} and recorded the run (mode {mode})",
        }[action]
        if info is not None:
            what += f" as trace {info.id}: {info.event_count} events"
        console.print(
            f"{render.escape(what)} in {render.escape(str(output))}, "
            f"{render.human_seconds(duration)}"
        )
    if failed or divergence is not None:
        raise typer.Exit(DIFFERENT)
