"""``Instance``: a guest bound to host functions, with packr's calling conventions.

Typed imports follow spec §3 (read CGRF at ``in_ptr``, run the handler, write the reply
at 16 KiB + 8 or into a guest-allocated buffer, fill two independent i32 slots, return
0/1, or -1 on any failure). Export calls follow spec §4. Every call crossing the
boundary is shown to the interceptor with its exact bytes.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import threading
import time
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import wasmtime

from ..abi import (
    F32,
    F64,
    S8,
    S16,
    S32,
    S64,
    U8,
    U16,
    U32,
    U64,
    UNIT,
    AbiError,
    Bool,
    Char,
    EncodedValue,
    Flags,
    Kind,
    Limits,
    Result,
    String,
    Tuple,
    Value,
    ValueType,
    decode,
    encode,
)
from ..abi.convert import from_python, from_value, to_python
from ..errors import (
    ExportNotFound,
    GuestError,
    GuestMemoryError,
    GuestRuntimeError,
    GuestTimeout,
    GuestTrap,
    HostFunctionError,
    InvalidGuestOutput,
    LinkError,
    MetadataError,
    PackrReplayError,
)
from . import fastcall
from .host import (
    PACKR_SIGNATURE,
    AsyncCtx,
    Ctx,
    ErrorHandler,
    HostErr,
    HostLinkerBuilder,
    HostSpec,
    RawFunction,
    ReplyMode,
    TypedFunction,
)
from .interceptor import (
    CallInterceptor,
    CoroutineDriver,
    ExportCall,
    ImportCall,
    ImportReply,
    overrides,
)
from .memory import GuestMemory, pack_u32_into

if TYPE_CHECKING:
    from ..abi.metadata import PackageMetadata
    from .engine import Module

__all__ = ["Instance"]

RESULT_PTR_OFFSET = 16384
RESULT_LEN_OFFSET = 16388
SCRATCH_OFFSET = 16392
INPUT_FALLBACK_OFFSET = 0

_MAX_INPUT = Limits().max_buffer_size
_MAX_ERROR = 1 << 20  # an error string longer than this is cut (a hostile length)


def _sig(ty: wasmtime.FuncType) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return tuple(str(p) for p in ty.params), tuple(str(r) for r in ty.results)


def _i32(value: int) -> int:
    return ((value + 2**31) % 2**32) - 2**31


class _ConversionFailed(Exception):
    pass


class Instance:
    """A running guest. Create with :meth:`Module.instantiate`."""

    def __init__(
        self,
        module: Module,
        host: HostSpec,
        *,
        state: Any,
        interceptor: CallInterceptor | None,
        reply: ReplyMode,
        on_error: ErrorHandler | None,
        fuel: int | None,
        timeout: float | None,
        scratch_capacity: int | None,
        memory_limit: int | None = None,
    ) -> None:
        self.module = module
        self.runtime = module.runtime
        self.state = state
        self.reply = reply
        self.fuel = fuel
        self.timeout = timeout
        self.scratch_capacity = scratch_capacity
        builder = HostLinkerBuilder().apply(host)
        self.builder = builder
        self.interceptor = interceptor if interceptor is not None else builder.interceptor
        self.error_handler: ErrorHandler | None = on_error or builder.error_handler
        self.driver = CoroutineDriver()
        self.ctx = Ctx(self, state)
        self._memory: GuestMemory | None = None
        self._exports: dict[str, Any] = {}
        self._checked_exports: dict[str, wasmtime.Func] = {}
        self._plans: dict[int, _Plan] = {}  # per typed function, keyed by id
        self._busy = threading.RLock()
        self._hooks_for: type | None = None  # the interceptor class _hooks describes
        self._hooks: dict[str, bool] = {}
        self._heap_next: int | None = None
        self._alloc_trap: GuestRuntimeError | None = None  # why __pack_alloc last failed
        # The last failed import of the current call: a guest that spins afterwards
        # (packr guests panic on -1) gets it as the cause of its GuestTimeout.
        self._last_import_error: HostFunctionError | None = None
        self._call_lock: asyncio.Lock | None = None
        self._keepalive: list[Any] = []  # C callbacks: must outlive the store
        self.memory_limit = memory_limit
        self.store = wasmtime.Store(self.runtime.engine)
        if memory_limit is not None:
            self.store.set_limits(memory_size=memory_limit)
        self.store.set_fuel(fuel if fuel is not None else 1 << 62)
        self.store.set_epoch_deadline(1 << 62)
        self._instance: wasmtime.Instance | None = None
        self._link_and_instantiate(builder)

    # ------------------------------------------------------------- linking

    def _link_and_instantiate(self, builder: HostLinkerBuilder) -> None:
        linker = wasmtime.Linker(self.runtime.engine)
        missing: list[tuple[str, str, str]] = []
        host_memory: wasmtime.Memory | None = None
        for imp in self.module.compiled.imports:
            module, name, ty = imp.module, imp.name or "", imp.type
            fn = builder.functions.get((module, name))
            if isinstance(ty, wasmtime.MemoryType):
                if (module, name) == ("env", "memory"):
                    host_memory = wasmtime.Memory(self.store, ty)
                    linker.define(self.store, module, name, host_memory)
                else:
                    missing.append((module, name, f"memory (min {ty.limits.min} pages)"))
                continue
            if not isinstance(ty, wasmtime.FuncType):
                missing.append((module, name, f"unsupported import kind {type(ty).__name__}"))
                continue
            have = _sig(ty)
            if fn is None and module == "pack:alloc" and name in ("alloc", "dealloc"):
                self._define_default_alloc(linker, name, ty, missing)
                continue
            if fn is None:
                missing.append((module, name, _fmt_sig(have)))
                continue
            if isinstance(fn, TypedFunction):
                if have != PACKR_SIGNATURE:
                    missing.append(
                        (
                            module,
                            name,
                            f"{_fmt_sig(have)} (host provides a typed packr function "
                            "(i32, i32, i32, i32) -> (i32))",
                        )
                    )
                    continue
                fastcall.define_func(
                    linker, module, name, *PACKR_SIGNATURE, self._typed_import(fn), self._keepalive
                )
            else:
                if have != (fn.params, fn.results):
                    missing.append(
                        (module, name, f"{_fmt_sig(have)} (host provides {fn.signature})")
                    )
                    continue
                fastcall.define_func(
                    linker,
                    module,
                    name,
                    fn.params,
                    fn.results,
                    self._raw_import(fn),
                    self._keepalive,
                )
        if missing:
            raise LinkError(missing)
        self._arm_budget()  # a start function runs under the budget too
        try:
            instance = linker.instantiate(self.store, self.module.compiled)
        except wasmtime.Trap as trap:
            raise _trap_error("<instantiation>", trap, self.fuel, self.timeout) from None
        except wasmtime.WasmtimeError as exc:
            raise GuestRuntimeError(f"cannot instantiate {self.module.name}: {exc}") from None
        self._instance = instance
        exports = instance.exports(self.store)
        exported_memory = exports.get("memory")
        if isinstance(exported_memory, wasmtime.Memory):
            self._memory = GuestMemory(self.store, exported_memory)
        elif host_memory is not None:
            self._memory = GuestMemory(self.store, host_memory)
        ctors = exports.get("__wasm_call_ctors")
        if isinstance(ctors, wasmtime.Func):
            self._arm_budget()
            self._invoke(ctors, "__wasm_call_ctors", nresults=0)

    def _define_default_alloc(
        self,
        linker: wasmtime.Linker,
        name: str,
        ty: wasmtime.FuncType,
        missing: list[tuple[str, str, str]],
    ) -> None:
        """packr's default ``pack:alloc`` provider: a bump allocator, free is a no-op."""
        sig = _sig(ty)
        if name == "alloc" and sig == (("i32", "i32"), ("i32",)):
            fastcall.define_func(
                linker, "pack:alloc", "alloc", *sig, self._bump_alloc, self._keepalive
            )
        elif name == "dealloc" and sig == (("i32", "i32", "i32"), ()):
            fastcall.define_func(
                linker,
                "pack:alloc",
                "dealloc",
                *sig,
                lambda ptr, size, align: None,
                self._keepalive,
            )
        else:
            missing.append(("pack:alloc", name, _fmt_sig(_sig(ty))))

    def _bump_alloc(self, size: int, align: int) -> int:
        memory = self._memory
        if memory is None:
            return 0
        size &= 0xFFFF_FFFF
        align &= 0xFFFF_FFFF
        if align == 0 or align & (align - 1):
            align = 1
        if self._heap_next is None:
            heap_base = self._exports_get("__heap_base")
            if isinstance(heap_base, wasmtime.Global):
                self._heap_next = int(heap_base.value(self.store)) & 0xFFFF_FFFF
            else:
                self._heap_next = memory.size
        ptr = (self._heap_next + align - 1) & ~(align - 1)
        end = ptr + max(size, 1)
        if end > 0xFFFF_FFFF:
            return 0
        if end > memory.size:
            pages = (end - memory.size + 65535) // 65536
            try:
                memory.grow(pages)
            except wasmtime.WasmtimeError:
                return 0
        self._heap_next = end
        return _i32(ptr)

    # ------------------------------------------------------------- accessors

    @property
    def memory(self) -> GuestMemory:
        if self._memory is None:
            raise GuestMemoryError("no exported memory named 'memory'")
        return self._memory

    def _exports_get(self, name: str) -> Any:
        try:
            return self._exports[name]
        except KeyError:
            if self._instance is None:
                return None  # still instantiating
            item = self._instance.exports(self.store).get(name)
            self._exports[name] = item
            return item

    def has_export(self, name: str) -> bool:
        return self._exports_get(name) is not None

    def guest_alloc(self, size: int) -> int:
        """Call the guest's ``__pack_alloc(size)``; 0 when absent or failing.

        A trap counts as failure (packr falls back silently), except running out of
        fuel or time: that raises :class:`GuestTimeout`, since the guest could not go
        on anyway.
        """
        alloc = self._exports_get("__pack_alloc")
        if not isinstance(alloc, wasmtime.Func):
            return 0
        self._alloc_trap = None
        try:
            return int(fastcall.call(self.store, alloc, (_i32(size),))) & 0xFFFF_FFFF
        except fastcall.Trapped as trapped:
            error = _trap_error("__pack_alloc", trapped.trap, self.fuel, self.timeout)
            if isinstance(error, GuestTimeout):
                raise error from None
            self._alloc_trap = error
            return 0

    def guest_free(self, ptr: int, size: int) -> None:
        free = self._exports_get("__pack_free")
        if isinstance(free, wasmtime.Func) and ptr and size:
            try:
                fastcall.call(self.store, free, (_i32(ptr), _i32(size)), nresults=0)
            except fastcall.Trapped:
                pass

    # ------------------------------------------------------------ typed imports

    def _report(
        self,
        fn: TypedFunction,
        input: EncodedValue | None,
        kind: str,
        message: str,
        t0: int,
        cause: BaseException | None = None,
        replayed: bool = False,
        unserved: bool = False,
    ) -> int:
        """Fail the import (-1 to the guest) and tell whoever wants to know.

        ``unserved``: the call failed before the interceptor could serve it (its input
        could not be read, was too large, or did not decode under ``decode_inputs``), so
        ``import_server``/``before_import`` never saw it. The interceptor's
        ``import_unserved`` (the replayer: it must consume the recorded failure) is told
        first, and may raise to stop the guest.
        """
        error = HostFunctionError(fn.module, fn.name, kind, message, cause)
        icpt = self.interceptor
        if unserved and icpt is not None:
            icpt.import_unserved(fn.module, fn.name, None if input is None else input.data, error)
        self._last_import_error = error
        if self.error_handler is not None:
            self.error_handler(error)
        observer = icpt.import_observer if icpt is not None else None
        if observer is not None:
            observer(
                fn.module, fn.name, None if input is None else input.data, None, -1, error,
                time.perf_counter_ns() - t0, replayed,
            )
        elif icpt is not None and self._hook(icpt, "import_completed"):
            # (the default import_completed forwards only successes)
            call = ImportCall(
                fn.module, fn.name, input, None, -1, error, time.perf_counter_ns() - t0, replayed
            )
            self.driver.run(icpt.import_completed(call), inline=icpt.inline)
        return -1

    def _typed_import(self, fn: TypedFunction) -> Callable[[int, int, int, int], int]:
        simple = (
            fn.params is None and fn.returns is None and fn.result_types is None and not fn.is_async
        )
        ctx = Ctx(self, self.state)
        ctx.interface, ctx.function = fn.module, fn.name
        call = _simple_call(fn.handler) if simple else self._handler_call(fn)
        # A partial, not a closure: one Python frame less on every call.
        return functools.partial(self._handle_import, fn, ctx, call)

    def _handle_import(
        self,
        fn: TypedFunction,
        ctx: Ctx,
        call: Callable[[Ctx, Value], Value],
        in_ptr: int,
        in_len: int,
        out_pp: int,
        out_lp: int,
    ) -> int:
        """One typed import call, in packr's order (spec §3.3). ``call`` runs the handler
        on the decoded input and returns its reply as a Value.

        The two hot shapes run inline here: no interceptor (live), and an interceptor
        using the synchronous seams (recorder, replayer; see :meth:`_seamed_import`).
        Anything else takes :meth:`_general_import`, which drives the coroutine hooks.
        """
        icpt = self.interceptor
        t0 = time.perf_counter_ns() if icpt is not None else 0
        memory = self._memory
        if memory is None:
            return self._report(
                fn, None, "Decode", "Memory error: no exported memory named 'memory'", t0,
                unserved=True,
            )
        in_len &= 0xFFFF_FFFF
        if in_len > _MAX_INPUT:
            return self._report(
                fn,
                None,
                "Decode",
                f"Decoding error: Invalid encoding: Buffer too large ({in_len} bytes)",
                t0,
                unserved=True,
            )
        ptr = in_ptr & 0xFFFF_FFFF
        if ptr + in_len <= memory._len:  # in bounds of the current view: no method calls
            data = memory._view[ptr : ptr + in_len].tobytes()
        else:
            try:
                data = memory.read(in_ptr, in_len, "import input")
            except GuestMemoryError as exc:
                return self._report(fn, None, "Decode", f"Memory error: {exc}", t0, unserved=True)

        value: Value | None
        status: int | None = None
        replayed = False
        if icpt is None:
            # The hot path: no interceptor, nothing to record.
            try:
                value = decode(data)
            except AbiError as exc:
                return self._report(fn, EncodedValue(data), "Decode", f"Decoding error: {exc}", t0, exc)
            try:
                result = call(ctx, value)
            except Exception as exc:  # a handler bug must not crash the host
                return self._handler_failed(fn, None, exc, t0)
            try:
                out = encode(result)
            except AbiError as exc:
                return self._report(fn, EncodedValue(data, value), "Encode", str(exc), t0, exc)
        else:
            value = None
            if icpt.decode_inputs:
                try:
                    value = decode(data)
                except AbiError as exc:
                    return self._report(
                        fn, EncodedValue(data), "Decode", f"Decoding error: {exc}", t0, exc, unserved=True
                    )
            server = icpt.import_server
            if server is None and (
                icpt.import_observer is None
                or (self._hooks if type(icpt) is self._hooks_for else self._hooks_of(icpt))["before_import"]
            ):
                return self._general_import(icpt, fn, ctx, data, value, out_pp, out_lp, call, t0)
            # The seamed path (recorder, replayer): raw bytes through the synchronous
            # seams, no per-call EncodedValue/ImportCall objects or coroutines, in the
            # same order and with the same semantics as the general path.
            reply: Any = None if server is None else server(fn.module, fn.name, data)
            if reply is None:
                if value is None:
                    try:
                        value = decode(data)
                    except AbiError as exc:
                        return self._report(fn, EncodedValue(data), "Decode", f"Decoding error: {exc}", t0, exc)
                try:
                    result = call(ctx, value)
                except Exception as exc:  # a handler bug must not crash the host
                    return self._handler_failed(fn, EncodedValue(data, value), exc, t0)
                try:
                    out = encode(result)
                except AbiError as exc:
                    return self._report(fn, EncodedValue(data, value), "Encode", str(exc), t0, exc)
            elif type(reply) is tuple:
                out, status = reply
                replayed = True
            else:
                return self._served_reply(icpt, fn, data, value, reply, out_pp, out_lp, t0)

        # The reply. The common case (a scratch reply, everything in bounds of the current
        # view) is written here; anything else goes through _write_reply.
        if status is None:
            status = 1 if self.reply is ReplyMode.GUEST_ALLOC else 0
        n = len(out)
        cap = self.scratch_capacity
        pp, lp, size = out_pp & 0xFFFF_FFFF, out_lp & 0xFFFF_FFFF, memory._len
        if (
            status != 1
            and (cap is None or n <= cap)
            and SCRATCH_OFFSET + n <= size
            and pp + 4 <= size
            and lp + 4 <= size
        ):
            view = memory._view
            view[SCRATCH_OFFSET : SCRATCH_OFFSET + n] = out
            pack_u32_into(view, pp, SCRATCH_OFFSET)
            pack_u32_into(view, lp, n)
        else:
            try:
                status = self._write_reply(out, out_pp, out_lp, status)
            except GuestMemoryError as exc:
                return self._report(fn, EncodedValue(data, value), "MemoryWrite", str(exc), t0, exc, replayed)
        if icpt is None:
            return status
        observer = icpt.import_observer
        if observer is not None:
            observer(fn.module, fn.name, data, out, status, None, time.perf_counter_ns() - t0, replayed)
        elif (self._hooks if type(icpt) is self._hooks_for else self._hooks_of(icpt))["completes"]:
            self._complete_import(icpt, fn, EncodedValue(data, value), EncodedValue(out), status, t0, replayed)
        return status

    def _served_reply(
        self,
        icpt: CallInterceptor,
        fn: TypedFunction,
        data: bytes,
        value: Value | None,
        reply: Any,
        out_pp: int,
        out_lp: int,
        t0: int,
    ) -> int:
        """The seamed path for an ``import_server`` reply that is not ``(bytes, status)``."""
        status: int | None = None
        if isinstance(reply, ImportReply):
            if reply.error is not None:
                return self._report(fn, EncodedValue(data), reply.error[0], reply.error[1], t0, replayed=True)
            if reply.output is None:
                raise TypeError("import_server returned an ImportReply with neither output nor error")
            status = reply.status
            reply = reply.output
        if isinstance(reply, EncodedValue):
            out = reply.data
        elif isinstance(reply, Value):
            try:
                out = encode(reply)
            except AbiError as exc:
                return self._report(fn, EncodedValue(data), "Encode", str(exc), t0, exc, True)
        else:
            raise TypeError(
                f"import_server returned {type(reply).__name__}; expected None, an "
                "ImportReply or (bytes, status)"
            )
        try:
            status = self._write_reply(out, out_pp, out_lp, status)
        except GuestMemoryError as exc:
            return self._report(fn, EncodedValue(data, value), "MemoryWrite", str(exc), t0, exc, True)
        observer = icpt.import_observer
        if observer is not None:
            observer(fn.module, fn.name, data, out, status, None, time.perf_counter_ns() - t0, True)
        elif self._completes(icpt):
            self._complete_import(icpt, fn, EncodedValue(data, value), EncodedValue(out), status, t0, True)
        return status

    def _general_import(
        self,
        icpt: CallInterceptor,
        fn: TypedFunction,
        ctx: Ctx,
        data: bytes,
        value: Value | None,
        out_pp: int,
        out_lp: int,
        call: Callable[[Ctx, Value], Value],
        t0: int,
    ) -> int:
        """An interceptor with coroutine hooks: EncodedValue/ImportCall objects, driven
        through ``before_import`` and ``import_completed``/``after_import``."""
        input = EncodedValue(data, value)
        output: EncodedValue | None = None
        status: int | None = None
        replayed = False
        reply: Any = None
        server = icpt.import_server
        if server is not None:
            reply = server(fn.module, fn.name, data)
            if type(reply) is tuple:  # (exact output bytes, status): the replay hot path
                reply = ImportReply(EncodedValue(reply[0]), reply[1])
        elif self._hook(icpt, "before_import"):
            reply = self.driver.run(
                icpt.before_import(fn.module, fn.name, input), inline=icpt.inline
            )
        if reply is not None:
            replayed = True
            if isinstance(reply, ImportReply):
                if reply.error is not None:
                    return self._report(
                        fn, input, reply.error[0], reply.error[1], t0, replayed=True
                    )
                if reply.output is None:
                    raise TypeError(
                        "before_import returned an ImportReply with neither output nor error"
                    )
                status = reply.status
                reply = reply.output
            if isinstance(reply, EncodedValue):
                output = reply
            elif isinstance(reply, Value):
                try:
                    output = EncodedValue(encode(reply), reply)
                except AbiError as exc:
                    return self._report(fn, input, "Encode", str(exc), t0, exc, True)
            else:
                raise TypeError(
                    f"before_import returned {type(reply).__name__}; expected a Value, "
                    "an EncodedValue, an ImportReply or None"
                )

        if output is None:
            if value is None:
                try:
                    value = input.value
                except AbiError as exc:
                    return self._report(fn, input, "Decode", f"Decoding error: {exc}", t0, exc)
            result = self._run_handler(fn, ctx, value, call, input, t0)
            if isinstance(result, int):  # -1: the failure is already reported
                return result
            try:
                output = EncodedValue(encode(result), result)
            except AbiError as exc:
                return self._report(fn, input, "Encode", str(exc), t0, exc)

        try:
            status = self._write_reply(output.data, out_pp, out_lp, status)
        except GuestMemoryError as exc:
            return self._report(fn, input, "MemoryWrite", str(exc), t0, exc, replayed)
        observer = icpt.import_observer
        if observer is not None:
            observer(
                fn.module, fn.name, data, output.data, status, None,
                time.perf_counter_ns() - t0, replayed,
            )
        elif self._hook(icpt, "import_completed"):
            done = ImportCall(
                fn.module,
                fn.name,
                input,
                output,
                status,
                None,
                time.perf_counter_ns() - t0,
                replayed,
            )
            self.driver.run(icpt.import_completed(done), inline=icpt.inline)
        elif self._hook(icpt, "after_import"):  # what the default import_completed does
            self.driver.run(
                icpt.after_import(fn.module, fn.name, input, output), inline=icpt.inline
            )
        return status

    def _complete_import(
        self,
        icpt: CallInterceptor,
        fn: TypedFunction,
        input: EncodedValue,
        output: EncodedValue,
        status: int,
        t0: int,
        replayed: bool,
    ) -> None:
        if self._hook(icpt, "import_completed"):
            call = ImportCall(
                fn.module, fn.name, input, output, status, None, time.perf_counter_ns() - t0, replayed
            )
            self.driver.run(icpt.import_completed(call), inline=icpt.inline)
        elif self._hook(icpt, "after_import"):  # what the default import_completed does
            self.driver.run(icpt.after_import(fn.module, fn.name, input, output), inline=icpt.inline)

    def _run_handler(
        self,
        fn: TypedFunction,
        ctx: Ctx,
        value: Value,
        call: Callable[[Ctx, Value], Value],
        input: EncodedValue | None,
        t0: int,
    ) -> Value | int:
        """The handler's reply as a Value, or -1 (already reported) when it failed."""
        try:
            return call(ctx, value)
        except Exception as exc:  # a handler bug must not crash the host
            return self._handler_failed(fn, input, exc, t0)

    def _handler_failed(
        self, fn: TypedFunction, input: EncodedValue | None, exc: Exception, t0: int
    ) -> int:
        """Report a handler's failure (called inside its ``except`` block); returns -1."""
        if isinstance(exc, _ConversionFailed):
            return self._report(fn, input, "TypeConversion", str(exc), t0, exc.__cause__)
        return self._report(fn, input, "Handler", f"{type(exc).__name__}: {exc}", t0, exc)

    def _write_reply(self, data: bytes, out_pp: int, out_lp: int, status: int | None) -> int:
        if status is None:
            status = 1 if self.reply is ReplyMode.GUEST_ALLOC else 0
        memory = self._memory
        if status != 1 and memory is not None:
            # The common case (a scratch reply, everything in bounds of the current
            # view): the same three writes as below, without a method call each.
            n = len(data)
            cap = self.scratch_capacity
            pp, lp, size = out_pp & 0xFFFF_FFFF, out_lp & 0xFFFF_FFFF, memory._len
            if (
                (cap is None or n <= cap)
                and SCRATCH_OFFSET + n <= size
                and pp + 4 <= size
                and lp + 4 <= size
            ):
                view = memory._view
                view[SCRATCH_OFFSET : SCRATCH_OFFSET + n] = data
                pack_u32_into(view, pp, SCRATCH_OFFSET)
                pack_u32_into(view, lp, n)
                return status
        memory = self.memory
        if status == 1:
            ptr = self.guest_alloc(len(data)) if data else 0
            if ptr == 0:
                if not self.has_export("__pack_alloc"):
                    status = 0  # packr HEAD: no __pack_alloc -> scratch, status 0
                elif self._alloc_trap is not None:
                    raise GuestMemoryError(f"__pack_alloc({len(data)}) failed: {self._alloc_trap}")
                else:
                    raise GuestMemoryError(f"__pack_alloc({len(data)}) returned 0")
        if status != 1:
            cap = self.scratch_capacity
            if cap is not None and len(data) > cap:
                raise GuestMemoryError(f"host return {len(data)} bytes exceeds capacity {cap}")
            ptr = SCRATCH_OFFSET
        memory.write(ptr, data, "import reply")
        memory.write_u32(out_pp, ptr, "out_ptr slot")
        memory.write_u32(out_lp, len(data), "out_len slot")
        return status

    def _handler_call(self, fn: TypedFunction) -> Callable[[Ctx, Value], Value]:
        """``fn``'s handler as ``call(ctx, value) -> Value``, its conversions decided once.

        A plain function of one parameter (not async, not a Result) gets a direct
        closure; everything else goes through :meth:`_invoke_handler`.
        """
        try:
            plan = self._plans[id(fn)] = _Plan(fn)
        except Exception:  # reported by _invoke_handler on each call, as it always was
            return functools.partial(self._invoke_handler, fn)
        return _direct_call(fn, plan, self._check_reply) or functools.partial(
            self._invoke_handler, fn
        )

    def _invoke_handler(self, fn: TypedFunction, ctx: Ctx, value: Value) -> Value:
        plan = self._plans.get(id(fn))
        if plan is None:
            plan = self._plans[id(fn)] = _Plan(fn)
        convert = plan.params
        if convert is None:
            args: tuple[Any, ...] = (value,)
        elif plan.spread:
            items = value.items if type(value) is Tuple else None
            if items is None or len(items) != len(convert):
                raise _ConversionFailed(
                    f"expected a tuple of {len(convert)} parameters, got {value.infer_type()}"
                )
            args = tuple(
                item if c is None else c(item) for item, c in zip(items, convert, strict=True)
            )
        else:
            c = convert[0]
            args = (value if c is None else c(value),)

        if fn.is_async:
            ctx = AsyncCtx(self, copy.copy(self.state))
            ctx.interface = fn.module
            ctx.function = fn.name
        is_err = False
        try:
            result = fn.handler(ctx, *args)
            if fn.is_async:
                result = self.driver.run(result, inline=False)
        except HostErr as err:
            if fn.result_types is None:
                raise
            result, is_err = err.value, True

        if fn.result_types is not None:
            ok_t, err_t = fn.result_types
            declared = err_t if is_err else ok_t
            inner = result if isinstance(result, Value) else _from_python_checked(result, declared)
            return Result(ok_t, err_t, inner, is_err=is_err)
        ret = plan.returns
        if ret is not None and not isinstance(result, Value):
            return ret(result)
        return self._check_reply(result)

    @staticmethod
    def _check_reply(result: Any) -> Value:
        if isinstance(result, Value):
            return result
        if isinstance(result, EncodedValue):
            result.value  # noqa: B018 - validate: the guest must get valid CGRF
            return result  # type: ignore[return-value]  # its exact bytes are written as they are
        raise _ConversionFailed(
            f"handler returned {type(result).__name__}, not a Value; declare returns= "
            "or annotate the return type to convert plain Python values"
        )

    # -------------------------------------------------------------- raw imports

    def _raw_import(self, fn: RawFunction) -> Callable[..., Any]:
        ctx = Ctx(self, self.state)
        ctx.interface, ctx.function = fn.module, fn.name
        handler = fn.handler

        def raw(*args: Any) -> Any:
            return handler(ctx, *args)

        return raw

    # ---------------------------------------------------------------- exports

    def _export_func(self, name: str) -> wasmtime.Func:
        func = self._checked_exports.get(name)
        if func is not None:
            return func
        func = self._exports_get(name)
        if func is None:
            raise ExportNotFound(name)
        if not isinstance(func, wasmtime.Func):
            raise ExportNotFound(name, "not a function")
        ty = func.type(self.store)
        if _sig(ty) != PACKR_SIGNATURE:
            raise ExportNotFound(
                name, f"signature {_fmt_sig(_sig(ty))}, not (i32, i32, i32, i32) -> (i32)"
            )
        self._checked_exports[name] = func
        return func

    def _arm_budget(self) -> None:
        self._last_import_error = None
        self.store.set_fuel(self.fuel if self.fuel is not None else 1 << 62)
        self.store.set_epoch_deadline(self.runtime.deadline_ticks(self.timeout))

    def _invoke(
        self,
        func: wasmtime.Func,
        name: str,
        *args: Any,
        nresults: int = 1,
        kinds: tuple[str, ...] | None = None,
        result_kinds: tuple[str, ...] | None = None,
    ) -> Any:
        """Call a guest function, turning traps into typed errors."""
        try:
            return fastcall.call(self.store, func, args, nresults, kinds, result_kinds)
        except fastcall.Trapped as trapped:
            error = _trap_error(name, trapped.trap, self.fuel, self.timeout)
            if isinstance(error, GuestTimeout) and self._last_import_error is not None:
                raise error from self._last_import_error
            raise error from None
        except wasmtime.WasmtimeError as exc:
            raise GuestTrap(name, str(exc)) from None

    def call(self, name: str, *args: int | float) -> Any:
        """Call a plain (non-packr) export with wasm numbers, under the call budget.

        Returns ``None``, the single result, or a tuple of results. i32/i64 arguments
        may be given signed or unsigned; results are signed as wasm returns them.
        """
        self._enter()
        try:
            return self._call_plain(name, args)
        finally:
            self._busy.release()

    def _enter(self) -> None:
        """One call at a time: a wasmtime store is single-threaded. Re-entrant calls
        from the same thread (an export called from inside a host function) are fine."""
        if not self._busy.acquire(blocking=False):
            raise RuntimeError(
                f"instance of {self.module.name} is running a call in another thread; an "
                "instance runs one call at a time (use one instance per thread, or "
                "await call_with_value_async, which queues calls)"
            )

    def _call_plain(self, name: str, args: tuple[int | float, ...]) -> Any:
        func = self._exports_get(name)
        if not isinstance(func, wasmtime.Func):
            raise ExportNotFound(name, "not a function" if func is not None else "")
        params, results = _sig(func.type(self.store))
        if len(args) != len(params):
            raise TypeError(f"export '{name}' takes {len(params)} arguments, got {len(args)}")
        for kind in (*params, *results):
            if kind not in _NUMERIC:
                raise TypeError(
                    f"export '{name}' uses wasm type {kind}; only numbers are supported"
                )
        values = tuple(_wasm_arg(kind, arg) for kind, arg in zip(params, args, strict=True))
        self._arm_budget()
        return self._invoke(func, name, *values, kinds=params, result_kinds=results)

    def call_raw(self, name: str, input: Value | EncodedValue | bytes) -> EncodedValue:
        """Call export ``name`` with a value or exact CGRF bytes; return the exact output.

        The output is validated (decoded) as packr does; the returned
        :class:`EncodedValue` keeps both the bytes and the decoded value.
        """
        self._enter()
        try:
            return self._call_raw(name, input)
        finally:
            self._busy.release()

    def _call_raw(self, name: str, input: Value | EncodedValue | bytes) -> EncodedValue:
        if isinstance(input, (bytes, bytearray, memoryview)):
            enc = EncodedValue(bytes(input))
        elif isinstance(input, EncodedValue):
            enc = input
        else:
            enc = EncodedValue(encode(input), input)
        t0 = time.perf_counter_ns()
        icpt = self.interceptor
        if icpt is not None and self._hook(icpt, "before_export"):
            short = self.driver.run(icpt.before_export(name, enc), inline=icpt.inline)
            if short is not None:
                out = (
                    short if isinstance(short, EncodedValue) else EncodedValue(encode(short), short)
                )
                self._export_done(icpt, ExportCall(name, enc, out, 0, None, 0, True), t0)
                return out
        try:
            out, status = self._call_export(name, enc)
        except GuestRuntimeError as exc:
            if icpt is not None:
                failed_status: int | None = getattr(exc, "status", None)
                self._export_done(
                    icpt, ExportCall(name, enc, None, failed_status, exc, 0, False), t0
                )
            raise
        if icpt is not None:
            self._export_done(icpt, ExportCall(name, enc, out, status, None, 0, False), t0)
        return out

    def _hook(self, icpt: CallInterceptor, name: str) -> bool:
        """Whether ``icpt`` overrides hook ``name`` (cached per interceptor class)."""
        if type(icpt) is not self._hooks_for:
            self._hooks_of(icpt)
        return self._hooks[name]

    def _hooks_of(self, icpt: CallInterceptor) -> dict[str, bool]:
        """The hook table of ``icpt``'s class (computed when the class changes)."""
        cls = type(icpt)
        if cls is not self._hooks_for:
            self._hooks_for = cls
            self._hooks = {h: overrides(icpt, h) for h in _HOOKS}
            # (derived: whether a completed import is shown to the interceptor at all)
            self._hooks["completes"] = self._hooks["import_completed"] or self._hooks["after_import"]
        return self._hooks

    def _completes(self, icpt: CallInterceptor) -> bool:
        """Whether ``icpt`` wants completed imports (``import_completed``/``after_import``)."""
        return self._hook(icpt, "completes")

    def _export_done(self, icpt: CallInterceptor, call: ExportCall, t0: int) -> None:
        call.duration_ns = time.perf_counter_ns() - t0
        if self._hook(icpt, "export_completed"):
            self.driver.run(icpt.export_completed(call), inline=icpt.inline)
        elif call.error is None and call.output is not None and self._hook(icpt, "after_export"):
            self.driver.run(
                icpt.after_export(call.function, call.input, call.output), inline=icpt.inline
            )

    def _call_export(self, name: str, input: EncodedValue) -> tuple[EncodedValue, int]:
        func = self._export_func(name)
        memory = self.memory
        data = input.data
        self._arm_budget()
        ptr = self.guest_alloc(len(data)) if self.has_export("__pack_alloc") else 0
        dynamic = ptr != 0
        if not dynamic:
            ptr = INPUT_FALLBACK_OFFSET
        try:
            memory.write(ptr, data, "export input")
        except GuestMemoryError as exc:
            raise GuestMemoryError(f"Failed to write input for '{name}': {exc}") from None
        status = self._invoke(
            func, name, _i32(ptr), _i32(len(data)), RESULT_PTR_OFFSET, RESULT_LEN_OFFSET
        )
        if dynamic:
            self.guest_free(ptr, len(data))
        out_ptr = memory.read_u32(RESULT_PTR_OFFSET, "Failed to read result ptr")
        out_len = memory.read_u32(RESULT_LEN_OFFSET, "Failed to read result len")
        if status != 0:
            try:
                raw = memory.read(out_ptr, min(out_len, _MAX_ERROR), "Failed to read error")
            except GuestMemoryError as exc:
                raise GuestError(name, f"<unreadable error message: {exc}>", status) from None
            self.guest_free(out_ptr, out_len)
            raise GuestError(name, raw.decode("utf-8", "replace"), status)
        if out_len > _MAX_INPUT:
            raise GuestMemoryError(
                f"export '{name}' returned a {out_len}-byte result, over the "
                f"{_MAX_INPUT}-byte CGRF buffer limit"
            )
        try:
            out = memory.read(out_ptr, out_len, f"result of '{name}'")
        except GuestMemoryError as exc:
            raise GuestMemoryError(f"Memory error: {exc}") from None
        output = EncodedValue(out)
        try:
            output._value = decode(out)
        except AbiError as exc:
            raise InvalidGuestOutput(name, exc) from None
        finally:
            self.guest_free(out_ptr, out_len)
        return output, status

    def call_with_value(self, name: str, value: Value | EncodedValue) -> Value:
        """Call export ``name`` with ``value`` and return its decoded result (spec §4)."""
        return self.call_raw(name, value).value

    async def call_with_value_async(self, name: str, value: Value | EncodedValue) -> Value:
        """The async variant: the guest runs in a worker thread, interceptor and async
        host-function coroutines run on this event loop, and the guest waits for them
        (packr's back-pressure)."""
        if self._call_lock is None:
            self._call_lock = asyncio.Lock()
        async with self._call_lock:
            loop = asyncio.get_running_loop()
            self.driver.loop = loop
            try:
                out = await asyncio.to_thread(self.call_raw, name, value)
            finally:
                self.driver.loop = None
        return out.value

    # --------------------------------------------------------------- metadata

    def types(self) -> PackageMetadata:
        """Call ``__pack_types`` and decode the package metadata (spec §6.1)."""
        self._enter()
        try:
            return self._types()
        finally:
            self._busy.release()

    def _types(self) -> PackageMetadata:
        from ..abi.metadata import PackageMetadata

        func = self._exports_get("__pack_types")
        if not isinstance(func, wasmtime.Func):
            raise MetadataError("NotFound", "package does not export __pack_types")
        self._arm_budget()
        try:
            status = self._invoke(func, "__pack_types", RESULT_PTR_OFFSET, RESULT_LEN_OFFSET)
        except GuestRuntimeError:
            raise MetadataError("CallFailed", "non-zero status from __pack_types") from None
        if status != 0:
            raise MetadataError("CallFailed", "non-zero status from __pack_types")
        ptr = self.memory.read_u32(RESULT_PTR_OFFSET)
        length = self.memory.read_u32(RESULT_LEN_OFFSET)
        try:
            value = decode(self.memory.read(ptr, length, "__pack_types"))
        except (AbiError, GuestMemoryError) as exc:
            raise MetadataError("DecodeFailed", f"cannot decode __pack_types: {exc}") from None
        return PackageMetadata.from_value(value)

    def close(self) -> None:
        self.driver.close()

    def __enter__(self) -> Instance:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Plan:
    """How one typed function converts its parameters and its reply, decided once.

    Primitive types get direct converters (a kind check and ``.value`` in, the Value
    class out); everything else goes through ``abi.convert``.
    """

    __slots__ = ("params", "returns", "spread")

    def __init__(self, fn: TypedFunction) -> None:
        params = fn.params
        hints = fn.param_hints
        self.spread = fn.spread
        self.params: tuple[Callable[[Value], Any] | None, ...] | None
        if params is None:
            self.params = None
        elif isinstance(params, tuple):
            hs = hints if hints is not None else (None,) * len(params)
            self.params = tuple(_param_converter(t, h) for t, h in zip(params, hs, strict=True))
        else:
            self.params = (_param_converter(params, hints[0] if hints else None),)
        self.returns = None if fn.returns is None else _return_converter(fn.returns)


