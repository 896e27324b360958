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

Format 2 adds what lets people read a trace in everyday tools (``sqlite3``,
Datasette) without packr-replay: the ``event_index`` table, one plain row per event
(derived data, filled on demand by :func:`~.index.index_trace`, never by the
recorder), and the views ``trace_summary`` and ``events``. Format-1 files still open
read-only as they are (``OLDEST_READABLE_FORMAT``); opening one for writing adds them.

Format 3 changes no table: traces written from then on chain from a hash of their
header (see :mod:`.model`); the version says so to older readers.

Format 4 adds the package dimension, for traces of a composition (several packages
recorded together, see :class:`~packr_replay.runtime.CompositionBuilder`): their
events carry a 14th chain field naming their package, ``trace_packages`` lists each
such trace's packages and the modules they ran (so the modules are kept with the
trace), and ``event_index``/``events`` gain a ``package`` column. Traces of one guest
are stored exactly as in format 3.

Format 5 adds ``traces.end_reason`` (why a recorder sealed a trace ``incomplete``:
``interrupted`` for SIGINT/SIGTERM) and shows it in ``trace_summary``; its traces may
hold ``raw`` events (raw imports, see :class:`.model.EventKind`), which older readers
would refuse as unknown, so the version tells them to upgrade instead.

Opening checks every schema object against what the migrations create: our tables by
shape, our views and indexes by their exact SQL. Besides them a file may hold plain
tables of its user's (``sql --write "create table notes(x)"``) and indexes on those,
and nothing else at all: no trigger and no view or virtual table of anyone else's,
whatever its name (``sqlite_`` included), so a hostile file cannot smuggle code or
data into the queries we, or a person browsing the file, run.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils
from sqlite_utils import Migrations

from .._version import __version__
from ..errors import TraceFormatError, UnfinishedStore
from .sqlite import Tracer, check_header, check_new_file, connect, translate_errors

__all__ = [
    "APPLICATION_ID",
    "MIGRATIONS",
    "OLDEST_READABLE_FORMAT",
    "TRACE_FORMAT_VERSION",
    "ensure_schema",
    "newer_format_message",
    "open_database",
]

APPLICATION_ID = 0x504B5252  # "PKRR"
PAGE_SIZE = 16384
TRACE_FORMAT_VERSION = 5
"""The trace-store and export-stream format this version writes (and every older one it reads)."""

OLDEST_READABLE_FORMAT = 1
"""The oldest format a read-only open accepts without migrating (formats 2 to 5 only
added derived data, a new genesis and a package field for new traces, a column and an
event kind, so older files read as before)."""

MIGRATIONS = Migrations("packr-replay")


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


@MIGRATIONS(name="0002_event_index")
def _m0002_event_index(db: sqlite_utils.Database) -> None:
    """A plain per-event table and two views, so ``sqlite3`` and Datasette can read traces.

    ``event_index`` is derived from the segments (see :mod:`.index`); ``*_text`` hold
    packr's Display text of values up to 1 KiB encoded, cut at 200 characters.
    """
    db.execute(
        """
        CREATE TABLE event_index (
            trace_id INTEGER NOT NULL REFERENCES traces(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            call INTEGER NOT NULL,
            depth INTEGER NOT NULL,
            kind TEXT NOT NULL,
            interface TEXT NOT NULL,
            function TEXT NOT NULL,
            input_size INTEGER,
            output_size INTEGER,
            status INTEGER,
            outcome TEXT NOT NULL,
            error_kind TEXT,
            error TEXT,
            duration_ns INTEGER NOT NULL,
            input_text TEXT,
            output_text TEXT,
            PRIMARY KEY (trace_id, seq)
        ) STRICT, WITHOUT ROWID
        """
    )
    db.execute(
        """
        CREATE VIEW trace_summary AS
        SELECT t.id, t.label, t.status, m.name AS module, t.event_count,
               (SELECT count(*) FROM event_index e WHERE e.trace_id = t.id) AS indexed_events,
               t.created_at, t.completed_at, t.host, t.replay_of, t.uuid, t.module_sha256,
               t.tool_version, t.format_version
        FROM traces t LEFT JOIN modules m ON m.sha256 = t.module_sha256
        """
    )
    db.execute(
        """
        CREATE VIEW events AS
        SELECT e.trace_id, t.label AS trace_label, e.seq, e.call, e.depth, e.kind,
               e.interface, e.function,
               CASE WHEN e.interface = '' THEN e.function
                    ELSE e.interface || '.' || e.function END AS name,
               e.input_size, e.output_size, e.status, e.outcome, e.error_kind, e.error,
               e.duration_ns, e.input_text, e.output_text
        FROM event_index e JOIN traces t ON t.id = e.trace_id
        """
    )


