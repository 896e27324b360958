"""Replaying one trace of a corpus and saying how it ended (:class:`Checker`).

A checker lives in a worker process and replays many traces one after another, so it
keeps what is costly to make: one wasmtime runtime, each build compiled once, and the
last trace store it opened. Whatever happens to one trace becomes its
:class:`~.model.Outcome`; nothing short of the process dying stops the next one.
"""

from __future__ import annotations

import hashlib
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import (
    ExportNotFound,
    GuestRuntimeError,
    GuestTimeout,
    LinkError,
    MetadataError,
    ModuleLoadError,
    PackrReplayError,
    ReplayDivergence,
    StoreError,
)
from ..hosts import resolve_hosts
from ..replay import ReplayCaps, ReplayReport, replay_source
from ..runtime import Module, Runtime
from ..storage import Event, EventKind, TraceStore
from ..storage import Outcome as EventOutcome
from .model import Outcome, TraceJob, Verdict

if TYPE_CHECKING:
    from ..hosts import Host

__all__ = ["Checker", "classify_divergence"]


class Checker:
    """Replays traces against builds, one at a time, in this process.

    ``hosts`` are host specs (:mod:`packr_replay.hosts`) for imports a trace does not
    serve (raw imports); they are resolved once, here. ``caps``: the limits every
    replay runs under (default ``ReplayCaps()``).
    """

    def __init__(self, hosts: Sequence[str] = (), caps: ReplayCaps | None = None) -> None:
        self.runtime = Runtime()
        self.caps = caps
        self.hosts: list[Host] = resolve_hosts(hosts)
        self._modules: dict[str, Module] = {}
        self._store: TraceStore | None = None

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def check(self, job: TraceJob, path: str | None = None, ref: str | None = None) -> Outcome:
        """Replay ``job`` and classify the result; never raises for a bad trace.

        ``path``/``ref``: where the trace is when not at ``job.file``/``job.trace_id``
        (a copy it was shipped as, named by uuid)."""
        t0 = time.perf_counter()
        try:
            outcome = self._check(job, path or job.file, job.trace_id if ref is None else ref)
        except ReplayDivergence as div:  # raised before the first call (instantiation)
            outcome = classify_divergence(div, None)
        except GuestTimeout as exc:
            outcome = Outcome(Verdict.OVER_CAPS, _line(exc), cap=_cap(exc), report=str(exc))
        except (LinkError, ModuleLoadError, MetadataError, ExportNotFound) as exc:
            outcome = _refused("the build cannot run this trace", exc)
        except GuestRuntimeError as exc:
            outcome = Outcome(Verdict.DIVERGED, f"the guest failed outside any recorded call: "
                              f"{_line(exc)}", parted="instantiation", report=str(exc))  # fmt: skip
        except StoreError as exc:
            self.close()
            outcome = _refused("bad file", exc)
        except (PackrReplayError, OSError) as exc:
            outcome = _refused("cannot replay", exc)
        except Exception as exc:  # a bug: reported on this trace, the run goes on
            outcome = Outcome(Verdict.CRASHED, f"internal error: {type(exc).__name__}: {_line(exc)}",
                              report=repr(exc))  # fmt: skip
        outcome.duration_s = time.perf_counter() - t0
        return outcome

    def _open(self, path: str) -> TraceStore:
        if self._store is not None and str(self._store.path) == path:
            return self._store
        self.close()
        self._store = TraceStore(path, readonly=True)
        return self._store

    def _module(self, job: TraceJob, store: TraceStore, sha: str | None) -> Module:
        if job.build is not None:
            key = f"path:{Path(job.build).resolve()}"
            if key not in self._modules:
                self._modules[key] = self.runtime.load_module(job.build)
            return self._modules[key]
        if sha is None:
            raise StoreError(f"trace {job.trace_id} has no stored module; give a build (--module)")
        key = f"sha:{sha}"
        if key not in self._modules:
            wasm = store.module_bytes(sha)
            if hashlib.sha256(wasm).hexdigest() != sha:
                raise StoreError(f"the stored module {sha[:12]} does not hash to its key")
            self._modules[key] = self.runtime.load_module(wasm, name=store.module_info(sha).name)
        return self._modules[key]

    def _check(self, job: TraceJob, path: str, ref: int | str) -> Outcome:
        store = self._open(path)
        source = store.trace(ref)
        sha = source.info.module_sha256
        module = self._module(job, store, sha)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a different build is the point of a check
            report = replay_source(
                source, module, host=self.hosts, recorded_module_sha=sha, caps=self.caps
            )
        return outcome_of(report)


def outcome_of(report: ReplayReport) -> Outcome:
    """The outcome of a finished replay."""
    export = report.exports[-1].function if report.exports else None
    if report.capped is not None:
        hit = report.capped
        outcome = Outcome(Verdict.OVER_CAPS, str(hit), export=export, cap=hit.cap,
                          report=f"{hit}\n{hit.detail}".strip())  # fmt: skip
    elif report.divergence is not None:
        outcome = classify_divergence(report.divergence, export)
    else:
        detail = f"{len(report.exports)} export call(s), {report.events_replayed} event(s)"
        if report.ended_early:
            detail += "; the trace ends there (its recorder stopped before finishing)"
        if report.stopped_after_end is not None:
            detail += f"; {report.after_end_note()}"
        outcome = Outcome(Verdict.REPRODUCED, detail)
    outcome.events_replayed = report.events_replayed
    return outcome


def classify_divergence(div: ReplayDivergence, export: str | None) -> Outcome:
    """A divergence as an outcome: ``over_caps`` when the replay ran out of a budget the
    recording did not, else ``diverged`` with where the two parted."""
    expected = div.expected if isinstance(div.expected, Event) else None
    actual_error = div.context.get("actual_error")
    first = div.report.splitlines()[0] if div.report else str(div)
    if isinstance(actual_error, GuestTimeout) and (
        expected is None or expected.outcome != EventOutcome.TIMEOUT
    ):
        return Outcome(Verdict.OVER_CAPS, f"{_line(actual_error)} (the recording did not)",
                       export=export, seq=div.seq, report=div.report, cap=_cap(actual_error))  # fmt: skip
    return Outcome(Verdict.DIVERGED, first, export=export, parted=_parted(div, expected),
                   seq=div.seq, report=div.report)  # fmt: skip


def _parted(div: ReplayDivergence, expected: Event | None) -> str:
    """Where replay and recording parted: the recorded call (or the live one past the
    end of the trace)."""
    if expected is not None:
        if expected.kind == EventKind.IMPORT:
            return f"import {expected.name}"
        if expected.kind == EventKind.RETURN:
            return f"return of {expected.function}"
        return f"export {expected.function}"
    actual = div.actual
    name = getattr(actual, "name", None)
    kind = getattr(actual, "kind", None)
    if name:
        return f"{kind} {name} (past the end of the trace)"
    return "the end of the trace"


def _cap(exc: GuestTimeout) -> str:
    return "fuel" if "fuel" in exc.budget else "time"


def _refused(what: str, exc: BaseException) -> Outcome:
    return Outcome(Verdict.REFUSED, f"{what}: {_line(exc)}", report=str(exc))


def _line(exc: BaseException) -> str:
    text = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return text or type(exc).__name__