def _prim_hint(hint: Any) -> bool:
    """A hint that reads a primitive exactly as its ValueType does (``s64``, ``str``)."""
    if hint is None or hint is str or hint is bool:
        return True
    if typing.get_origin(hint) is Annotated:
        return any(isinstance(m, ValueType) and m.is_primitive for m in hint.__metadata__)
    return False


def _param_converter(vtype: ValueType | None, hint: Any) -> Callable[[Value], Any] | None:
    if vtype is None:
        return None  # the Value itself
    if vtype.is_primitive and _prim_hint(hint):
        cls = _PRIMITIVE_CLASSES[vtype.tag]

        def primitive(v: Value) -> Any:
            if type(v) is cls:
                return v.value  # type: ignore[attr-defined]
            raise _ConversionFailed(f"expected {vtype}, got {v.infer_type()}")

        primitive.value_class = cls  # type: ignore[attr-defined]  # (inlined by _direct_call)
        return primitive
    if hint is not None:
        return lambda v: _from_value_checked(v, hint)
    return lambda v: _to_python_checked(v, vtype)


def _return_converter(vtype: ValueType) -> Callable[[Any], Value]:
    if vtype == ValueType.UNIT:

        def unit(obj: Any) -> Value:
            return UNIT if obj is None else _from_python_checked(obj, vtype)

        return unit
    if vtype.is_primitive:
        cls = _PRIMITIVE_CLASSES[vtype.tag]
        plain = _PLAIN_TYPES[vtype.tag]

        def primitive(obj: Any) -> Value:
            if type(obj) is plain:
                try:
                    return cls(obj)  # type: ignore[call-arg]
                except (TypeError, ValueError, OverflowError):
                    pass  # let convert produce its error message
            return _from_python_checked(obj, vtype)

        primitive.value_class = cls  # type: ignore[attr-defined]  # (inlined by _direct_call)
        primitive.plain_type = plain  # type: ignore[attr-defined]
        return primitive
    return lambda obj: _from_python_checked(obj, vtype)


