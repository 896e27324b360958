"""The pytest plugin, run inside pytest with ``pytester``: every record mode, the
failure messages, per-test markers, async tests, and what lands in the trace files."""

from __future__ import annotations

import shutil
import sqlite3
import sys
from contextlib import closing
from pathlib import Path

import pytest

from packr_replay.storage import TraceStatus, TraceStore
from tests.readonly import read_only_dir

pytest_plugins = ["pytester"]

# The inner test: the clock actor against a host whose answers depend on PACKR_SEED,
# so a replayed run is told apart from a live one by what it prints.
GUEST_TESTS = """
import os

import pytest

from packr_replay.abi import String
from packr_replay.runtime.demo import DemoHost, example_guest


def host():
    seed = int(os.environ.get("PACKR_SEED", "1"))
    return DemoHost(environ={"USER": "u"}, clock=lambda: 1000 * seed, randbelow=lambda n: seed % n)


def names():
    return os.environ.get("PACKR_NAMES", "Ada").split(",")


def test_clock(packr):
    inst = packr.instantiate(example_guest("clock_actor"), host=host())
    for name in names():
        out = inst.call_with_value("run", String(name))
        print(f"ROLL {name} {out['roll'].value} {'recording' if inst.recording else 'replaying'}")
    if os.environ.get("PACKR_FAIL"):
        raise AssertionError("the test failed after recording")
"""

ASYNC_TESTS = """
import os

import pytest

from packr_replay.abi import String
from packr_replay.runtime.demo import DemoHost, example_guest


@pytest.mark.asyncio
async def test_async_clock(packr):
    seed = int(os.environ.get("PACKR_SEED", "1"))
    host = DemoHost(environ={"USER": "u"}, clock=lambda: seed, randbelow=lambda n: seed % n)
    inst = packr.instantiate(example_guest("clock_actor"), host=host)
    out = await inst.call_with_value_async("run", String("Ada"))
    print(f"ROLL {out['roll'].value} {'recording' if inst.recording else 'replaying'}")
"""


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, pytester: pytest.Pytester) -> None:
    """Outside CI unless a test says otherwise; pytest-asyncio configured quietly."""
    for name in ("CI", "PACKR_SEED", "PACKR_NAMES", "PACKR_FAIL"):
        monkeypatch.delenv(name, raising=False)
    pytester.makeini(
        "[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n"
    )


def run(
    pytester: pytest.Pytester, *args: str, seed: int = 1, names: str = "Ada"
) -> pytest.RunResult:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PACKR_SEED", str(seed))
        mp.setenv("PACKR_NAMES", names)
        # Leave out plugins the inner runs do not need (hypothesis alone costs seconds).
        return pytester.runpytest(
            # no:faulthandler: the inner session's faulthandler, disabled on exit, would put
            # back the signal handlers from before wasmtime installed its own (traps crash)
            "-s", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:benchmark",
            "-p", "no:faulthandler", *args
        )


def trace_file(
    pytester: pytest.Pytester, test: str = "test_clock", module: str = "test_guest"
) -> Path:
    return pytester.path / "traces" / module / f"{test}.db"


def traces_in(path: Path) -> list[tuple[str | None, TraceStatus]]:
    with TraceStore(path, readonly=True) as store:
        return [(t.label, t.status) for t in store.traces()]


class TestOnce:
    """The default outside CI: record what is missing, replay what is there."""

    def test_records_then_replays(self, pytester: pytest.Pytester) -> None:
        pytester.makepyfile(test_guest=GUEST_TESTS)
        first = run(pytester, seed=1)
        first.assert_outcomes(passed=1)
        first.stdout.fnmatch_lines(
            ["*ROLL Ada 1 recording*", "*packr-replay: 1 trace(s) recorded, 0 replayed*"]
        )
        assert traces_in(trace_file(pytester)) == [("instance-1", TraceStatus.COMPLETE)]
        second = run(pytester, seed=2)  # a different host: its answers are not used
        second.assert_outcomes(passed=1)
        second.stdout.fnmatch_lines(["*ROLL Ada 1 replaying*", "*0 trace(s) recorded, 1 replayed*"])
        assert len(traces_in(trace_file(pytester))) == 1

    def test_header_names_the_mode(self, pytester: pytest.Pytester) -> None:
        pytester.makepyfile(test_guest=GUEST_TESTS)
        run(pytester).stdout.fnmatch_lines(
            ["packr-replay: record mode once (the default outside CI)"]
        )

    def test_a_failed_recording_is_recorded_again(self, pytester: pytest.Pytester) -> None:
        pytester.makepyfile(test_guest=GUEST_TESTS)
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("PACKR_FAIL", "1")
            run(pytester, seed=1).assert_outcomes(failed=1)
        assert traces_in(trace_file(pytester)) == [("instance-1", TraceStatus.FAILED)]
        refused = run(pytester, "--packr-record-mode=none", seed=2)
        refused.assert_outcomes(failed=1)
        refused.stdout.fnmatch_lines(
            ["*trace 'instance-1'*is failed*cannot be replayed*", "*--packr-record-mode=rewrite*"]
        )
        again = run(pytester, seed=2)
        again.assert_outcomes(passed=1)
        again.stdout.fnmatch_lines(["*ROLL Ada 2 recording*"])
        assert traces_in(trace_file(pytester)) == [("instance-1", TraceStatus.COMPLETE)]


