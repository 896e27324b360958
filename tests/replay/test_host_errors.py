"""A failing host function is named, not hidden behind a timeout: packr's status -1 and
the error handler, then the export's error says which host function failed and how;
``on_host_error="trap"`` stops the guest at the failing import, and is recorded so a
replay does the same."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from packr_replay import api
from packr_replay.abi import String
from packr_replay.errors import GuestTimeout, HostFunctionError
from packr_replay.runtime import Ctx, HostLinkerBuilder, Runtime
from packr_replay.runtime.demo import DemoHost, example_guest
from packr_replay.storage import TraceStore

FUEL = 20_000_000  # a spinning guest stops in a few ms


class FailingHost(DemoHost):
    """The demo host whose clock raises, as a database client would."""

    def register(self, builder: HostLinkerBuilder) -> None:
        super().register(builder)

    def clock_now(self, ctx: Ctx) -> Any:
        raise RuntimeError("database unavailable")


def clock(runtime: Runtime | None = None) -> Any:
    return (runtime or Runtime(fuel=FUEL)).load_module(example_guest("clock_actor"))


class TestNamed:
    """Status -1 (packr's way): the guest spins; the error names the host function."""

    def test_timeout_names_the_host_failure(self) -> None:
        errors: list[HostFunctionError] = []
        inst = clock().instantiate(FailingHost(), on_error=errors.append)
        with pytest.raises(GuestTimeout) as info:
            inst.call_with_value("run", String("Ada"))
        text = str(info.value)
        assert text.startswith(
            "host function demo:host/clock.now raised RuntimeError: database unavailable; "
            "the guest then spun until its fuel ran out (packr guests loop on a panic"
        ), text
        assert [e.kind for e in errors] == ["Handler"]  # packr's error handler ran
        assert info.value.host_error is errors[0]

    def test_a_reply_of_the_wrong_type_is_named_too(self) -> None:
        class WrongType(DemoHost):
            def clock_now(self, ctx: Ctx) -> Any:
                return "not a number"

        with pytest.raises(GuestTimeout, match=r"host function demo:host/clock\.now failed: "
                                               r"type conversion failed"):  # fmt: skip
            clock().instantiate(WrongType()).call_with_value("run", String("Ada"))

    def test_recorded_and_replayed_with_the_same_message(self, tmp_path: Path) -> None:
        db = tmp_path / "t.db"
        result = api.record_run(clock(), [("run", String("Ada"))], host=FailingHost(), store=db)
        recorded = str(result.results[0].error)
        assert "database unavailable" in recorded
        report = api.replay(db)
        assert report.reproduced, report.summary()
        assert report.exports[0].error == recorded


class TestTrap:
    """on_host_error="trap": the guest stops at the failing import, no spinning."""

    def test_trap_raises_the_host_error_at_once(self) -> None:
        runtime = Runtime(fuel=None, timeout=30.0)  # a spin would take the whole 30 s
        inst = clock(runtime).instantiate(FailingHost(), on_host_error="trap")
        started = time.monotonic()
        with pytest.raises(HostFunctionError, match="database unavailable") as info:
            inst.call_with_value("run", String("Ada"))
        assert time.monotonic() - started < 5
        assert (info.value.interface, info.value.function) == ("demo:host/clock", "now")

    @pytest.mark.parametrize("native", [True, False], ids=["native", "python"])
    def test_recorded_as_a_setting_and_replayed_the_same(self, tmp_path: Path, native: bool) -> None:
        db = tmp_path / "t.db"
        runtime = Runtime(fuel=None, native=native)
        result = api.record_run(clock(runtime), [("run", String("Ada")), ("run", String("Bo"))],
                                host=FailingHost(), store=db, on_host_error="trap")  # fmt: skip
        assert [type(r.error).__name__ for r in result.results] == ["HostFunctionError"] * 2
        with TraceStore(db, readonly=True) as store:
            assert store.traces()[0].meta["on_host_error"] == "trap"
        started = time.monotonic()
        report = api.replay(db)  # no host; the recorded failure traps again
        assert report.reproduced, report.summary()
        assert time.monotonic() - started < 10
        assert report.exports[0].error == str(result.results[0].error)

    def test_bad_setting(self) -> None:
        with pytest.raises(ValueError, match="on_host_error"):
            Runtime(on_host_error="explode")
