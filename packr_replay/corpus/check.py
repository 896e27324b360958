"""``check``: replay a corpus of traces against a new build and report what changed.

The coordinator lists the traces (:mod:`.collect`), hands them to an executor (the
local process pool, or a Dask cluster), and gathers the outcomes into a
:class:`~.report.CheckReport` in corpus order. An executor is anything with
``run(jobs, on_outcome)``, ``describe()`` and ``close()``.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Protocol

from .. import _interrupts
from ..errors import CorpusError, Interrupted
from ..hosts import resolve_hosts
from ..runtime import Runtime
from .collect import Builds, Selection, collect, find_stores
from .model import Outcome, TraceJob, TraceResult
from .pool import LocalPool
from .report import CheckReport

if TYPE_CHECKING:
    from ..replay.caps import ReplayCaps

__all__ = ["CheckInterrupted", "Executor", "check"]


class Executor(Protocol):
    """Runs jobs somewhere and reports each outcome on the calling thread."""

    def run(
        self, jobs: Iterable[TraceJob], on_outcome: Callable[[TraceJob, Outcome], None]
    ) -> None: ...

    def describe(self) -> str: ...

    def close(self) -> None: ...


class CheckInterrupted(Interrupted):
    """SIGINT or SIGTERM during a check: ``report`` holds the traces that finished (the
    workers are stopped); ``signal``, ``note`` and ``exit_code`` as every interrupt's."""

    def __init__(self, report: CheckReport, signal: int = signal.SIGINT) -> None:
        note = f"{len(report.results)} of {report.planned} trace(s) were checked"
        super().__init__(signal, note)
        self.report = report


def check(
    corpus: Iterable[str | os.PathLike[str]],
    *,
    module: Sequence[str] | str | None = None,
    baseline: Sequence[str] | str | None = None,
    labels: Iterable[str] = (),
    select: Iterable[str] = (),
    hosts: Sequence[str] = (),
    jobs: int | None = None,
    caps: ReplayCaps | None = None,
    dask: str | None = None,
    executor: Executor | None = None,
    on_start: Callable[[int], None] | None = None,
    on_result: Callable[[TraceResult], None] | None = None,
) -> CheckReport:
    """Replay every trace of ``corpus`` (files, directories, globs) and report.

    ``module``: the build to check, ``PATH`` for every trace or ``NAME=PATH`` items per
    recorded module name (none: each trace's recorded module). ``baseline``: the same
    for an older build; the report then lists only traces whose verdict changed.
    ``labels`` (label patterns, any matches) and ``select`` (``FIELD=PATTERN``, all
    match) choose traces. ``hosts``: host specs for imports the traces do not serve.
    Traces run on ``jobs`` local worker processes (default: the CPUs), on the Dask
    cluster at ``dask``, or on ``executor``; each under ``caps`` (default
    ``ReplayCaps()``: the recorded settings only tighten them; a worker still busy
    with a trace a little after the time cap is killed).
    ``on_start(total)`` and ``on_result(result)`` follow progress.

    Raises :class:`~packr_replay.errors.CorpusError` (or another library error) when
    the check cannot start, and :class:`CheckInterrupted` on SIGINT (Ctrl-C) or SIGTERM
    (on the main thread: :func:`packr_replay._interrupts.catching`).
    """
    t0 = time.perf_counter()
    resolve_hosts(hosts)  # a bad spec is an error here, not in every worker
    builds = Builds.parse(module)
    base = Builds.parse(baseline, "--baseline") if baseline is not None else None
    runtime = Runtime()
    for path in {*builds.paths(), *(base.paths() if base else [])}:
        runtime.load_module(path)  # one that does not compile stops the check here
    stores = find_stores(corpus)
    files = [str(p) for p in stores]
    todo, refused = collect(stores, selection=Selection.parse(labels, select),
                            builds=builds, baseline=base)  # fmt: skip
    if not todo and not refused:
        raise CorpusError("no trace in the corpus matches the selection")
    own = executor is None
    if executor is None:
        if dask is not None:
            from .cluster import DaskExecutor

            executor = DaskExecutor(dask, hosts=hosts, caps=caps)
        else:
            executor = LocalPool(jobs, hosts=hosts, caps=caps)
    total = sum(1 for j in todo if not j.baseline)
    report = CheckReport(
        [], None if base is None else [], planned=total + len(refused), files=len(stores),
        builds=builds.paths(), baseline_builds=base.paths() if base else [],
        executor=executor.describe(),
    )  # fmt: skip
    done: dict[TraceJob, Outcome] = {}

    def on_outcome(job: TraceJob, outcome: Outcome) -> None:
        if job in done:
            return  # an executor that retried a job reports it once
        done[job] = outcome
        if on_result is not None and not job.baseline:
            on_result(TraceResult(job, outcome))

    if on_start is not None:
        on_start(len(todo))
    try:
        with _interrupts.catching():
            executor.run(todo, on_outcome)
    except KeyboardInterrupt as exc:
        report.interrupted = True
        _fill(report, files, todo, refused, done, t0)
        signum = exc.signal if isinstance(exc, Interrupted) else signal.SIGINT
        raise CheckInterrupted(report, signum) from None
    finally:
        if own:
            executor.close()
    _fill(report, files, todo, refused, done, t0)
    return report


def _fill(
    report: CheckReport,
    stores: list[str],
    todo: list[TraceJob],
    refused: list[TraceResult],
    done: dict[TraceJob, Outcome],
    t0: float,
) -> None:
    """The finished results in corpus order (a refused file where it was listed)."""
    order = {path: i for i, path in enumerate(stores)}
    finished = [TraceResult(job, done[job]) for job in todo if job in done]
    results = [*refused, *(r for r in finished if not r.job.baseline)]
    results.sort(key=lambda r: (order.get(r.job.file, 0), r.job.trace_id))
    report.results = results
    if report.baseline is not None:
        baseline = [*refused, *(r for r in finished if r.job.baseline)]
        baseline.sort(key=lambda r: (order.get(r.job.file, 0), r.job.trace_id))
        report.baseline = baseline
    report.elapsed_s = time.perf_counter() - t0
