"""Rows of the ``traces`` and ``modules`` tables as typed, validated objects.

Every value read from a file is checked for its type before it is used: STRICT tables
keep honest writers honest, but a hostile file can hold anything in any column.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlite_utils

from ..errors import IntegrityError, StoreError, TraceFormatError, TraceNotFound
from .codec import unpack_meta
from .liveness import WriterIdentity, is_alive
from .model import TraceInfo, TraceStatus
from .packages import insert_packages
from .schema import TRACE_FORMAT_VERSION, newer_format_message
from .sqlite import translate_errors

__all__ = [
    "TRACE_COLUMNS",
    "ModuleInfo",
    "TraceRef",
    "fetch_info",
    "find_uuid",
    "info_from_row",
    "insert_module",
    "insert_segment",
    "insert_trace",
    "module_infos",
    "now_iso",
    "read_module",
    "resolve_trace",
    "trace_columns",
]

TraceRef = int | str
"""A trace id, its uuid, or a label (the newest trace carrying it)."""

TRACE_COLUMNS = (
    "id, uuid, created_at, module_sha256, status, label, host, tool_version, format_version, "
    "event_count, replay_of, replay_of_uuid, completed_at, head_hash, meta, "
    "writer_host, writer_boot, writer_pid, writer_start"
)



def trace_columns(db: sqlite_utils.Database) -> str:
    """:data:`TRACE_COLUMNS` and ``end_reason`` (NULL in a file from before format 5,
    which a read-only open reads as it is)."""
    names = {str(row[1]) for row in db.execute("PRAGMA table_info(traces)").fetchall()}
    return f"{TRACE_COLUMNS}, {'end_reason' if 'end_reason' in names else 'NULL'}"


_STATUSES = {str(s): s for s in TraceStatus}
_N = type(None)
_TRACE_TYPES: tuple[tuple[str, tuple[type, ...]], ...] = (
    ("id", (int,)),
    ("uuid", (str,)),
    ("created_at", (str,)),
    ("module_sha256", (str, _N)),
    ("status", (str,)),
    ("label", (str, _N)),
    ("host", (str, _N)),
    ("tool_version", (str,)),
    ("format_version", (int,)),
    ("event_count", (int,)),
    ("replay_of", (int, _N)),
    ("replay_of_uuid", (str, _N)),
    ("completed_at", (str, _N)),
    ("head_hash", (bytes, _N)),
    ("meta", (bytes,)),
    ("writer_host", (str, _N)),
    ("writer_boot", (str, _N)),
    ("writer_pid", (int, _N)),
    ("writer_start", (int, _N)),
    ("end_reason", (str, _N)),
)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True, slots=True)
class ModuleInfo:
    """A stored module, without its bytes (see ``TraceStore.module_bytes``)."""

    sha256: str
    name: str
    size: int
    added_at: str
    types: bytes | None = None


def info_from_row(row: tuple[Any, ...], where: object) -> TraceInfo:
    """Validate a ``TRACE_COLUMNS`` row and report a dead writer's trace as incomplete."""
    if len(row) != len(_TRACE_TYPES):
        raise TraceFormatError(f"{where}: trace row has {len(row)} columns")
    for (name, types), value in zip(_TRACE_TYPES, row, strict=True):
        if type(value) not in types:
            raise TraceFormatError(f"{where}: trace column {name} holds a {type(value).__name__}")
    (
        id_,
        uuid,
        created_at,
        module_sha256,
        status_text,
        label,
        host,
        tool_version,
        format_version,
        event_count,
        replay_of,
        replay_of_uuid,
        completed_at,
        head_hash,
        meta,
        writer_host,
        writer_boot,
        writer_pid,
        writer_start,
        end_reason,
    ) = row
    if format_version > TRACE_FORMAT_VERSION:
        raise TraceFormatError(newer_format_message(f"trace {id_} in {where}", format_version))
    status = _STATUSES.get(status_text)
    if status is None:
        raise TraceFormatError(f"{where}: trace {id_} has unknown status {status_text!r}")
    if head_hash is not None and len(head_hash) != 32:
        raise TraceFormatError(f"{where}: trace {id_} has a malformed head hash")
    if status is TraceStatus.RECORDING:
        alive = writer_pid is not None and is_alive(
            uuid,
            WriterIdentity(writer_host or "", writer_boot or "", writer_pid, writer_start or 0),
        )
        if not alive:
            status = TraceStatus.INCOMPLETE
    return TraceInfo(
        id=id_,
        uuid=uuid,
        created_at=created_at,
        module_sha256=module_sha256,
        status=status,
        label=label,
        host=host,
        tool_version=tool_version,
        format_version=format_version,
        event_count=event_count,
        replay_of=replay_of,
        completed_at=completed_at,
        head_hash=head_hash,
        meta=unpack_meta(meta, f"{where}: metadata of trace {id_}"),
        replay_of_uuid=replay_of_uuid,
        end_reason=end_reason,
    )


