"""Raw imports (``func_raw``) recorded and replayed.

packr passes raw imports through untouched: plain wasm numbers in and out, and the host
function reads and writes guest memory as it likes. To replay such a guest with no host,
a raw call is recorded as its arguments, its results and every write its host function
made to guest memory *through the ``Ctx`` memory API* (``write_bytes``,
``write_value_at``, ``memory.write``/``write_u32``/``grow``, ``alloc``), in order; replay
applies those writes, then returns the results.

Writes made behind the API's back cannot be seen: through the wasmtime memory or store,
a writable ``GuestMemory.view()``, or the instance itself (``Ctx.instance``/``caller``).
Handing any of those out during a recorded call marks the call (``RawCall.raw_access``,
stored in its event), so a replay that then diverges can say why.

While no interceptor wants raw calls (``raw_server``/``raw_observer`` unset), a raw import
costs what it always did: the host function called with a plain ``Ctx``.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .host import Ctx, RawFunction
from .interceptor import CallInterceptor, MemoryOp, RawCall, RawReply

if TYPE_CHECKING:
    from .instance import Instance
    from .memory import GuestMemory

__all__ = ["RawCtx", "raw_dispatch"]

_U32 = struct.Struct("<I")


class _Frame:
    """What one raw call's host function did to guest memory."""

    __slots__ = ("ops", "raw_access")

    def __init__(self) -> None:
        self.ops: list[MemoryOp] = []
        self.raw_access = False


class CapturingMemory:
    """A ``GuestMemory`` as a recorded raw call's host function sees it: writes, growth
    and reads go through; writes and growth are noted; raw access marks the call."""

    __slots__ = ("_frame", "_memory")

    def __init__(self, memory: GuestMemory, frame: _Frame) -> None:
        self._memory = memory
        self._frame = frame

    def read(self, ptr: int, length: int, what: str = "read") -> bytes:
        return self._memory.read(ptr, length, what)

    def read_u32(self, ptr: int, what: str = "read u32") -> int:
        return self._memory.read_u32(ptr, what)

    @property
    def size(self) -> int:
        return self._memory.size

    def write(self, ptr: int, data: bytes, what: str = "write") -> None:
        self._memory.write(ptr, data, what)
        self._frame.ops.append(("write", ptr & 0xFFFF_FFFF, bytes(data)))

    def write_u32(self, ptr: int, value: int, what: str = "write u32") -> None:
        self._memory.write_u32(ptr, value, what)
        self._frame.ops.append(("write", ptr & 0xFFFF_FFFF, _U32.pack(value & 0xFFFF_FFFF)))

    def grow(self, pages: int) -> int:
        old = self._memory.grow(pages)
        self._frame.ops.append(("grow", pages))
        return old

    def view(self) -> memoryview:
        """A writable view of the whole memory: writes through it are not recorded."""
        self._frame.raw_access = True
        return self._memory.view()

    def __getattr__(self, name: str) -> Any:
        # Anything else (the wasmtime memory or store, private state) is raw access.
        self._frame.raw_access = True
        return getattr(self._memory, name)


class RawCtx(Ctx):
    """The ``Ctx`` of a raw host function: while its call is recorded, memory writes
    through it are captured (see the module's docstring)."""

    __slots__ = ("_frames", "_instance")

    def __init__(self, instance: Instance, data: Any) -> None:
        self._frames: list[_Frame] = []
        super().__init__(instance, data)

    @property
    def instance(self) -> Instance:
        """The calling instance: raw access (a write through it cannot be recorded)."""
        if self._frames:
            self._frames[-1].raw_access = True
        return self._instance

    @instance.setter
    def instance(self, value: Instance) -> None:
        self._instance = value

    @property
    def caller(self) -> Instance:
        return self.instance

    @property
    def memory(self) -> GuestMemory:
        memory = self._instance.memory
        if self._frames:
            return CapturingMemory(memory, self._frames[-1])  # type: ignore[return-value]
        return memory

    def alloc(self, size: int) -> int:
        ptr = self._instance.guest_alloc(size)
        if self._frames:
            self._frames[-1].ops.append(("alloc", size & 0xFFFF_FFFF, ptr))
        return ptr


def raw_dispatch(
    instance: Instance,
    fn: RawFunction,
    interceptor: Callable[[], CallInterceptor | None],
) -> Callable[..., Any]:
    """``fn`` as the runtime calls it: ``raw(*wasm_args)``. With an interceptor that
    serves or observes raw calls, the call is served from it or recorded."""
    ctx = RawCtx(instance, instance.state)
    ctx.interface, ctx.function = fn.module, fn.name
    handler = fn.handler
    results = fn.results

    def raw(*args: Any) -> Any:
        icpt = interceptor()
        if icpt is None or (icpt.raw_server is None and icpt.raw_observer is None):
            return handler(ctx, *args)
        return _intercepted(instance, fn, ctx, handler, icpt, args, results)

    return raw


def _intercepted(
    instance: Instance,
    fn: RawFunction,
    ctx: RawCtx,
    handler: Callable[..., Any],
    icpt: CallInterceptor,
    args: tuple[Any, ...],
    results: tuple[str, ...],
) -> Any:
    t0 = time.perf_counter_ns()
    call = RawCall(fn.module, fn.name, fn.params, results, args)
    server = icpt.raw_server
    reply = None if server is None else server(call)
    observer = icpt.raw_observer
    if reply is not None:
        _apply(instance, reply)
        call.returned, call.memory, call.replayed = reply.results, list(reply.memory), True
        call.duration_ns = time.perf_counter_ns() - t0
        if observer is not None:
            observer(call)
        return _unpack(reply.results, results)
    frame = _Frame()
    ctx._frames.append(frame)
    try:
        value = handler(ctx, *args)
    except BaseException as exc:
        call.error = exc
        raise
    else:
        call.returned = _pack(value, results)
        return value
    finally:
        ctx._frames.pop()
        call.memory, call.raw_access = frame.ops, frame.raw_access
        call.duration_ns = time.perf_counter_ns() - t0
        if observer is not None:
            observer(call)


def _apply(instance: Instance, reply: RawReply) -> None:
    """A recorded call's writes, in order (a recorded ``alloc`` runs the guest's
    allocator again, which makes its own writes as it did when recorded)."""
    memory = instance.memory
    for op in reply.memory:
        if op[0] == "write":
            memory.write(op[1], op[2], "recorded raw-call write")
        elif op[0] == "grow":
            memory.grow(op[1])
        else:
            instance.guest_alloc(op[1])


def _pack(value: Any, results: tuple[str, ...]) -> tuple[Any, ...]:
    if not results:
        return ()
    if len(results) == 1:
        return (value,)
    return tuple(value)


def _unpack(values: tuple[Any, ...], results: tuple[str, ...]) -> Any:
    if not results:
        return None
    if len(results) == 1:
        return values[0]
    return values
