"""Opening one SQLite connection the way every part of the store needs it.

Each connection gets the same settings: a busy timeout (several recorder processes
share one file), ``synchronous=NORMAL`` (durable at each WAL commit boundary, no fsync
per transaction), ``trusted_schema=OFF`` (a hostile schema cannot run functions from
views or triggers), SQLite's defensive mode with triggers disabled where the Python
version offers it, a hard cap on blob and string length (an oversized blob in a
hostile file is an error, not an allocation) and foreign keys on. SQLite errors are
translated at this boundary so callers only ever see the :class:`StoreError` tree.

Trace files travel (bug-report attachments, CI artifacts, read-only checkouts), so a
read must work where nothing can be written. SQLite reads a WAL-mode file through its
``-shm`` companion, which it cannot create on read-only storage: there a read-only open
falls back to ``immutable=1`` (no locks, no ``-shm``), which is exact when no writer
can be live -- nothing can write to that storage -- and the file holds every committed
change (no ``-wal`` with content beside it; that case is refused with the reason). A
read-only connection also cannot fold the WAL back into the file when it closes, so
:func:`tidy` does that after a read, leaving one self-contained file.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlite_utils

from ..errors import StoreError, TraceFormatError
from .codec import MAX_BLOB_BYTES

__all__ = ["Tracer", "connect", "distrust_schema", "limit_length", "tidy", "translate_errors"]

Tracer = Callable[[str, Any], None]
"""Receives every SQL statement and its parameters (sqlite-utils' ``tracer=``)."""

SQLITE_MAGIC = b"SQLite format 3\x00"
_LENGTH_LIMIT = MAX_BLOB_BYTES + 1024 * 1024


@contextmanager
def translate_errors(path: object) -> Iterator[None]:
    """Turn ``sqlite3`` errors into the store's error tree.

    Busy, locked, I/O or permission problems are :class:`StoreError`; anything that
    says the file itself is bad (corrupt, not a database, a blob over the limit) is
    :class:`TraceFormatError`, as is text SQLite hands back that is not UTF-8 (a
    damaged schema's text reaches Python inside SQLite's own error message).
    """
    try:
        yield
    except sqlite3.OperationalError as exc:
        text = str(exc)
        if any(word in text for word in ("malformed", "not a database", "corrupt", "decode")):
            raise TraceFormatError(f"{path}: the file is damaged: {text}") from exc
        raise StoreError(f"{path}: {text}") from exc
    except (sqlite3.ProgrammingError, sqlite3.InterfaceError) as exc:  # e.g. a closed store
        raise StoreError(f"{path}: {exc}") from exc
    except sqlite3.DatabaseError as exc:  # DataError, IntegrityError, corruption
        raise TraceFormatError(f"{path}: the file is damaged or not a trace store: {exc}") from exc
    except UnicodeDecodeError as exc:  # SQLite's text (a message, a schema) is not UTF-8
        raise TraceFormatError(
            f"{path}: the file is damaged: SQLite returned text that is not UTF-8 "
            f"(byte {exc.object[exc.start:exc.start + 1]!r} at offset {exc.start})"
        ) from exc


def check_new_file(path: Path) -> None:
    """Refuse to create ``path`` in a directory that is not there, naming the directory
    (SQLite only says "unable to open database file")."""
    parent = path.parent
    if not parent.exists():
        raise StoreError(f"cannot create {path}: no such directory {parent}")
    if not parent.is_dir():
        raise StoreError(f"cannot create {path}: {parent} is not a directory")


def check_header(path: Path) -> None:
    """Refuse non-SQLite files before SQLite sees them (clearer than its message)."""
    try:
        with path.open("rb") as f:
            head = f.read(len(SQLITE_MAGIC))
    except IsADirectoryError:
        raise StoreError(f"{path} is a directory, not a trace store") from None
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror or exc}") from None
    if head and head != SQLITE_MAGIC:
        raise TraceFormatError(f"{path} is not a packr-replay trace store (not an SQLite file)")


#: ``sqlite3.Connection.setconfig`` options (Python 3.12+) and the value each gets.
_DBCONFIG = (
    ("SQLITE_DBCONFIG_DEFENSIVE", True),  # no writable_schema, no edits that corrupt
    ("SQLITE_DBCONFIG_TRUSTED_SCHEMA", False),  # as the pragma, from the first statement
    ("SQLITE_DBCONFIG_ENABLE_TRIGGER", False),  # a trigger that slipped through never fires
)