def fetch_info(db: sqlite_utils.Database, trace_id: int, where: object) -> TraceInfo:
    with translate_errors(where):
        columns = trace_columns(db)
        row = db.execute(f"SELECT {columns} FROM traces WHERE id = ?", [trace_id]).fetchone()
    if row is None:
        raise TraceNotFound(trace_id, where)
    return info_from_row(tuple(row), where)


def resolve_trace(db: sqlite_utils.Database, ref: TraceRef, where: object) -> int:
    """A trace id from an id, a uuid, a label (the newest trace with it) or digits."""
    if isinstance(ref, bool) or not isinstance(ref, int | str):
        raise TypeError(f"trace reference must be an id, uuid or label, not {type(ref).__name__}")
    with translate_errors(where):
        if isinstance(ref, int):
            row = db.execute("SELECT id FROM traces WHERE id = ?", [ref]).fetchone()
        else:
            row = db.execute("SELECT id FROM traces WHERE uuid = ?", [ref]).fetchone()
            if row is None:
                row = db.execute(
                    "SELECT id FROM traces WHERE label = ? ORDER BY id DESC LIMIT 1", [ref]
                ).fetchone()
            if row is None and ref.isdecimal():
                row = db.execute("SELECT id FROM traces WHERE id = ?", [int(ref)]).fetchone()
    if row is None or type(row[0]) is not int:
        raise TraceNotFound(ref, where)
    return int(row[0])


def insert_trace(db: sqlite_utils.Database, info: TraceInfo, meta: bytes) -> int:
    """Insert a finished or abandoned trace's row (import, bundle); returns its id.

    The caller holds the transaction. A trace that was still ``recording`` has no
    writer here, so it is stored as ``incomplete``.
    """
    status = info.status
    if status is TraceStatus.RECORDING:
        status = TraceStatus.INCOMPLETE
    cursor = db.execute(
        "INSERT INTO traces (uuid, created_at, module_sha256, status, label, host, tool_version, "
        "format_version, event_count, replay_of, replay_of_uuid, completed_at, head_hash, meta, "
        "end_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            info.uuid,
            info.created_at,
            info.module_sha256,
            str(status),
            info.label,
            info.host,
            info.tool_version,
            info.format_version,
            info.event_count,
            info.replay_of,
            info.replay_of_uuid,
            info.completed_at,
            info.head_hash,
            meta,
            info.end_reason,
        ],
    )
    trace_id = int(cursor.lastrowid or 0)
    insert_packages(db, trace_id, info.meta, "the store")
    return trace_id


def insert_segment(
    db: sqlite_utils.Database, trace_id: int, segment: tuple[int, int, bytes, bytes]
) -> None:
    """Insert one ``(first_seq, count, head_hash, data)`` segment (caller holds the txn)."""
    db.execute(
        "INSERT INTO segments (trace_id, first_seq, count, head_hash, data) VALUES (?, ?, ?, ?, ?)",
        [trace_id, *segment],
    )


def find_uuid(db: sqlite_utils.Database, uuid: str) -> int | None:
    row = db.execute("SELECT id FROM traces WHERE uuid = ?", [uuid]).fetchone()
    return None if row is None else int(row[0])


def read_module(db: sqlite_utils.Database, sha256: str, where: object) -> bytes:
    """A stored module's bytes, checked against the SHA-256 it is stored under.

    :class:`StoreError` if the store does not hold it; :class:`IntegrityError` (seq -1:
    no event is to blame) if its bytes were altered, so a module swapped under a
    trace is never compiled, let alone run.
    """
    with translate_errors(where):
        row = db.execute("SELECT wasm FROM modules WHERE sha256 = ?", [sha256]).fetchone()
    if row is None:
        raise StoreError(f"{where} holds no module {sha256}")
    if type(row[0]) is not bytes:
        raise TraceFormatError(f"{where}: module {sha256} is not stored as bytes")
    if hashlib.sha256(row[0]).hexdigest() != sha256:
        raise IntegrityError(
            None, -1, f"{where}: the stored module {sha256[:12]}… does not match its SHA-256: "
            "its bytes were altered after recording"
        )  # fmt: skip
    return row[0]


def insert_module(
    db: sqlite_utils.Database, sha256: str, name: str, wasm: bytes, types: bytes | None
) -> None:
    """Store a module's bytes under their SHA-256 (a module already there is kept)."""
    db.execute(
        "INSERT INTO modules (sha256, name, size, types, wasm, added_at) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (sha256) DO NOTHING",
        [sha256, name, len(wasm), types, wasm, now_iso()],
    )


def module_infos(
    db: sqlite_utils.Database, where_sql: str, params: list[Any], where: object
) -> list[ModuleInfo]:
    """The stored modules selected by ``where_sql`` (without their bytes), checked."""
    with translate_errors(where):
        rows = db.execute(
            f"SELECT sha256, name, size, added_at, types FROM modules {where_sql}", params
        ).fetchall()
    out = []
    for sha, name, size, added_at, types in rows:
        if not (
            type(sha) is str
            and type(name) is str
            and type(size) is int
            and type(added_at) is str
            and type(types) in (bytes, type(None))
        ):
            raise TraceFormatError(f"{where}: malformed module row")
        out.append(ModuleInfo(sha, name, size, added_at, types))
    return out
