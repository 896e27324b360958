"""The per-event index and the views: correct rows, readable in plain SQLite, safe to open."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from packr_replay import api
from packr_replay.abi import S64, UNIT, List, String, ValueType, encode, format_value
from packr_replay.errors import StoreError, TraceFormatError
from packr_replay.runtime import Runtime
from packr_replay.runtime.demo import example_guest
from packr_replay.storage import TRACE_FORMAT_VERSION, Event, TraceStore, index_all, index_trace
from packr_replay.storage.index import TEXT_MAX_BYTES, TEXT_MAX_CHARS, value_text
from packr_replay.storage.schema import MIGRATIONS
from tests.replay.conftest import demo_host

from .util import raw, write_events

ROOT = Path(__file__).resolve().parents[2]
GOLDEN_V1 = ROOT / "traces" / "format-1.db"
EVENT_INDEX_COLUMNS = (
    "trace_id, seq, call, depth, kind, interface, function, input_size, output_size, status, "
    "outcome, error_kind, error, duration_ns, input_text, output_text"
)


@pytest.fixture(scope="module")
def runtime() -> Runtime:
    return Runtime(fuel=50_000_000)


@pytest.fixture
def recorded(tmp_path: Path, runtime: Runtime) -> Path:
    """A store with real traces: the clock actor, and the hostile guest's failures."""
    path = tmp_path / "real.db"
    api.record_run(
        example_guest("clock_actor"), [("run", String("Ada")), ("run", UNIT)],
        host=demo_host(1), store=path, label="clock", runtime=runtime,
    )  # fmt: skip
    big = String("x" * 3000)
    api.record_run(
        example_guest("hostile"),
        [("import_garbage", UNIT), ("fail", UNIT), ("import_echo", big), ("import_echo", S64(7))],
        host=demo_host(2), store=path, label="hostile", runtime=runtime,
    )  # fmt: skip
    return path


def expected_row(trace_id: int, e: Event) -> tuple[Any, ...]:
    return (
        trace_id, e.seq, e.call, e.depth, str(e.kind), e.interface, e.function,
        None if e.input is None else len(e.input), None if e.output is None else len(e.output),
        e.status, str(e.outcome), e.error_kind, e.error, e.duration_ns,
        value_text(e.input), value_text(e.output),
    )  # fmt: skip


def index_rows(path: Path, trace_id: int) -> list[tuple[Any, ...]]:
    return raw(
        path,
        f"SELECT {EVENT_INDEX_COLUMNS} FROM event_index WHERE trace_id = ? ORDER BY seq",
        (trace_id,),
    )


class TestIndexRows:
    """One row per event, equal to what ``Trace.events()`` says."""

    def test_rows_match_events(self, recorded: Path) -> None:
        with TraceStore(recorded) as store:
            written = index_all(store)
            for info in store.traces():
                events = list(store.trace(info.id).events())
                assert written[info.id] == len(events) == info.event_count
                assert index_rows(recorded, info.id) == [expected_row(info.id, e) for e in events]

    def test_text_of_small_values_is_display_text(self, recorded: Path) -> None:
        with TraceStore(recorded) as store:
            index_trace(store, "clock")
            events = list(store.trace("clock").events())
        rows = raw(
            recorded, "SELECT seq, input_text, output_text FROM events WHERE trace_label = 'clock'"
        )
        for (seq, input_text, output_text), event in zip(rows, events, strict=True):
            assert seq == event.seq
            for text, value in ((input_text, event.input_value), (output_text, event.output_value)):
                assert text == (None if value is None else str(value))
        assert ('"Ada"',) in raw(recorded, "SELECT input_text FROM events WHERE kind = 'export'")

    def test_large_long_and_invalid_values(self, recorded: Path) -> None:
        with TraceStore(recorded) as store:
            index_trace(store, "hostile")
        garbage = raw(
            recorded,
            "SELECT input_text, error_kind FROM events WHERE function = 'take' AND outcome != 'ok'",
        )
        assert garbage[0][0].startswith("<17 bytes, not valid CGRF:")
        assert garbage[0][1] == "Decode"
        sizes = raw(
            recorded,
            "SELECT input_size, input_text FROM events WHERE kind = 'export' AND function = 'import_echo'",
        )
        assert sizes[0][0] > TEXT_MAX_BYTES
        assert sizes[0][1] is None
        assert sizes[1] == (len(encode(S64(7))), "7s64")
        failed = raw(
            recorded,
            "SELECT outcome, error FROM events WHERE kind = 'return' AND function = 'fail'",
        )
        assert failed == [("guest_error", "something went wrong")]

    def test_text_is_cut(self) -> None:
        empty = List(ValueType.U8)
        assert value_text(encode(empty)) == str(empty)
        long = String("y" * 500)
        text = value_text(encode(long))
        assert text is not None
        assert len(text) == TEXT_MAX_CHARS + 3
        assert text == format_value(long, limit=TEXT_MAX_CHARS)
        assert text.endswith("...")
        assert value_text(None) is None


