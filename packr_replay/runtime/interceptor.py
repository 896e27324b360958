"""packr's ``CallInterceptor`` and the machinery that drives its coroutines cheaply.

The hooks are ``async`` as in packr, but almost every interceptor (the recorder, the
replayer) finishes without ever suspending. So on the synchronous path we run the
coroutine directly with ``send(None)``, under a private event loop marked as running,
and only fall back to running that loop when the coroutine really awaits something.
On the async path, a coroutine that may suspend is handed to the caller's event loop
and the guest thread blocks until it completes — that is packr's back-pressure.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Coroutine, Generator
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from ..abi import EncodedValue, Value
from ..errors import GuestRuntimeError, HostFunctionError

__all__ = [
    "CallInterceptor",
    "ExportCall",
    "ImportCall",
    "ImportReply",
]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ImportReply:
    """What ``before_import`` may return besides a plain value.

    ``status`` picks the status the guest sees (``None``: the instance's normal
    choice, 0 for the scratch buffer or 1 for a guest-allocated reply). A reply with an
    ``error`` makes the call fail with status -1 and that ``(kind, message)`` reported,
    which is how a replayer reproduces a recorded import failure.
    """

    output: Value | EncodedValue | None = None
    status: int | None = None
    error: tuple[str, str] | None = None

    @classmethod
    def failure(cls, kind: str, message: str) -> ImportReply:
        return cls(None, -1, (kind, message))


@dataclass(frozen=True, slots=True)
class ImportCall:
    """One typed import call as it finished (passed to ``import_completed``).

    ``input``/``output`` hold the exact bytes that crossed the boundary; ``error`` is set
    when the guest got -1; ``replayed`` when ``before_import`` supplied the output.
    """

    interface: str
    function: str
    input: EncodedValue | None
    output: EncodedValue | None
    status: int
    error: HostFunctionError | None
    duration_ns: int
    replayed: bool


@dataclass(frozen=True, slots=True)
class ExportCall:
    """One export call as it finished (passed to ``export_completed``)."""

    function: str
    input: EncodedValue
    output: EncodedValue | None
    status: int | None
    error: GuestRuntimeError | None
    duration_ns: int
    replayed: bool


class CallInterceptor:
    """Observe or short-circuit every typed import and every export call.

    The four packr hooks keep packr's order and meaning: ``before_*`` may return a value
    to short-circuit the call (the handler or guest is not run, ``after_*`` still is);
    ``after_import`` / ``after_export`` see successful calls. ``input`` and ``output`` are
    :class:`EncodedValue` objects: the exact bytes in ``.data`` and the value, decoded
    on first use, in ``.value`` (they also compare equal to plain values).

    Beyond packr, ``import_completed`` and ``export_completed`` see every call including
    failures, with status and timing; by default they forward successes to
    ``after_import``/``after_export``. An exception raised by any hook stops the guest
    and propagates out of the export call unchanged.

    Class flags for the runtime:

    * ``inline``: the coroutines never await anything loop-bound, so the runtime may
      drive them on the guest's thread even on the async path (cheap, no hand-off).
    * ``decode_inputs``: validate import input before ``before_import`` (packr's order:
      garbage input fails with ``Decode`` and the interceptor never sees it). A replayer
      that matches raw bytes turns this off so replay never decodes.
    """

    inline: ClassVar[bool] = False
    decode_inputs: ClassVar[bool] = True

    async def before_import(
        self, interface: str, function: str, input: EncodedValue
    ) -> Value | EncodedValue | ImportReply | None:
        return None

    async def after_import(
        self, interface: str, function: str, input: EncodedValue, output: EncodedValue
    ) -> None:
        return None

    async def before_export(
        self, function: str, input: EncodedValue
    ) -> Value | EncodedValue | None:
        return None

    async def after_export(
        self, function: str, input: EncodedValue, output: EncodedValue
    ) -> None:
        return None

    async def import_completed(self, call: ImportCall) -> None:
        if call.error is None and call.input is not None and call.output is not None:
            await self.after_import(call.interface, call.function, call.input, call.output)

    async def export_completed(self, call: ExportCall) -> None:
        if call.error is None and call.output is not None:
            await self.after_export(call.function, call.input, call.output)


# ---------------------------------------------------------------- coroutine driving


class _Resume:
    """Continue a coroutine that already yielded once, inside a Task."""

    __slots__ = ("coro", "pending")

    def __init__(self, coro: Coroutine[Any, Any, Any], pending: Any) -> None:
        self.coro = coro
        self.pending = pending

    def __await__(self) -> Generator[Any, Any, Any]:
        pending = self.pending
        while True:
            try:
                value = yield pending
            except BaseException as exc:  # forward cancellation and errors
                try:
                    pending = self.coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    pending = self.coro.send(value)
                except StopIteration as stop:
                    return stop.value


async def _finish(coro: Coroutine[Any, Any, T], pending: Any) -> T:
    return await _Resume(coro, pending)  # type: ignore[no-any-return]


class CoroutineDriver:
    """Runs hook and async-handler coroutines for one instance.

    ``loop`` is the event loop of an ``await call_with_value_async(...)`` in progress
    (set by the instance while the guest runs in a worker thread), else ``None``.
    """

    __slots__ = ("_private", "loop")

    def __init__(self) -> None:
        self._private: asyncio.AbstractEventLoop | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def run(self, awaitable: Awaitable[T], *, inline: bool) -> T:
        coro: Any = awaitable
        if self.loop is not None and not inline:
            # Async path: the coroutine may touch loop-bound objects; run it on the loop
            # and block this (guest) thread until it is done.
            if not asyncio.iscoroutine(coro):
                coro = _as_coroutine(awaitable)
            return asyncio.run_coroutine_threadsafe(coro, self.loop).result()
        if not asyncio.iscoroutine(coro):
            coro = _as_coroutine(awaitable)
        loop = self.loop or self._private_loop()
        previous = asyncio.events._get_running_loop()
        asyncio.events._set_running_loop(loop)
        try:
            pending = coro.send(None)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        finally:
            asyncio.events._set_running_loop(previous)
        # It suspended: finish it on the loop it started under.
        if loop is self.loop:
            return asyncio.run_coroutine_threadsafe(_finish(coro, pending), loop).result()
        if previous is not None:
            raise RuntimeError(
                "an interceptor or async host function awaited inside a synchronous "
                "call_with_value made from a running event loop; use "
                "call_with_value_async instead"
            )
        return loop.run_until_complete(_finish(coro, pending))

    def _private_loop(self) -> asyncio.AbstractEventLoop:
        if self._private is None or self._private.is_closed():
            self._private = asyncio.new_event_loop()
        return self._private

    def close(self) -> None:
        if self._private is not None and not self._private.is_closed():
            self._private.close()
        self._private = None


async def _as_coroutine(awaitable: Awaitable[T]) -> T:
    return await awaitable


def now_ns() -> int:
    return time.perf_counter_ns()
