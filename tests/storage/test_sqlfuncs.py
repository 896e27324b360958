"""SQL over traces: the packr_* functions (safe on untrusted blobs) and run_query."""

from __future__ import annotations

import json
import math
import sqlite3
import struct
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings

from packr_replay.abi import (
    F32,
    F64,
    S64,
    UNIT,
    Char,
    Flags,
    List,
    Option,
    Record,
    Result,
    String,
    Tuple,
    Value,
    ValueType,
    Variant,
    encode,
)
from packr_replay.errors import StoreError
from packr_replay.storage import TraceStore, index_all
from packr_replay.storage.sqlfuncs import (
    DEFAULT_TEXT_CHARS,
    FUNCTIONS,
    register_functions,
    run_query,
    unindexed_traces,
    value_json,
)
from tests.abi.test_text import LOSSLESS

from .util import write_events


def reference_json(value: Value) -> Any:
    """What value_json promises, written the obvious (recursive) way."""
    if isinstance(value, F32 | F64):
        f = value.value
        return "NaN" if math.isnan(f) else ("inf" if f > 0 else "-inf") if math.isinf(f) else f
    if isinstance(value, List | Tuple):
        return [reference_json(v) for v in value.items]
    if isinstance(value, Option):
        return None if value.value is None else reference_json(value.value)
    if isinstance(value, Result):
        return {"err" if value.is_err else "ok": reference_json(value.value)}
    if isinstance(value, Record):
        out: dict[str, Any] = {}
        for name, v in value.fields:
            out[name] = reference_json(v)  # JSON objects: the last duplicate wins
        return out
    if isinstance(value, Variant):
        return {
            "case": value.case_name,
            "tag": value.tag,
            "payload": [reference_json(v) for v in value.payload],
        }
    return value.value  # type: ignore[attr-defined]


@pytest.fixture
def conn() -> Any:
    with closing(sqlite3.connect(":memory:")) as c:
        register_functions(c)
        yield c


def q(conn: sqlite3.Connection, sql: str, *params: object) -> Any:
    return conn.execute(sql, params).fetchone()[0]


class TestValueJson:
    """value_json is valid JSON with a documented mapping, at any depth, and bounded."""

    @settings(max_examples=150, deadline=None)
    @given(LOSSLESS)
    def test_matches_reference(self, value: Value) -> None:
        text = value_json(value)
        assert text is not None
        assert json.loads(text) == reference_json(value)

    def test_specials(self) -> None:
        assert value_json(F64(math.nan)) == '"NaN"'
        assert value_json(F32(-math.inf)) == '"-inf"'
        assert value_json(Flags(5)) == "5"
        assert value_json(Char("é")) == '"é"'
        assert value_json(Option(ValueType.S64)) == "null"
        assert value_json(UNIT) == "[]"
        assert json.loads(value_json(Result.err(String("no"))) or "") == {"err": "no"}

    def test_deep_nesting_is_fine(self) -> None:
        value: Value = S64(1)
        for _ in range(50_000):
            value = Tuple(value)
        text = value_json(value)
        assert text is not None
        assert text.startswith("[[[[")
        assert text.count("[") == 50_000

    def test_bounded(self) -> None:
        big = List(ValueType.STRING, [String("z" * 100)] * 100)
        assert value_json(big, max_chars=1000) is None
        assert value_json(big, max_chars=20_000) is not None


