"""The replayer owns the limits: a trace's recorded settings only tighten its caps, and a
run the caps cut says which cap and where instead of running on or diverging."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import pytest

from packr_replay import api
from packr_replay._units import human_size, parse_caps, parse_size
from packr_replay.abi import UNIT, String, encode
from packr_replay.replay import ReplayCaps
from packr_replay.replay.caps import DEFAULT_MAX_FUEL, CapHit, tighter
from packr_replay.runtime import DEFAULT_FUEL
from packr_replay.runtime.demo import example_guest
from packr_replay.storage import EventKind, TraceStore
from tests.conftest import ONE_IMPORT_PATH

from .conftest import demo_host

PACKR_EXPORT = "(param i32 i32 i32 i32) (result i32)"

def guest(body: str = "", start: str = "", memory: int = 1) -> str:
    """An export ``run`` that returns ``()`` (status 0, output at 1024) after running
    ``body``; ``start`` is the start function's body."""
    return f"""(module
  (memory (export "memory") {memory})
  (data (i32.const 1024) "{_unit_bytes()}")
  (func $start {start})
  (start $start)
  (func (export "run") {PACKR_EXPORT}
    {body}
    (i32.store (local.get 2) (i32.const 1024))
    (i32.store (local.get 3) (i32.const {len(encode(UNIT))}))
    (i32.const 0)))"""


def _unit_bytes() -> str:
    return "".join(f"\\{b:02x}" for b in encode(UNIT))


SPIN = "(loop $l (br $l))"
#: Grows memory by 64 MiB at a time until it cannot, then traps.
HOG = "(loop $l (br_if $l (i32.ne (memory.grow (i32.const 1024)) (i32.const -1)))) unreachable"


def hostile_trace(path: Path, wat: str, meta: dict[str, Any], calls: int = 1) -> None:
    """A trace as a stranger could write one with packr-replay itself: a valid chain,
    any settings, a module whose recorded run returned ``()`` every time."""
    from packr_replay.runtime import Runtime

    wasm = Runtime().load_module(wat).wasm
    with TraceStore(path, create=True) as store:
        sha = store.add_module(wasm, "hostile")
        with store.begin_trace(sha, label="hostile", meta=meta) as writer:
            for call in range(1, calls + 1):
                writer.append(call, EventKind.EXPORT, "", "run", encode(UNIT))
                writer.append(call, EventKind.RETURN, "", "run", encode(UNIT), encode(UNIT), 0)


NO_LIMITS = {"fuel": None, "timeout": None, "memory_limit": None, "reply": "scratch"}


class TestReplayCaps:
    """The type itself: defaults, validation, tightening."""

    def test_defaults(self) -> None:
        caps = ReplayCaps()
        assert (caps.fuel, caps.time, caps.memory, caps.after_end) == (None, 60.0, 1 << 30, 1.0)
        assert DEFAULT_MAX_FUEL is None
        assert ReplayCaps.none() == ReplayCaps(None, None, None, None)
        assert caps.describe() == "no fuel cap, time 60 s, memory 1 GiB, 1 s past the end"
        assert ReplayCaps.none().describe() == (
            "no fuel cap, no time cap, no memory cap, no grace past the end"
        )
        assert ReplayCaps(fuel=DEFAULT_FUEL).describe().startswith("fuel 5000000000/call")

    @pytest.mark.parametrize(
        "kwargs",
        [{"fuel": 0}, {"fuel": 1.5}, {"fuel": True}, {"memory": -1}, {"time": 0},
         {"time": math.inf}, {"time": math.nan}, {"time": "60"}, {"time": True},
         {"after_end": 0}, {"after_end": -1.0}, {"after_end": math.inf}, {"after_end": "1"}],
    )  # fmt: skip
    def test_refused(self, kwargs: dict[str, Any]) -> None:
        with pytest.raises(ValueError, match="ReplayCaps"):
            ReplayCaps(**kwargs)

    @pytest.mark.parametrize(
        ("recorded", "cap", "want"),
        [(None, None, None), (None, 5, 5), (5, None, 5), (3, 5, 3), (9, 5, 5)],
    )
    def test_tighter(self, recorded: int | None, cap: int | None, want: int | None) -> None:
        assert tighter(recorded, cap) == want

    def test_hit_names_the_option(self) -> None:
        hit = CapHit("memory", 1 << 30, "export 'run' (event #0)")
        assert hit.option == "--max-memory"
        assert "memory cap (bytes of guest memory) of 1 GiB in export 'run'" in str(hit)


