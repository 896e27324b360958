"""``packr-replay play``: replay a trace offline and say whether it reproduced."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..abi import AbiError, EncodedValue, Value
from ..errors import ReplayDivergence
from . import render
from .caps import MaxAfterEndOpt, MaxFuelOpt, MaxMemoryOpt, MaxTimeOpt, parse_caps
from .common import HostOpt, JsonOpt, TraceArg, TraceRefOpt, open_trace, split_spec
from .errors import DIFFERENT, fail
from .hosts import resolve_hosts
from .record import host_output

if TYPE_CHECKING:  # wasmtime and SQLite load when the command runs
    from ..replay import ReplayReport
    from ..storage import Event, Trace

__all__ = ["debug_divergence", "register"]

_LIVE_NOTES = 5  # redacted calls announced one by one; the rest are counted
_EXPORT_LINES = 10  # export calls listed at each end of a long replay


def _decoded(data: bytes | None) -> Value | bytes | None:
    if data is None:
        return None
    try:
        return EncodedValue(data).value
    except AbiError:
        return data


def debug_divergence(divergence: ReplayDivergence, report: ReplayReport) -> None:
    """Open pdb with the recorded and live values of a divergence in scope.

    ``expected``/``actual`` are the values that differ (the inputs of a call, or the
    outputs of an export's return); ``expected_event`` is the recorded event,
    ``actual_call`` the live call, ``differences`` the value paths, ``divergence`` the
    error (``divergence.__traceback__`` is the replay's stack) and ``report`` the whole
    replay report.
    """
    import pdb

    from ..replay.matchers import CallKey
    from ..storage import Event

    expected_event = divergence.expected if isinstance(divergence.expected, Event) else None
    actual_call = divergence.actual if isinstance(divergence.actual, CallKey) else None
    expected = None
    if expected_event is not None:  # a return is compared on its output, a call on its input
        is_return = expected_event.kind == "return"
        expected = _decoded(expected_event.output if is_return else expected_event.input)
    actual = None if actual_call is None else _decoded(actual_call.input)  # (a return's output)
    differences = divergence.differences
    print(
        "\n--pdb: the replay diverged. In scope: expected, actual (the values that differ), "
        "expected_event, actual_call, differences, divergence, report.\n"
        "Type 'p expected', 'p actual', 'pp differences'; 'c' or 'q' leaves the debugger.",
        file=sys.stderr,
    )
    pdb.set_trace()
    _ = (expected, actual, expected_event, actual_call, differences, divergence, report)


def _export_json(entry: Any) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "call": entry.call,
        "function": entry.function,
        "reproduced": entry.reproduced,
        **render.value_fields("output", None if entry.output is None else entry.output.data),
        "error": entry.error,
    }


def _where(trace: Trace, seq: int) -> tuple[list[Event], Event | None]:
    """The events of the export call holding ``seq`` up to it, and the next event."""
    stop = trace.event(seq)
    shown = [e for e in trace.events(call=stop.call) if e.seq <= seq][-12:]
    try:
        following: Event | None = trace.event(seq + 1)
    except IndexError:
        following = None
    return shown, following


def register(app: typer.Typer) -> None:
    @app.command(no_args_is_help=True)
    def play(
        trace: TraceArg,
        trace_ref: TraceRefOpt = None,
        module: Annotated[
            Path | None,
            typer.Option(
                "--module",
                "-m",
                exists=True,
                dir_okay=False,
                metavar="NEW.wasm",
                help="Replay a different build of the guest (regression check); a module "
                "that differs from the recorded one is noted and replayed anyway.",
            ),
        ] = None,
        until: Annotated[
            int | None,
            typer.Option(
                "--until",
                metavar="SEQ",
                min=0,
                help="Stop after event SEQ and show where the guest is.",
            ),
        ] = None,
        use_pdb: Annotated[
            bool,
            typer.Option(
                "--pdb",
                help="At a divergence, open the Python debugger with the recorded and live "
                "values in scope (expected, actual, divergence, ...).",
            ),
        ] = False,
        debug_info: Annotated[
            bool,
            typer.Option(
                "--debug-info",
                help="Compile the guest with wasmtime's DWARF debug info (unoptimised) so "
                "the replay can run under a native debugger: gdb --args $(which python) -m "
                "packr_replay play TRACE --debug-info (or lldb -- ...), then break on guest "
                "functions (build the guest with -g). The replay is the same run every time.",
            ),
        ] = False,
        host: HostOpt = None,
        package: Annotated[
            str | None,
            typer.Option(
                "--package",
                "-p",
                metavar="NAME",
                help="A composition's trace: replay this package alone (its imports, from "
                "the host or from other packages, served from the trace; --module is then a "
                "new build of it). Without it every package is replayed alone in turn.",
            ),
        ] = None,
        save: Annotated[
            bool,
            typer.Option(
                "--save",
                help="Store the replay run as a trace of its own (replay_of) in the same file.",
            ),
        ] = False,
        save_to: Annotated[
            Path | None,
            typer.Option(
                "--save-to",
                metavar="OTHER.db",
                dir_okay=False,
                help="Store the replay run in another trace file (created if missing); "
                "the trace's own file is only read.",
            ),
        ] = None,
        max_fuel: MaxFuelOpt = None,
        max_time: MaxTimeOpt = None,
        max_memory: MaxMemoryOpt = None,
        max_time_after_end: MaxAfterEndOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Replay a trace offline (no host: every host call is served from the trace).

        The replay runs under caps of its own (--max-time, --max-fuel, --max-memory), whatever the trace says; its recorded settings only tighten them. Exit 0 when the run reproduced (or stopped at --until), 1 when it did not: it diverged, with the full divergence report (which call, what was expected, what came, and where inside the values they differ), or a cap cut it (which cap, and where). A trace whose recording was interrupted or killed (incomplete) reproduces up to where it was cut (exit 0); a guest still running past its last event is stopped after --max-time-after-end (default 1 s) and the summary says so.
        """
        path, ref = split_spec(trace, trace_ref)
        caps_given = parse_caps(max_fuel, max_time, max_memory, max_time_after_end)
        if save and save_to is not None:
            fail("give --save (into the trace's own file) or --save-to OTHER.db, not both")
        if save_to is not None and save_to.exists() and save_to.resolve() == path.resolve():
            fail(f"--save-to {save_to} is the trace's own file; use --save for that")
        from .. import api  # after the usage checks: they need no wasmtime
        from ..replay.caps import ReplayCaps

        with open_trace(str(path), None if ref is None else str(ref)) as (_, source):
            info = source.info
        redacted = [str(n) for n in info.meta.get("redacted") or []]
        notes = render.err()
        if until is not None and until >= info.event_count:
            last = f"#0-#{info.event_count - 1}" if info.event_count else "none"
            notes.print(
                f"note: --until {until} is past the end of the trace ({info.event_count} "
                f"events: {last}); replaying all of it"
            )
        if redacted and not as_json:
            notes.print(
                f"note: this trace is redacted: the values of {', '.join(redacted)} are "
                "placeholders of the same type, served as recorded"
            )
        hosts = resolve_hosts(host or [])
        progress = render.LazyProgress("replaying", info.event_count, enabled=not as_json)
        announced = 0

        def on_event(event: Event) -> None:
            nonlocal announced
            progress.advance()
            if event.kind == "import" and event.name in redacted and not as_json:
                announced += 1
                if announced <= _LIVE_NOTES:
                    notes.print(
                        f"note: #{event.seq} {render.escape(event.name)} is redacted: "
                        "serving its placeholder"
                    )

        # The bar samples a counter: a per-event callback would take every import off
        # the native path. Only a redacted trace, whose placeholders are announced as
        # they are served, watches each event.
        from ..replay import ReplayProgress

        sampled = ReplayProgress()
        if not redacted:
            progress.follow(lambda: sampled.events)
        with progress, host_output(as_json), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a module mismatch is in the report
            report = api.replay(
                path,
                info.id,
                module=module,
                host=hosts,
                until=until,
                save=save,
                save_to=save_to,
                debug_info=debug_info,
                on_event=on_event if redacted else None,
                progress=sampled,
                caps=ReplayCaps(**caps_given),
                package=package,
            )
        stop_context: tuple[list[Event], Event | None] | None = None
        if report.stopped is not None:
            with open_trace(str(path), str(info.id)) as (_, source):
                stop_context = _where(source, report.stopped.seq)
        if as_json:
            _emit_json(path, report, redacted, stop_context, package)
        else:
            _show(report, redacted, stop_context, announced, package)
        if report.divergence is not None:
            if use_pdb:
                import bdb

                try:
                    debug_divergence(report.divergence, report)
                except bdb.BdbQuit:
                    pass
            raise typer.Exit(DIFFERENT)
        if report.capped is not None:
            raise typer.Exit(DIFFERENT)  # a verdict: not reproduced within the caps


def _show_exports(console: Any, report: ReplayReport, indent: str) -> None:
    """One line per re-run export call (the first and last of a long run)."""
    entries = report.exports
    if len(entries) > 2 * _EXPORT_LINES:  # a long run: its first and last calls
        head, tail = entries[:_EXPORT_LINES], entries[-_EXPORT_LINES:]
        skipped = len(entries) - 2 * _EXPORT_LINES
    else:
        head, tail, skipped = entries, [], 0
    for index, entry in enumerate([*head, *tail]):
        if skipped and index == len(head):
            console.print(f"{indent}[dim]… {skipped} more export call(s) reproduced[/dim]")
        # The last call of a trace that ends inside it reproduced up to the end: no ✗.
        unfinished = report.stopped is not None or report.ended_early
        if entry.reproduced:
            mark = "[green]✓[/green]"
        else:
            mark = "[yellow]…[/yellow]" if unfinished else "[red]✗[/red]"
        if entry.error is not None:
            body = f"✗ {entry.error}"
        elif entry.output is not None:
            body = "→ " + render.preview(entry.output.data, 300)
        else:
            body = (
                "(stopped inside)" if report.stopped is not None
                else "(the trace ends inside)" if report.ended_early
                else "(cut inside)" if report.capped is not None
                else "(diverged inside)"
            )  # fmt: skip
        console.print(
            f"{indent}{mark} #{entry.seq} {render.escape(entry.function)} {render.escape(body)}"
        )


def _emit_json(
    path: Path,
    report: ReplayReport,
    redacted: list[str],
    stop_context: tuple[list[Event], Event | None] | None,
    package: str | None = None,
) -> None:
    stopped = None
    if report.stopped is not None:
        assert stop_context is not None
        shown, following = stop_context
        stopped = {
            "seq": report.stopped.seq,
            "where": report.stopped.where,
            "call_events": [render.event_json(e) for e in shown],
            "next": None if following is None else render.event_json(following),
        }
    verdict = (
        "stopped" if report.stopped
        else "reproduced" if report.reproduced
        else "capped" if report.capped
        else "diverged"
    )  # fmt: skip
    capped = None
    if report.capped is not None:
        capped = {
            "cap": report.capped.cap,
            "option": report.capped.option,
            "limit": report.capped.limit,
            "where": report.capped.where,
            "message": str(report.capped),
            "detail": report.capped.detail,
        }
    render.emit_json(
        {
            "store": str(path),
            "trace": render.trace_json(report.trace),
            "verdict": verdict,
            "reproduced": report.reproduced,
            "exports": [_export_json(e) for e in report.exports],
            "events_replayed": report.events_replayed,
            "events_total": report.events_total,
            "duration_s": report.duration_s,
            "divergence": None
            if report.divergence is None
            else render.divergence_json(report.divergence),
            "stopped": stopped,
            "capped": capped,
            "module_mismatch": report.module_mismatch,
            "redacted": redacted,
            "redacted_served": report.redacted_served,
            "trace_incomplete": report.trace_incomplete,
            "ended_early": report.ended_early,
            "stopped_after_end": None
            if report.stopped_after_end is None
            else {"export": report.stopped_after_end, "after_s": report.after_end_s},
            "recorded_failure": report.recorded_failure,
            "raw_access_served": report.raw_access_served,
            "saved_trace": report.saved_trace,
            "package": package,
            "packages": {
                name: {
                    "reproduced": r.reproduced,
                    "exports": [_export_json(e) for e in r.exports],
                    "events_replayed": r.events_replayed,
                    "events_total": r.events_total,
                    "divergence": None
                    if r.divergence is None
                    else render.divergence_json(r.divergence),
                }
                for name, r in getattr(report, "packages", {}).items()
            },
        }
    )


def _show(
    report: ReplayReport,
    redacted: list[str],
    stop_context: tuple[list[Event], Event | None] | None,
    announced: int,
    package: str | None = None,
) -> None:
    from ..replay import describe_event

    console = render.out()
    info = report.trace
    what = "" if package is None else f"package {render.escape(package)} alone, of "
    console.print(
        f"replaying {what}{render.escape(render.trace_title(info))} ({info.event_count} events, "
        f"recorded {info.created_at[:19].replace('T', ' ')}, host {render.escape(info.host or '-')})"
    )
    if report.module_mismatch:
        console.print(f"[yellow]note: {render.escape(report.module_mismatch)}[/yellow]")
    packages: dict[str, ReplayReport] = getattr(report, "packages", {})
    if packages:
        for name, part in packages.items():
            verdict = (
                "[green]reproduced[/green]" if part.reproduced
                else "[yellow]stopped[/yellow]" if part.stopped is not None
                else "[red]cut by a cap[/red]" if part.capped is not None
                else "[red]diverged[/red]"
            )  # fmt: skip
            console.print(
                f"package {render.escape(name)} alone: {verdict} ({part.events_replayed} of "
                f"{part.events_total} events)"
            )
            _show_exports(console, part, "  ")
    else:
        _show_exports(console, report, "")
    if announced > _LIVE_NOTES:
        console.print(f"note: {announced - _LIVE_NOTES} more redacted call(s) served")
    if report.stopped is not None and stop_context is not None:
        shown, following = stop_context
        console.print(f"[bold]stopped after event #{report.stopped.seq}[/bold] as asked (--until)")
        stop = shown[-1] if shown else None
        if stop is not None:
            console.print(f"the guest is inside export call {stop.call} at depth {stop.depth}:")
        for event in shown:
            marker = ">" if event.seq == report.stopped.seq else " "
            console.print(f"  {marker} {render.escape(describe_event(event))}")
        if following is not None:
            console.print(f"next: {render.escape(describe_event(following))}")
        else:
            console.print("next: nothing (that was the last event)")
        return
    if report.capped is not None:
        console.print(f"[red]{render.escape_lines(str(report.capped))}[/red]")
        console.print(
            f"[red bold]cut by --{report.capped.option.lstrip('-')}[/red bold] after "
            f"{report.events_replayed} of {report.events_total} events "
            f"({render.human_seconds(report.duration_s)})"
        )
    elif report.divergence is not None:
        console.print(f"[red]{render.escape_lines(report.divergence.report)}[/red]")
        console.print(
            f"[red bold]diverged[/red bold] after {report.events_replayed} of "
            f"{report.events_total} events ({render.human_seconds(report.duration_s)})"
        )
    else:
        text = (
            f"{len(report.exports)} export call(s), {report.events_replayed} event(s) "
            f"replayed in {render.human_seconds(report.duration_s)}"
        )
        if report.recorded_failure is not None:
            text += f"; then, as recorded, {report.recorded_failure}"
        elif report.ended_early:
            why = (
                "its recording was interrupted"
                if report.trace.end_reason == "interrupted"
                else "its recorder stopped before finishing"
            )
            text += f"; the trace ends there ({why})"
        if report.stopped_after_end is not None:
            text += f"; {report.after_end_note()}"
        console.print(f"[green bold]reproduced[/green bold]: {render.escape(text)}")
    if report.raw_access_served:
        first = report.raw_access_served[0]
        console.print(
            f"note: {len(report.raw_access_served)} raw import call(s) (first #{first}) had "
            "raw memory access when recorded; writes made through it are not in the trace, "
            "so a divergence after them may come from there"
        )
    if report.redacted_served and report.divergence is None and report.capped is None:
        console.print(
            f"note: {len(report.redacted_served)} redacted call(s) were served "
            "with placeholder values"
        )
    if report.saved_trace is not None:
        console.print(f"saved the replay run as trace {report.saved_trace} (replay of {info.id})")
