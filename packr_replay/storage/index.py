"""The per-event index: one plain SQL row per event, for people and everyday tools.

Events live in msgpack segments (see :mod:`.schema`), which SQL cannot look into.
:func:`index_trace` decodes a trace's segments once and writes one ``event_index`` row
per event (names, sizes, outcome, and packr's Display text of small values), so the
``events`` view reads like a table in ``sqlite3`` or Datasette with no packr-replay
installed.

The index is derived data, built on demand (``packr-replay index``), never by the
recorder: a row per event is exactly the per-row SQLite cost that segments exist to
avoid, and rendering values as text costs more than recording them. It is
incremental (a trace recorded further since is indexed from where the index stops)
and not covered by the hash chain; ``rebuild=True`` rewrites a trace's rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ..abi import Limits
from ..abi.text import preview_bytes
from ..errors import StoreError, TraceFormatError
from .codec import RawRecord
from .sqlite import translate_errors

if TYPE_CHECKING:
    from .store import TraceRef, TraceStore

__all__ = [
    "INDEX_FORMAT",
    "TEXT_MAX_BYTES",
    "TEXT_MAX_CHARS",
    "Progress",
    "index_all",
    "index_row",
    "index_status",
    "index_trace",
    "value_text",
]

INDEX_FORMAT = 2
"""The first trace-store format with ``event_index`` and the views."""

TEXT_MAX_BYTES = 1024
"""Values up to this many encoded bytes get a text form in the index."""

TEXT_MAX_CHARS = 200
"""Longer text is cut here and ends with ``...``."""

# A DAG can expand a small buffer into a huge tree; bound the work per value.
_TEXT_LIMITS = Limits(max_buffer_size=TEXT_MAX_BYTES, max_decoded_nodes=4096)
_BATCH = 4096  # rows per write transaction: short locks next to live recorders

_INSERT = (
    "INSERT OR REPLACE INTO event_index (trace_id, seq, call, depth, kind, interface, function, "
    "input_size, output_size, status, outcome, error_kind, error, duration_ns, input_text, "
    "output_text, package) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def value_text(data: bytes | None) -> str | None:
    """packr's Display text of a small CGRF value, cut at :data:`TEXT_MAX_CHARS`.

    ``None`` for no value or one over :data:`TEXT_MAX_BYTES`; bytes that are not valid
    CGRF read ``<N bytes, not valid CGRF: reason>`` (as in divergence reports).
    """
    if data is None or len(data) > TEXT_MAX_BYTES:
        return None
    return preview_bytes(data, TEXT_MAX_CHARS, _TEXT_LIMITS)


def index_row(trace_id: int, record: RawRecord) -> tuple[Any, ...]:
    """The ``event_index`` row of one validated record (see :mod:`.codec`)."""
    fields = record[0]
    (seq, call, kind, interface, function, input_, output, status, outcome, error_kind,
     error, duration_ns, depth) = fields[:13]  # fmt: skip
    return (
        trace_id,
        seq,
        call,
        depth,
        kind,
        interface,
        function,
        None if input_ is None else len(input_),
        None if output is None else len(output),
        status,
        outcome,
        error_kind,
        error,
        duration_ns,
        value_text(input_),
        value_text(output),
        fields[13] if len(fields) == 14 else None,
    )


def _require_index(store: TraceStore) -> None:
    if store.readonly:
        raise StoreError(f"{store.path} is open read-only; indexing writes to it")
    if store.format_version < INDEX_FORMAT:  # pragma: no cover - writable opens migrate
        raise TraceFormatError(f"{store.path} predates the event index (format {INDEX_FORMAT})")


def _indexed_end(store: TraceStore, trace_id: int) -> int:
    """The seq after the last indexed event of a trace (0 when none is)."""
    with translate_errors(store.path):
        (end,) = store.db.execute(
            "SELECT coalesce(max(seq) + 1, 0) FROM event_index WHERE trace_id = ?", [trace_id]
        ).fetchone()
    return int(end)


def _write(store: TraceStore, rows: list[tuple[Any, ...]]) -> None:
    db = store.db
    with translate_errors(store.path):
        db.execute("BEGIN IMMEDIATE")
        try:
            db.conn.executemany(_INSERT, rows)
            db.execute("COMMIT")
        except BaseException:
            db.rollback()
            raise


Progress = Callable[[int], None]
"""Called with the number of rows each batch wrote (for progress bars)."""


def index_trace(
    store: TraceStore, ref: TraceRef, *, rebuild: bool = False, progress: Progress | None = None
) -> int:
    """Bring the index of trace ``ref`` up to date; returns how many rows were written.

    Only events committed so far are indexed (a trace still being recorded can be
    indexed again later). ``rebuild`` drops the trace's rows first.
    """
    _require_index(store)
    trace = store.trace(ref)
    trace_id = trace.id
    if rebuild:
        with translate_errors(store.path):
            store.db.execute("DELETE FROM event_index WHERE trace_id = ?", [trace_id])
    start = _indexed_end(store, trace_id)
    written = 0
    rows: list[tuple[Any, ...]] = []
    for record in trace.records(start):
        rows.append(index_row(trace_id, record))
        if len(rows) >= _BATCH:
            _write(store, rows)
            written += len(rows)
            if progress is not None:
                progress(len(rows))
            rows = []
    if rows:
        _write(store, rows)
        written += len(rows)
        if progress is not None:
            progress(len(rows))
    return written


def index_all(
    store: TraceStore,
    refs: Iterable[TraceRef] | None = None,
    *,
    rebuild: bool = False,
    progress: Progress | None = None,
) -> dict[int, int]:
    """Index every trace (or those in ``refs``); returns rows written per trace id."""
    _require_index(store)
    ids = (
        [info.id for info in store.traces()] if refs is None else [store.trace(r).id for r in refs]
    )
    return {
        trace_id: index_trace(store, trace_id, rebuild=rebuild, progress=progress)
        for trace_id in ids
    }


def index_status(store: TraceStore) -> dict[int, int]:
    """How many events of each trace are in the index (none before format 2)."""
    if store.format_version < INDEX_FORMAT:
        return {}
    with translate_errors(store.path):
        rows = store.db.execute(
            "SELECT trace_id, count(*) FROM event_index GROUP BY trace_id"
        ).fetchall()
    return {int(t): int(n) for t, n in rows}
