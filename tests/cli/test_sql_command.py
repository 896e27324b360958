"""``packr-replay index`` and ``packr-replay sql``: in-process (CliRunner) and as the
installed console script."""

from __future__ import annotations

import itertools
import json
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest
from typer.testing import CliRunner

from packr_replay import api
from packr_replay.abi import UNIT, String
from packr_replay.cli.app import app
from packr_replay.runtime.demo import DemoHost, example_guest

ROOT = Path(__file__).resolve().parents[2]
GOLDEN_V1 = ROOT / "traces" / "format-1.db"


@pytest.fixture
def trace_db(tmp_path: Path) -> Path:
    """The clock actor, two calls, with a fixed clock and dice (not indexed yet)."""
    clock = itertools.count(1_732_870_000_000_000_000, 1000)
    host = DemoHost(environ={"USER": "ada"}, clock=lambda: next(clock), randbelow=lambda n: 7)
    path = tmp_path / "bug.db"
    api.record_run(
        example_guest("clock_actor"), [("run", String("Ada")), ("run", UNIT)],
        host=host, store=path, label="flaky",
    )  # fmt: skip
    return path


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


class TestIndexCommand:
    """Fills the events view; incremental; --json; errors are one line and exit 2."""

    def test_index_then_plain_sqlite(self, trace_db: Path) -> None:
        code, out, _ = invoke("index", str(trace_db))
        assert code == 0
        assert "indexed 14 new event(s) in 1 trace(s)" in out
        with closing(sqlite3.connect(trace_db)) as conn:
            assert conn.execute("SELECT count(*) FROM events").fetchone() == (14,)
        code, out, _ = invoke("index", str(trace_db), "--json")
        assert code == 0
        data = json.loads(out)
        assert data["written"] == 0
        assert data["traces"] == [
            {"id": 1, "label": "flaky", "written": 0, "indexed": 14, "events": 14}
        ]

    def test_rebuild_and_select(self, trace_db: Path) -> None:
        invoke("index", str(trace_db))
        code, out, _ = invoke("index", str(trace_db), "--trace", "flaky", "--rebuild", "--json")
        assert code == 0
        assert json.loads(out)["written"] == 14

    def test_upgrades_a_format_1_file(self, tmp_path: Path) -> None:
        path = tmp_path / "old.db"
        shutil.copy(GOLDEN_V1, path)
        code, _, err = invoke("sql", str(path), "select * from events")
        assert code == 2
        assert "packr-replay index" in err
        assert invoke("index", str(path))[0] == 0
        code, out, _ = invoke("sql", str(path), "select count(*) as n from events", "--json")
        assert json.loads(out)["rows"] == [[21]]

    @pytest.mark.parametrize("command", ["index", "sql"])
    def test_missing_file(self, tmp_path: Path, command: str) -> None:
        args = [command, str(tmp_path / "nope.db")] + (["select 1"] if command == "sql" else [])
        code, _, err = invoke(*args)
        assert code == 2
        assert "nope.db: no such file" in err
        assert not (tmp_path / "nope.db").exists()

    def test_unknown_trace(self, trace_db: Path) -> None:
        code, _, err = invoke("index", str(trace_db), "--trace", "nope")
        assert code == 2
        assert "no trace 'nope'" in err


