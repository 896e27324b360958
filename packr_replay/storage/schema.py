"""The store's tables, their migrations, and the checks a file must pass to be opened.

A trace store is recognised by ``PRAGMA application_id`` (``PKRR``); its format
version is ``PRAGMA user_version``, which always equals the number of migrations
applied (recorded by :class:`sqlite_utils.Migrations` in ``_sqlite_migrations``).
:data:`TRACE_FORMAT_VERSION` is the newest format this code writes; a file with a
higher number was written by a newer packr-replay and is refused with the command that
fixes it, an older one is migrated forward when opened for writing.

Events are stored in *segments*: one row per flushed batch of a trace, whose ``data``
is the concatenation of the batch's event records (see :mod:`.codec`). One row per
batch instead of one per event is what lets the writer keep up with a busy guest:
SQLite's per-row cost (and the per-blob binding cost of Python's driver) dominates
everything else for small events.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlite_utils
from sqlite_utils import Migrations

from .._version import __version__
from ..errors import TraceFormatError

__all__ = [
    "APPLICATION_ID",
    "MIGRATIONS",
    "TRACE_FORMAT_VERSION",
    "ensure_schema",
    "newer_format_message",
]

APPLICATION_ID = 0x504B5252  # "PKRR"
PAGE_SIZE = 16384
TRACE_FORMAT_VERSION = 1
"""The trace-store and export-stream format this version writes (and every older one it reads)."""

MIGRATIONS = Migrations("packr-replay")

_TABLES = ("modules", "traces", "segments", Migrations.migrations_table)


@MIGRATIONS(name="0001_initial")
def _m0001_initial(db: sqlite_utils.Database) -> None:
    db.execute(
        """
        CREATE TABLE modules (
            sha256 TEXT PRIMARY KEY CHECK (length(sha256) = 64),
            name TEXT NOT NULL,
            size INTEGER NOT NULL,
            types BLOB,
            wasm BLOB NOT NULL,
            added_at TEXT NOT NULL
        ) STRICT
        """
    )
    db.execute(
        """
        CREATE TABLE traces (
            id INTEGER PRIMARY KEY,
            uuid TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL,
            module_sha256 TEXT REFERENCES modules(sha256),
            status TEXT NOT NULL CHECK (status IN
                ('recording', 'complete', 'incomplete', 'diverged', 'failed')),
            label TEXT,
            host TEXT,
            tool_version TEXT NOT NULL,
            format_version INTEGER NOT NULL,
            event_count INTEGER NOT NULL DEFAULT 0,
            replay_of INTEGER REFERENCES traces(id) ON DELETE SET NULL,
            replay_of_uuid TEXT,
            completed_at TEXT,
            head_hash BLOB,
            meta BLOB NOT NULL,
            writer_host TEXT,
            writer_boot TEXT,
            writer_pid INTEGER,
            writer_start INTEGER
        ) STRICT
        """
    )
    db.execute("CREATE INDEX traces_label ON traces(label)")
    db.execute(
        """
        CREATE TABLE segments (
            trace_id INTEGER NOT NULL REFERENCES traces(id) ON DELETE CASCADE,
            first_seq INTEGER NOT NULL CHECK (first_seq >= 0),
            count INTEGER NOT NULL CHECK (count > 0),
            head_hash BLOB NOT NULL,
            data BLOB NOT NULL,
            PRIMARY KEY (trace_id, first_seq)
        ) STRICT
        """
    )


def newer_format_message(what: object, version: int) -> str:
    return (
        f"{what} was written by packr-replay format {version}; this is packr-replay "
        f"{__version__}, which reads formats up to {TRACE_FORMAT_VERSION}. "
        "Upgrade with: pip install -U packr-replay"
    )


def _pragma_int(db: sqlite_utils.Database, name: str) -> int:
    value = db.execute(f"PRAGMA {name}").fetchone()[0]
    return int(value)


def _user_tables(db: sqlite_utils.Database) -> list[str]:
    rows = db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    ).fetchall()
    return sorted(str(r[0]) for r in rows)


def ensure_schema(
    db: sqlite_utils.Database,
    path: Path,
    *,
    create: bool,
    readonly: bool,
    migrations: Migrations = MIGRATIONS,
    version: int = TRACE_FORMAT_VERSION,
) -> int:
    """Check (and create or migrate) the schema; returns the file's format version.

    Creation and migration happen under ``BEGIN IMMEDIATE`` after re-reading the
    version, so two processes creating the same new file do not race.
    ``migrations``/``version`` are parameters so tests can exercise an upgrade.
    """
    file_version = _check_identity(db, path, version)
    if file_version == version:
        _check_shape(db, path, migrations)
        return file_version
    if file_version == 0 and not create:
        raise TraceFormatError(f"{path} is an empty database, not a trace store")
    if readonly:
        raise TraceFormatError(
            f"{path} uses trace-store format {file_version} and needs migrating to "
            f"{version}; open it once without readonly=True to upgrade it"
        )
    if file_version == 0:
        # Both persist in the file and must be set before any table exists / outside
        # a transaction. 16 KiB pages suit segments of up to a MiB (fewer overflow
        # pages and checkpoint writes than SQLite's default 4 KiB).
        db.execute(f"PRAGMA page_size={PAGE_SIZE}")
        db.enable_wal()
    db.execute("BEGIN IMMEDIATE")
    try:
        file_version = _check_identity(db, path, version)
        if file_version < version:
            migrations.apply(db)
            applied = len(migrations.applied(db))
            if applied != version:
                raise TraceFormatError(f"{path}: {applied} migrations applied, expected {version}")
            db.execute(f"PRAGMA application_id={APPLICATION_ID}")
            db.execute(f"PRAGMA user_version={version}")
        db.execute("COMMIT")
    except BaseException:
        db.rollback()
        raise
    _check_shape(db, path, migrations)
    return version


def _check_identity(db: sqlite_utils.Database, path: Path, version: int) -> int:
    """The file's format version, after making sure it is one of ours and not newer."""
    app_id = _pragma_int(db, "application_id")
    file_version = _pragma_int(db, "user_version")
    if app_id != APPLICATION_ID:
        tables = _user_tables(db)
        if app_id == 0 and file_version == 0 and not tables:
            return 0
        detail = f"tables: {', '.join(tables)}" if tables else f"application_id {app_id:#x}"
        raise TraceFormatError(
            f"{path} is not a packr-replay trace store (a foreign SQLite database; {detail})"
        )
    if file_version > version:
        raise TraceFormatError(newer_format_message(path, file_version))
    if file_version < 1:
        raise TraceFormatError(f"{path} is a damaged trace store (no format version)")
    return file_version


