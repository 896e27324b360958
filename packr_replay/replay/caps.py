"""The limits a replay runs under, owned by whoever replays, not by the trace.

A trace from a bug report was written by someone else, and its metadata says what
budget its guest ran with: ``fuel: nil`` or a start function that spins would run
forever if the replayer trusted it. So a replay runs under :class:`ReplayCaps`, and the
recorded settings only ever make them tighter:

* ``fuel``: instructions per guest call (each export call, and the start function;
  none by default: the recorded budget, under the time cap);
* ``time``: seconds of wall-clock time for the whole replay (instantiation, start
  function and every export call; checked between calls and interrupting the guest);
* ``memory``: bytes of linear memory for the instance, all its memories together; its
  tables are held to a share of it too (``runtime.limits``);
* ``after_end``: seconds a guest may run on, inside an export call, once the replay of
  an *incomplete* trace (its recorder interrupted or killed) has used its last
  recorded event: nothing after that can be checked against the recording, so a guest
  still running then (one that spun when it was interrupted) is stopped after this
  grace, and the replay is reproduced up to the cut (``report.stopped_after_end``),
  not cut by a cap. A complete trace is not affected.

A run cut by a cap is a verdict, not an error: it did not reproduce within the caps
(:class:`CapHit` on the report; the CLI exits 1 and names the option that raises it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .._units import human_size

__all__ = [
    "DEFAULT_MAX_FUEL",
    "DEFAULT_MAX_MEMORY",
    "DEFAULT_MAX_TIME",
    "DEFAULT_MAX_TIME_AFTER_END",
    "CapHit",
    "ReplayCaps",
    "tighter",
]

DEFAULT_MAX_FUEL: int | None = None
"""No fuel cap of the replayer's own by default: a guest runs on the budget it was
recorded with, and the time cap ends one that spins on an unlimited budget (fuel is
deterministic but says nothing about how long a legitimate trace of a million calls
may take)."""

DEFAULT_MAX_TIME = 60.0
"""Seconds for a whole replay."""

DEFAULT_MAX_MEMORY = 1 << 30
"""Bytes of guest memory per instance (1 GiB)."""

DEFAULT_MAX_TIME_AFTER_END = 1.0
"""Seconds a guest may run on past the last event of an incomplete trace: long enough
for one that returns or calls the host right after it (each reported as before), short
enough that a maintainer is not kept waiting for a guest that spins."""


@dataclass(frozen=True, slots=True)
class ReplayCaps:
    """The replaying side's limits (``None``: no cap of ours; the recorded setting rules).

    ``ReplayCaps()`` are the defaults; ``ReplayCaps.none()`` trusts the file (for your
    own traces, e.g. a replay longer than a minute).
    """

    fuel: int | None = DEFAULT_MAX_FUEL
    time: float | None = DEFAULT_MAX_TIME
    memory: int | None = DEFAULT_MAX_MEMORY
    after_end: float | None = DEFAULT_MAX_TIME_AFTER_END

    def __post_init__(self) -> None:
        for name in ("fuel", "memory"):
            value = getattr(self, name)
            if value is not None and (type(value) is not int or value < 1):
                raise ValueError(f"ReplayCaps.{name} must be a positive int or None, not {value!r}")
        for name in ("time", "after_end"):
            seconds = getattr(self, name)
            if seconds is not None and (
                isinstance(seconds, bool)
                or not isinstance(seconds, int | float)
                or not math.isfinite(seconds)
                or seconds <= 0
            ):
                raise ValueError(
                    f"ReplayCaps.{name} must be a positive number of seconds or None, not {seconds!r}"
                )

    @classmethod
    def none(cls) -> ReplayCaps:
        """No caps: the trace's recorded settings alone (only for files you trust; a guest
        that spins past the end of an incomplete trace then runs until it is stopped)."""
        return cls(fuel=None, time=None, memory=None, after_end=None)

    def describe(self) -> str:
        """One line for a report: ``no fuel cap, time 60 s, memory 1 GiB, 1 s past the
        end``."""
        fuel = "no fuel cap" if self.fuel is None else f"fuel {self.fuel}/call"
        time = "no time cap" if self.time is None else f"time {_seconds(self.time)}"
        memory = "no memory cap" if self.memory is None else f"memory {human_size(self.memory)}"
        after = (
            "no grace past the end" if self.after_end is None
            else f"{_seconds(self.after_end)} past the end"
        )  # fmt: skip
        return f"{fuel}, {time}, {memory}, {after}"


def tighter(recorded: int | None, cap: int | None) -> int | None:
    """The smaller limit (``None``: unlimited)."""
    if recorded is None:
        return cap
    if cap is None:
        return recorded
    return min(recorded, cap)


_CAP_OPTIONS = {"fuel": "--max-fuel", "time": "--max-time", "memory": "--max-memory"}
_CAP_WHAT = {
    "fuel": "fuel cap (instructions per guest call)",
    "time": "time cap (seconds for the whole replay)",
    "memory": "memory cap (bytes of guest memory)",
}


@dataclass(frozen=True, slots=True)
class CapHit:
    """A replay cut short by one of its caps: which, its value, and where."""

    cap: str  # "fuel", "time" or "memory" (a ReplayCaps field)
    limit: int | float
    where: str  # "export 'run' (event #7)", "the start function", ...
    detail: str = ""  # what the runtime said

    @property
    def option(self) -> str:
        """The CLI option that sets this cap (``ReplayCaps.<cap>`` in the library)."""
        return _CAP_OPTIONS[self.cap]

    def __str__(self) -> str:
        value = (
            _seconds(self.limit) if self.cap == "time"
            else human_size(int(self.limit)) if self.cap == "memory"
            else str(self.limit)
        )  # fmt: skip
        return (
            f"the replay was cut by its {_CAP_WHAT[self.cap]} of {value} in {self.where}; "
            f"it did not reproduce within the caps (raise it with {self.option}, or "
            f"ReplayCaps.{self.cap})"
        )


def _seconds(value: float) -> str:
    return f"{value:g} s"