class TestFunctions:
    """Each function on valid values, invalid bytes, NULL and non-blob arguments."""

    def test_registered(self, conn: sqlite3.Connection) -> None:
        names = {r[0] for r in conn.execute("SELECT name FROM pragma_function_list")}
        assert set(FUNCTIONS) - {"packr_input", "packr_output"} <= names

    def test_valid_value(self, conn: sqlite3.Connection) -> None:
        value = Record("point", [("x", S64(1)), ("tags", List(ValueType.STRING, [String("a")]))])
        blob = encode(value)
        assert q(conn, "SELECT packr_text(?)", blob) == str(value)
        assert q(conn, "SELECT packr_kind(?)", blob) == "record"
        assert json.loads(q(conn, "SELECT packr_json(?)", blob)) == {"x": 1, "tags": ["a"]}
        assert q(conn, "SELECT packr_error(?)", blob) is None
        assert q(conn, "SELECT json_extract(packr_json(?), '$.tags[0]')", blob) == "a"

    @pytest.mark.parametrize(
        "blob", [b"", b"garbage, not CGRF", encode(String("cut"))[:-1], bytes(range(256)) * 4]
    )
    def test_invalid_bytes(self, conn: sqlite3.Connection, blob: bytes) -> None:
        for fn in ("packr_text", "packr_kind", "packr_json"):
            assert q(conn, f"SELECT {fn}(?)", blob) is None
        assert q(conn, "SELECT packr_error(?)", blob)

    @pytest.mark.parametrize("arg", [None, "text", 42, 1.5])
    def test_not_a_blob(self, conn: sqlite3.Connection, arg: object) -> None:
        for fn in ("packr_text", "packr_kind", "packr_json"):
            assert q(conn, f"SELECT {fn}(?)", arg) is None
        error = q(conn, "SELECT packr_error(?)", arg)
        assert error is None if arg is None else "not a blob" in error

    def test_text_is_bounded(self, conn: sqlite3.Connection) -> None:
        blob = encode(String("w" * 10_000))
        assert len(q(conn, "SELECT packr_text(?)", blob)) == DEFAULT_TEXT_CHARS + 3
        assert q(conn, "SELECT packr_text(?, 5)", blob) == '"wwww...'
        assert len(q(conn, "SELECT packr_text(?, 20000)", blob)) == 10_002
        assert q(conn, "SELECT packr_text(?, 'x')", encode(S64(3))) == "3s64"

    def test_dag_bomb_is_refused(self, conn: sqlite3.Connection) -> None:
        """650 bytes whose shared subtrees expand to 2**30 leaves: refused, quickly."""
        blob = diamond(30)
        assert len(blob) < 700
        assert q(conn, "SELECT packr_text(?)", blob) is None
        assert q(conn, "SELECT packr_json(?)", blob) is None
        assert "node" in q(conn, "SELECT packr_error(?)", blob).lower()
        assert q(conn, "SELECT packr_kind(?)", diamond(3)) == "tuple"


def diamond(levels: int) -> bytes:
    """CGRF where node k is ``Tuple(node k-1, node k-1)`` over a ``U64`` leaf."""
    leaf = struct.pack("<BBHI", 0x0F, 0, 0, 8) + struct.pack("<Q", 1)
    nodes = [leaf] + [
        struct.pack("<BBHI", 0x0B, 0, 0, 12) + struct.pack("<III", 2, k - 1, k - 1)
        for k in range(1, levels + 1)
    ]
    return struct.pack("<4sHHII", b"CGRF", 2, 0, len(nodes), len(nodes) - 1) + b"".join(nodes)