class TestIncremental:
    """Indexing resumes where it stopped, sees only committed events, and can rebuild."""

    def test_resumes_on_a_trace_being_recorded(self, store: TraceStore) -> None:
        writer = store.begin_trace(None, label="live")
        write_events(writer, 10)
        writer.flush()
        assert index_trace(store, "live") == 10
        write_events(writer, 7, start=10)
        assert index_trace(store, "live") == 0  # not committed yet
        writer.finish()
        assert index_trace(store, "live") == 7
        assert index_trace(store, "live") == 0
        trace = store.trace("live")
        assert index_rows(store.path, trace.id) == [
            expected_row(trace.id, e) for e in trace.events()
        ]

    def test_rebuild_rewrites_rows(self, store: TraceStore) -> None:
        with store.begin_trace(None, label="t") as writer:
            write_events(writer, 12)
        index_trace(store, "t")
        store.db.execute("UPDATE event_index SET input_text = 'tampered'")
        store.db.execute("DELETE FROM event_index WHERE seq = 11")
        assert index_trace(store, "t") == 1
        assert index_trace(store, "t", rebuild=True) == 12
        assert raw(
            store.path, "SELECT count(*) FROM event_index WHERE input_text = 'tampered'"
        ) == [(0,)]

    def test_large_trace_in_batches(self, store: TraceStore) -> None:
        with store.begin_trace(None, label="big") as writer:
            write_events(writer, 9000, size=8)
        assert index_trace(store, "big") == 9000
        assert raw(store.path, "SELECT count(*), max(seq) FROM event_index") == [(9000, 8999)]

    def test_index_all_and_some(self, store: TraceStore) -> None:
        for label in ("a", "b", "c"):
            with store.begin_trace(None, label=label) as writer:
                write_events(writer, 5)
        assert index_all(store, ["b"]) == {2: 5}
        assert index_all(store) == {1: 5, 2: 0, 3: 5}

    def test_needs_write_access(self, store_path: Path) -> None:
        with TraceStore(store_path, create=True) as store, store.begin_trace(None) as writer:
            write_events(writer, 3)
        with (
            TraceStore(store_path, readonly=True) as store,
            pytest.raises(StoreError, match="read-only"),
        ):
            index_trace(store, 1)

    def test_dropping_a_trace_drops_its_rows(self, store: TraceStore) -> None:
        with store.begin_trace(None, label="gone") as writer:
            write_events(writer, 4)
        index_trace(store, "gone")
        store.db.execute("DELETE FROM segments")
        store.db.execute("DELETE FROM traces")
        assert raw(store.path, "SELECT count(*) FROM event_index") == [(0,)]


