"""SQL over a trace store, with functions that read packr values.

:func:`register_functions` adds these to a connection (``packr-replay sql`` uses them;
``sqlite3`` and Datasette see the plain ``event_index`` columns and views instead):

=================================  ==================================================
``packr_text(blob [, max_chars])``  packr's Display text (default cut at 4096 chars)
``packr_json(blob)``                the value as JSON text (see :func:`value_json`)
``packr_kind(blob)``                the root value's kind: ``record``, ``string``, ...
``packr_error(blob)``               why the bytes are not valid CGRF (NULL if they are)
``packr_input(trace_id, seq)``      an event's input bytes, read from its segment
``packr_output(trace_id, seq)``     an event's output bytes
=================================  ==================================================

Blobs in a trace file are untrusted: every function decodes under tight limits, bounds
what it returns, and answers NULL (never an exception that aborts the query) for
anything that is not a valid value or event.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from ..abi import (
    F32,
    F64,
    AbiError,
    Bool,
    Char,
    Limits,
    List,
    Option,
    Record,
    Result,
    String,
    Tuple,
    Value,
    Variant,
    decode,
    format_value,
)
from ..errors import StoreError, TraceNotFound
from .index import INDEX_FORMAT, index_status

if TYPE_CHECKING:
    from .reader import Trace
    from .store import TraceStore

__all__ = [
    "DEFAULT_TEXT_CHARS",
    "FUNCTIONS",
    "MAX_JSON_CHARS",
    "MAX_TEXT_CHARS",
    "SQL_LIMITS",
    "QueryResult",
    "register_functions",
    "run_query",
    "unindexed_traces",
    "value_json",
]

SQL_LIMITS = Limits(
    max_buffer_size=16 * 1024 * 1024, max_node_count=1_000_000, max_decoded_nodes=1_000_000
)
"""Decoder limits for values met in SQL (a query may touch every value in a file)."""

DEFAULT_TEXT_CHARS = 4096
MAX_TEXT_CHARS = 1_000_000
MAX_JSON_CHARS = 1_000_000

FUNCTIONS = (
    "packr_text",
    "packr_json",
    "packr_kind",
    "packr_error",
    "packr_input",
    "packr_output",
)


# ------------------------------------------------------------------- JSON form


def _float(bits_value: float) -> str:
    if math.isnan(bits_value):
        return '"NaN"'
    if math.isinf(bits_value):
        return '"inf"' if bits_value > 0 else '"-inf"'
    return repr(bits_value)


def value_json(value: Value, max_chars: int = MAX_JSON_CHARS) -> str | None:
    """``value`` as JSON text, or ``None`` once it would pass ``max_chars``.

    Numbers and strings are themselves (NaN and infinities as ``"NaN"``/``"inf"``),
    lists and tuples arrays, ``none`` null and ``some(x)`` x, records objects in field
    order, results ``{"ok": x}`` / ``{"err": x}``, variants
    ``{"case": name, "tag": n, "payload": [...]}``. Iterative, so any depth is fine.
    """
    out: list[str] = []
    size = 0
    stack: list[Value | str] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            piece = item
        else:
            if isinstance(item, Bool):
                piece = "true" if item.value else "false"
            elif isinstance(item, String | Char):
                piece = json.dumps(item.value, ensure_ascii=False)
            elif isinstance(item, F32 | F64):
                piece = _float(item.value)
            elif isinstance(item, List | Tuple):
                piece = "["
                _push_seq(stack, item.items, "]")
            elif isinstance(item, Option):
                if item.value is None:
                    piece = "null"
                else:
                    piece = ""
                    stack.append(item.value)
            elif isinstance(item, Result):
                piece = '{"err": ' if item.is_err else '{"ok": '
                stack.append("}")
                stack.append(item.value)
            elif isinstance(item, Record):
                piece = "{"
                stack.append("}")
                for i in range(len(item.fields) - 1, -1, -1):
                    name, inner = item.fields[i]
                    stack.append(inner)
                    stack.append(
                        ("" if i == 0 else ", ") + json.dumps(name, ensure_ascii=False) + ": "
                    )
            elif isinstance(item, Variant):
                piece = (
                    '{"case": ' + json.dumps(item.case_name, ensure_ascii=False)
                    + f', "tag": {item.tag}, "payload": ['
                )  # fmt: skip
                _push_seq(stack, item.payload, "]}")
            else:  # integers and flags
                piece = str(item.value)  # type: ignore[attr-defined]
        size += len(piece)
        if size > max_chars:
            return None
        out.append(piece)
    return "".join(out)


def _push_seq(stack: list[Value | str], items: Sequence[Value], close: str) -> None:
    stack.append(close)
    for i in range(len(items) - 1, -1, -1):
        stack.append(items[i])
        if i:
            stack.append(", ")


# --------------------------------------------------------------- the functions


class _Decoder:
    """Decodes blobs for the SQL functions; remembers the last one, because a query
    usually asks several functions about the same value in a row."""

    def __init__(self) -> None:
        self._last: tuple[bytes, Value | AbiError] | None = None

    def __call__(self, data: object) -> Value | AbiError | None:
        if type(data) is not bytes:
            return None
        last = self._last
        if last is not None and last[0] == data:
            return last[1]
        result: Value | AbiError
        try:
            result = decode(data, SQL_LIMITS)
        except AbiError as exc:
            result = exc
        except (RecursionError, MemoryError, OverflowError) as exc:  # defensive: never abort
            result = AbiError(str(exc) or type(exc).__name__)
        self._last = (data, result)
        return result


@dataclass
class _Events:
    """``packr_input``/``packr_output``: an event's bytes, one decoded segment cached
    per trace (queries usually walk events in order).

    ``store`` is a store, or a function making one on first use (``None`` when the
    connection's file is not a trace store: the functions then answer NULL).
    """

    store: TraceStore | Callable[[], TraceStore | None]
    traces: dict[int, Trace | None] = field(default_factory=dict)

    def _store(self) -> TraceStore | None:
        if callable(self.store):
            try:
                made = self.store()
            except StoreError:
                made = None
            if made is None:
                return None
            self.store = made
        return self.store

    def blob(self, trace_id: object, seq: object, index: int) -> bytes | None:
        if type(trace_id) is not int or type(seq) is not int or seq < 0:
            return None
        if trace_id not in self.traces:
            store = self._store()
            if store is None:
                return None
            if len(self.traces) >= 64:
                self.traces.clear()
            try:
                self.traces[trace_id] = store.trace(trace_id)
            except (TraceNotFound, StoreError):
                self.traces[trace_id] = None
        trace = self.traces[trace_id]
        if trace is None:
            return None
        try:
            event = trace.event(seq)
        except (IndexError, StoreError):
            return None
        return event.input if index == 0 else event.output


def _safe(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A function on untrusted data answers NULL rather than aborting the user's query."""

    def wrapper(*args: Any) -> Any:
        try:
            return fn(*args)
        except Exception:
            return None

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


def _store_over(conn: sqlite3.Connection, path: str | os.PathLike[str]) -> TraceStore:
    from .store import TraceStore

    return TraceStore.over_connection(conn, path)


def register_functions(
    conn: sqlite3.Connection,
    store: TraceStore | None = None,
    *,
    path: str | os.PathLike[str] | None = None,
) -> None:
    """Add the ``packr_*`` functions to ``conn``.

    ``packr_input``/``packr_output`` read events from ``store``, or, given the
    ``path`` of the file ``conn`` has open (a Datasette connection), through ``conn``
    itself with a read-only store made on their first call (NULL if the file is not
    a trace store), so they never open the file another way.
    """
    decoded = _Decoder()

    def packr_text(data: object, max_chars: object = DEFAULT_TEXT_CHARS) -> str | None:
        value = decoded(data)
        if not isinstance(value, Value):
            return None
        limit = max_chars if type(max_chars) is int else DEFAULT_TEXT_CHARS
        return format_value(value, limit=max(1, min(limit, MAX_TEXT_CHARS)))

    def packr_json(data: object) -> str | None:
        value = decoded(data)
        return value_json(value) if isinstance(value, Value) else None

    def packr_kind(data: object) -> str | None:
        value = decoded(data)
        return value.kind.name.lower() if isinstance(value, Value) else None

    def packr_error(data: object) -> str | None:
        value = decoded(data)
        if type(data) is not bytes:
            return None if data is None else f"not a blob ({type(data).__name__})"
        return str(value) if isinstance(value, AbiError) else None

    for name, fn, nargs in (
        ("packr_text", packr_text, 1),
        ("packr_text", packr_text, 2),
        ("packr_json", packr_json, 1),
        ("packr_kind", packr_kind, 1),
        ("packr_error", packr_error, 1),
    ):
        conn.create_function(name, nargs, _safe(fn), deterministic=True)
    source: TraceStore | Callable[[], TraceStore | None] | None = store
    if store is None and path is not None:
        source = partial(_store_over, conn, path)
    if source is not None:
        events = _Events(source)

        def packr_input(trace_id: object, seq: object) -> bytes | None:
            return events.blob(trace_id, seq, 0)

        def packr_output(trace_id: object, seq: object) -> bytes | None:
            return events.blob(trace_id, seq, 1)

        conn.create_function("packr_input", 2, _safe(packr_input))
        conn.create_function("packr_output", 2, _safe(packr_output))


# --------------------------------------------------------------------- queries


@dataclass(slots=True)
class QueryResult:
    """Columns and rows of one statement (``changes``: rows a write statement changed)."""

    columns: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool = False
    changes: int = 0


def _deny_attach(action: int, *args: object) -> int:
    """Read-only queries may not attach (and so create) other database files."""
    if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH):
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


