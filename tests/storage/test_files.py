"""Opening files: explicit creation, versions and migrations, and hostile or corrupt input."""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from pathlib import Path

import msgpack
import pytest
import sqlite_utils
from sqlite_utils import Migrations

from packr_replay.errors import StoreError, TraceFormatError
from packr_replay.storage import TRACE_FORMAT_VERSION, FlushPolicy, TraceStore
from packr_replay.storage import schema as schema_module
from packr_replay.storage import sqlite as sqlite_module
from packr_replay.storage.schema import APPLICATION_ID, MIGRATIONS, ensure_schema

from .util import half_created, raw, write_events


def populated(path: Path, traces: int = 3, events: int = 300) -> Path:
    with TraceStore(path, create=True) as store:
        sha = store.add_module(b"\0asm\1\0\0\0" + os.urandom(3000), "g.wasm")
        for _ in range(traces):
            with store.begin_trace(sha, meta={"k": "v"}, flush=FlushPolicy(max_events=50)) as w:
                write_events(w, events, size=64)
    return path


def read_everything(path: Path) -> None:
    """Every read operation the store offers, on every trace."""
    with TraceStore(path) as store:
        for info in store.traces():
            trace = store.trace(info.id)
            for _ in trace.events():
                pass
            trace.exports()
            store.verify(info.id)
            if info.module_sha256:
                store.module_bytes(info.module_sha256)
        store.modules()


def edit_strict_table(path: Path, table: str, sql: str, params: tuple[object, ...] = ()) -> None:
    """Store wrong-typed values in a STRICT table the way a hostile file would."""
    with closing(sqlite3.connect(path)) as conn:
        (original,) = conn.execute(
            "SELECT sql FROM sqlite_master WHERE name = ?", (table,)
        ).fetchone()
        conn.execute("PRAGMA writable_schema=ON")
        conn.execute(
            "UPDATE sqlite_master SET sql = ? WHERE name = ?",
            (original.replace(") STRICT", ")"), table),
        )
        conn.commit()
    with closing(sqlite3.connect(path)) as conn:
        conn.execute(sql, params)
        conn.commit()
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA writable_schema=ON")
        conn.execute("UPDATE sqlite_master SET sql = ? WHERE name = ?", (original, table))
        conn.commit()


class TestOpening:
    """Creating is explicit; a missing, empty or non-file path is a clear error."""

    def test_missing_path(self, tmp_path: Path) -> None:
        path = tmp_path / "nope.db"
        with pytest.raises(StoreError, match="create=True"):
            TraceStore(path)
        assert not path.exists()

    def test_directory(self, tmp_path: Path) -> None:
        with pytest.raises(StoreError, match="directory"):
            TraceStore(tmp_path)

    def test_creating_in_a_missing_directory(self, tmp_path: Path) -> None:
        path = tmp_path / "nonexistent_dir" / "t.db"
        with pytest.raises(StoreError) as info:
            TraceStore(path, create=True)
        assert str(info.value) == f"cannot create {path}: no such directory {path.parent}"
        (tmp_path / "afile").touch()
        with pytest.raises(StoreError, match="afile is not a directory"):
            TraceStore(tmp_path / "afile" / "t.db", create=True)

    def test_empty_file(self, tmp_path: Path) -> None:
        path = tmp_path / "empty.db"
        path.touch()
        with pytest.raises(TraceFormatError, match="empty"):
            TraceStore(path)
        TraceStore(path, create=True).close()
        TraceStore(path).close()

    def test_create_and_readonly_conflict(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="read-only"):
            TraceStore(tmp_path / "x.db", create=True, readonly=True)

    def test_readonly_cannot_write(self, store_path: Path) -> None:
        populated(store_path, traces=1, events=10)
        with TraceStore(store_path, readonly=True) as store:
            assert len(store.trace(1)) == 10
            with pytest.raises(StoreError):
                store.add_module(b"\0asm", "x")

    def test_tracer_sees_sql(self, store_path: Path) -> None:
        seen: list[str] = []
        with TraceStore(
            store_path, create=True, tracer=lambda sql, params: seen.append(sql)
        ) as store:
            with store.begin_trace(None) as writer:
                write_events(writer, 3)
            store.traces()
        assert any("INSERT INTO segments" in s for s in seen)
        assert any("FROM traces" in s for s in seen)


