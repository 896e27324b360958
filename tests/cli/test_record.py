"""``packr-replay record``: calls, hosts, results, summary, modes, exit codes, --json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from packr_replay.cli.errors import CliError
from packr_replay.cli.record import parse_call
from packr_replay.storage import TraceStore
from tests.cli.conftest import CLOCK, GUESTS, Invoke

RECORD_KEYS = {"store", "mode", "action", "trace", "calls", "failed", "events", "bytes",
               "duration_s", "divergence"}  # fmt: skip


class TestCalls:
    """--call EXPORT[=VALUE] and --calls FILE.jsonl."""

    def test_parse_call(self) -> None:
        assert str(parse_call("run")[1]) == "()"
        assert parse_call('run="a=b"')[0] == "run"
        assert str(parse_call('run="a=b"')[1]) == '"a=b"'
        with pytest.raises(CliError, match="bad value text"):
            parse_call("run=[1u8")
        with pytest.raises(CliError, match="no export name"):
            parse_call("=1s32")

    def test_prints_each_result_and_a_summary(self, cli: Invoke, tmp_path: Path) -> None:
        run = cli("record", CLOCK, "--host", "demo", "-c", 'run="Ada"', "-c", "run",
                  "-o", tmp_path / "t.db", "--label", "x")  # fmt: skip
        assert run.code == 0, run.err
        lines = run.out.splitlines()
        assert lines[0].startswith('  1  run("Ada") → report{greeting: "Hello, Ada"')
        assert lines[1].startswith('  2  run(()) → report{greeting: "Hello, world"')
        assert lines[2].startswith(
            f"recorded trace 1 'x' in {tmp_path / 't.db'}: 2 call(s), 14 events, "
        )
        with TraceStore(tmp_path / "t.db", readonly=True) as store:
            (info,) = store.traces()
        assert (info.label, info.event_count, info.host) == (
            "x",
            14,
            "packr_replay.runtime.demo:DemoHost",
        )

    def test_calls_file(self, cli: Invoke, tmp_path: Path) -> None:
        calls = tmp_path / "calls.jsonl"
        calls.write_text('{"export": "run", "value": "\\"Ada\\""}\n\n{"export": "run"}\n')
        run = cli("record", CLOCK, "--host", "demo", "-c", 'run="first"', "--calls", calls,
                  "-o", tmp_path / "t.db", "--json")  # fmt: skip
        assert run.code == 0, run.err
        assert [c["input"] for c in json.loads(run.out)["calls"]] == ['"first"', '"Ada"', "()"]

    def test_calls_from_stdin(self, cli: Invoke, tmp_path: Path) -> None:
        run = cli("record", CLOCK, "--host", "demo", "--calls", "-", "-o", tmp_path / "t.db",
                  "-q", input='{"export": "run", "value": "\\"x\\""}\n')  # fmt: skip
        assert run.code == 0, run.err
        assert "1 call(s)" in run.out

    @pytest.mark.parametrize(
        ("line", "message"),
        [
            ("not json", "calls.jsonl:1: not JSON"),
            ('["run"]', 'calls.jsonl:1: expected {"export": NAME, "value": TEXT or typed JSON'),
            ('{"export": "run", "value": 3}', "must be packr value text"),
            ('{"export": "run", "value": "[1u8"}', "calls.jsonl:1: bad value text"),
        ],
    )
    def test_bad_calls_file(self, cli: Invoke, tmp_path: Path, line: str, message: str) -> None:
        calls = tmp_path / "calls.jsonl"
        calls.write_text(line + "\n")
        run = cli("record", CLOCK, "--host", "demo", "--calls", calls, "-o", tmp_path / "t.db")
        assert run.code == 2
        assert message in run.err
        assert not (tmp_path / "t.db").exists()

    def test_nothing_to_call(self, cli: Invoke, tmp_path: Path) -> None:
        run = cli("record", CLOCK, "--host", "demo", "-o", tmp_path / "t.db")
        assert (run.code, "nothing to call" in run.err) == (2, True)

    def test_unknown_export(self, cli: Invoke, tmp_path: Path) -> None:
        run = cli("record", CLOCK, "--host", "demo", "-c", "walk", "-o", tmp_path / "t.db")
        assert run.code == 2
        assert run.err == "packr-replay: error: clock_actor has no export 'walk'; it exports: run\n"


class TestHosts:
    """--host demo / file.py:NAME / module:NAME, and guests the host cannot link."""

    def test_missing_imports_are_refused_with_their_names(
        self, cli: Invoke, tmp_path: Path
    ) -> None:
        run = cli("record", CLOCK, "-c", "run", "-o", tmp_path / "t.db")
        assert run.code == 2
        assert run.err.count("\n") == 1
        for name in ("demo:host/log.write", "demo:host/clock.now", "demo:host/random.next",
                     "demo:host/env.get"):  # fmt: skip
            assert name in run.err
        assert not (tmp_path / "t.db").exists()  # no failed trace left behind

    def test_host_file(self, cli: Invoke, tmp_path: Path, host_file: Path) -> None:
        run = cli("record", CLOCK, "--host", f"{host_file}:register", "-c", 'run="Ada"',
                  "-o", tmp_path / "t.db", "--json")  # fmt: skip
        assert run.code == 0, run.err
        data = json.loads(run.out)
        assert 'user: some<string>("ada")' in data["calls"][0]["output"]
        assert data["trace"]["host"].endswith(":register")

    def test_host_module(self, cli: Invoke, tmp_path: Path) -> None:
        run = cli("record", CLOCK, "--host", "packr_replay.runtime.demo:DemoHost", "-c", "run",
                  "-o", tmp_path / "t.db", "-q")  # fmt: skip
        assert run.code == 0, run.err

    def test_partial_host(self, cli: Invoke, tmp_path: Path) -> None:
        host = tmp_path / "partial.py"
        host.write_text(
            "def register(builder):\n"
            "    builder.interface('demo:host/log').func_typed('write', lambda ctx, m: None)\n"
        )
        run = cli(
            "record", CLOCK, "--host", f"{host}:register", "-c", "run", "-o", tmp_path / "t.db"
        )
        assert run.code == 2
        assert "3 function(s)" in run.err
        assert "demo:host/log.write" not in run.err


class TestOutcomes:
    """Exit 1 when a call failed (recorded too); budgets; --json shape."""

    def test_failed_call_exits_1_and_is_recorded(self, cli: Invoke, tmp_path: Path) -> None:
        run = cli("record", CLOCK, "--host", "demo", "-c", "run=1s32", "-o", tmp_path / "t.db")
        assert run.code == 1
        assert (
            "✗ GuestError: function 'run' returned error: run: expected a string name or ()"
            in run.out
        )
        assert "(1 failed)" in run.out
        assert cli("play", tmp_path / "t.db").code == 0  # the failure replays

    def test_fuel_budget(self, cli: Invoke, tmp_path: Path) -> None:
        run = cli("record", GUESTS / "hostile.wasm", "--host", "demo", "-c", "spin",
                  "--fuel", "100000", "-o", tmp_path / "t.db", "--json")  # fmt: skip
        assert run.code == 1
        data = json.loads(run.out)
        assert data["calls"][0]["error_type"] == "GuestTimeout"
        assert data["trace"]["meta"]["fuel"] == 100000

    def test_timeout_budget(self, cli: Invoke, tmp_path: Path) -> None:
        run = cli("record", GUESTS / "hostile.wasm", "--host", "demo", "-c", "spin",
                  "--fuel", "0", "--timeout", "0.05", "-o", tmp_path / "t.db", "--json")  # fmt: skip
        assert run.code == 1
        assert "wall-clock timeout" in json.loads(run.out)["calls"][0]["error"]

    def test_json_shape(self, cli: Invoke, tmp_path: Path) -> None:
        run = cli("record", CLOCK, "--host", "demo", "-c", 'run="Ada"', "-o", tmp_path / "t.db",
                  "--label", "j", "--json")  # fmt: skip
        data = json.loads(run.out)
        assert set(data) == RECORD_KEYS
        assert (data["mode"], data["action"], data["failed"], data["events"]) == (
            "all",
            "recorded",
            0,
            7,
        )
        assert data["trace"]["label"] == "j"
        assert set(data["calls"][0]) == {"call", "export", "input", "output", "error", "error_type",
                                         "input_value", "output_value"}  # fmt: skip


class TestModes:
    """--mode once / none / new_episodes go through api.Session."""

    def test_once_records_then_replays(self, cli: Invoke, tmp_path: Path) -> None:
        args = ["record", CLOCK, "--host", "demo", "-c", 'run="Ada"', "-o", tmp_path / "m.db",
                "--mode", "once", "--label", "m", "--json"]  # fmt: skip
        first = json.loads(cli(*args).out)
        second = json.loads(cli(*args).out)
        assert set(first) == set(second) == RECORD_KEYS
        assert (first["action"], second["action"]) == ("recorded", "replayed")
        assert first["calls"][0]["output"] == second["calls"][0]["output"]  # same clock, same dice

    def test_none_without_a_trace(self, cli: Invoke, tmp_path: Path) -> None:
        run = cli(
            "record", CLOCK, "-c", "run", "-o", tmp_path / "m.db", "--mode", "none", "-l", "m"
        )
        assert run.code == 2
        assert "no trace labelled 'm'" in run.err

    def test_none_diverging_exits_1_with_the_report(self, cli: Invoke, tmp_path: Path) -> None:
        db = tmp_path / "m.db"
        assert cli("record", CLOCK, "--host", "demo", "-c", 'run="x"', "-o", db, "--mode", "once",
                   "-l", "m").code == 0  # fmt: skip
        run = cli("record", CLOCK, "-c", 'run="y"', "-o", db, "--mode", "none", "-l", "m")
        assert run.code == 1
        assert "replay diverged at event #0" in run.err
        assert '(root): "x" → "y"' in run.err

    def test_new_episodes_continues_live(self, cli: Invoke, tmp_path: Path) -> None:
        db = tmp_path / "m.db"
        assert cli("record", CLOCK, "--host", "demo", "-c", "run", "-o", db, "--mode", "once",
                   "-l", "m").code == 0  # fmt: skip
        run = cli("record", CLOCK, "--host", "demo", "-c", "run", "-c", 'run="more"', "-o", db,
                  "--mode", "new_episodes", "-l", "m", "--json")  # fmt: skip
        data = json.loads(run.out)
        assert run.code == 0, run.err
        assert (data["action"], data["events"]) == ("replayed+recorded", 14)


class TestSettings:
    """Budgets are checked when recording (exit 2), so what record writes, play accepts;
    0 means "no limit" for --fuel everywhere."""

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["--fuel", "-5"], "--fuel -5: expected 0 (no limit) or a positive instruction count"),
            (["--timeout", "0"], "--timeout 0.0: expected a positive number of seconds"),
            (["--timeout", "-1"], "--timeout -1.0: expected a positive number of seconds"),
            (["--timeout", "nan"], "--timeout nan: expected a positive number of seconds"),
            (["--timeout", "inf"], "--timeout inf: expected a positive number of seconds"),
        ],
    )
    def test_bad_settings_exit_2_before_anything_runs(
        self, cli: Invoke, tmp_path: Path, args: list[str], message: str
    ) -> None:
        run = cli("record", CLOCK, "--host", "demo", "-c", "run", "-o", tmp_path / "t.db", *args)
        assert run.code == 2
        assert message in run.err
        assert not (tmp_path / "t.db").exists()

    def test_fuel_0_records_no_limit_and_replays(self, cli: Invoke, tmp_path: Path) -> None:
        run = cli("record", CLOCK, "--host", "demo", "-c", "run", "--fuel", "0",
                  "-o", tmp_path / "t.db", "--json")  # fmt: skip
        assert run.code == 0, run.err
        assert json.loads(run.out)["trace"]["meta"]["fuel"] is None
        assert cli("play", tmp_path / "t.db").code == 0


class TestProgress:
    """A long record shows it is alive: a bar on a terminal, one-line counts when piped."""

    def test_piped_long_run_prints_periodic_counts(
        self, cli: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from packr_replay.cli.render import LazyProgress

        monkeypatch.setattr(LazyProgress, "line_delay", 0.0)
        monkeypatch.setattr(LazyProgress, "line_interval", 0.0)
        run = cli("record", CLOCK, "--host", "demo", "-c", "run", "-c", "run", "-c", "run",
                  "-o", tmp_path / "t.db", "-q")  # fmt: skip
        assert run.code == 0, run.err
        lines = [line for line in run.err.splitlines() if line.startswith("recording: ")]
        assert [line.split(",")[0] for line in lines] == [
            "recording: 1 of 3 (33%)", "recording: 2 of 3 (66%)", "recording: 3 of 3 (100%)"
        ]  # fmt: skip

    def test_short_runs_print_no_counts(self, cli: Invoke, tmp_path: Path) -> None:
        run = cli("record", CLOCK, "--host", "demo", "-c", "run", "-o", tmp_path / "t.db", "-q")
        assert run.code == 0, run.err
        assert "recording:" not in run.err
