"""``Instance``: a guest bound to host functions, with packr's calling conventions.

An instance is assembled from one part per concern: guest memory and its heap
(:mod:`.memory`), typed and raw import dispatch (:mod:`.imports`, the hot path),
export calls and their budget (:mod:`.exports`), over the state they share
(:mod:`.base`). This module creates the store, links the imports and instantiates.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import wasmtime

from .. import _interrupts
from ..abi import Value, decode, encode
from ..errors import GuestRuntimeError, HostFunctionError, LinkError
from . import fastcall, interrupt, native
from .base import fmt_sig, sig, trap_error
from .exports import ExportCalls
from .host import (
    PACKR_SIGNATURE,
    Ctx,
    ErrorHandler,
    HostLinkerBuilder,
    HostSpec,
    ReplyMode,
    TypedFunction,
    log_host_error,
)
from .imports import ImportDispatch
from .interceptor import CallInterceptor, CoroutineDriver, RoutedInterceptor
from .limits import store_limits
from .memory import GuestMemory

if TYPE_CHECKING:
    from .engine import Module

__all__ = ["Instance"]


class Instance(ImportDispatch, ExportCalls):
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
        deadline: float | None = None,
        on_host_error: str = "status",
    ) -> None:
        self.module = module
        self.on_host_error = on_host_error
        self.runtime = module.runtime
        self.state = state
        self.reply = reply
        self.fuel = fuel
        self.timeout = timeout
        self.scratch_capacity = scratch_capacity
        builder = HostLinkerBuilder()
        if interceptor is not None:
            builder.set_interceptor(interceptor)  # as packr: before the host configures
        builder.apply(host)
        self.builder = builder
        typed = [fn for fn in builder.functions.values() if isinstance(fn, TypedFunction)]
        # packr's scope: each typed function keeps the interceptor and error handler in
        # force when its interface() was called; export calls see only the instance's.
        # An interceptor or handler given here serves every function (a recorder must
        # see every call).
        self._export_interceptor = interceptor
        self._import_interceptors = {
            (fn.module, fn.name): interceptor if interceptor is not None else fn.interceptor
            for fn in typed
        }
        self._route_interceptors()
        handlers = {
            (fn.module, fn.name): on_error or fn.error_handler or log_host_error for fn in typed
        }
        self.error_handler = _error_router(handlers, on_error or log_host_error)
        self.driver = CoroutineDriver()
        self.ctx = Ctx(self, state)
        self._memory = None
        self._exports = {}
        self._checked_exports = {}
        self._plans = {}
        self._busy = threading.RLock()
        self._hooks_for = None
        self._hooks = {}
        self._heap_next = None
        self._alloc_trap = None
        self._last_import_error = None
        self._call_lock = None
        self._declared = None
        self._keepalive = []
        self._native = native.new_host() if self.runtime.native else None
        self.memory_limit = memory_limit
        self.deadline = deadline
        self._deadline_bound = False
        self.store = wasmtime.Store(self.runtime.engine)
        store_limits(memory_limit, module.memory_count, module.table_count).apply(self.store)
        self.store.set_fuel(fuel if fuel is not None else 1 << 62)
        self._call_deadline = None
        # Wall-clock deadlines and SIGINT/SIGTERM stop the guest through this callback.
        self.deadline_hook = None
        self._keepalive.append(interrupt.watch_store(self.store, self._current_deadline))
        self.store.set_epoch_deadline(1)
        self._instance = None
        with _interrupts.deferred():  # a start function is a guest call too
            self._refuse_if_interrupted()
            self._link_and_instantiate(builder)

    # --------------------------------------------------------- interception

    def set_interceptor(self, interceptor: CallInterceptor | None) -> None:
        """Intercept this instance's export calls from now on (packr's
        ``AsyncInstance::set_interceptor``). Typed imports keep the interceptor they
        were instantiated with: packr fixes those when the host is linked."""
        self._export_interceptor = interceptor
        self._route_interceptors()

    def _route_interceptors(self) -> None:
        """The one interceptor the runtime consults: the common one when every function
        and the exports share it, else a router."""
        exports = self._export_interceptor
        if all(i is exports for i in self._import_interceptors.values()):
            self.interceptor = exports
        else:
            self.interceptor = RoutedInterceptor(exports, dict(self._import_interceptors))

    # ---------------------------------------------------------- guest memory

    def read_memory(self, offset: int, length: int) -> bytes:
        """``length`` bytes of guest memory at ``offset`` (raises GuestMemoryError)."""
        return self.memory.read(offset, length)

    def write_memory(self, offset: int, data: bytes) -> None:
        self.memory.write(offset, data)

    def memory_size(self) -> int:
        """The guest memory's current size in bytes."""
        return self.memory.size

    def read_value(self, offset: int, length: int) -> Value:
        """Decode the CGRF value at ``[offset, offset+length)`` (packr's
        ``Instance::read_value``; AbiError for bad bytes)."""
        return decode(self.memory.read(offset, length))

    def write_value(self, offset: int, value: Value) -> int:
        """Encode ``value`` at ``offset`` and return its length (packr's
        ``Instance::write_value``)."""
        data = encode(value)
        self.memory.write(offset, data)
        return len(data)

    def validate_interface(self, interface: Any, *, legacy: bool = False) -> None:
        """Raise :class:`InterfaceError` unless this instance exports ``interface``'s
        functions (see :func:`validate_instance_implements_interface`)."""
        from .interface_check import validate_instance_implements_interface

        validate_instance_implements_interface(self, interface, legacy=legacy)

    # ------------------------------------------------------------- linking

    def _link_and_instantiate(self, builder: HostLinkerBuilder) -> None:
        linker = wasmtime.Linker(self.runtime.engine)
        missing: list[tuple[str, str, str]] = []
        host_memory: wasmtime.Memory | None = None
        described = self.module.imports  # in the same order, from the module's bytes
        for imp, info in zip(self.module.compiled.imports, described, strict=True):
            module, name, ty = imp.module, imp.name or "", imp.type
            fn = builder.functions.get((module, name))
            if isinstance(ty, wasmtime.MemoryType):
                if (module, name) == ("env", "memory"):
                    host_memory = self._host_memory(ty, info)
                    linker.define(self.store, module, name, host_memory)
                else:
                    missing.append((module, name, f"memory (min {ty.limits.min} pages)"))
                continue
            if not isinstance(ty, wasmtime.FuncType):
                missing.append((module, name, f"unsupported import kind {type(ty).__name__}"))
                continue
            have = sig(info)
            if fn is None and module == "pack:alloc" and name in ("alloc", "dealloc"):
                self._define_default_alloc(linker, name, have, missing)
                continue
            if fn is None:
                missing.append((module, name, fmt_sig(have)))
                continue
            if isinstance(fn, TypedFunction):
                if have != PACKR_SIGNATURE:
                    missing.append(
                        (
                            module,
                            name,
                            f"{fmt_sig(have)} (host provides a typed packr function "
                            "(i32, i32, i32, i32) -> (i32))",
                        )
                    )
                    continue
                if self._native is not None:
                    self._define_native(linker, fn)
                else:
                    fastcall.define_func(
                        linker, module, name, *PACKR_SIGNATURE, self._typed_import(fn),
                        self._keepalive,
                    )
            else:
                if have != (fn.params, fn.results):
                    missing.append(
                        (module, name, f"{fmt_sig(have)} (host provides {fn.signature})")
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
            stop = self._stop_error("<instantiation>")
            if stop is not None:
                raise stop from None
            raise trap_error(
                "<instantiation>", trap, self.fuel, self.timeout, self._deadline_bound
            ) from None
        except wasmtime.WasmtimeError as exc:
            stop = self._stop_error("<instantiation>")
            if stop is not None:
                raise stop from None
            raise GuestRuntimeError(
                f"cannot instantiate {self.module.name}: {self._why(exc)}"
            ) from None
        self._instance = instance
        exports = instance.exports(self.store)
        exported_memory = exports.get("memory")
        if isinstance(exported_memory, wasmtime.Memory):
            self._memory = GuestMemory(self.store, exported_memory)
        elif host_memory is not None:
            self._memory = GuestMemory(self.store, host_memory)
        if self._native is not None and self._memory is not None:
            self._native.set_memory(bytes(self._memory.memory._memory))
        ctors = exports.get("__wasm_call_ctors")
        if isinstance(ctors, wasmtime.Func):
            self._arm_budget()
            self._invoke(ctors, "__wasm_call_ctors", nresults=0)

    def _host_memory(self, ty: wasmtime.MemoryType, info: Any) -> wasmtime.Memory:
        """The ``env.memory`` a guest imports, made under the store's limits."""
        try:
            return wasmtime.Memory(self.store, ty)
        except wasmtime.WasmtimeError as exc:
            raise GuestRuntimeError(
                f"cannot instantiate {self.module.name}: its imported env.memory "
                f"({info.signature}) {self._why(exc)}"
            ) from None

    def _why(self, exc: wasmtime.WasmtimeError) -> str:
        """wasmtime's reason, and the memory limit when that is what refused it."""
        text = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        if self.memory_limit is not None and ("limit" in text or "exceed" in text):
            return f"needs more than its memory limit of {self.memory_limit} bytes ({text})"
        return text

    def close(self) -> None:
        self.driver.close()

    def __enter__(self) -> Instance:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _error_router(
    handlers: dict[tuple[str, str], ErrorHandler], default: ErrorHandler
) -> ErrorHandler:
    """One error handler for the instance: the common one, or a router by function."""
    distinct = {id(h): h for h in handlers.values()}
    if len(distinct) <= 1:
        return next(iter(distinct.values()), default)

    def route(error: HostFunctionError) -> None:
        handlers.get((error.interface, error.function), default)(error)

    return route
