"""Replaying and diffing a composition's trace one package at a time.

A composition is recorded as one trace (see :class:`~.recorder.CompositionRecorder`):
each package's events, read alone (:class:`~packr_replay.storage.PackageTrace`), are a
trace of that package by itself -- its export calls (top-level ones and the wired
calls other packages made into it) and its imports (from the host or from other
packages) with their recorded replies. So any one package replays alone, against its
recorded module or a new build, with no host and no other package: the step that
finds which package of a composition broke.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ..errors import Interrupted, ReplayError
from ..storage.model import Event, TraceInfo
from ..storage.packages import Composition, PackageTrace, composition_of
from .caps import ReplayCaps
from .matchers import DEFAULT_MATCH_ON, Matcher
from .session import ReplayProgress, ReplayReport, replay_source
from .tracediff import CallStats, TraceDiff, diff_streams

if TYPE_CHECKING:
    from ..runtime import Module
    from ..runtime.host import HostSpec
    from .recorder import CompositionRecorder

__all__ = ["CompositionReplayReport", "diff_compositions", "replay_composition"]


@dataclass(slots=True)
class CompositionReplayReport(ReplayReport):
    """Packages of a composition replayed alone, each in turn (in the order they were
    added); ``packages`` holds each one's report. The inherited fields add them up:
    ``reproduced`` when every package reproduced, ``divergence`` the first package's
    that did not, ``exports`` every re-run export call, package after package."""

    packages: dict[str, ReplayReport] = field(default_factory=dict)

    @property
    def failed(self) -> list[str]:
        """The packages that did not reproduce."""
        return [name for name, r in self.packages.items() if not r.reproduced]

    def summary(self) -> str:
        t = self.trace
        head = f"trace {t.id}{f' ({t.label})' if t.label else ''}: "
        if self.reproduced:
            text = (
                f"reproduced: {len(self.packages)} package(s) replayed alone "
                f"({', '.join(self.packages)}), {len(self.exports)} export call(s), "
                f"{self.events_replayed} event(s) replayed"
            )
            cut = [
                name for name, r in self.packages.items()
                if r.ended_early and r.recorded_failure is None
            ]  # fmt: skip
            if cut:
                text += (
                    f"; the trace ended there, inside an export call of {', '.join(cut)} "
                    "(its recorder stopped before finishing), so everything up to the cut "
                    "was reproduced"
                )
            if self.stopped_after_end is not None:
                text += f"; {self.after_end_note()}"
            return head + text
        lines = [head + f"package(s) {', '.join(self.failed)} did not reproduce alone"]
        for name in self.failed:
            lines.append(f"package {name}: {self.packages[name].summary()}")
        return "\n".join(lines)

    def add(self, name: str, report: ReplayReport) -> None:
        """Add one package's report and fold it into the totals."""
        self.packages[name] = report
        self.exports.extend(report.exports)
        self.events_replayed += report.events_replayed
        self.events_total += report.events_total
        self.redacted_served.extend(report.redacted_served)
        self.trace_incomplete = self.trace_incomplete or report.trace_incomplete
        if report.module_mismatch is not None:
            self.module_mismatch = f"package {name}: {report.module_mismatch}"
        if self.divergence is None and self.stopped is None and self.capped is None:
            self.divergence, self.stopped = report.divergence, report.stopped
            self.capped = report.capped
        self.reproduced = all(r.reproduced for r in self.packages.values())
        self.ended_early = any(r.ended_early for r in self.packages.values())
        if report.stopped_after_end is not None:
            self.stopped_after_end = report.stopped_after_end
            self.after_end_s = report.after_end_s


def replay_composition(
    source: Any,
    modules: Mapping[str, Module],
    *,
    packages: Iterable[str] | None = None,
    host: HostSpec = None,
    match_on: Iterable[str | Matcher] = DEFAULT_MATCH_ON,
    until: int | None = None,
    on_event: Callable[[Event], None] | None = None,
    recorder: CompositionRecorder | None = None,
    progress: ReplayProgress | None = None,
    caps: ReplayCaps | None = None,
) -> CompositionReplayReport:
    """Replay packages of a composition trace, each alone, with their imports served
    from the trace.

    ``source`` is the composition's trace (anything with ``info`` and ``records()``);
    ``modules`` the module each package runs (its recorded one, or a new build);
    ``packages`` which ones (default: all, in the order they were added). ``recorder``
    records the replays into a composition trace of their own (one after another; a
    per-package diff against the original is what compares them).
    """
    composition = _composition(source.info)
    names = composition.names if packages is None else list(packages)
    report = CompositionReplayReport(source.info, reproduced=True)
    t0 = time.perf_counter()
    for name in names:
        view = PackageTrace(source, name)
        module = modules.get(name)
        if module is None:
            raise ReplayError(f"no module to replay package {name!r} with")
        try:
            alone = replay_source(
                view,
                module,
                host=host,
                match_on=match_on,
                until=until,
                on_event=on_event,
                recorded_module_sha=view.info.module_sha256,
                recorder=None if recorder is None else recorder.package(name),
                progress=progress,
                caps=caps,
            )
        except Interrupted as exc:  # say which package it stopped in
            done = f"; {', '.join(report.packages)} replayed before it" if report.packages else ""
            exc.note += f" (package {name}{done})"
            raise
        report.add(name, alone)
    report.duration_s = time.perf_counter() - t0
    return report


def _composition(info: TraceInfo) -> Composition:
    composition = composition_of(info)
    if composition is None:
        raise ReplayError(f"trace {info.id} is not a composition's trace")
    return composition


def diff_compositions(
    a: Any,
    b: Any,
    *,
    packages: Iterable[str] | None = None,
    window: int = 256,
    max_changes: int = 100,
) -> TraceDiff:
    """Compare two composition traces package by package.

    Each package's events are aligned with the same package's in the other trace (a
    package in only one of them counts as all inserted or removed), so two runs whose
    packages interleave differently still compare call for call. The result adds up
    the packages; ``packages`` holds each one's own diff, and call names are prefixed
    with their package (``doubler: export transform``).
    """
    ca, cb = _composition(a.info), _composition(b.info)
    names = list(dict.fromkeys([*ca.names, *cb.names])) if packages is None else list(packages)
    total = TraceDiff()
    for name in names:
        in_a, in_b = ca.package(name) is not None, cb.package(name) is not None
        side_a: Any = PackageTrace(a, name) if in_a else _Empty(a.info)
        side_b: Any = PackageTrace(b, name) if in_b else _Empty(b.info)
        part = diff_streams(
            side_a,
            side_b,
            window=window,
            max_changes=max_changes,
        )
        marked = [*part.changes]
        if part.first is not None and all(c is not part.first for c in marked):
            marked.append(part.first)
        for change in marked:
            change.a = None if change.a is None else replace(change.a, package=name)
            change.b = None if change.b is None else replace(change.b, package=name)
        total.packages[name] = part
        total.events_a += part.events_a
        total.events_b += part.events_b
        total.equal += part.equal
        total.changed += part.changed
        total.inserted += part.inserted
        total.removed += part.removed
        if total.first is None and part.first is not None:
            total.first = part.first
            total.first_package = name
        room = max_changes - len(total.changes)
        total.changes.extend(part.changes[:room])
        for call, stats in part.calls.items():
            total.calls[f"{name}: {call}"] = CallStats(
                stats.a, stats.b, stats.changed, stats.inserted, stats.removed
            )
    return total


class _Empty:
    """No events: a package one of the traces does not have."""

    def __init__(self, info: TraceInfo) -> None:
        self.info = info

    def records(self, start: int = 0) -> Iterable[Any]:
        return iter(())