_CODE_IN_FILE = frozenset(
    {sqlite3.SQLITE_CREATE_TRIGGER, sqlite3.SQLITE_CREATE_VIEW, sqlite3.SQLITE_CREATE_VTABLE}
)
_TRUST_PRAGMAS = frozenset({"writable_schema", "trusted_schema"})


def _deny_code(action: int, arg1: str | None, *args: object) -> int:
    """Writes may add tables and rows, never what a trace file may not hold (a trigger,
    a view, a virtual table: every later open would refuse the file) nor switch off
    the schema's distrust. Temporary triggers and views vanish with the connection."""
    if action in _CODE_IN_FILE:
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_PRAGMA and (arg1 or "").lower() in _TRUST_PRAGMAS:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def run_query(
    store: TraceStore,
    sql: str,
    params: Sequence[Any] | dict[str, Any] = (),
    *,
    max_rows: int | None = None,
    write_hint: str = "open it with readonly=False",
) -> QueryResult:
    """Run one SQL statement on ``store`` with the ``packr_*`` functions available.

    A store opened read-only cannot be changed by the statement (nor attach files); a
    writable one may gain tables and rows but no trigger, view or virtual table.
    ``max_rows`` stops reading after that many rows (``truncated`` says so);
    ``write_hint`` completes the read-only refusal (the CLI names ``--write``).
    """
    conn = store.db.conn
    register_functions(conn, store)
    conn.set_authorizer(_deny_attach if store.readonly else _deny_code)
    before = conn.total_changes
    try:
        cursor = store.db.execute(sql, params)
        columns = [d[0] for d in cursor.description or ()]
        rows: list[tuple[Any, ...]] = []
        truncated = False
        if columns:
            for row in cursor:
                if max_rows is not None and len(rows) >= max_rows:
                    truncated = True
                    break
                rows.append(tuple(row))
            cursor.close()
    except (sqlite3.Error, sqlite3.Warning) as exc:
        raise StoreError(_explain(store, exc, write_hint)) from None
    finally:
        conn.set_authorizer(None)
    return QueryResult(columns, rows, truncated, conn.total_changes - before)


def _explain(store: TraceStore, exc: BaseException, write_hint: str) -> str:
    text = f"SQL error: {exc}"
    if "readonly" in str(exc) or "attempt to write" in str(exc):
        text += f" (the trace file is open read-only; {write_hint} to change it)"
    elif "not authorized" in str(exc) and not store.readonly:
        text += (
            " (a trace file holds no triggers, views or virtual tables of anyone else's, "
            "and every open would refuse a file that did; plain tables are fine)"
        )
    elif store.format_version < INDEX_FORMAT and "no such table" in str(exc):
        text += (
            f" ({store.path} is trace-store format {store.format_version}, before the "
            "event index and views; index it once to add them: packr-replay index FILE)"
        )
    return text


def unindexed_traces(store: TraceStore) -> list[int]:
    """Ids of traces whose events are not all in ``event_index`` (all of them in a
    format-1 file)."""
    indexed = index_status(store)
    return [info.id for info in store.traces() if indexed.get(info.id, 0) < info.event_count]
