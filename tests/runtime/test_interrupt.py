"""SIGINT and SIGTERM stop a running guest within a second whatever its fuel, and are
never raised inside a wasmtime callback or a commit (packr_replay._interrupts,
runtime.interrupt). Signals are sent to this process from a timer thread."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from packr_replay import _interrupts
from packr_replay.errors import GuestTimeout, Interrupted
from packr_replay.runtime import Ctx, Runtime
from packr_replay.storage import TraceStore

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

SPIN = """
(module
  (import "h" "note" (func $note (param i32)))
  (memory (export "memory") 1)
  (func (export "spin") (result i32) (loop $l (br $l)) (i32.const 0))
  (func (export "note_then_spin") (result i32)
    (call $note (i32.const 1)) (loop $l (br $l)) (i32.const 0)))
"""


@contextmanager
def signal_after(delay: float, signum: int = signal.SIGINT) -> Iterator[None]:
    timer = threading.Timer(delay, os.kill, (os.getpid(), signum))
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def spinner(fuel: int | None = None, timeout: float | None = None, native: bool | None = None, note=None):  # type: ignore[no-untyped-def]
    module = Runtime(fuel=fuel, timeout=timeout, native=native).load_module(SPIN)
    return module.instantiate(
        lambda b: b.interface("h").func_raw("note", note or (lambda ctx, n: None), params=("i32",))
    )


class TestStopsTheGuest:
    """Within a second, whatever the fuel setting, on the main thread."""

    @pytest.mark.parametrize("fuel", [None, 10**15], ids=["no-fuel-limit", "huge-fuel"])
    @pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["INT", "TERM"])
    def test_spinning_guest(self, fuel: int | None, signum: int) -> None:
        inst = spinner(fuel)
        started = time.monotonic()
        with _interrupts.catching(), signal_after(0.2, signum), pytest.raises(Interrupted) as info:
            inst.call("spin")
        assert time.monotonic() - started < 1.2
        assert info.value.signal == signum
        assert info.value.exit_code == 128 + signum

    def test_in_a_host_function_it_waits_for_the_guest(self) -> None:
        """Arriving while Python code of a host function runs, the signal is not raised
        there (inside wasmtime's callback): the guest is stopped when it runs again."""
        seen: list[str] = []

        def note(ctx: Ctx, n: int) -> None:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # the handler runs in here: it must only record
            seen.append("host function finished")

        inst = spinner(note=note)
        with _interrupts.catching(), pytest.raises(Interrupted):
            inst.call("note_then_spin")
        assert seen == ["host function finished"]

    def test_outside_guest_code_it_raises_at_once(self) -> None:
        def signal_and_wait() -> None:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)

        with _interrupts.catching(), pytest.raises(Interrupted):
            signal_and_wait()

    def test_no_guest_call_starts_once_interrupted(self) -> None:
        inst = spinner()
        with _interrupts.catching():
            with signal_after(0.1), pytest.raises(Interrupted):
                inst.call("spin")
            # (the process is on its way out: a new call is refused at once)
            with pytest.raises(Interrupted):
                inst.call("spin")
        with pytest.raises(GuestTimeout):  # after the context: interrupts are over
            spinner(fuel=100_000).call("spin")

    def test_timeouts_still_work_and_say_so(self) -> None:
        started = time.monotonic()
        with pytest.raises(GuestTimeout, match=r"wall-clock timeout of 0\.2s"):
            spinner(timeout=0.2).call("spin")
        assert time.monotonic() - started < 1.5

    def test_previous_handlers_come_back(self) -> None:
        before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
        with _interrupts.catching(), _interrupts.catching():  # nested: one installation
            assert signal.getsignal(signal.SIGINT) is not before[0]
        assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


class TestNotInsideACommit:
    """A writer's commit finishes before the signal is raised (it used to leave "an
    earlier commit failed ... :" with an empty reason)."""

    def test_the_sealed_trace_is_complete(self, tmp_path: Path) -> None:
        from tests.storage.util import write_events

        path = tmp_path / "t.db"
        with _interrupts.catching(), TraceStore(path, create=True) as store:
            writer = store.begin_trace(None)
            write_events(writer, 100)

            def seal_while_signalled() -> None:
                with _interrupts.deferred():
                    os.kill(os.getpid(), signal.SIGINT)
                    time.sleep(0.05)  # the handler ran: it only recorded the signal
                    assert _interrupts.pending() == signal.SIGINT
                    writer.finish()  # not interrupted half-way; raised as the region ends

            with pytest.raises(Interrupted):
                seal_while_signalled()
        with TraceStore(path, readonly=True) as store:
            (info,) = store.traces()
            assert (info.status, info.event_count) == ("complete", 100)
            assert store.verify(info.id).ok