@MIGRATIONS(name="0003_header_chain")
def _m0003_header_chain(db: sqlite_utils.Database) -> None:
    """Format 3: traces written from now on chain from a hash of their header.

    No table changes: a trace's ``format_version`` column says how its chain starts
    (:func:`.model.trace_genesis`), so format-1/2 traces in a migrated file keep
    verifying from their uuid, and new ones bind uuid, module, label, host and the
    replay settings (``meta``) into their first hash. The version bump is what keeps
    an older packr-replay, which would check the new traces against the old genesis
    and call them altered, from opening the file.
    """


@MIGRATIONS(name="0004_packages")
def _m0004_packages(db: sqlite_utils.Database) -> None:
    """Format 4: the package dimension of a composition's trace.

    ``trace_packages`` is derived from the trace's ``composition`` metadata (which the
    chain's genesis covers) when the trace is written or imported; it keeps the modules
    the packages ran from being pruned and lets SQL tools join events to modules.
    """
    db.execute(
        """
        CREATE TABLE trace_packages (
            trace_id INTEGER NOT NULL REFERENCES traces(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            name TEXT NOT NULL,
            module_sha256 TEXT REFERENCES modules(sha256),
            PRIMARY KEY (trace_id, name)
        ) STRICT
        """
    )
    db.execute("ALTER TABLE event_index ADD COLUMN package TEXT")
    db.execute("DROP VIEW events")
    db.execute(
        """
        CREATE VIEW events AS
        SELECT e.trace_id, t.label AS trace_label, e.seq, e.package, e.call, e.depth, e.kind,
               e.interface, e.function,
               CASE WHEN e.interface = '' THEN e.function
                    ELSE e.interface || '.' || e.function END AS name,
               e.input_size, e.output_size, e.status, e.outcome, e.error_kind, e.error,
               e.duration_ns, e.input_text, e.output_text
        FROM event_index e JOIN traces t ON t.id = e.trace_id
        """
    )