def _simple_call(handler: Callable[..., Any]) -> Callable[[Ctx, Value], Value]:
    """A handler taking and returning Values: its reply checked to be one."""
    check = Instance._check_reply

    def call(ctx: Ctx, value: Value) -> Value:
        result = handler(ctx, value)
        if isinstance(result, Value):
            return result
        return check(result)

    return call


def _direct_call(
    fn: TypedFunction, plan: _Plan, check: Callable[[Any], Value]
) -> Callable[[Ctx, Value], Value] | None:
    """What ``_invoke_handler`` does for ``fn``, as one closure, for the common shape:
    a plain (not async) handler of one parameter whose reply is not a Result. A
    primitive parameter and reply are converted inline (the converters' fast paths)."""
    if fn.is_async or fn.result_types is not None or plan.spread or plan.params is None:
        return None
    if len(plan.params) != 1 or plan.params[0] is None:
        return None
    handler, convert, ret = fn.handler, plan.params[0], plan.returns
    if ret is None:

        def call_checked(ctx: Ctx, value: Value) -> Value:
            return check(handler(ctx, convert(value)))

        return call_checked
    in_cls: type | None = getattr(convert, "value_class", None)
    out_cls: type | None = getattr(ret, "value_class", None)
    plain: type | None = getattr(ret, "plain_type", None)
    if in_cls is None or out_cls is None or plain is None:

        def call(ctx: Ctx, value: Value) -> Value:
            result = handler(ctx, convert(value))
            if isinstance(result, Value):
                return result
            return ret(result)

        return call

    def call_primitive(ctx: Ctx, value: Value) -> Value:
        result = handler(ctx, value.value if type(value) is in_cls else convert(value))  # type: ignore[attr-defined]
        if isinstance(result, Value):
            return result
        if type(result) is plain:
            try:
                return out_cls(result)  # type: ignore[no-any-return]
            except (TypeError, ValueError, OverflowError):
                pass
        return ret(result)

    return call_primitive


