"""What a corpus check passes around: the trace to check (:class:`TraceJob`), how its
replay ended (:class:`Outcome`) and the two together (:class:`TraceResult`).

Jobs and outcomes cross process boundaries (the local pool's workers, a Dask cluster) as
plain JSON-able dicts, never pickles, and identity fields (file, trace id, label, build)
always come from the job the coordinator made, so a result reads the same whichever
executor produced it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from enum import StrEnum
from typing import Any

__all__ = ["Outcome", "TraceJob", "TraceResult", "Verdict"]


class Verdict(StrEnum):
    """How checking one trace ended.

    * ``reproduced``: the build made every recorded call and returned what was recorded.
    * ``diverged``: it parted from the recording (the first difference is kept).
    * ``refused``: the trace could not be checked: a bad or damaged file, or a build
      that cannot run it (it does not compile, lacks an import or an export).
    * ``over_caps``: the replay ran past a cap (fuel, time) the recording did not hit,
      or its worker stopped answering within the time cap and was killed.
    * ``crashed``: the worker process died while replaying it (or an internal error).
    """

    REPRODUCED = "reproduced"
    DIVERGED = "diverged"
    REFUSED = "refused"
    OVER_CAPS = "over_caps"
    CRASHED = "crashed"


@dataclass(frozen=True, slots=True)
class TraceJob:
    """One trace to replay against one build.

    ``build`` is the path of the module to replay (``None``: the module stored with the
    trace); ``baseline`` marks the replay against ``--baseline``'s build.
    """

    file: str
    trace_id: int
    uuid: str | None = None
    label: str | None = None
    module: str | None = None  # the recorded module's name
    status: str | None = None
    events: int = 0
    build: str | None = None
    baseline: bool = False

    @property
    def key(self) -> str:
        return f"{self.file}#{self.trace_id}{' (baseline)' if self.baseline else ''}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TraceJob:
        return cls(**_checked(cls, data))


@dataclass(slots=True)
class Outcome:
    """How one replay ended, as a worker reports it.

    ``detail`` is one line; ``report`` the whole explanation (a divergence report, an
    error). For a divergence, ``export`` is the export call it happened in and
    ``parted`` the call where replay and recording parted (an import's name,
    ``return EXPORT``, ...); ``seq`` is the recorded event there. ``cap`` names the cap
    an ``over_caps`` run hit.
    """

    verdict: Verdict
    detail: str = ""
    export: str | None = None
    parted: str | None = None
    seq: int | None = None
    report: str | None = None
    cap: str | None = None
    events_replayed: int = 0
    duration_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["verdict"] = str(self.verdict)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Outcome:
        values = _checked(cls, data)
        values["verdict"] = Verdict(values["verdict"])
        return cls(**values)


@dataclass(slots=True)
class TraceResult:
    """A job and its outcome: one line of a check's report."""

    job: TraceJob
    outcome: Outcome

    @property
    def verdict(self) -> Verdict:
        return self.outcome.verdict

    @property
    def reproduced(self) -> bool:
        return self.outcome.verdict is Verdict.REPRODUCED

    @property
    def name(self) -> str:
        """``FILE#ID`` plus the label: how the trace is named in reports."""
        if not self.job.trace_id:  # a file that could not be read at all
            return self.job.file
        label = f" {self.job.label}" if self.job.label else ""
        return f"{self.job.file}#{self.job.trace_id}{label}"

    def to_dict(self) -> dict[str, Any]:
        job = self.job
        return {
            "file": job.file,
            "trace": job.trace_id,
            "uuid": job.uuid,
            "label": job.label,
            "module": job.module,
            "status": job.status,
            "events": job.events,
            "build": job.build,
            **self.outcome.to_dict(),
        }


_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "str | None": (str, type(None)),
    "int": (int,),
    "int | None": (int, type(None)),
    "bool": (bool,),
    "float": (float, int),
    "Verdict": (str,),
}


def _checked(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """``data``'s fields, each of the declared type (a worker's reply is checked, not
    trusted to be well formed)."""
    if not isinstance(data, dict):
        raise ValueError(f"expected a {cls.__name__} object, got {type(data).__name__}")
    out: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in data:
            continue
        value = data[f.name]
        allowed = _TYPES[str(f.type)]
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            raise ValueError(f"{cls.__name__}.{f.name} is {value!r}")
        out[f.name] = value
    unknown = set(data) - {f.name for f in fields(cls)}
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown field(s) {', '.join(sorted(unknown))}")
    return out
