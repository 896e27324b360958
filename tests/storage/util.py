"""Helpers shared by the storage tests (event factories, raw file access)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import sqlite_utils
from sqlite_utils import Migrations

from packr_replay.storage import EventKind, EventSink, Outcome
from packr_replay.storage import schema as schema_module
from packr_replay.storage.schema import APPLICATION_ID

MODULE_BYTES = b"\x00asm\x01\x00\x00\x00" + bytes(range(256))
MODULE_TYPES = b"\x01types"


def event_fields(i: int, size: int = 32) -> dict[str, Any]:
    """Deterministic, varied fields for event ``i`` (a repeating export/import/return shape)."""
    phase = i % 5
    call = i // 5 + 1
    if phase == 0:
        return {"call": call, "kind": EventKind.EXPORT, "interface": "", "function": "run",
                "input": i.to_bytes(4, "little") * (size // 4)}  # fmt: skip
    if phase == 4:
        return {"call": call, "kind": EventKind.RETURN, "interface": "", "function": "run",
                "input": None, "output": b"r" + i.to_bytes(4, "little"), "status": 0,
                "duration_ns": 1000 + i}  # fmt: skip
    failed = phase == 3
    return {
        "call": call,
        "kind": EventKind.IMPORT,
        "interface": "wasi:io/streams" if phase == 1 else "env",
        "function": "read" if phase == 1 else "clock",
        "input": (i * 7 % 251).to_bytes(1, "little") * size,
        "output": None if failed else bytes([i % 256]) * size,
        "status": -1 if failed else 0,
        "outcome": Outcome.IMPORT_ERROR if failed else Outcome.OK,
        "error_kind": "Handler" if failed else None,
        "error": f"boom {i}" if failed else None,
        "duration_ns": i,
        "depth": 1,
    }


def write_events(sink: EventSink, n: int, start: int = 0, size: int = 32) -> None:
    for i in range(start, start + n):
        sink.append(**event_fields(i, size))


def raw(path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
    """Run SQL on the file with plain sqlite3 (to tamper, inspect, or corrupt)."""
    with closing(sqlite3.connect(path)) as conn:
        rows = conn.execute(sql, params).fetchall()
        conn.commit()
    return rows


def half_created(path: Path) -> None:
    """A file as a creator leaves it after its first migration's commit: ours, the first
    tables, no format version yet (another process may be mid-creation)."""
    first = Migrations("packr-replay")
    first(name="0001_initial")(schema_module._m0001_initial)
    with closing(sqlite3.connect(path)) as conn:
        db = sqlite_utils.Database(conn)
        db.execute(f"PRAGMA application_id={APPLICATION_ID}")
        first.apply(db)
        conn.commit()