class TestVersions:
    """user_version is the format version: migrated forward, refused when newer."""

    def test_fresh_file(self, store: TraceStore) -> None:
        db = store.db
        assert db.execute("PRAGMA user_version").fetchone()[0] == TRACE_FORMAT_VERSION
        assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert [m.name for m in MIGRATIONS.applied(db)] == [
            "0001_initial", "0002_event_index", "0003_header_chain", "0004_packages",
            "0005_end_reason",
        ]
        assert store.format_version == TRACE_FORMAT_VERSION

    def test_reopen_applies_nothing(self, store_path: Path) -> None:
        populated(store_path, traces=1, events=5)
        with TraceStore(store_path) as store:
            assert len(MIGRATIONS.applied(store.db)) == TRACE_FORMAT_VERSION

    def test_newer_file_is_refused(self, store_path: Path) -> None:
        populated(store_path, traces=1, events=5)
        raw(store_path, "PRAGMA user_version = 7")
        with pytest.raises(TraceFormatError) as err:
            TraceStore(store_path)
        assert "format 7" in str(err.value)
        assert "pip install -U packr-replay" in str(err.value)

    def test_newer_trace_row_is_refused(self, store_path: Path) -> None:
        populated(store_path, traces=1, events=5)
        raw(store_path, "UPDATE traces SET format_version = 9")
        with TraceStore(store_path) as store, pytest.raises(TraceFormatError, match="format 9"):
            store.traces()

    def test_damaged_version(self, store_path: Path) -> None:
        populated(store_path, traces=1, events=5)
        raw(store_path, "PRAGMA user_version = 0")
        with pytest.raises(TraceFormatError, match="no format version"):
            TraceStore(store_path)

    def test_a_half_created_file_is_finished_by_a_writer(self, store_path: Path) -> None:
        half_created(store_path)
        with TraceStore(store_path, create=True) as store:
            assert store.format_version == TRACE_FORMAT_VERSION
        TraceStore(store_path).close()

    def test_a_half_created_file_is_not_read_as_foreign(self, store_path: Path) -> None:
        half_created(store_path)
        with pytest.raises(TraceFormatError, match="creation has not finished"):
            TraceStore(store_path)

    def upgraded_migrations(self) -> Migrations:
        """Today's migrations plus a future one (format ``TRACE_FORMAT_VERSION + 1``)."""
        migrations = Migrations("packr-replay")
        migrations(name="0001_initial")(schema_module._m0001_initial)
        migrations(name="0002_event_index")(schema_module._m0002_event_index)
        migrations(name="0003_header_chain")(schema_module._m0003_header_chain)
        migrations(name="0004_packages")(schema_module._m0004_packages)
        migrations(name="0005_end_reason")(schema_module._m0005_end_reason)

        @migrations(name="9999_notes")
        def notes(db: sqlite_utils.Database) -> None:
            db.execute("ALTER TABLE traces ADD COLUMN notes TEXT")

        return migrations

    def test_migrates_forward(self, store_path: Path) -> None:
        populated(store_path, traces=1, events=5)
        migrations = self.upgraded_migrations()
        future = TRACE_FORMAT_VERSION + 1
        db = sqlite_module.connect(store_path)
        try:
            assert (
                ensure_schema(
                    db,
                    store_path,
                    create=False,
                    readonly=False,
                    migrations=migrations,
                    version=future,
                )
                == future
            )
            assert db.execute("PRAGMA user_version").fetchone()[0] == future
            assert "notes" in db["traces"].columns_dict
        finally:
            db.close()
        # ... and this version now refuses the upgraded file, saying why.
        with pytest.raises(TraceFormatError, match=f"format {future}"):
            TraceStore(store_path)

    def test_readonly_reads_an_older_format_as_it_is(self, store_path: Path) -> None:
        populated(store_path, traces=1, events=5)
        db = sqlite_module.connect(store_path, readonly=True)
        future = TRACE_FORMAT_VERSION + 1
        try:
            version = ensure_schema(
                db, store_path, create=False, readonly=True,
                migrations=self.upgraded_migrations(), version=future,
            )  # fmt: skip
            assert version == TRACE_FORMAT_VERSION
            assert db.execute("PRAGMA user_version").fetchone()[0] == TRACE_FORMAT_VERSION
        finally:
            db.close()

    def test_readonly_does_not_migrate_below_the_oldest_readable(self, store_path: Path) -> None:
        populated(store_path, traces=1, events=5)
        db = sqlite_module.connect(store_path, readonly=True)
        future = TRACE_FORMAT_VERSION + 1
        try:
            with pytest.raises(TraceFormatError, match="without readonly"):
                ensure_schema(
                    db, store_path, create=False, readonly=True,
                    migrations=self.upgraded_migrations(), version=future, oldest_readable=future,
                )  # fmt: skip
        finally:
            db.close()