_PRIMITIVE_CLASSES: dict[int, type[Value]] = {
    cls.KIND: cls
    for cls in (Bool, U8, U16, U32, U64, S8, S16, S32, S64, F32, F64, Char, String, Flags)
}
_PLAIN_TYPES: dict[int, type] = {
    **{k: int for k in _PRIMITIVE_CLASSES},
    Kind.BOOL: bool,
    Kind.F32: float,
    Kind.F64: float,
    Kind.CHAR: str,
    Kind.STRING: str,
}

_HOOKS = (
    "before_import",
    "after_import",
    "before_export",
    "after_export",
    "import_completed",
    "export_completed",
)
_NUMERIC = frozenset({"i32", "i64", "f32", "f64"})


def _wasm_arg(kind: str, value: int | float) -> int | float:
    if kind == "i32":
        return _i32(int(value))
    if kind == "i64":
        return ((int(value) + 2**63) % 2**64) - 2**63
    return float(value)


def _trap_error(
    name: str, trap: wasmtime.Trap, fuel: int | None, timeout: float | None
) -> GuestRuntimeError:
    code = trap.trap_code
    if code == wasmtime.TrapCode.OUT_OF_FUEL:
        return GuestTimeout(name, f"fuel budget of {fuel} instructions")
    if code == wasmtime.TrapCode.INTERRUPT:
        return GuestTimeout(name, f"wall-clock timeout of {timeout}s")
    return GuestTrap(name, _trap_summary(trap.message))


