"""``packr-replay demo``: the whole idea in one command, narrated.

Records the nondeterministic example guest (``clock_actor``: it asks its host for the
time, a dice roll and ``$USER``) with the demo host, replays the trace offline (same
time, same roll, no host), runs the guest live again (new time, new roll), and diffs
the two runs.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from ..abi import UNIT, String, Value
from . import render
from .common import JsonOpt, check_output_dir
from .errors import DIFFERENT, fail

__all__ = ["register"]

CALLS: list[tuple[str, Value]] = [("run", String("Ada")), ("run", UNIT)]


def _step(console: Any, number: int, title: str, text: str) -> None:
    console.print(f"\n[bold cyan]{number}. {title}[/bold cyan]")
    console.print(text)


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        output: Annotated[
            Path | None,
            typer.Option(
                "--output",
                "-o",
                metavar="FILE",
                help="Keep the traces in FILE (default: a temporary file, removed at the end).",
            ),
        ] = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Record a nondeterministic example guest, replay it offline, run it live again, and diff the two runs, explaining each step."""
        if output is not None and output.exists():
            fail(f"{output} already exists; give a new file for the demo's traces")
        if output is not None:
            check_output_dir(output)
        with tempfile.TemporaryDirectory(prefix="packr-replay-demo-") as tmp:
            path = output if output is not None else Path(tmp) / "demo.db"
            _run(path, keep=output is not None, as_json=as_json)


def _run(path: Path, *, keep: bool, as_json: bool) -> None:
    from .. import api
    from ..runtime.demo import DemoHost, example_guest
    from ..storage import TraceStore

    quiet = as_json
    console = render.out()
    esc = render.escape
    guest = example_guest("clock_actor")
    if not quiet:
        console.print(
            "[bold]packr-replay demo[/bold]: the example guest [bold]clock_actor[/bold] asks its "
            "host for the time, a dice roll in [0, 10) and $USER, and greets whoever it is "
            "called with. Its result changes on every run: nondeterminism, the thing a "
            "recorder captures."
        )

    recorded = api.record_run(guest, CALLS, host=DemoHost(), store=path, label="recorded")
    if not quiet:
        _step(
            console,
            1,
            "Record",
            f"run('Ada') and run(()) with the demo host; every host call goes into "
            f"{esc(str(path))}:",
        )
        for r in recorded.results:
            console.print(f"   {r.function}({esc(str(r.input))}) → {esc(str(r.output))}")
        console.print(
            f"   recorded trace {recorded.trace_id}: {recorded.events} events, "
            f"{render.human_bytes(recorded.bytes)}"
        )

    report = api.replay(path, recorded.trace_id)
    same = [
        e.output is not None and r.output is not None and e.output.data == r.output.data
        for e, r in zip(report.exports, recorded.results, strict=False)
    ]
    if not quiet:
        _step(
            console,
            2,
            "Replay offline",
            "the same guest again with no host at all: the clock, the dice and $USER "
            "come from the trace.",
        )
        for e in report.exports:
            console.print(f"   {e.function} → {esc(str(e.output))}")
        if report.reproduced:
            identical = all(same) and len(same) == len(recorded.results)
            console.print(
                f"   [green]reproduced[/green]: {report.events_replayed} events replayed; "
                f"results {'identical to' if identical else '[red]different from[/red]'} "
                "the recording"
            )
        else:
            console.print(f"   [red]diverged[/red]: {esc(report.summary())}")

    live = api.record_run(guest, CALLS, host=DemoHost(), store=path, label="live")
    if not quiet:
        _step(
            console,
            3,
            "Run live again",
            "a real host again, so a new time and a new roll (recorded too, as trace "
            f"{live.trace_id}):",
        )
        for r in live.results:
            console.print(f"   {r.function}({esc(str(r.input))}) → {esc(str(r.output))}")

    diff = api.diff((path, recorded.trace_id), (path, live.trace_id))
    if not quiet:
        _step(
            console,
            4,
            "Diff the two runs",
            "event by event, with the path inside each value where they part:",
        )
        console.print(f"   {esc(diff.summary())}")
        if diff.first is not None:
            first = render.escape_lines(str(diff.first)).replace("\n", "\n   ")
            console.print("   first difference: " + first)
        changed = sorted(name for name, s in diff.calls.items() if s.changed)
        console.print(f"   calls that differ: {esc(', '.join(changed))}")

    if as_json:
        with TraceStore(path, readonly=True) as store:
            infos = {i.id: render.trace_json(i) for i in store.traces()}
        render.emit_json(
            {
                "store": str(path) if keep else None,
                "recorded": {
                    "trace": infos[recorded.trace_id],
                    "outputs": [str(r.output) for r in recorded.results],
                },
                "replay": {
                    "reproduced": report.reproduced,
                    "events_replayed": report.events_replayed,
                    "outputs": [str(e.output) for e in report.exports],
                },
                "live": {
                    "trace": infos[live.trace_id],
                    "outputs": [str(r.output) for r in live.results],
                },
                "diff": render.trace_diff_json(diff),
            }
        )
    else:
        console.print("\n[bold]Next[/bold]")
        if keep:
            p = esc(str(path))
            for cmd in (
                f"packr-replay show {p}#1",
                f"packr-replay show {p}#1 2",
                f"packr-replay play {p}#1",
                f"packr-replay diff {p}#1 {p}#2",
                f"packr-replay bundle {p}#1 -o report.db",
            ):
                console.print(f"   {cmd}")
        else:
            console.print(
                "   packr-replay demo -o demo.db   keeps the traces to explore with "
                "show, info, play, diff and bundle"
            )
        console.print("   packr-replay --help             every command")
    if not report.reproduced or diff.identical:
        raise typer.Exit(DIFFERENT)