def _harden(conn: sqlite3.Connection) -> None:
    """SQLite's defensive mode, where this Python offers it (``setconfig``, 3.12+).

    On older Pythons the schema check (no triggers, no foreign views) and
    ``trusted_schema=OFF`` carry the same guarantees without this second line.
    """
    setconfig = getattr(conn, "setconfig", None)
    if setconfig is None:
        return
    for name, value in _DBCONFIG:
        option = getattr(sqlite3, name, None)
        if option is not None:
            setconfig(option, value)


def distrust_schema(conn: sqlite3.Connection) -> None:
    """``trusted_schema=OFF`` and defensive mode (where offered): the guard every
    connection to a trace file gets, ours and those Datasette opens (its plugin)."""
    conn.execute("PRAGMA trusted_schema=OFF")
    _harden(conn)


def limit_length(conn: sqlite3.Connection) -> None:
    """Cap the blobs and strings a connection hands back (a hostile file's oversized
    blob is then an error, not an allocation)."""
    conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, _LENGTH_LIMIT)


def writable(path: Path) -> bool:
    """Whether SQLite could write ``path`` and create its companions beside it."""
    return os.access(path.parent, os.W_OK) and (not path.exists() or os.access(path, os.W_OK))


def connect(
    path: Path,
    *,
    readonly: bool = False,
    create: bool = False,
    busy_timeout: float = 30.0,
    tracer: Tracer | None = None,
    threads: bool = False,
) -> sqlite_utils.Database:
    """Open ``path`` with the store's settings (schema is checked by the caller).

    ``threads`` allows handing the connection to another thread (one at a time). A
    read-only open of a file on storage that cannot be written falls back to
    ``immutable=1`` (see the module's docstring).
    """
    if not readonly:
        if path.parent.is_dir() and not writable(path):
            raise StoreError(
                f"{path}: cannot write here (read-only storage or no permission); reads "
                "work, writes need a copy somewhere writable"
            )
        return _open(path, "rwc" if create else "rw", busy_timeout, tracer, threads)
    try:
        return _open(path, "ro", busy_timeout, tracer, threads)
    except TraceFormatError:
        raise
    except StoreError:
        if writable(path) or not path.is_file():
            raise
    _check_no_pending_wal(path)
    return _open(path, "ro&immutable=1", busy_timeout, tracer, threads)


def _open(
    path: Path, mode: str, busy_timeout: float, tracer: Tracer | None, threads: bool
) -> sqlite_utils.Database:
    uri = f"file:{quote(str(path.absolute()))}?mode={mode}"
    with translate_errors(path):
        conn = sqlite3.connect(uri, uri=True, timeout=busy_timeout, check_same_thread=not threads)
        try:
            limit_length(conn)
            for pragma in (
                f"busy_timeout={int(busy_timeout * 1000)}",
                "cell_size_check=ON",
                "foreign_keys=ON",
                "synchronous=NORMAL",
            ):
                conn.execute(f"PRAGMA {pragma}")
            distrust_schema(conn)
            if mode.startswith("ro"):
                conn.execute("PRAGMA query_only=ON")
                # SQLite opens lazily: read now, so a file it cannot open fails here.
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return sqlite_utils.Database(conn, tracer=tracer, execute_plugins=False)
        except BaseException:
            conn.close()
            raise


def _check_no_pending_wal(path: Path) -> None:
    """An immutable read ignores the WAL: refuse a file whose WAL still holds changes."""
    wal = Path(f"{path}-wal")
    try:
        size = wal.stat().st_size
    except OSError:
        return
    if size:
        raise StoreError(
            f"{path}: its last changes are still in {wal.name} ({size} bytes), which SQLite "
            f"reads only where it can write beside the file; copy {path.name} and "
            f"{wal.name} somewhere writable and open it there (opening it once where it "
            "was written folds them into one file)"
        )


def tidy(path: Path) -> None:
    """After a read-only connection to ``path`` closed: fold its WAL back into the file
    and remove the ``-wal``/``-shm`` companions, if nothing else has the file open.

    A read-only connection cannot do that itself, so it would leave them behind. A
    writable connection that only opens the file and closes does: SQLite checkpoints and
    deletes the companions when the last connection closes (and does nothing while a
    writer or another reader still has the file). The content does not change.
    """
    if not Path(f"{path}-shm").exists() or not writable(path):
        return
    try:
        conn = sqlite3.connect(f"file:{quote(str(path.absolute()))}?mode=rw", uri=True, timeout=0)
    except sqlite3.Error:
        return
    try:
        distrust_schema(conn)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error:
        pass  # busy or odd: leave the companions to the next connection
    finally:
        conn.close()
