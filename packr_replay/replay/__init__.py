"""Recording, replaying and diffing runs (knows nothing of SQLite: it reads and writes
through the storage layer's ``EventSource`` / ``EventSink`` protocols)."""

from ..errors import ReplayDivergence, TraceExhausted
from .caps import CapHit, ReplayCaps
from .diff import Change, Difference, diff_values
from .matchers import DEFAULT_MATCH_ON, MATCHERS, CallKey, register_matcher
from .recorder import Recorder
from .redact import redact_value, redactor
from .replayer import Replayer, ReplayStopped, describe_event
from .session import (
    Chain,
    ExportReplay,
    RecordMode,
    ReplayProgress,
    ReplayReport,
    fill_missing_imports,
    replay_source,
)
from .tracediff import EventChange, TraceChange, TraceDiff, diff_traces

__all__ = [
    "DEFAULT_MATCH_ON",
    "MATCHERS",
    "CallKey",
    "CapHit",
    "Chain",
    "Change",
    "Difference",
    "EventChange",
    "ExportReplay",
    "RecordMode",
    "Recorder",
    "ReplayCaps",
    "ReplayDivergence",
    "ReplayProgress",
    "ReplayReport",
    "ReplayStopped",
    "Replayer",
    "TraceChange",
    "TraceDiff",
    "TraceExhausted",
    "describe_event",
    "diff_traces",
    "diff_values",
    "fill_missing_imports",
    "redact_value",
    "redactor",
    "register_matcher",
    "replay_source",
]
