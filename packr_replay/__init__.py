"""packr-replay: record, replay and diff the host calls of packr WebAssembly guests.

The three verbs for scripts are here; the layers are subpackages::

    packr_replay.abi       the Graph ABI (CGRF v2) codec, value model and text format
    packr_replay.runtime   packr's host ABI on wasmtime: host functions, exports, interceptors
    packr_replay.replay    Recorder, Replayer, record modes, divergence reports, diffs
    packr_replay.storage   the SQLite trace store
    packr_replay.api       record / replay / diff and Session (record modes) for scripts

The verbs load on first use (``packr_replay.record`` imports wasmtime and SQLite then), so
``import packr_replay`` and ``packr-replay --version`` stay quick.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import PackrReplayError, ReplayDivergence, TraceExhausted

if TYPE_CHECKING:
    from .api import Session, diff, record, record_run, replay

__all__ = [
    "PackrReplayError",
    "ReplayDivergence",
    "Session",
    "TraceExhausted",
    "__version__",
    "diff",
    "record",
    "record_run",
    "replay",
]

_FROM_API = frozenset({"Session", "diff", "record", "record_run", "replay"})


def __getattr__(name: str) -> Any:
    if name in _FROM_API:
        from . import api

        value = getattr(api, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


class _Package(types.ModuleType):
    """Keeps ``packr_replay.replay`` the verb: importing the subpackage of that name
    would otherwise bind the submodule over it."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _FROM_API and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
