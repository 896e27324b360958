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
import threading
import time
import types
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Generator
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar, cast

from ..abi import EncodedValue, Value
from ..errors import GuestRuntimeError, HostFunctionError

__all__ = [
    "CallInterceptor",
    "ExportCall",
    "ImportCall",
    "ImportReply",
    "MemoryOp",
    "RawCall",
    "RawReply",
    "RoutedInterceptor",
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


@dataclass(slots=True)  # not frozen: a frozen dataclass costs ~4 µs more to build per call
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

    def observed(
        self,
    ) -> tuple[str, str, bytes | None, bytes | None, int, HostFunctionError | None, int, bool]:
        """The call as an ``import_observer`` takes it (its arguments, in order)."""
        return (
            self.interface,
            self.function,
            None if self.input is None else self.input.data,
            None if self.output is None else self.output.data,
            self.status,
            self.error,
            self.duration_ns,
            self.replayed,
        )


@dataclass(slots=True)
class ExportCall:
    """One export call as it finished (passed to ``export_completed``)."""

    function: str
    input: EncodedValue
    output: EncodedValue | None
    status: int | None
    error: GuestRuntimeError | None
    duration_ns: int
    replayed: bool


#: One write the host made to guest memory during a raw call, through its ``Ctx``:
#: ``("write", address, bytes)``, ``("grow", pages)`` or ``("alloc", size, address)``
#: (the guest's ``__pack_alloc`` ran: its own writes come again when it is re-run).
MemoryOp = tuple[Any, ...]


@dataclass(slots=True)
class RawCall:
    """One raw import call (``func_raw``: plain wasm numbers, no CGRF), as it finished
    (given to ``raw_observer``) or as it starts (given to ``raw_server``).

    ``params``/``results`` are the wasm types; ``args`` and ``returned`` the numbers.
    ``memory`` lists what the host function wrote to guest memory through the ``Ctx``
    memory API, in order (:data:`MemoryOp`); ``raw_access`` is true when it was handed
    raw access (``Ctx.instance``/``caller``, ``GuestMemory.view()``, the wasmtime
    memory or store), through which writes cannot be seen. ``error``: what the host
    function raised (it goes on out of the guest, as a raw import's failure does).
    """

    interface: str
    function: str
    params: tuple[str, ...]
    results: tuple[str, ...]
    args: tuple[Any, ...]
    returned: tuple[Any, ...] = ()
    memory: list[MemoryOp] = field(default_factory=list)
    raw_access: bool = False
    error: BaseException | None = None
    duration_ns: int = 0
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class RawReply:
    """A raw call served without the host (replay): the runtime applies ``memory`` to
    guest memory in order, then returns ``results`` to the guest."""

    results: tuple[Any, ...] = ()
    memory: tuple[MemoryOp, ...] = ()


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

    * ``inline``: the coroutines do not use the event loop (no ``get_running_loop``,
      no awaiting loop-bound futures; recorders and replayers qualify), so the runtime
      drives them directly on the guest's thread, without marking a loop running and,
      on the async path, without a hand-off to the caller's loop. Cheapest. A hook
      that yields anyway (``await asyncio.sleep(0)``) is finished on a loop; one that
      needs the running loop gets asyncio's "no running event loop" RuntimeError.
    * ``decode_inputs``: validate import input before ``before_import`` (packr's order:
      garbage input fails with ``Decode`` and the interceptor never sees it). A replayer
      that matches raw bytes turns this off so replay never decodes.
    """

    inline: ClassVar[bool] = False
    decode_inputs: ClassVar[bool] = True

    #: Optional synchronous fast paths, for ``inline`` interceptors on the hottest path
    #: (the recorder and the replayer). When set, the runtime calls them with raw bytes
    #: instead of building :class:`EncodedValue`/:class:`ImportCall` objects and driving
    #: the ``before_import`` / ``import_completed`` coroutines; they must behave exactly
    #: like those hooks. ``import_server(interface, function, input_bytes)`` returns
    #: None, an :class:`ImportReply`, or ``(output_bytes, status)`` (``status`` None for
    #: the instance's default); ``import_observer(interface, function, input, output,
    #: status, error, duration_ns, replayed)`` sees every completed call.
    import_server: (
        Callable[[str, str, bytes], ImportReply | tuple[bytes, int | None] | None] | None
    ) = None
    import_observer: (
        Callable[[str, str, bytes | None, bytes | None, int, HostFunctionError | None, int, bool], None]
        | None
    ) = None

    #: The native seams, for the same two interceptors: state the C trampoline serves
    #: ordinary calls from without calling Python (see :mod:`.native`). ``native_feed``
    #: (a ``native.ReplayFeed``) goes with an ``import_server``, ``native_log`` (a
    #: ``native.RecordLog``) with an ``import_observer``; the runtime uses them only
    #: while those seams are the interceptor's whole per-call behaviour.
    native_feed: Any = None
    native_log: Any = None

    #: Raw imports (``func_raw``), which packr does not intercept: ``raw_server(call)``
    #: returns a :class:`RawReply` to serve the call without the host, or None to run
    #: the host function; ``raw_observer(call)`` sees every completed raw call, with the
    #: guest-memory writes its host function made. Both are synchronous; an exception
    #: either raises stops the guest and comes out of the export call unchanged.
    raw_server: Callable[[RawCall], RawReply | None] | None = None
    raw_observer: Callable[[RawCall], None] | None = None

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

    async def after_export(self, function: str, input: EncodedValue, output: EncodedValue) -> None:
        return None

    async def import_completed(self, call: ImportCall) -> None:
        if call.error is None and call.input is not None and call.output is not None:
            await self.after_import(call.interface, call.function, call.input, call.output)

    async def export_completed(self, call: ExportCall) -> None:
        if call.error is None and call.output is not None:
            await self.after_export(call.function, call.input, call.output)

    def import_unserved(
        self, interface: str, function: str, input: bytes | None, error: HostFunctionError
    ) -> None:
        """An import failed before ``before_import``/``import_server`` could see it (its
        input was unreadable or too large: ``input`` is None; or it did not decode under
        ``decode_inputs``). A replayer consumes the recorded failure here; raising stops
        the guest. ``import_completed`` still follows, as for every failure."""
        return None


class RoutedInterceptor(CallInterceptor):
    """The interceptor an instance consults when its functions have different ones.

    packr captures the interceptor per ``interface()`` call and gives export calls only
    the instance's own, so one instance may have several. Each typed import goes to
    its function's interceptor (through its synchronous seams when it has them), each
    export call to ``exports``; ``None`` anywhere means not intercepted.
    """

    def __init__(
        self,
        exports: CallInterceptor | None,
        imports: dict[tuple[str, str], CallInterceptor | None],
    ) -> None:
        self.exports = exports
        self.imports = imports

    async def before_import(
        self, interface: str, function: str, input: EncodedValue
    ) -> Value | EncodedValue | ImportReply | None:
        icpt = self.imports.get((interface, function))
        if icpt is None:
            return None
        server = icpt.import_server
        if server is not None:
            reply = server(interface, function, input.data)
            if type(reply) is tuple:
                return ImportReply(EncodedValue(reply[0]), reply[1])
            return reply  # type: ignore[return-value]
        if overrides(icpt, "before_import"):
            return await icpt.before_import(interface, function, input)
        return None

    async def import_completed(self, call: ImportCall) -> None:
        icpt = self.imports.get((call.interface, call.function))
        if icpt is None:
            return
        observer = icpt.import_observer
        if observer is not None:
            observer(*call.observed())
        else:
            await icpt.import_completed(call)

    def import_unserved(
        self, interface: str, function: str, input: bytes | None, error: HostFunctionError
    ) -> None:
        icpt = self.imports.get((interface, function))
        if icpt is not None:
            icpt.import_unserved(interface, function, input, error)

    async def before_export(
        self, function: str, input: EncodedValue
    ) -> Value | EncodedValue | None:
        if self.exports is None:
            return None
        return await self.exports.before_export(function, input)

    async def export_completed(self, call: ExportCall) -> None:
        if self.exports is not None:
            await self.exports.export_completed(call)


#: The interceptor methods a runtime calls (an interceptor may override any of them).
HOOKS = (
    "before_import",
    "after_import",
    "before_export",
    "after_export",
    "import_completed",
    "export_completed",
)
_BASE_HOOKS: dict[str, Any] = {name: getattr(CallInterceptor, name) for name in HOOKS}


def overrides(interceptor: CallInterceptor, hook: str) -> bool:
    """Whether ``interceptor``'s class replaces the default ``hook`` (the runtime
    skips default hooks, which do nothing, rather than drive their coroutines)."""
    return getattr(type(interceptor), hook) is not _BASE_HOOKS[hook]


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

    __slots__ = ("loop",)

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None

    def run(self, awaitable: Awaitable[T], *, inline: bool) -> T:
        coro: Any = awaitable
        loop = self.loop
        if loop is not None and not inline:
            # Async path: the coroutine may touch loop-bound objects; run it on the loop
            # and block this (guest) thread until it is done.
            if not asyncio.iscoroutine(coro):
                coro = _as_coroutine(awaitable)
            return cast(T, asyncio.run_coroutine_threadsafe(coro, loop).result())
        if type(coro) is not _CoroutineType and not asyncio.iscoroutine(coro):
            coro = _as_coroutine(awaitable)
        if inline:
            # Declared loop-free: drive it directly, no event loop marked running (that
            # costs three syscalls here, more than the hook itself).
            try:
                pending = coro.send(None)
            except StopIteration as stop:
                return cast(T, stop.value)
            if loop is not None:
                return cast(
                    T, asyncio.run_coroutine_threadsafe(_finish(coro, pending), loop).result()
                )
            return cast(T, self._finish_privately(coro, pending, _get_running_loop()))
        if loop is None:
            try:
                loop = _local.loop
            except AttributeError:
                loop = _thread_loop()
        # The fast path: run the coroutine to its first suspension (almost always its
        # end) with the loop marked running, so hooks may use asyncio primitives.
        previous = _get_running_loop()
        _set_running_loop(loop)
        try:
            pending = coro.send(None)
        except StopIteration as stop:
            _set_running_loop(previous)
            return cast(T, stop.value)
        except BaseException:
            _set_running_loop(previous)
            raise
        _set_running_loop(previous)
        # It suspended: finish it on the loop it started under.
        if self.loop is not None:
            return cast(T, asyncio.run_coroutine_threadsafe(_finish(coro, pending), loop).result())
        return cast(T, self._finish_privately(coro, pending, previous))

    @staticmethod
    def _finish_privately(coro: Any, pending: Any, previous: Any) -> Any:
        """Finish a suspended coroutine on this thread's private loop."""
        try:
            loop = _local.loop
        except AttributeError:
            loop = _thread_loop()
        if loop.is_closed():
            del _local.loop  # the next call starts a fresh one
            coro.close()
            raise RuntimeError("this thread's private event loop was closed by someone else")
        if previous is not None:
            # A synchronous call made from inside a running event loop (a notebook, an
            # async test): that loop cannot be re-entered, so this thread's private
            # loop finishes the coroutine in a helper thread while we wait.
            return _run_in_helper_thread(loop, _finish(coro, pending))
        return loop.run_until_complete(_finish(coro, pending))

    def close(self) -> None:
        """Nothing to release: the private loops belong to threads, not drivers."""


