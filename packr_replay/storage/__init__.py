"""Trace storage: the only layer that touches SQLite (via sqlite-utils) and msgpack.

One file holds any number of traces and the module bytes they ran::

    with TraceStore("bug.db", create=True) as store:
        sha = store.add_module(wasm, "guest.wasm", types)
        with store.begin_trace(sha, label="repro") as w:     # complete on exit
            w.append(0, EventKind.EXPORT, "", "run", input_bytes)
            ...
            w.flush()                                         # at each export boundary
        trace = store.trace("repro")
        for event in trace.events(kind="import"):
            print(event.name, event.input_value)
        store.verify(trace.id).raise_for_error()

Modules: ``model`` (what a trace is), ``protocols`` (the replay layer's seam),
``schema``/``sqlite`` (file format, migrations, opening), ``writer``/``reader``
(recording and reading), ``integrity`` (hash chains), ``exchange`` (export/import
stream), ``bundle`` (bug-report files), ``memory`` (the in-memory trace),
``liveness`` (how a dead recorder's trace is recognised as incomplete), ``index``
(the per-event SQL index behind the ``events`` view), ``sqlfuncs`` (SQL functions
over values, and ``run_query``), ``prune`` (deleting traces).
"""

from .bundle import Redactor, bundle
from .index import index_all, index_trace
from .integrity import VerifyReport
from .memory import MemoryTrace
from .model import (
    Event,
    EventKind,
    ExportCall,
    Outcome,
    TraceInfo,
    TraceStatus,
    chain_genesis,
    chain_hash,
    header_covered,
    trace_genesis,
)
from .protocols import EventSink, EventSource
from .prune import delete_traces
from .reader import Trace
from .rows import ModuleInfo
from .schema import TRACE_FORMAT_VERSION
from .store import TraceRef, TraceStore
from .writer import FlushPolicy, TraceWriter

__all__ = [
    "TRACE_FORMAT_VERSION",
    "Event",
    "EventKind",
    "EventSink",
    "EventSource",
    "ExportCall",
    "FlushPolicy",
    "MemoryTrace",
    "ModuleInfo",
    "Outcome",
    "Redactor",
    "Trace",
    "TraceInfo",
    "TraceRef",
    "TraceStatus",
    "TraceStore",
    "TraceWriter",
    "VerifyReport",
    "bundle",
    "chain_genesis",
    "chain_hash",
    "delete_traces",
    "header_covered",
    "index_all",
    "index_trace",
    "trace_genesis",
]