@ONE_IMPORT_PATH
class TestParsing:
    """Cap options as people type them (shared by the CLI and the pytest plugin)."""

    @pytest.mark.parametrize(
        ("text", "want"),
        [("1GiB", 1 << 30), ("512MiB", 512 << 20), ("64M", 64 << 20), ("1.5 kib", 1536),
         ("1000000", 1000000), ("2GB", 2 * 10**9), ("100b", 100)],
    )  # fmt: skip
    def test_sizes(self, text: str, want: int) -> None:
        assert parse_size(text) == want

    @pytest.mark.parametrize("text", ["", "GiB", "1QB", "-1M", "0", "inf", "nan", "1e999G"])
    def test_bad_sizes(self, text: str) -> None:
        with pytest.raises(ValueError, match="size"):
            parse_size(text)

    def test_human_size(self) -> None:
        assert [human_size(n) for n in (100, 1536, 1 << 30)] == ["100 bytes", "1.5 KiB", "1 GiB"]

    def test_caps(self) -> None:
        assert parse_caps(None, None, None) == {}
        assert parse_caps("1_000", "2.5s", "none") == {"fuel": 1000, "time": 2.5, "memory": None}
        assert parse_caps("none", "unlimited", "1GiB") == {"fuel": None, "time": None, "memory": 1 << 30}
        for bad in (("0", None, None), (None, "-1", None), (None, None, "x")):
            with pytest.raises(ValueError, match="max-"):
                parse_caps(*bad)
        assert parse_caps(None, None, None, "0.5s") == {"after_end": 0.5}
        assert parse_caps(None, "none", None, "none") == {"time": None, "after_end": None}
        with pytest.raises(ValueError, match="max-time-after-end 0: expected a positive"):
            parse_caps(None, None, None, "0")


class TestCapsCutHostileTraces:
    """Settings a trace claims (no fuel, no timeout, no memory limit) do not lift the
    replayer's caps; the run stops within them and says which one."""

    def test_a_spinning_start_function_with_no_recorded_limits(self, db: Path) -> None:
        hostile_trace(db, guest(start=SPIN), NO_LIMITS)
        t0 = time.monotonic()
        report = api.replay(db, caps=ReplayCaps(fuel=None, time=0.5))
        assert time.monotonic() - t0 < 10
        assert not report.reproduced
        assert report.divergence is None
        assert report.capped is not None
        assert (report.capped.cap, report.capped.where) == ("time", "the start function")
        assert "--max-time" in report.summary()

    def test_fuel_nil_meets_the_fuel_cap(self, db: Path) -> None:
        hostile_trace(db, guest(body=SPIN), {**NO_LIMITS, "fuel": 2**63 - 1})
        report = api.replay(db, caps=ReplayCaps(fuel=1_000_000, time=30))
        assert report.capped is not None
        assert report.capped.cap == "fuel"
        assert report.capped.where == "export 'run' (event #0)"
        assert not report.exports[0].reproduced

    def test_an_export_that_spins_meets_the_time_cap(self, db: Path) -> None:
        hostile_trace(db, guest(body=SPIN), NO_LIMITS)
        t0 = time.monotonic()
        report = api.replay(db, caps=ReplayCaps(fuel=None, time=0.5))
        assert time.monotonic() - t0 < 10
        assert report.capped is not None
        assert report.capped.cap == "time"

    def test_memory_growth_meets_the_memory_cap(self, db: Path) -> None:
        hostile_trace(db, guest(body=HOG), NO_LIMITS)
        report = api.replay(db, caps=ReplayCaps(memory=128 << 20))
        assert report.capped is not None
        assert report.capped.cap == "memory"

    def test_a_declared_memory_over_the_cap(self, db: Path) -> None:
        hostile_trace(db, guest(memory=4096), NO_LIMITS)  # 256 MiB at instantiation
        report = api.replay(db, caps=ReplayCaps(memory=64 << 20))
        assert report.capped is not None
        assert (report.capped.cap, report.capped.where) == ("memory", "the start function")

    def test_many_calls_meet_the_time_cap_between_calls(self, db: Path) -> None:
        hostile_trace(db, guest(body="(drop (memory.grow (i32.const 0)))"), NO_LIMITS, calls=3000)
        report = api.replay(db, caps=ReplayCaps(time=0.05))
        assert report.capped is not None
        assert report.capped.cap == "time"
        assert len(report.exports) < 3000

    def test_generous_caps_reproduce(self, db: Path) -> None:
        hostile_trace(db, guest(), NO_LIMITS, calls=3)
        report = api.replay(db)
        assert report.reproduced, report.summary()
        assert report.capped is None

    def test_no_caps_trust_the_file(self, db: Path) -> None:
        hostile_trace(db, guest(body="(drop (memory.grow (i32.const 2048)))"), NO_LIMITS)
        assert api.replay(db, caps=ReplayCaps.none()).reproduced
        assert api.replay(db, caps=ReplayCaps(memory=64 << 20)).reproduced  # grow fails quietly


