"""``--max-fuel``, ``--max-time``, ``--max-memory`` and ``--max-time-after-end``: the
caps a replay runs under.

They are the replaying side's limits (``replay.caps.ReplayCaps``): the trace's
recorded settings only make them tighter. Each takes ``none`` to lift the cap (for a
file you trust). Parsed here without loading wasmtime, so a bad value is a quick
usage error; the ``ReplayCaps`` itself is built when the command runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from .. import _units
from .errors import fail

if TYPE_CHECKING:
    from ..replay.caps import ReplayCaps

__all__ = [
    "MaxAfterEndOpt",
    "MaxFuelOpt",
    "MaxMemoryOpt",
    "MaxTimeOpt",
    "parse_caps",
    "replay_caps",
]

MaxFuelOpt = Annotated[
    str | None,
    typer.Option(
        "--max-fuel",
        metavar="N|none",
        help="Instructions per guest call (each export call and the start function); "
        "default: none of its own (the trace's recorded budget, under --max-time).",
    ),
]
MaxTimeOpt = Annotated[
    str | None,
    typer.Option(
        "--max-time",
        metavar="SECONDS|none",
        help="Wall-clock seconds for the whole replay; default 60. A guest still running "
        "then is interrupted.",
    ),
]
MaxAfterEndOpt = Annotated[
    str | None,
    typer.Option(
        "--max-time-after-end",
        metavar="SECONDS|none",
        help="For a trace whose recording was interrupted or killed (incomplete): seconds "
        "the guest may run on inside an export call once its last recorded event was "
        "replayed (nothing after it can be checked); default 1. A guest still running "
        "then is stopped and the run reproduced up to the cut.",
    ),
]
MaxMemoryOpt = Annotated[
    str | None,
    typer.Option(
        "--max-memory",
        metavar="SIZE|none",
        help="Guest memory for the instance, all its memories together (its tables get "
        "a share too); e.g. 512MiB; default 1GiB. The recorded limit only lowers it.",
    ),
]


def parse_caps(
    max_fuel: str | None,
    max_time: str | None,
    max_memory: str | None,
    max_time_after_end: str | None = None,
) -> dict[str, Any]:
    """The options as ``ReplayCaps`` keywords (an option not given: its default)."""
    try:
        return _units.parse_caps(max_fuel, max_time, max_memory, max_time_after_end)
    except ValueError as exc:
        fail(f"--{exc}")


def replay_caps(
    max_fuel: str | None,
    max_time: str | None,
    max_memory: str | None,
    max_time_after_end: str | None = None,
) -> ReplayCaps:
    from ..replay.caps import ReplayCaps

    return ReplayCaps(**parse_caps(max_fuel, max_time, max_memory, max_time_after_end))
