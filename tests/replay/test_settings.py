"""Run settings written by the recorder and read back, checked, by replay."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from packr_replay import api
from packr_replay.abi import String
from packr_replay.errors import TraceFormatError
from packr_replay.replay.session import new_runtime
from packr_replay.replay.settings import RunSettings, settings_meta
from packr_replay.runtime import DEFAULT_FUEL, ReplyMode, Runtime
from packr_replay.runtime.demo import DemoHost, example_guest
from packr_replay.storage import TraceStore


@pytest.mark.parametrize(
    "runtime",
    [Runtime(), Runtime(fuel=None, timeout=2.5, memory_limit=1 << 24), Runtime(fuel=0)],
)
@pytest.mark.parametrize("reply", list(ReplyMode))
def test_what_is_written_reads_back(runtime: Runtime, reply: ReplyMode) -> None:
    settings = RunSettings.from_meta(settings_meta(runtime, reply))
    assert (settings.fuel, settings.timeout, settings.memory_limit, settings.reply) == (
        runtime.fuel, runtime.timeout, runtime.memory_limit, reply
    )  # fmt: skip
    rebuilt = settings.runtime()
    assert (rebuilt.fuel, rebuilt.timeout, rebuilt.memory_limit) == (
        runtime.fuel, runtime.timeout, runtime.memory_limit
    )  # fmt: skip


def test_missing_keys_keep_the_base_and_nil_means_unlimited() -> None:
    base = RunSettings(fuel=7, timeout=1.0, memory_limit=65536)
    assert RunSettings.from_meta({}, base=base) == base
    assert RunSettings.from_meta({}) == RunSettings(fuel=DEFAULT_FUEL)
    unlimited = RunSettings.from_meta({"fuel": None, "timeout": None, "memory_limit": None}, base=base)
    assert (unlimited.fuel, unlimited.timeout, unlimited.memory_limit) == (None, None, None)


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        ({"reply": "bogus"}, "'reply' is 'bogus'; expected one of 'scratch', 'guest'"),
        ({"fuel": 2.0}, "'fuel' is 2.0; expected a non-negative integer or nil"),
        ({"timeout": -1}, "'timeout' is -1; expected a positive number of seconds or nil"),
        ({"redacted": ["a", None]}, "'redacted' is"),
    ],
)
def test_a_bad_value_names_the_trace_and_key(meta: dict[str, Any], message: str) -> None:
    with pytest.raises(TraceFormatError, match=r"^trace 3: metadata ") as info:
        RunSettings.from_meta(meta, "trace 3")
    assert message in str(info.value)


def test_replay_runs_under_the_recorded_limits(tmp_path: Path) -> None:
    path = tmp_path / "limits.db"
    runtime = Runtime(fuel=123_456_789, timeout=30.0, memory_limit=4 << 20)
    module = runtime.load_module(example_guest("clock_actor"))
    api.record_run(module, [("run", String("Ada"))], host=DemoHost(), store=path, label="limits")
    with TraceStore(path) as store:
        meta = store.trace("limits").info.meta
    assert (meta["fuel"], meta["timeout"], meta["memory_limit"]) == (123_456_789, 30.0, 4 << 20)
    replay_rt = new_runtime(meta)
    assert (replay_rt.fuel, replay_rt.timeout, replay_rt.memory_limit) == (123_456_789, 30.0, 4 << 20)
    assert api.replay(path, "limits").reproduced


class TestScratchCapacity:
    """packr 0.7.0's uncapped host reply is the default; the cap is a recorded setting."""

    def test_no_cap_by_default_and_recorded(self) -> None:
        meta = settings_meta(Runtime(), ReplyMode.SCRATCH)
        assert meta["scratch_capacity"] is None
        assert RunSettings.from_meta(meta).scratch_capacity is None
        capped = settings_meta(Runtime(scratch_capacity=32768), ReplyMode.SCRATCH)
        assert RunSettings.from_meta(capped).runtime().scratch_capacity == 32768

    def test_a_trace_that_does_not_say_had_the_old_32k_cap(self) -> None:
        assert RunSettings.from_meta({}).scratch_capacity == 32768
        base = RunSettings.of_runtime(Runtime())
        assert RunSettings.from_meta({}, base=base).scratch_capacity == 32768

    def test_a_forty_kilobyte_reply_records_and_replays(self, tmp_path: Path) -> None:
        from tests.runtime import guests

        big = String("x" * 40_000)
        module = Runtime().load_module(guests.typed_guest(("test", "big"), pages=3))
        store = tmp_path / "big.db"

        def host(b: Any) -> None:
            b.interface("test").func_typed("big", lambda ctx, v: big)

        result = api.record_run(module, [("big", String("go"))], host=host, store=store)
        assert result.results[0].output == big
        report = api.replay(store, result.trace_id, module=module)
        assert report.reproduced, report.summary()


class TestOneMeaningOfZero:
    """Fuel 0 is "no limit" for the runtime, an instance and a trace's metadata alike."""

    def test_runtime(self) -> None:
        assert Runtime(fuel=0).fuel is None

    def test_metadata(self) -> None:
        assert RunSettings.from_meta({"fuel": 0}).fuel is None

    def test_instantiate(self) -> None:
        module = Runtime().load_module(example_guest("echo"))
        assert module.instantiate(fuel=0).fuel is None
        assert module.instantiate(fuel=0).call_with_value("echo", String("x")) == String("x")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fuel": -5}, "fuel is -5; expected None or 0 (no limit), or a positive instruction count"),
        ({"fuel": 1.5}, "fuel is 1.5; expected None or 0"),
        ({"fuel": True}, "fuel is True; expected None or 0"),
        ({"timeout": 0}, "timeout is 0; expected None (no limit) or a positive number of seconds"),
        ({"timeout": -1.0}, "timeout is -1.0; expected None"),
        ({"timeout": float("nan")}, "timeout is nan; expected None"),
        ({"memory_limit": -1}, "memory_limit is -1; expected None (no limit) or a number of bytes"),
    ],
)
def test_runtime_refuses_settings_a_trace_could_not_hold(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Runtime(**kwargs)