_expected: dict[str, Any] | None = None


def _shape(db: sqlite_utils.Database) -> dict[str, Any]:
    """Column names, declared types, NOT NULL and key positions, and strictness."""
    shape: dict[str, Any] = {}
    strict: dict[str, int] = {}
    try:
        for row in db.execute("PRAGMA table_list").fetchall():
            strict[str(row[1])] = int(row[5])
    except Exception:  # SQLite < 3.37: no table_list, no STRICT tables to check
        pass
    for table in _TABLES:
        cols = db.execute(f"PRAGMA table_xinfo({table})").fetchall()
        shape[table] = (
            [(str(c[1]), str(c[2]).upper(), int(c[3]), int(c[5])) for c in cols],
            strict.get(table),
        )
    return shape


def _expected_shape(migrations: Migrations) -> dict[str, Any]:
    global _expected
    if _expected is None or migrations is not MIGRATIONS:
        scratch = sqlite_utils.Database(memory=True, execute_plugins=False)
        try:
            migrations.apply(scratch)
            shape = _shape(scratch)
        finally:
            scratch.close()
        if migrations is not MIGRATIONS:
            return shape
        _expected = shape
    return _expected


def _check_shape(db: sqlite_utils.Database, path: Path, migrations: Migrations) -> None:
    """Refuse files whose tables differ from ours, or that carry triggers or views."""
    code = db.execute(
        "SELECT type, name FROM sqlite_master WHERE type IN ('trigger', 'view')"
    ).fetchall()
    if code:
        names = ", ".join(f"{t} {n}" for t, n in code)
        raise TraceFormatError(f"{path} has unexpected schema objects ({names}); refusing it")
    actual = _shape(db)
    expected = _expected_shape(migrations)
    for table in _TABLES:
        if actual[table] != expected[table]:
            raise TraceFormatError(
                f"{path} is not a valid trace store: table {table!r} has an unexpected shape"
            )