class TestRecordedSettingsOnlyTighten:
    """A recorded limit tighter than the cap is the recording's own: a guest that ran out
    of it then runs out of it again, and that is a reproduction, not a cut."""

    def test_a_recorded_timeout_reproduces(self, db: Path) -> None:
        from packr_replay.runtime import Runtime

        rt = Runtime(fuel=200_000)
        module = rt.load_module(guest(body=SPIN))
        api.record_run(module, [("run", UNIT)], store=db, runtime=rt)
        report = api.replay(db)  # cap 5e9 > the recorded 200k
        assert report.reproduced, report.summary()
        assert "fuel budget of 200000" in (report.exports[0].error or "")

    def test_a_tighter_cap_than_the_recording_cuts(self, db: Path) -> None:
        from packr_replay.runtime import Runtime

        rt = Runtime(fuel=2_000_000)
        module = rt.load_module(guest(body=SPIN))
        api.record_run(module, [("run", UNIT)], store=db, runtime=rt)
        report = api.replay(db, caps=ReplayCaps(fuel=10_000))
        assert report.capped is not None
        assert report.capped.cap == "fuel"


class TestSaveTo:
    """--save-to writes the replay run elsewhere; the trace's own file is only read."""

    def test_the_source_file_is_untouched(self, db: Path, tmp_path: Path) -> None:
        api.record_run(example_guest("clock_actor"), [("run", String("Ada"))],
                       host=demo_host(), store=db, label="t")  # fmt: skip
        with TraceStore(db) as store:  # checkpoint, so the bytes are all in the file
            store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        before = db.read_bytes()
        other = tmp_path / "replays.db"
        report = api.replay(db, "t", save_to=other)
        assert report.reproduced
        assert db.read_bytes() == before
        with TraceStore(other, readonly=True) as store:
            (info,) = store.traces()
            assert info.id == report.saved_trace
            assert info.replay_of is None
            with TraceStore(db, readonly=True) as source:
                assert info.replay_of_uuid == source.trace("t").info.uuid

    def test_not_both(self, db: Path, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="not both"):
            api.replay(db, save=True, save_to=tmp_path / "x.db")


class TestSession:
    """A replaying Session (the pytest plugin's engine) runs under the caps too; a
    recording one runs as its runtime says."""

    def test_a_replaying_session_is_capped(self, db: Path) -> None:
        from packr_replay.runtime import Runtime

        module = Runtime(fuel=None).load_module(guest())
        with api.Session(module, store=db, label="s", mode="all") as session:
            assert session.instance.fuel is None
            assert session.instance.deadline is None
            session.call("run", UNIT)
        caps = ReplayCaps(fuel=100_000, time=30, memory=8 << 20)
        with api.Session(module, store=db, label="s", mode="none", caps=caps) as session:
            assert session.instance.fuel == 100_000
            assert session.instance.memory_limit == 8 << 20
            assert session.instance.deadline is not None
            session.call("run", UNIT)

    def test_a_guest_running_past_the_end_of_an_incomplete_trace(self, db: Path) -> None:
        """The plugin's engine gets the grace too: the call ends a moment after the
        trace's last event, saying the trace ends there, not at the time cap."""
        import warnings

        from packr_replay.errors import TraceExhausted
        from packr_replay.runtime import Runtime

        from .test_after_end import SPIN, cut_trace
        from .test_after_end import guest as caller

        cut_trace(db, 1)
        module = Runtime().load_module(caller(1, SPIN))
        t0 = time.monotonic()
        caps = ReplayCaps(time=60, after_end=0.2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # another build than the recorded one
            session = api.Session(module, store=db, label="cut", mode="none", caps=caps)
        with session, pytest.raises(TraceExhausted, match="the trace ends before"):
            session.call("run", UNIT)
        assert time.monotonic() - t0 < 10
