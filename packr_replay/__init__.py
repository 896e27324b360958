"""packr-replay: record, replay and diff the host calls of packr WebAssembly guests.

The three verbs for scripts are here; the layers are subpackages::

    packr_replay.abi       the Graph ABI (CGRF v2) codec, value model and text format
    packr_replay.runtime   packr's host ABI on wasmtime: host functions, exports, interceptors
    packr_replay.replay    Recorder, Replayer, record modes, divergence reports, diffs
    packr_replay.storage   the SQLite trace store
    packr_replay.api       record / replay / diff and Session (record modes) for scripts
"""

from ._version import __version__
from .api import Session, diff, record, record_run, replay
from .errors import PackrReplayError, ReplayDivergence, TraceExhausted

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