def _fmt_sig(sig: tuple[tuple[str, ...], tuple[str, ...]]) -> str:
    return f"({', '.join(sig[0])}) -> ({', '.join(sig[1])})"


def _trap_summary(message: str) -> str:
    """wasmtime's trap text: keep the cause and the backtrace, drop the boilerplate."""
    text = message.strip()
    if "Caused by:" in text:
        head, _, cause = text.partition("Caused by:")
        return f"{cause.strip()}\n{head.strip()}"
    return text


def _to_python_checked(value: Value, vtype: ValueType) -> Any:
    got = value.infer_type()
    if got != vtype:
        raise _ConversionFailed(f"expected {vtype}, got {got}")
    try:
        return to_python(value)
    except PackrReplayError as exc:
        raise _ConversionFailed(str(exc)) from exc


def _from_value_checked(value: Value, hint: Any) -> Any:
    try:
        return from_value(value, hint)
    except PackrReplayError as exc:
        raise _ConversionFailed(str(exc)) from exc


def _from_python_checked(obj: Any, vtype: ValueType) -> Value:
    try:
        return from_python(obj, vtype)
    except (PackrReplayError, TypeError, ValueError, OverflowError) as exc:
        raise _ConversionFailed(
            f"cannot convert the handler's {type(obj).__name__} to {vtype}: {exc}"
        ) from exc