@MIGRATIONS(name="0005_end_reason")
def _m0005_end_reason(db: sqlite_utils.Database) -> None:
    """Format 5: ``traces.end_reason`` says why a trace was sealed ``incomplete``
    (``interrupted``); traces may hold ``raw`` events. ``trace_summary`` shows it."""
    db.execute("ALTER TABLE traces ADD COLUMN end_reason TEXT")
    db.execute("DROP VIEW trace_summary")
    db.execute(
        """
        CREATE VIEW trace_summary AS
        SELECT t.id, t.label, t.status, t.end_reason, m.name AS module, t.event_count,
               (SELECT count(*) FROM event_index e WHERE e.trace_id = t.id) AS indexed_events,
               t.created_at, t.completed_at, t.host, t.replay_of, t.uuid, t.module_sha256,
               t.tool_version, t.format_version
        FROM traces t LEFT JOIN modules m ON m.sha256 = t.module_sha256
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


def open_database(
    path: Path,
    *,
    create: bool = False,
    readonly: bool = False,
    tracer: Tracer | None = None,
    busy_timeout: float = 30.0,
    threads: bool = False,
) -> tuple[sqlite_utils.Database, int]:
    """Open (or create) a trace store file: ``(connection, format version)``.

    The file's header, identity and schema are checked before anything else runs on
    it. A file opened for writing is switched to WAL.
    """
    if path.exists():
        check_header(path)
    elif create:
        check_new_file(path)
    db = connect(
        path,
        readonly=readonly,
        create=create,
        busy_timeout=busy_timeout,
        tracer=tracer,
        threads=threads,
    )
    try:
        with translate_errors(path):
            version = ensure_schema(
                db, path, create=create, readonly=readonly, busy_timeout=busy_timeout
            )
            if not readonly and db.journal_mode != "wal":
                # A bundle keeps a rollback journal (one self-contained file). Written
                # to again it needs WAL, or a reader of this store (replaying a trace
                # while a writer records the replay into the same file) locks the
                # writer out.
                db.enable_wal()
    except BaseException:
        db.close()
        raise
    return db, version


def ensure_schema(
    db: sqlite_utils.Database,
    path: Path,
    *,
    create: bool,
    readonly: bool,
    migrations: Migrations = MIGRATIONS,
    version: int = TRACE_FORMAT_VERSION,
    oldest_readable: int = OLDEST_READABLE_FORMAT,
    busy_timeout: float = 30.0,
) -> int:
    """Check (and create or migrate) the schema; returns the file's format version.

    A read-only open of an older file from ``oldest_readable`` on checks it against
    the schema of its own version and reads it as it is. Creation and migration happen
    under ``BEGIN IMMEDIATE`` after re-reading the version, so two processes creating
    the same new file do not race. ``migrations``/``version``/``oldest_readable`` are
    parameters so tests can exercise an upgrade.

    Creation marks the file as ours (``application_id``) first thing in its
    transaction: sqlite-utils commits as it records each migration, so another process
    may see a file part-way through creation, and must see it as one of ours with no
    format version yet (which it then finishes or waits for) rather than as foreign.
    """
    file_version = _check_identity(db, path, version, migrations)
    if file_version == version:
        _check_shape(db, path, migrations, file_version)
        return file_version
    if file_version == 0 and not create:
        if _user_tables(db):
            raise UnfinishedStore(
                path,
                f"{path} is a trace store whose creation has not finished (another process "
                "is creating it, or its creator stopped part-way; opening it to write "
                "finishes it)",
            )
        raise UnfinishedStore(
            path,
            f"{path} is an empty database, not a trace store (yet: another process may be "
            "creating it; opening it to write makes it one)",
        )
    if file_version > 0:
        _check_shape(db, path, migrations, file_version)  # before we run anything on it
    if readonly:
        if file_version >= oldest_readable:
            return file_version
        raise TraceFormatError(
            f"{path} uses trace-store format {file_version} and needs migrating to "
            f"{version}; open it once without readonly=True to upgrade it"
        )
    if file_version == 0:
        # Both persist in the file and must be set before any table exists / outside
        # a transaction. 16 KiB pages suit segments of up to a MiB (fewer overflow
        # pages and checkpoint writes than SQLite's default 4 KiB).
        _when_not_busy(lambda: _start_file(db), busy_timeout)
    db.execute("BEGIN IMMEDIATE")
    try:
        file_version = _check_identity(db, path, version, migrations)
        if file_version < version:
            db.execute(f"PRAGMA application_id={APPLICATION_ID}")
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
    _check_shape(db, path, migrations, version)
    return version


def _start_file(db: sqlite_utils.Database) -> None:
    db.execute(f"PRAGMA page_size={PAGE_SIZE}")
    db.enable_wal()


def _when_not_busy(action: Callable[[], None], timeout: float) -> None:
    """Run ``action``, retrying while SQLite says the file is locked.

    Switching a new file to WAL needs the file to itself and SQLite does not wait for
    that (no busy handler), so two processes creating one file would fail at random.
    """
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        try:
            action()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def _being_created(db: sqlite_utils.Database, migrations: Migrations, version: int) -> bool:
    """Ours, no version yet, only tables the migrations make and no trace in them: a
    creation still running in another process (or whose creator stopped part-way)."""
    tables = set(_user_tables(db))
    if not tables <= set(_expected_schema(migrations, version).tables) | {migrations.migrations_table}:
        return False
    return "traces" not in tables or db.execute("SELECT 1 FROM traces LIMIT 1").fetchone() is None


def _check_identity(
    db: sqlite_utils.Database, path: Path, version: int, migrations: Migrations = MIGRATIONS
) -> int:
    """The file's format version, after making sure it is one of ours and not newer.

    0: nothing is there yet, or another process is creating the file (ours, no
    version yet; creation re-checks under the write lock)."""
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
        if _being_created(db, migrations, version):
            return 0  # creation (this process's, under the write lock) finishes it
        raise TraceFormatError(f"{path} is a damaged trace store (no format version)")
    return file_version


ObjectKey = tuple[str, str]
"""``(type, name)`` of a schema object in ``sqlite_master``."""


@dataclass(frozen=True, slots=True)
class _Schema:
    """What a file of one format version must hold: every object's SQL, tables' shapes."""

    objects: dict[ObjectKey, str | None]
    tables: dict[str, Any]


_expected: dict[int, _Schema] = {}


def _objects(db: sqlite_utils.Database) -> dict[ObjectKey, str | None]:
    """Every schema object that can hold code or change what our queries see.

    Left out: SQLite's own bookkeeping (:func:`_sqlite_own`), and sqlite-utils'
    plain indexes on its migrations table (their names and SQL are its business and
    may change between its versions; an index runs no code)."""
    rows = db.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall()
    out: dict[ObjectKey, str | None] = {}
    for kind, name, table, sql in rows:
        key = (str(kind), str(name))
        text = None if sql is None else str(sql)
        if _sqlite_own(key, text):
            continue
        if key[0] == "index" and table == Migrations.migrations_table:
            continue
        out[key] = text
    return out


_SQLITE_TABLES = frozenset({"sqlite_sequence", "sqlite_stat1", "sqlite_stat4"})


def _sqlite_own(key: ObjectKey, sql: str | None) -> bool:
    """An object SQLite itself makes: a UNIQUE/PRIMARY KEY index (no SQL) or one of
    ANALYZE's and AUTOINCREMENT's tables. The ``sqlite_`` prefix alone proves nothing:
    ``PRAGMA writable_schema`` lets a file name a trigger ``sqlite_x``."""
    kind, name = key
    if kind == "index":
        return sql is None and name.startswith("sqlite_autoindex_")
    return kind == "table" and name in _SQLITE_TABLES


def _user_object(key: ObjectKey, sql: str | None, objects: dict[ObjectKey, str | None],
                 ours: set[str]) -> bool:  # fmt: skip
    """A plain table someone added (``sql --write "create table notes(x)"``) or an
    index on one: data, never code, and untouched by anything packr-replay runs.
    Virtual tables run a module's code, so they are not plain tables."""
    kind, name = key
    if name.lower().startswith("sqlite_"):
        return False
    if kind == "table":
        return name.lower() not in ours and sql is not None and _PLAIN_TABLE.match(sql) is not None
    if kind == "index" and sql is not None:
        table = (_index_table(sql) or "").lower()
        tables = {n.lower(): (n, text) for (k, n), text in objects.items() if k == "table"}
        if table not in tables:
            return False
        name, text = tables[table]
        return _user_object(("table", name), text, objects, ours)
    return False


_PLAIN_TABLE = re.compile(r"\s*CREATE\s+TABLE\s", re.IGNORECASE)
_IDENT = r'(?:"(?:[^"]|"")*"|\[[^\]]*\]|`(?:[^`]|``)*`|[A-Za-z_][\w$]*)'
_INDEX_ON = re.compile(
    rf"\s*CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:IF\s+NOT\s+EXISTS\s+)?(?:{_IDENT}\s*\.\s*)?"
    rf"{_IDENT}\s+ON\s+({_IDENT})\s*\(",
    re.IGNORECASE,
)


def _index_table(sql: str) -> str | None:
    """The table an index's SQL (what SQLite runs, unlike ``tbl_name``) is on; ``None``
    when the SQL is anything but the plain form (comments, odd quoting: refused)."""
    match = _INDEX_ON.match(sql)
    if match is None:
        return None
    name = match.group(1)
    if name[0] == '"':
        return name[1:-1].replace('""', '"')
    if name[0] == "`":
        return name[1:-1].replace("``", "`")
    if name[0] == "[":
        return name[1:-1]
    return name


def _shape(db: sqlite_utils.Database, tables: Iterable[str]) -> dict[str, Any]:
    """Column names, declared types, NOT NULL and key positions, and strictness."""
    shape: dict[str, Any] = {}
    strict: dict[str, int] = {}
    try:
        for row in db.execute("PRAGMA table_list").fetchall():
            strict[str(row[1])] = int(row[5])
    except Exception:  # SQLite < 3.37: no table_list, no STRICT tables to check
        pass
    for table in tables:
        cols = db.execute(f"PRAGMA table_xinfo({_quote(table)})").fetchall()
        shape[table] = (
            [(str(c[1]), str(c[2]).upper(), int(c[3]), int(c[5])) for c in cols],
            strict.get(table),
        )
    return shape


def _printable(name: str) -> str:
    """A schema name for a message: control characters escaped, length bounded."""
    text = name.encode("unicode_escape").decode("ascii") if not name.isprintable() else name
    return text if len(text) <= 80 else text[:77] + "..."


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _expected_schema(migrations: Migrations, version: int) -> _Schema:
    """The schema ``migrations`` create up to ``version``, built in a scratch database."""
    cached = _expected.get(version) if migrations is MIGRATIONS else None
    if cached is not None:
        return cached
    scratch = sqlite_utils.Database(memory=True, execute_plugins=False)
    try:
        names = [m.name for m in migrations.pending(scratch)]
        if version < len(names):
            migrations.apply(scratch, stop_before=names[version])
        else:
            migrations.apply(scratch)
        objects = _objects(scratch)
        tables = [name for kind, name in objects if kind == "table"]
        schema = _Schema(objects, _shape(scratch, tables))
    finally:
        scratch.close()
    if migrations is MIGRATIONS:
        _expected[version] = schema
    return schema


def _check_shape(
    db: sqlite_utils.Database, path: Path, migrations: Migrations, version: int
) -> None:
    """Refuse files whose schema differs from what format ``version`` creates.

    Tables are compared by shape (what reading relies on); views and indexes by their
    exact SQL, because their SQL is what runs when someone queries them; anything
    else (a trigger, a foreign table or view) is refused outright.
    """
    expected = _expected_schema(migrations, version)
    actual = _objects(db)
    ours = {name.lower() for kind, name in expected.objects if kind == "table"}
    ours.add(migrations.migrations_table.lower())
    unexpected = sorted(
        key
        for key in actual.keys() - expected.objects.keys()
        if not _user_object(key, actual[key], actual, ours)
    )
    if unexpected:
        names = ", ".join(f"{t} {_printable(n)}" for t, n in unexpected[:5])
        more = f" and {len(unexpected) - 5} more" if len(unexpected) > 5 else ""
        raise TraceFormatError(
            f"{path} has schema objects packr-replay did not make ({names}{more}): triggers, "
            "views and virtual tables in a trace file are refused, whatever their names"
        )
    shape = _shape(db, expected.tables)
    for table, table_shape in expected.tables.items():
        if shape[table] != table_shape:
            raise TraceFormatError(
                f"{path} is not a valid trace store: table {table!r} has an unexpected shape"
            )
    for (kind, name), sql in expected.objects.items():
        if kind != "table" and actual.get((kind, name)) != sql:
            raise TraceFormatError(
                f"{path} is not a valid trace store: {kind} {name!r} is missing or "
                "differs from packr-replay's; refusing it"
            )