class TestNone:
    """Replay only: a missing trace says how to record it; any divergence fails the test."""

    def test_missing_trace(self, pytester: pytest.Pytester) -> None:
        pytester.makepyfile(test_guest=GUEST_TESTS)
        result = run(pytester, "--packr-record-mode=none")
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(
            [
                "*packr: no recorded trace 'instance-1' in *test_clock.db and record mode is none (--packr-record-mode)*",
                "*Record it by running the test once with --packr-record-mode=once*",
                "*pytest test_guest.py::test_clock --packr-record-mode=once",
            ]
        )
        assert not trace_file(pytester).exists()

    def test_default_in_ci(
        self, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        pytester.makepyfile(test_guest=GUEST_TESTS)
        monkeypatch.setenv("CI", "true")
        result = run(pytester)
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(
            [
                "packr-replay: record mode none (the default when CI is set)",
                "*record mode is none (the default when CI is set)*",
            ]
        )
        monkeypatch.setenv("CI", "false")
        run(pytester).assert_outcomes(passed=1)

    def test_replays(self, pytester: pytest.Pytester) -> None:
        pytester.makepyfile(test_guest=GUEST_TESTS)
        run(pytester, seed=3, names="Ada,Bob").assert_outcomes(passed=1)
        result = run(pytester, "--packr-record-mode=none", seed=4, names="Ada,Bob")
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(["*ROLL Ada 3 replaying*", "*ROLL Bob 3 replaying*"])

    def test_divergence_fails_with_the_report(self, pytester: pytest.Pytester) -> None:
        pytester.makepyfile(test_guest=GUEST_TESTS)
        run(pytester, names="Ada").assert_outcomes(passed=1)
        result = run(pytester, "--packr-record-mode=none", names="Bob")
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(
            [
                "*packr: the guest's calls diverged from trace 'instance-1' in *test_clock.db (record mode none*",
                "replay diverged at event #0: export call differs from the recorded one",
                '  expected: #0 export run("Ada")*',
                '  actual:   export run("Bob")*',
                "  failed matchers: input",
                "  differences:",
                "*If the new behaviour is intended, record the trace again:",
                "*pytest test_guest.py::test_clock --packr-record-mode=rewrite",
            ]
        )
        result.stdout.no_fnmatch_line("*During handling of the above exception*")
        assert result.stdout.str().count("replay diverged at event #0") == 1

    def test_unrecorded_call(self, pytester: pytest.Pytester) -> None:
        pytester.makepyfile(test_guest=GUEST_TESTS)
        run(pytester, names="Ada").assert_outcomes(passed=1)
        result = run(pytester, "--packr-record-mode=none", names="Ada,Bob")
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(
            ["*ROLL Ada 1 replaying*", "*diverged from trace 'instance-1'*"]
        )

    def test_fewer_calls_than_recorded(self, pytester: pytest.Pytester) -> None:
        pytester.makepyfile(test_guest=GUEST_TESTS)
        run(pytester, names="Ada,Bob").assert_outcomes(passed=1)
        result = run(pytester, "--packr-record-mode=none", names="Ada")
        result.assert_outcomes(failed=1)  # the test itself fails, not its teardown
        result.stdout.fnmatch_lines(
            ["*diverged from trace 'instance-1'*", "*fewer calls than trace 'instance-1' recorded*"]
        )

    def test_swallowed_divergence_still_fails(self, pytester: pytest.Pytester) -> None:
        pytester.makepyfile(
            test_guest=GUEST_TESTS
            + """

def test_swallow(packr):
    inst = packr.instantiate(example_guest("clock_actor"), host=host())
    try:
        inst.call_with_value("run", String(names()[0]))
    except Exception:
        pass
"""
        )
        run(pytester, "-k", "swallow", names="Ada").assert_outcomes(passed=1)
        run(pytester, "-k", "swallow", "--packr-record-mode=none", names="Bob").assert_outcomes(
            failed=1
        )


class TestRecordingModes:
    """new_episodes, all and rewrite; a file keeps one trace per label."""

    def test_new_episodes(self, pytester: pytest.Pytester) -> None:
        pytester.makepyfile(test_guest=GUEST_TESTS)
        run(pytester, seed=1, names="Ada").assert_outcomes(passed=1)
        grown = run(pytester, "--packr-record-mode=new_episodes", seed=2, names="Ada,Bob")
        grown.assert_outcomes(passed=1)
        grown.stdout.fnmatch_lines(["*ROLL Ada 1 recording*", "*ROLL Bob 2 recording*"])
        assert traces_in(trace_file(pytester)) == [("instance-1", TraceStatus.COMPLETE)]
        replayed = run(pytester, "--packr-record-mode=none", seed=3, names="Ada,Bob")
        replayed.assert_outcomes(passed=1)
        replayed.stdout.fnmatch_lines(["*ROLL Ada 1 replaying*", "*ROLL Bob 2 replaying*"])

    def test_all(self, pytester: pytest.Pytester) -> None:
        pytester.makepyfile(test_guest=GUEST_TESTS)
        run(pytester, seed=1).assert_outcomes(passed=1)
        again = run(pytester, "--packr-record-mode=all", seed=2)
        again.assert_outcomes(passed=1)
        again.stdout.fnmatch_lines(["*ROLL Ada 2 recording*"])
        assert len(traces_in(trace_file(pytester))) == 1
        run(pytester, "--packr-record-mode=none", seed=5).stdout.fnmatch_lines(
            ["*ROLL Ada 2 replaying*"]
        )

    def test_after_a_failed_all_run_once_replays_the_complete_trace(
        self, pytester: pytest.Pytester
    ) -> None:
        """A failed ``all`` run does not hide the complete trace from ``once``, and only
        the newest failed trace is kept (for inspection)."""
        pytester.makepyfile(test_guest=GUEST_TESTS)
        run(pytester, seed=1).assert_outcomes(passed=1)
        complete = ("instance-1", TraceStatus.COMPLETE)
        failed = ("instance-1", TraceStatus.FAILED)
        for seed in (2, 3):
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv("PACKR_FAIL", "1")
                broken = run(pytester, "--packr-record-mode=all", seed=seed)
            broken.assert_outcomes(failed=1)
            broken.stdout.fnmatch_lines([f"*ROLL Ada {seed} recording*"])
            assert traces_in(trace_file(pytester)) == [complete, failed]
            replayed = run(pytester, seed=4)  # the default, once
            replayed.assert_outcomes(passed=1)
            replayed.stdout.fnmatch_lines(["*ROLL Ada 1 replaying*", "*0 trace(s) recorded, 1 replayed*"])
            assert traces_in(trace_file(pytester)) == [complete, failed]
        with TraceStore(trace_file(pytester), readonly=True) as store:
            kept = store.traces()[-1]
            clock = next(store.trace(kept.id).events(function="now"))
        assert str(clock.output_value.value) == "3000u64"  # type: ignore[union-attr]  # seed 3: the newest failure
        run(pytester, "--packr-record-mode=none", seed=5).stdout.fnmatch_lines(
            ["*ROLL Ada 1 replaying*"]
        )

    def test_rewrite_deletes_the_old_file(self, pytester: pytest.Pytester) -> None:
        two = """
from packr_replay.abi import String
from packr_replay.runtime.demo import DemoHost, example_guest
import os

def test_clock(packr):
    count = int(os.environ.get("PACKR_INSTANCES", "2"))
    for i in range(count):
        packr.instantiate(example_guest("clock_actor"), host=DemoHost()).call_with_value("run", String("x"))
"""
        pytester.makepyfile(test_guest=two)
        run(pytester).assert_outcomes(passed=1)
        assert [label for label, _ in traces_in(trace_file(pytester))] == [
            "instance-1",
            "instance-2",
        ]
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("PACKR_INSTANCES", "1")
            run(pytester, "--packr-record-mode=rewrite").assert_outcomes(passed=1)
        assert traces_in(trace_file(pytester)) == [("instance-1", TraceStatus.COMPLETE)]


class TestMarker:
    """@pytest.mark.packr_trace: file name and per-test options."""

    def test_record_mode_override(self, pytester: pytest.Pytester) -> None:
        pytester.makepyfile(
            test_guest=GUEST_TESTS.replace(
                "def test_clock",
                '@pytest.mark.packr_trace("common", record_mode="all")\ndef test_clock',
            )
        )
        result = run(pytester, "--packr-record-mode=none", seed=7)
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(["*ROLL Ada 7 recording*"])
        assert traces_in(trace_file(pytester, "common")) == [("instance-1", TraceStatus.COMPLETE)]

    def test_match_on(self, pytester: pytest.Pytester) -> None:
        pytester.makepyfile(
            test_guest=GUEST_TESTS.replace(
                "def test_clock",
                '@pytest.mark.packr_trace(match_on=["kind", "interface", "function"])\ndef test_clock',
            )
        )
        run(pytester, names="Ada").assert_outcomes(passed=1)
        # Inputs are not compared, so the export and imports with "Bob" in them are
        # served; what differs is the export's own result.
        result = run(pytester, "--packr-record-mode=none", names="Bob")
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(
            ["*replay diverged at event #6: export 'run' returned a different value*"]
        )

    @pytest.mark.parametrize("marker", ['record_mode="sometimes"', "1, 2", 'colour="red"'])
    def test_bad_marker(self, pytester: pytest.Pytester, marker: str) -> None:
        pytester.makepyfile(
            test_guest=GUEST_TESTS.replace(
                "def test_clock", f"@pytest.mark.packr_trace({marker})\ndef test_clock"
            )
        )
        result = run(pytester)
        assert result.ret != 0
        result.stdout.fnmatch_lines(["*packr_trace*"])

    def test_names_of_classes_and_parameters(self, pytester: pytest.Pytester) -> None:
        pytester.makepyfile(
            test_guest="""
import pytest
from packr_replay.abi import String
from packr_replay.runtime.demo import DemoHost, example_guest

class TestGroup:
    @pytest.mark.parametrize("who", ["a/b", "c d"])
    def test_it(self, packr, who):
        packr.instantiate(example_guest("clock_actor"), host=DemoHost()).call_with_value("run", String(who))
"""
        )
        run(pytester).assert_outcomes(passed=2)
        names = sorted(p.name for p in (pytester.path / "traces" / "test_guest").glob("*.db"))
        assert names == ["TestGroup.test_it[a_b].db", "TestGroup.test_it[c_d].db"]


class TestAsync:
    """pytest-asyncio tests call call_with_value_async; replay works from its worker thread."""

    def test_records_and_replays(self, pytester: pytest.Pytester) -> None:
        pytester.makepyfile(test_guest=ASYNC_TESTS)
        run(pytester, seed=4).stdout.fnmatch_lines(["*ROLL 4 recording*", "*1 passed*"])
        result = run(pytester, "--packr-record-mode=none", seed=5)
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(["*ROLL 4 replaying*"])


class TestFiles:
    """Where trace files go, and what a person finds in them."""

    def test_trace_dir_option(self, pytester: pytest.Pytester) -> None:
        pytester.makepyfile(test_guest=GUEST_TESTS)
        run(pytester, "--packr-trace-dir=elsewhere").assert_outcomes(passed=1)
        assert (pytester.path / "elsewhere" / "test_guest" / "test_clock.db").exists()

    def test_trace_dir_ini(self, pytester: pytest.Pytester) -> None:
        pytester.makeini(
            "[pytest]\npackr_trace_dir = recorded\nasyncio_default_fixture_loop_scope = function\n"
        )
        pytester.makepyfile(test_guest=GUEST_TESTS)
        run(pytester).assert_outcomes(passed=1)
        assert (pytester.path / "recorded" / "test_guest" / "test_clock.db").exists()

    def test_recorded_traces_are_indexed(self, pytester: pytest.Pytester) -> None:
        pytester.makepyfile(test_guest=GUEST_TESTS)
        run(pytester).assert_outcomes(passed=1)
        with closing(sqlite3.connect(trace_file(pytester))) as conn:
            rows = conn.execute(
                "SELECT name, output_text FROM events WHERE kind = 'import' AND function = 'next'"
            ).fetchall()
            summary = conn.execute(
                "SELECT label, module, status, event_count = indexed_events FROM trace_summary"
            ).fetchall()
        assert rows == [("demo:host/random.next", "1u64")]
        assert summary == [("instance-1", "clock_actor", "complete", 1)]

    def test_indexing_can_be_turned_off(self, pytester: pytest.Pytester) -> None:
        pytester.makeini(
            "[pytest]\npackr_index = false\nasyncio_default_fixture_loop_scope = function\n"
        )
        pytester.makepyfile(test_guest=GUEST_TESTS)
        run(pytester).assert_outcomes(passed=1)
        with closing(sqlite3.connect(trace_file(pytester))) as conn:
            assert conn.execute("SELECT count(*) FROM events").fetchone() == (0,)

    def test_bad_ini_mode(self, pytester: pytest.Pytester) -> None:
        pytester.makeini(
            "[pytest]\npackr_record_mode = sometimes\nasyncio_default_fixture_loop_scope = function\n"
        )
        pytester.makepyfile(test_guest=GUEST_TESTS)
        result = run(pytester)
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(["*packr_record_mode = 'sometimes'*"])

    def test_not_a_trace_file(self, pytester: pytest.Pytester) -> None:
        pytester.makepyfile(test_guest=GUEST_TESTS)
        path = trace_file(pytester)
        path.parent.mkdir(parents=True)
        path.write_bytes(b"not a database at all" * 100)
        result = run(pytester)
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(["*packr: cannot read trace file*not an SQLite file*"])

    def test_a_file_another_worker_is_creating(self, pytester: pytest.Pytester) -> None:
        """Left empty by a creator (another xdist worker) that has not written yet: a
        mode that records finishes it; ``none`` cannot, and says what the file is."""
        pytester.makepyfile(test_guest=GUEST_TESTS)
        path = trace_file(pytester)
        path.parent.mkdir(parents=True)
        path.write_bytes(b"")
        result = run(pytester, "--packr-record-mode=none")
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(["*packr: cannot read trace file*empty database*"])
        assert path.read_bytes() == b""
        run(pytester).assert_outcomes(passed=1)
        assert traces_in(path) == [("instance-1", TraceStatus.COMPLETE)]


class TestReadOnlyTraces:
    """CI replays traces committed in a checkout it cannot write to."""

    def test_ci_replays_from_read_only_storage(
        self, pytester: pytest.Pytester, tmp_path: Path
    ) -> None:
        pytester.makepyfile(test_guest=GUEST_TESTS)
        run(pytester, seed=1).assert_outcomes(passed=1)
        with read_only_dir(tmp_path) as ro:
            shutil.copytree(pytester.path, ro.source, dirs_exist_ok=True)
            done = ro.run(
                [sys.executable, "-m", "pytest", "-s", "-p", "no:cacheprovider",
                 "-p", "no:hypothesispytest", "-p", "no:benchmark", "test_guest.py"],
                cwd=ro.path,
                env={"CI": "1", "PACKR_SEED": "2", "PYTHONDONTWRITEBYTECODE": "1"},
            )  # fmt: skip
            assert done.returncode == 0, (ro.how + "\n" + done.stdout[-3000:] + done.stderr[-2000:])
            assert "ROLL Ada 1 replaying" in done.stdout
            assert "0 trace(s) recorded, 1 replayed" in done.stdout
            names = sorted(p.name for p in (ro.source / "traces" / "test_guest").iterdir())
            assert names == ["test_clock.db"]


SPIN_TESTS = """
from packr_replay.abi import S32, UNIT
from packr_replay.runtime import Runtime
from packr_replay.runtime.demo import DemoHost, example_guest


def test_spins(packr):
    module = Runtime(fuel=None).load_module(example_guest("hostile"))
    inst = packr.instantiate(module, host=DemoHost())
    inst.call_with_value("import_echo", S32(5))
    print("SPINNING", flush=True)
    inst.call_with_value("spin", UNIT)
"""


class TestInterrupted:
    """Ctrl-C in a test stops its spinning guest within a second; the trace keeps every
    event so far and reads incomplete (interrupted), as for ``record``."""

    def test_sigint(self, pytester: pytest.Pytester) -> None:
        import signal
        import subprocess
        import time

        pytester.makepyfile(test_guest=SPIN_TESTS)
        proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-s", "-p", "no:cacheprovider",
             "-p", "no:hypothesispytest", "-p", "no:benchmark", "test_guest.py",
             "--packr-record-mode", "all"],
            cwd=pytester.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**__import__("os").environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        assert proc.stdout is not None
        for line in proc.stdout:
            if "SPINNING" in line:
                break
        time.sleep(0.3)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
        assert time.monotonic() - sent < 10  # (pytest's own teardown and summary included)
        assert proc.returncode == 2, out  # pytest: interrupted
        assert "KeyboardInterrupt" in out or "Interrupted" in out
        with TraceStore(trace_file(pytester, "test_spins"), readonly=True) as store:
            (info,) = store.traces()
            assert (info.status, info.end_reason) == (TraceStatus.INCOMPLETE, "interrupted")
            assert info.event_count == 4
            assert store.verify(info.id).ok
