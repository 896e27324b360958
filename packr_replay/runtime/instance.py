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

from ..errors import GuestRuntimeError, LinkError
from . import fastcall
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
)
from .imports import ImportDispatch
from .interceptor import CallInterceptor, CoroutineDriver
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
        self.error_handler = on_error or builder.error_handler
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
        self._keepalive = []
        self.memory_limit = memory_limit
        self.store = wasmtime.Store(self.runtime.engine)
        if memory_limit is not None:
            self.store.set_limits(memory_size=memory_limit)
        self.store.set_fuel(fuel if fuel is not None else 1 << 62)
        self.store.set_epoch_deadline(1 << 62)
        self._instance = None
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
            have = sig(ty)
            if fn is None and module == "pack:alloc" and name in ("alloc", "dealloc"):
                self._define_default_alloc(linker, name, ty, missing)
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
                fastcall.define_func(
                    linker, module, name, *PACKR_SIGNATURE, self._typed_import(fn), self._keepalive
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
            raise trap_error("<instantiation>", trap, self.fuel, self.timeout) from None
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

    def close(self) -> None:
        self.driver.close()

    def __enter__(self) -> Instance:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