class TestSqlCommand:
    """Runs one statement with the packr_* functions; a table or JSON; read-only."""

    def test_table(self, trace_db: Path) -> None:
        code, out, err = invoke(
            "sql", str(trace_db), "--index",
            "select seq, name, output_text from events where kind = 'import' and call = ?",
            "-p", "1",
        )  # fmt: skip
        assert code == 0, err
        assert "demo:host/clock.now" in out
        assert "1732870000000000000u64" in out
        assert "seq" in out.splitlines()[1]

    def test_json_and_functions(self, trace_db: Path) -> None:
        invoke("index", str(trace_db))
        code, out, _ = invoke(
            "sql", str(trace_db), "--json",
            "select seq, packr_kind(packr_output(trace_id, seq)) as kind, "
            "json_extract(packr_json(packr_output(trace_id, seq)), '$.roll') as roll, "
            "packr_text(packr_input(trace_id, seq)) as input, packr_output(trace_id, seq - 3) as raw "
            "from events where kind = 'return'",
        )  # fmt: skip
        assert code == 0
        data = json.loads(out)
        assert data["columns"] == ["seq", "kind", "roll", "input", "raw"]
        assert [row[:4] for row in data["rows"]] == [
            [6, "record", 7, None],
            [13, "record", 7, None],
        ]
        assert isinstance(data["rows"][0][4], str)  # bytes as hex
        bytes.fromhex(data["rows"][0][4])
        assert data["truncated"] is False

    def test_values_without_the_index(self, trace_db: Path) -> None:
        code, out, err = invoke(
            "sql", str(trace_db), "--json", "select packr_text(packr_output(1, 2)) as now"
        )
        assert code == 0, err
        assert json.loads(out)["rows"] == [["1732870000000000000u64"]]

    def test_note_when_not_indexed(self, trace_db: Path) -> None:
        code, _, err = invoke("sql", str(trace_db), "select count(*) from events")
        assert code == 0
        assert "1 trace(s) are not fully indexed" in err
        assert "packr-replay index" in err

    def test_read_only_unless_asked(self, trace_db: Path) -> None:
        code, _, err = invoke("sql", str(trace_db), "update traces set label = 'x'")
        assert code == 2
        assert "read-only" in err
        assert "--write" in err  # the refusal names the way out
        code, out, _ = invoke("sql", str(trace_db), "--write", "update traces set label = 'x'")
        assert code == 0
        assert "1 row(s) changed" in out

    def test_user_tables_keep_the_file_usable(self, trace_db: Path) -> None:
        """``create table notes(x)`` is data: every command still opens the file."""
        code, _, err = invoke("sql", str(trace_db), "--write", "create table notes(x)")
        assert code == 0, err
        invoke("sql", str(trace_db), "--write", "insert into notes values ('seen on CI')")
        code, out, err = invoke("sql", str(trace_db), "--json", "select x from notes")
        assert code == 0, err
        assert json.loads(out)["rows"] == [["seen on CI"]]
        for command in (["verify", str(trace_db)], ["info", str(trace_db)],
                        ["show", str(trace_db)], ["index", str(trace_db)]):  # fmt: skip
            code, _, err = invoke(*command)
            assert code == 0, (command, err)

    @pytest.mark.parametrize(
        "statement",
        [
            "create trigger t after insert on segments begin delete from modules; end",
            "create view v as select 1",
            "create virtual table v using fts4(x)",
            "pragma writable_schema = on",
        ],
    )
    def test_write_cannot_add_code(self, trace_db: Path, statement: str) -> None:
        """--write refuses what would make every later open refuse the file."""
        code, _, err = invoke("sql", str(trace_db), "--write", statement)
        assert code == 2
        assert "not authorized" in err
        code, _, err = invoke("verify", str(trace_db))
        assert code == 0, err

    def test_sql_error_is_one_line(self, trace_db: Path) -> None:
        code, out, err = invoke("sql", str(trace_db), "selec nothing")
        assert code == 2
        assert out == ""
        assert err.count("\n") == 1
        assert "SQL error" in err

    def test_max_rows(self, trace_db: Path) -> None:
        code, out, err = invoke(
            "sql", str(trace_db), "--max-rows", "2", "--json", "select seq from event_index"
        )
        assert code == 0
        assert "showing the first" not in err  # nothing indexed: zero rows
        invoke("index", str(trace_db))
        code, out, err = invoke(
            "sql", str(trace_db), "--max-rows", "2", "--json", "select seq from event_index"
        )
        assert json.loads(out)["rows"] == [[0], [1]]
        assert json.loads(out)["truncated"] is True
        assert "showing the first 2 row(s)" in err

    def test_blob_cells_and_nulls(self, trace_db: Path) -> None:
        code, out, _ = invoke(
            "sql", str(trace_db), "select packr_input(1, 0) as blob, null as empty"
        )
        assert code == 0
        assert "<blob" in out
        assert "NULL" in out

    @pytest.mark.parametrize("command", ["index", "sql"])
    def test_help(self, command: str) -> None:
        code, out, _ = invoke(command, "--help")
        assert code == 0
        assert "trace" in out.lower()


class TestConsoleScript:
    """The installed ``packr-replay`` runs both commands."""

    def test_subprocess(self, trace_db: Path) -> None:
        exe = Path(sys.executable).with_name("packr-replay")
        if not exe.exists():  # pragma: no cover - not installed with its scripts
            pytest.skip("the packr-replay console script is not installed")
        done = subprocess.run(
            [str(exe), "index", str(trace_db)], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr
        done = subprocess.run(
            [str(exe), "sql", str(trace_db), "--json",
             "select label, module, status, indexed_events from trace_summary"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["rows"] == [["flaky", "clock_actor", "complete", 14]]
        done = subprocess.run(
            [str(exe), "sql", str(trace_db), "select * from nope"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert done.returncode == 2
        assert "no such table: nope" in done.stderr
