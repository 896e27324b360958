"""The pytest plugin under pytest-xdist (``pytest -n 2``): each test records and
replays its own traces from whichever worker runs it, tests that share a trace file
write it from two processes without lock fights, and the run's summary counts every
worker's traces."""

from __future__ import annotations

import shutil

import pytest

from packr_replay.storage import TraceStatus, TraceStore

pytest_plugins = ["pytester"]

# Eight tests, spread over two workers: six with a trace file each, and two that share
# one file (the marker names it) under labels of their own, recording at the same time.
XDIST_TESTS = """
import os
import time

import pytest

from packr_replay.abi import String
from packr_replay.runtime.demo import DemoHost, example_guest


def host():
    seed = int(os.environ.get("PACKR_SEED", "1"))
    return DemoHost(environ={"USER": "u"}, clock=lambda: 1000 * seed, randbelow=lambda n: seed % n)


def play(packr, name, **kwargs):
    inst = packr.instantiate(example_guest("clock_actor"), host=host(), **kwargs)
    for i in range(20):
        out = inst.call_with_value("run", String(f"{name}-{i}"))
    mode = "recording" if inst.recording else "replaying"
    seen = os.path.join(os.path.dirname(__file__), "seen")  # worker output is not shown
    os.makedirs(seen, exist_ok=True)
    with open(os.path.join(seen, name), "w") as f:
        f.write(f"{os.environ.get('PYTEST_XDIST_WORKER')} {out['roll'].value} {mode}")


@pytest.mark.parametrize("who", ["ada", "bob", "cy", "dee", "eve", "fay"])
def test_own_file(packr, who):
    play(packr, who)


@pytest.mark.packr_trace("common")
def test_shared_a(packr):
    play(packr, "a", label="a")


@pytest.mark.packr_trace("common")
def test_shared_b(packr):
    play(packr, "b", label="b")
"""


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, pytester: pytest.Pytester) -> None:
    for name in ("CI", "PACKR_SEED"):
        monkeypatch.delenv(name, raising=False)
    pytester.makeini(
        "[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile(test_guests=XDIST_TESTS)


def run(pytester: pytest.Pytester, *args: str, seed: int = 1) -> pytest.RunResult:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PACKR_SEED", str(seed))
        return pytester.runpytest_subprocess(
            "-n", "2", "-s", "-p", "no:cacheprovider", "-p", "no:hypothesispytest",
            "-p", "no:benchmark", *args, timeout=300,
        )  # fmt: skip


def seen(pytester: pytest.Pytester) -> dict[str, list[str]]:
    """What each inner test wrote: its worker, the roll it saw, recording or replaying."""
    folder = pytester.path / "seen"
    found = {p.name: p.read_text().split() for p in folder.iterdir()}
    shutil.rmtree(folder)
    return found


def test_record_then_replay_on_two_workers(pytester: pytest.Pytester) -> None:
    first = run(pytester, seed=1)
    first.assert_outcomes(passed=8)
    runs = seen(pytester)
    assert len(runs) == 8
    assert {worker for worker, _, _ in runs.values()} == {"gw0", "gw1"}
    assert {mode for _, _, mode in runs.values()} == {"recording"}
    first.stdout.fnmatch_lines(["*packr-replay: 8 trace(s) recorded, 0 replayed*"])
    traces = pytester.path / "traces" / "test_guests"
    assert sorted(p.name for p in traces.glob("*.db")) == sorted(
        [f"test_own_file[{w}].db" for w in ("ada", "bob", "cy", "dee", "eve", "fay")]
        + ["common.db"]
    )
    with TraceStore(traces / "common.db", readonly=True) as store:
        assert sorted((t.label, t.status) for t in store.traces()) == [
            ("a", TraceStatus.COMPLETE), ("b", TraceStatus.COMPLETE)]  # fmt: skip

    # CI: replay only, on two workers again, with a host whose answers differ
    second = run(pytester, "--packr-record-mode=none", seed=2)
    second.assert_outcomes(passed=8)
    runs = seen(pytester)
    assert len(runs) == 8
    assert {(roll, mode) for _, roll, mode in runs.values()} == {("1", "replaying")}
    second.stdout.fnmatch_lines(["*packr-replay: 0 trace(s) recorded, 8 replayed*"])