class TestQueries:
    """run_query on a store: read-only by default, with event bytes available."""

    @pytest.fixture
    def store_file(self, store_path: Path) -> Path:
        with TraceStore(store_path, create=True) as store:
            with store.begin_trace(None, label="a") as writer:
                writer.append(1, "export", "", "run", encode(String("hi")))  # type: ignore[arg-type]
                writer.append(
                    1,
                    "import",
                    "t:host/f",
                    "get",
                    encode(UNIT),
                    encode(Option(ValueType.S64, S64(5))),
                    0,
                )  # type: ignore[arg-type]
                writer.append(1, "return", "", "run", None, encode(S64(5)), 0)  # type: ignore[arg-type]
            with store.begin_trace(None, label="b") as writer:
                write_events(writer, 10)
        return store_path

    def test_read_only_by_default(self, store_file: Path) -> None:
        with TraceStore(store_file, readonly=True) as store:
            with pytest.raises(StoreError, match="read-only"):
                run_query(store, "DELETE FROM traces")
            with pytest.raises(StoreError, match="not authorized"):
                run_query(store, f"ATTACH '{store_file.parent / 'new.db'}' AS x")
            assert not (store_file.parent / "new.db").exists()
            assert run_query(store, "SELECT count(*) FROM traces").rows == [(2,)]

    def test_writes_when_allowed(self, store_file: Path) -> None:
        with TraceStore(store_file) as store:
            result = run_query(store, "UPDATE traces SET label = ? WHERE id = 2", ["renamed"])
            assert result.changes == 1
            assert result.columns == []
        with TraceStore(store_file, readonly=True) as store:
            assert run_query(store, "SELECT label FROM traces WHERE id = 2").rows == [("renamed",)]

    def test_event_bytes_and_values(self, store_file: Path) -> None:
        with TraceStore(store_file) as store:
            index_all(store)
        with TraceStore(store_file, readonly=True) as store:
            result = run_query(
                store,
                "SELECT seq, name, packr_text(packr_input(trace_id, seq)), "
                "packr_json(packr_output(trace_id, seq)) FROM events WHERE trace_label = ? ORDER BY seq",
                ["a"],
            )
        assert result.columns[:2] == ["seq", "name"]
        assert result.rows == [
            (0, "run", '"hi"', None),
            (1, "t:host/f.get", "()", "5"),
            (2, "run", None, "5"),
        ]

    def test_missing_events_are_null(self, store_file: Path) -> None:
        with TraceStore(store_file, readonly=True) as store:
            rows = run_query(
                store,
                "SELECT packr_input(1, 99), packr_input(7, 0), packr_input('1', 0), packr_output(1, -1), "
                "length(packr_input(2, 6))",
            ).rows
        assert rows == [(None, None, None, None, 32)]

    def test_max_rows(self, store_file: Path) -> None:
        with TraceStore(store_file, readonly=True) as store:
            result = run_query(
                store, "SELECT seq FROM event_index UNION ALL SELECT 1 FROM traces", max_rows=1
            )
        assert result.rows == [(1,)]
        assert result.truncated

    def test_sql_errors(self, store_file: Path) -> None:
        with TraceStore(store_file, readonly=True) as store:
            with pytest.raises(StoreError, match="SQL error: no such table"):
                run_query(store, "SELECT * FROM nope")
            with pytest.raises(StoreError, match="SQL error"):
                run_query(store, "SELECT 1; SELECT 2")

    def test_unindexed(self, store_file: Path) -> None:
        with TraceStore(store_file) as store:
            assert unindexed_traces(store) == [1, 2]
            index_all(store, ["b"])
            assert unindexed_traces(store) == [1]


class TestBorrowedConnection:
    """On a connection someone else opened (Datasette's), the functions and a
    read-only store read through that connection."""

    def _file(self, path: Path) -> int:
        from .util import write_events

        with TraceStore(path, create=True) as store, store.begin_trace(None) as w:
            write_events(w, 12)
            return w.trace_id

    def test_events_through_the_connection(self, tmp_path: Path) -> None:
        path = tmp_path / "t.db"
        trace_id = self._file(path)
        with closing(sqlite3.connect(f"file:{path}?immutable=1", uri=True)) as conn:
            register_functions(conn, path=path)
            got = conn.execute("select packr_input(?, 1), packr_output(?, 4)", [trace_id] * 2)
            assert got.fetchone() == (bytes([7]) * 32, b"r" + (4).to_bytes(4, "little"))
            assert conn.execute("select packr_input(?, 99)", [trace_id]).fetchone() == (None,)

    def test_null_on_a_file_that_is_not_a_store(self, tmp_path: Path) -> None:
        path = tmp_path / "other.db"
        with closing(sqlite3.connect(path)) as conn:
            conn.execute("create table t (x)")
            register_functions(conn, path=path)
            assert conn.execute("select packr_input(1, 0), packr_kind(x'00')").fetchone() == (
                None,
                None,
            )

    def test_close_leaves_the_connection_open(self, tmp_path: Path) -> None:
        path = tmp_path / "t.db"
        trace_id = self._file(path)
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            store = TraceStore.over_connection(conn, path)
            assert store.readonly
            assert len(store.trace(trace_id)) == 12
            assert store.verify(trace_id).ok
            with pytest.raises(StoreError, match="read-only"):
                store.begin_trace(None)
            store.close()
            assert conn.execute("select count(*) from traces").fetchone() == (1,)

    def test_foreign_schema_refused(self, tmp_path: Path) -> None:
        path = tmp_path / "t.db"
        self._file(path)
        with closing(sqlite3.connect(path)) as conn:
            conn.execute("create view extra as select 1")
            conn.commit()
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        with closing(conn), pytest.raises(StoreError):
            TraceStore.over_connection(conn, path)