_local = threading.local()
_CoroutineType = types.CoroutineType
_get_running_loop = asyncio.events._get_running_loop
_set_running_loop = asyncio.events._set_running_loop


def _thread_loop() -> asyncio.AbstractEventLoop:
    """This thread's private event loop for synchronous calls.

    One per thread (an event loop holds a selector and a socket pair, too much for
    every instance), closed when the thread object goes away or at exit, so no loop is
    ever garbage-collected unclosed.
    """
    try:
        loop: asyncio.AbstractEventLoop = _local.loop
    except AttributeError:
        loop = _local.loop = asyncio.new_event_loop()
        weakref.finalize(threading.current_thread(), _close_loop, loop)
    return loop


def _run_in_helper_thread(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T]) -> T:
    outcome: list[Any] = []

    def target() -> None:
        try:
            outcome.append((True, loop.run_until_complete(coro)))
        except BaseException as exc:
            outcome.append((False, exc))

    helper = threading.Thread(target=target, name="packr-replay-coroutine", daemon=True)
    helper.start()
    helper.join()
    ok, value = outcome[0]
    if not ok:
        raise value
    return cast(T, value)


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    if not loop.is_closed() and not loop.is_running():
        loop.close()


async def _as_coroutine(awaitable: Awaitable[T]) -> T:
    return await awaitable


def now_ns() -> int:
    return time.perf_counter_ns()