class TestHostileFiles:
    """Corrupt, foreign or malicious files fail with StoreError subclasses, nothing else."""

    def test_random_bytes(self, tmp_path: Path) -> None:
        path = tmp_path / "random.db"
        path.write_bytes(os.urandom(8192))
        with pytest.raises(TraceFormatError, match="not an SQLite file"):
            TraceStore(path)

    def test_sqlite_header_then_garbage(self, tmp_path: Path) -> None:
        path = tmp_path / "garbage.db"
        path.write_bytes(b"SQLite format 3\x00" + os.urandom(8192))
        with pytest.raises(TraceFormatError):
            TraceStore(path)

    def test_foreign_database(self, tmp_path: Path) -> None:
        path = tmp_path / "foreign.db"
        raw(path, "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        with pytest.raises(TraceFormatError, match="foreign SQLite database; tables: users"):
            TraceStore(path, create=True)  # create=True must not adopt someone else's file

    def test_our_id_but_foreign_tables(self, tmp_path: Path) -> None:
        path = tmp_path / "impostor.db"
        raw(path, "CREATE TABLE traces (x)")
        raw(path, f"PRAGMA application_id = {APPLICATION_ID}")
        raw(path, "PRAGMA user_version = 1")
        with pytest.raises(TraceFormatError, match="unexpected shape"):
            TraceStore(path)

    def test_non_strict_table(self, store_path: Path) -> None:
        populated(store_path, traces=1, events=5)
        with closing(sqlite3.connect(store_path)) as conn:
            conn.execute("PRAGMA writable_schema=ON")
            conn.execute(
                "UPDATE sqlite_master SET sql = replace(sql, ') STRICT', ')') WHERE name = 'segments'"
            )
            conn.commit()
        with pytest.raises(TraceFormatError, match="unexpected shape"):
            TraceStore(store_path)

    def test_trigger(self, store_path: Path) -> None:
        populated(store_path, traces=1, events=5)
        raw(store_path, "CREATE TRIGGER t AFTER INSERT ON segments BEGIN DELETE FROM modules; END")
        with pytest.raises(TraceFormatError, match="trigger t"):
            TraceStore(store_path)

    @pytest.mark.parametrize("fraction", [0.05, 0.3, 0.5, 0.8, 0.97])
    def test_truncated(self, store_path: Path, fraction: float) -> None:
        populated(store_path)
        size = store_path.stat().st_size
        with open(store_path, "r+b") as f:
            f.truncate(int(size * fraction))
        with pytest.raises(StoreError):
            read_everything(store_path)

    @pytest.mark.parametrize(
        ("sql", "params"),
        [
            ("UPDATE traces SET meta = ?", (msgpack.packb({"big": b"x" * (2 * 1024 * 1024)}),)),
            ("UPDATE traces SET meta = ?", (msgpack.packb({"t": msgpack.ExtType(1, b"code")}),)),
            ("UPDATE traces SET meta = ?", (msgpack.packb({"t": msgpack.Timestamp(0)}),)),
            ("UPDATE traces SET meta = ?", (msgpack.packb([1, 2, 3]),)),
            ("UPDATE traces SET meta = ?", (msgpack.packb({1: 2}),)),
            ("UPDATE traces SET meta = ?", (b"\xc1 not msgpack",)),
            ("UPDATE traces SET status = 'hacked'", ()),
            ("UPDATE traces SET head_hash = x'00'", ()),
        ],
        ids=[
            "oversized-meta",
            "ext-type",
            "timestamp-ext",
            "meta-list",
            "int-keys",
            "garbage-meta",
            "bad-status",
            "short-head",
        ],
    )
    def test_bad_trace_rows(self, store_path: Path, sql: str, params: tuple[object, ...]) -> None:
        populated(store_path, traces=1, events=5)
        with closing(sqlite3.connect(store_path)) as conn:
            conn.execute("PRAGMA ignore_check_constraints = ON")
            conn.execute(sql, params)
            conn.commit()
        with TraceStore(store_path) as store, pytest.raises(TraceFormatError):
            store.traces()

    @pytest.mark.parametrize(
        ("table", "sql"),
        [
            ("segments", "UPDATE segments SET data = 'text, not bytes'"),
            ("segments", "UPDATE segments SET count = 'many'"),
            ("segments", "UPDATE segments SET head_hash = 12"),
            ("traces", "UPDATE traces SET event_count = 'lots'"),
            ("traces", "UPDATE traces SET meta = 'text'"),
            ("modules", "UPDATE modules SET wasm = 'text'"),
            ("modules", "UPDATE modules SET name = x'00'"),
        ],
    )
    def test_wrong_column_types(self, store_path: Path, table: str, sql: str) -> None:
        populated(store_path, traces=1, events=5)
        edit_strict_table(store_path, table, sql)
        with pytest.raises(TraceFormatError):
            read_everything(store_path)

    @pytest.mark.parametrize(
        "data",
        [
            b"\xc6\xff\xff\xff\xff",  # a bin claiming 4 GiB
            b"\xdd\xff\xff\xff\xff",  # an array claiming 4 billion items
            b"\xd4\x01\x00",  # an extension type
            msgpack.packb([0] * 13),  # wrong field types
            b"",
        ],
        ids=["huge-bin", "huge-array", "ext", "wrong-types", "empty"],
    )
    def test_bad_segment_data(self, store_path: Path, data: bytes) -> None:
        populated(store_path, traces=1, events=5)
        raw(store_path, "UPDATE segments SET data = ?", (data,))
        with TraceStore(store_path) as store:
            with pytest.raises(TraceFormatError):
                list(store.trace(1).events())
            assert not store.verify(1).ok

    def test_segment_with_trailing_bytes(self, store_path: Path) -> None:
        populated(store_path, traces=1, events=5)
        raw(store_path, "UPDATE segments SET data = CAST(data || x'00' AS BLOB)")
        with TraceStore(store_path) as store, pytest.raises(TraceFormatError, match="trailing"):
            list(store.trace(1).events())

    def test_blob_over_the_length_limit(
        self, store_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        populated(store_path, traces=1, events=5)
        raw(store_path, "UPDATE modules SET wasm = zeroblob(3000000)")
        monkeypatch.setattr(sqlite_module, "_LENGTH_LIMIT", 1_000_000)
        with TraceStore(store_path) as store, pytest.raises(TraceFormatError, match="too big"):
            store.module_bytes(store.modules()[0].sha256)


class TestNoCodeExecution:
    """Nothing in the package can run code from a file: no pickle, no eval."""

    def test_no_pickle_or_eval(self) -> None:
        import packr_replay.storage as storage

        package = Path(storage.__file__).parent
        for source in package.glob("*.py"):
            text = source.read_text()
            for word in ("import pickle", "pickle.", "eval(", "exec(", "marshal", "shelve"):
                assert word not in text, f"{source.name} uses {word}"


class TestMisuse:
    """Caller mistakes are TypeError/ValueError or StoreError, never raw sqlite3 errors."""

    def test_closed_store(self, store_path: Path) -> None:
        populated(store_path, traces=1, events=5)
        store = TraceStore(store_path)
        trace = store.trace(1)
        store.close()
        with pytest.raises(StoreError, match="closed"):
            store.traces()
        with pytest.raises(StoreError):
            list(trace.events())

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"label": 5},
            {"host": b"h"},
            {"meta": {1: 2}},
            {"meta": {"nested": {1: 2}}},
            {"meta": {"ext": msgpack.ExtType(1, b"")}},
            {"meta": {"x": object()}},
            {"replay_of": "1"},
        ],
    )
    def test_bad_trace_arguments(self, store: TraceStore, kwargs: dict[str, object]) -> None:
        with pytest.raises(TypeError):
            store.begin_trace(None, **kwargs)  # type: ignore[arg-type]
        assert store.traces() == []

    def test_oversized_meta(self, store: TraceStore) -> None:
        with pytest.raises(ValueError, match="limit"):
            store.begin_trace(None, meta={"blob": b"x" * (2 * 1024 * 1024)})


