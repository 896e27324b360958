"""``packr-replay check``: replay a corpus of traces against a new build of a guest."""

from __future__ import annotations

import glob
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from . import render
from .caps import MaxAfterEndOpt, MaxFuelOpt, MaxMemoryOpt, MaxTimeOpt, parse_caps
from .common import HostOpt, JsonOpt
from .errors import fail

if TYPE_CHECKING:  # wasmtime and SQLite load when the command runs
    from ..corpus import CheckReport, TraceResult

__all__ = ["register"]

#: The library's fields, copied so that --help loads nothing heavy (a test keeps them true).
SELECT_FIELDS = ("file", "id", "label", "module", "status", "host", "uuid")

_COLOURS = {
    "reproduced": "green",
    "diverged": "red",
    "refused": "yellow",
    "over caps": "magenta",
    "crashed": "red",
}


class _Progress:
    """A bar with verdict counts and an ETA on a terminal's stderr; nothing elsewhere."""

    def __init__(self, enabled: bool) -> None:
        from ..corpus import Verdict

        self.enabled = enabled and render.err().is_terminal
        self.counts = dict.fromkeys(Verdict, 0)
        self._progress: Any = None
        self._task: Any = None

    def start(self, total: int) -> None:
        if not self.enabled:
            return
        self._progress = render.progress_bar("checking", "{task.description}", eta=True)
        self._progress.start()
        self._task = self._progress.add_task(self._text(), total=total)

    def _text(self) -> str:
        from ..corpus import Verdict

        c = self.counts
        return (
            f"[green]{c[Verdict.REPRODUCED]} ok[/green] [red]{c[Verdict.DIVERGED]} diverged"
            f"[/red] [yellow]{c[Verdict.REFUSED]} refused[/yellow] "
            f"[magenta]{c[Verdict.OVER_CAPS]} over caps[/magenta] "
            f"[red]{c[Verdict.CRASHED]} crashed[/red]"
        )

    def advance(self, result: TraceResult) -> None:
        self.counts[result.verdict] += 1
        if self._progress is not None:
            self._progress.update(self._task, advance=1, description=self._text())

    def advance_baseline(self) -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=1)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def _show(report: CheckReport) -> None:
    console = render.out()
    lines = list(report.summary_lines())
    console.print(f"[bold]{render.escape(lines[0])}[/bold]")
    for line in lines[1:]:
        text = render.escape(line)
        head = line.strip().rstrip(":").split(":")[0]
        colour = _COLOURS.get(head)
        if colour and line.startswith("  ") and not line.startswith("   "):
            text = f"[{colour}]{text}[/{colour}]"
        console.print(text)
    if report.interrupted:
        return
    if report.baseline is not None:
        verdict = "no trace regressed" if report.ok else "some traces regressed"
    else:
        verdict = "every trace reproduced" if report.ok else "some traces did not reproduce"
    colour = "green" if report.ok else "red"
    console.print(f"[{colour} bold]{verdict}[/{colour} bold]")


def register(app: typer.Typer) -> None:
    @app.command(no_args_is_help=True)
    def check(
        corpus: Annotated[
            list[str],
            typer.Argument(
                metavar="CORPUS...",
                help="Trace files, directories (searched recursively for trace files) and "
                "globs ('traces/**/*.db').",
            ),
        ],
        module: Annotated[
            list[str] | None,
            typer.Option(
                "--module",
                "-m",
                metavar="[NAME=]NEW.wasm",
                help="The build to check: replays every trace against it, or with NAME= "
                "only the traces recorded with module NAME (repeatable, one per module). "
                "Without it each trace replays against its recorded module.",
            ),
        ] = None,
        baseline: Annotated[
            list[str] | None,
            typer.Option(
                "--baseline",
                metavar="[NAME=]OLD.wasm",
                help="Also replay every trace against this older build and report only the "
                "traces whose verdict changed; exit 1 only when one regressed.",
            ),
        ] = None,
        trace_label: Annotated[
            list[str] | None,
            typer.Option(
                "--trace-label",
                "-l",
                metavar="PATTERN",
                help="Only traces whose label matches (shell pattern; repeatable: any).",
            ),
        ] = None,
        select: Annotated[
            list[str] | None,
            typer.Option(
                "--select",
                "-s",
                metavar="FIELD=PATTERN",
                help=f"Only traces whose FIELD matches PATTERN (repeatable: all). FIELD is "
                f"one of {', '.join(SELECT_FIELDS)}.",
            ),
        ] = None,
        jobs: Annotated[
            int | None,
            typer.Option(
                "--jobs",
                "-j",
                min=1,
                metavar="N",
                help="Worker processes (default: the number of CPUs).",
            ),
        ] = None,
        dask: Annotated[
            str | None,
            typer.Option(
                "--dask",
                metavar="ADDRESS",
                help="Run on the dask.distributed cluster at ADDRESS (tcp://host:8786) "
                "instead of local processes; needs pip install 'packr-replay[dask]'.",
            ),
        ] = None,
        max_fuel: MaxFuelOpt = None,
        max_time: MaxTimeOpt = None,
        max_memory: MaxMemoryOpt = None,
        max_time_after_end: MaxAfterEndOpt = None,
        junit_xml: Annotated[
            Path | None,
            typer.Option(
                "--junit-xml",
                metavar="FILE",
                dir_okay=False,
                help="Also write a JUnit XML report, each trace a test case.",
            ),
        ] = None,
        host: HostOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Replay every trace of a corpus against a new build and report which recorded runs it no longer reproduces.

        The summary counts traces reproduced, diverged (the first divergence of each, grouped by export and by the call where replay parted from the recording), refused (a bad file, a build that cannot run the trace) and over caps. Each trace replays under caps of its own (--max-time, --max-fuel, --max-memory, and --max-time-after-end for a guest running on past the end of an incomplete trace), as with play; a worker still busy a little after the time cap (stuck outside the guest) is killed. Exit 0 when every trace reproduced (with --baseline: none regressed), 1 otherwise, 2 on a usage error. Ctrl-C or SIGTERM stops the workers and reports what finished (exit 130 or 143).
        """
        caps_given = parse_caps(max_fuel, max_time, max_memory, max_time_after_end)
        if jobs is not None and dask is not None:
            raise typer.BadParameter("give either --jobs or --dask, not both", param_hint="--jobs")
        for item in corpus:  # before the library (and wasmtime) loads
            if not Path(item).exists() and not glob.has_magic(item):
                fail(f"{item}: no such file or directory")

        from .. import corpus as _corpus
        from ..corpus import CheckInterrupted, write_junit
        from ..replay.caps import ReplayCaps

        progress = _Progress(enabled=not as_json)

        def on_result(result: TraceResult) -> None:
            progress.advance(result)

        stopped: CheckInterrupted | None = None
        try:
            try:
                report = _corpus.check(
                    corpus,
                    module=module,
                    baseline=baseline,
                    labels=trace_label or [],
                    select=select or [],
                    hosts=host or [],
                    jobs=jobs,
                    caps=ReplayCaps(**caps_given),
                    dask=dask,
                    on_start=progress.start,
                    on_result=on_result,
                )
            finally:
                progress.stop()
        except CheckInterrupted as stop:  # SIGINT or SIGTERM: what finished, then one line
            report, stopped = stop.report, stop
            stop.note += " (reported above)"
        if junit_xml is not None:
            write_junit(report, junit_xml)
        if as_json:
            render.emit_json(report.to_json())
        else:
            _show(report)
        if stopped is not None:
            raise stopped  # the CLI prints it as every interrupt and exits 128 + signal
        raise typer.Exit(report.exit_code)