class TestPlainSqlite:
    """Views a person can read with SQLite alone: no packr-replay, no functions."""

    def test_trace_summary_and_events(self, recorded: Path) -> None:
        with TraceStore(recorded) as store:
            index_trace(store, "clock")
        with closing(sqlite3.connect(f"file:{recorded}?mode=ro", uri=True)) as conn:
            conn.row_factory = sqlite3.Row
            summary = [dict(r) for r in conn.execute("SELECT * FROM trace_summary ORDER BY id")]
            assert [(s["label"], s["module"], s["status"]) for s in summary] == [
                ("clock", "clock_actor", "complete"),
                ("hostile", "hostile", "complete"),
            ]
            assert summary[0]["indexed_events"] == summary[0]["event_count"] == 14
            assert summary[1]["indexed_events"] == 0 < summary[1]["event_count"]
            imports = conn.execute(
                "SELECT name, input_text, output_text FROM events "
                "WHERE trace_label = 'clock' AND kind = 'import' AND call = 1 ORDER BY seq"
            ).fetchall()
            assert [tuple(r) for r in imports] == [
                ("demo:host/log.write", '"clock-actor: run Ada"', "()"),
                ("demo:host/clock.now", "()", "1700000001000000007u64"),
                ("demo:host/random.next", "10u64", "1u64"),
                ("demo:host/env.get", '"USER"', 'some<string>("user1")'),
                ("demo:host/log.write", '"clock-actor: rolled 1"', "()"),
            ]

    @pytest.mark.skipif(shutil.which("sqlite3") is None, reason="no sqlite3 command-line shell")
    def test_sqlite3_shell(self, recorded: Path) -> None:
        with TraceStore(recorded) as store:
            index_all(store)
        out = subprocess.run(
            ["sqlite3", "-readonly", str(recorded),
             "SELECT label, module, status FROM trace_summary ORDER BY id;"
             "SELECT count(*) FROM events WHERE kind = 'import';"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        assert out.splitlines() == ["clock|clock_actor|complete", "hostile|hostile|complete", "13"]


@pytest.fixture
def golden_copy(tmp_path: Path) -> Path:
    path = tmp_path / "format-1.db"
    shutil.copy(GOLDEN_V1, path)
    return path


class TestFormatUpgrade:
    """A format-1 file (``traces/format-1.db``) reads as it is and migrates when written."""

    def test_golden_file_is_format_1(self) -> None:
        assert raw(GOLDEN_V1, "PRAGMA user_version") == [(1,)]

    def test_reads_read_only_without_migrating(self, golden_copy: Path) -> None:
        before = golden_copy.read_bytes()
        with TraceStore(golden_copy, readonly=True) as store:
            assert store.format_version == 1
            trace = store.trace("golden")
            assert len(list(trace.events())) == 21
            assert store.verify("golden").ok
        assert api.replay(golden_copy, "golden").reproduced
        assert golden_copy.read_bytes() == before

    def test_migrates_when_opened_for_writing(self, golden_copy: Path) -> None:
        with TraceStore(golden_copy) as store:
            assert store.format_version == TRACE_FORMAT_VERSION
            assert [m.name for m in MIGRATIONS.applied(store.db)][-1] == "0005_end_reason"
            assert store.verify("golden").ok
            assert index_trace(store, "golden") == 21
        assert raw(golden_copy, "SELECT count(*) FROM events WHERE trace_label = 'golden'") == [
            (21,)
        ]
        assert raw(golden_copy, "SELECT format_version, indexed_events FROM trace_summary") == [
            (1, 21)
        ]


class TestGoldenFiles:
    """Every released format's golden file opens read-only, verifies and replays."""

    @pytest.mark.parametrize("version", range(1, TRACE_FORMAT_VERSION + 1))
    def test_opens_verifies_and_replays(self, tmp_path: Path, version: int) -> None:
        path = tmp_path / f"format-{version}.db"
        shutil.copy(ROOT / "traces" / f"format-{version}.db", path)
        with TraceStore(path, readonly=True) as store:
            assert store.format_version == version
            assert store.verify("golden").ok
            assert len(store.trace("golden")) == 21
        report = api.replay(path, "golden")
        assert report.reproduced, report.summary()

    def test_format_2_views_in_plain_sqlite(self) -> None:
        path = ROOT / "traces" / "format-2.db"
        rows = raw(path, "SELECT name, output_text FROM events WHERE kind = 'return' ORDER BY seq")
        assert [name for name, _ in rows] == ["run"] * 3
        assert rows[2][1].startswith('report{greeting: "Hello, Grace"')
        assert raw(path, "SELECT label, module, status, indexed_events FROM trace_summary") == [
            ("golden", "clock_actor", "complete", 21)
        ]


def script(path: Path, sql: str) -> None:
    with closing(sqlite3.connect(path)) as conn:
        conn.executescript(sql)


class TestHostileSchema:
    """Exactly our views and tables are accepted; anything foreign or altered is refused."""

    @pytest.mark.parametrize(
        ("sql", "match"),
        [
            ("CREATE VIEW secrets AS SELECT * FROM modules", "view secrets"),
            ("CREATE VIRTUAL TABLE extra USING fts4(x)", "table extra"),
            ("CREATE INDEX extra_idx ON segments(count)", "index extra_idx"),
            ("CREATE TABLE notes (x); CREATE VIEW v AS SELECT * FROM notes", "view v"),
            (
                "CREATE TABLE notes (x); "
                "CREATE TRIGGER t AFTER INSERT ON notes BEGIN DELETE FROM traces; END",
                "trigger t",
            ),
            (
                "CREATE TRIGGER t AFTER INSERT ON event_index BEGIN DELETE FROM traces; END",
                "trigger t",
            ),
            ("CREATE TEMP VIEW harmless AS SELECT 1", None),  # temp objects live in another file
        ],
    )
    def test_foreign_objects(self, store_path: Path, sql: str, match: str | None) -> None:
        TraceStore(store_path, create=True).close()
        script(store_path, sql)
        if match is None:
            TraceStore(store_path).close()
            return
        with pytest.raises(TraceFormatError, match=match):
            TraceStore(store_path)
        with pytest.raises(TraceFormatError, match=match):
            TraceStore(store_path, readonly=True)

    @pytest.mark.parametrize(
        "sql",
        [
            "CREATE TABLE notes (x)",
            'CREATE TABLE "my notes" (x TEXT PRIMARY KEY, y); CREATE INDEX n ON "my notes"(y)',
            "CREATE TABLE Notes (x); CREATE UNIQUE INDEX IF NOT EXISTS n ON NOTES (x)",
        ],
    )
    def test_user_tables_are_fine(self, recorded: Path, sql: str) -> None:
        """A table (and its indexes) someone added holds data, never code: the file
        still opens, is written to and verifies."""
        script(recorded, sql)
        with TraceStore(recorded) as store:
            index_all(store)
            assert all(store.verify(i.id).ok for i in store.traces())
        with TraceStore(recorded, readonly=True) as store:
            assert len(store.traces()) == 2

    @pytest.mark.parametrize(
        ("kind", "name", "sql"),
        [
            ("trigger", "sqlite_x", "CREATE TRIGGER sqlite_x AFTER INSERT ON segments "
             "BEGIN DELETE FROM modules; END"),
            ("view", "sqlite_v", "CREATE VIEW sqlite_v AS SELECT 1"),
            ("table", "sqlite_evil", "CREATE TABLE sqlite_evil(x)"),
            ("index", "sqlite_autoindex_x", "CREATE INDEX sqlite_autoindex_x ON segments(count)"),
            ("index", "i", 'CREATE INDEX "i ON notes (" ON segments(count)'),
        ],
    )  # fmt: skip
    def test_planted_objects_are_refused_whatever_their_names(
        self, store_path: Path, kind: str, name: str, sql: str
    ) -> None:
        """Rows written straight into sqlite_master (``PRAGMA writable_schema``): a
        ``sqlite_`` name or an index whose name hides its table proves nothing."""
        TraceStore(store_path, create=True).close()
        raw(store_path, "CREATE TABLE notes (x)")
        with closing(sqlite3.connect(store_path)) as conn:
            conn.execute("PRAGMA writable_schema=ON")
            conn.execute(
                "INSERT INTO sqlite_master (type, name, tbl_name, rootpage, sql) "
                "VALUES (?, ?, 'segments', 0, ?)",
                [kind, name, sql],
            )
            conn.commit()
        for readonly in (False, True):
            with pytest.raises(TraceFormatError, match=r"did not make|malformed"):
                TraceStore(store_path, readonly=readonly)

    @pytest.mark.parametrize("view", ["events", "trace_summary"])
    def test_altered_view(self, store_path: Path, view: str) -> None:
        TraceStore(store_path, create=True).close()
        raw(store_path, f"DROP VIEW {view}")
        raw(store_path, f"CREATE VIEW {view} AS SELECT * FROM modules")
        with pytest.raises(TraceFormatError, match=f"view '{view}' is missing or differs"):
            TraceStore(store_path, readonly=True)

    def test_missing_view(self, store_path: Path) -> None:
        TraceStore(store_path, create=True).close()
        raw(store_path, "DROP VIEW events")
        with pytest.raises(TraceFormatError, match="view 'events' is missing"):
            TraceStore(store_path)

    def test_altered_index_table(self, store_path: Path) -> None:
        TraceStore(store_path, create=True).close()
        raw(store_path, "DROP TABLE event_index")
        raw(store_path, "CREATE TABLE event_index (trace_id, seq)")
        with pytest.raises(TraceFormatError, match="table 'event_index' has an unexpected shape"):
            TraceStore(store_path)

    def test_format_1_file_with_our_views_is_refused(self, golden_copy: Path) -> None:
        """Format 1 had no views: a format-1 file carrying them was not made by us."""
        raw(golden_copy, "CREATE VIEW events AS SELECT * FROM traces")
        with pytest.raises(TraceFormatError, match="view events"):
            TraceStore(golden_copy, readonly=True)

    def test_analyze_statistics_are_fine(self, recorded: Path) -> None:
        raw(recorded, "ANALYZE")
        with TraceStore(recorded) as store:
            index_all(store)
        with TraceStore(recorded, readonly=True) as store:
            assert len(store.traces()) == 2