class TestHostileRows:
    """Odd values in otherwise valid rows."""

    def test_invalid_utf8_text(self, store_path: Path) -> None:
        populated(store_path, traces=1, events=5)
        raw(store_path, "UPDATE traces SET label = CAST(x'fffe41' AS TEXT)")
        with TraceStore(store_path) as store, pytest.raises(TraceFormatError):
            store.traces()

    @pytest.mark.parametrize("pid", [0, -1, 2**31 - 1])
    def test_odd_writer_pids_read_as_dead(self, store_path: Path, pid: int) -> None:
        populated(store_path, traces=1, events=5)
        raw(
            store_path,
            "UPDATE traces SET status = 'recording', head_hash = NULL, writer_pid = ?",
            (pid,),
        )
        from packr_replay.storage import TraceStatus

        with TraceStore(store_path) as store:
            assert store.traces()[0].status is TraceStatus.INCOMPLETE

    @pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
    def test_recycled_pid_reads_as_dead(self, store_path: Path) -> None:
        from packr_replay.storage import TraceStatus
        from packr_replay.storage.liveness import WriterIdentity, _start_time

        populated(store_path, traces=1, events=5)
        me, parent = WriterIdentity.current(), os.getppid()
        started = _start_time(parent)
        for start, expected in ((started, TraceStatus.RECORDING), (1, TraceStatus.INCOMPLETE)):
            raw(
                store_path,
                "UPDATE traces SET status = 'recording', head_hash = NULL, writer_host = ?, "
                "writer_boot = ?, writer_pid = ?, writer_start = ?",
                (me.host, me.boot, parent, start),
            )
            with TraceStore(store_path) as store:
                assert store.traces()[0].status is expected
