"""Calling a guest's exports (spec §4) under the per-call budget.

Every export call arms the budget first (fuel, and an epoch deadline when a wall-clock
timeout is set), and every trap comes back as a typed error; the interceptor sees each
packr export call with its exact bytes.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import wasmtime

from .. import _interrupts
from ..abi import AbiError, EncodedValue, Limits, Value, decode, encode
from ..errors import (
    ExportNotFound,
    GuestError,
    GuestMemoryError,
    GuestRuntimeError,
    GuestTrap,
    InvalidGuestOutput,
    MetadataError,
)
from . import fastcall, interrupt
from .base import fmt_sig, i32, sig, trap_error
from .host import PACKR_SIGNATURE
from .interceptor import CallInterceptor, ExportCall
from .memory import INPUT_FALLBACK_OFFSET, RESULT_LEN_OFFSET, RESULT_PTR_OFFSET, GuestHeap

if TYPE_CHECKING:
    from ..abi.metadata import PackageMetadata

__all__ = ["ExportCalls"]

_MAX_OUTPUT = Limits().max_buffer_size
_MAX_ERROR = 1 << 20  # an error string longer than this is cut (a hostile length)
_NUMERIC = frozenset({"i32", "i64", "f32", "f64"})


class ExportCalls(GuestHeap):
    """Calling an instance's exports: packr exports, plain exports, ``__pack_types``."""

    def _export_func(self, name: str) -> wasmtime.Func:
        func = self._checked_exports.get(name)
        if func is not None:
            return func
        func = self._exports_get(name)
        if func is None:
            raise ExportNotFound(name)
        if not isinstance(func, wasmtime.Func):
            raise ExportNotFound(name, "not a function")
        have = self._signature(name)
        if have != PACKR_SIGNATURE:
            raise ExportNotFound(
                name, f"signature {fmt_sig(have)}, not (i32, i32, i32, i32) -> (i32)"
            )
        self._checked_exports[name] = func
        return func

    def _signature(self, name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """An exported function's types, from the module's bytes (see :func:`.base.sig`)."""
        info = self.module.export(name)
        if info is None or info.kind != "func":
            raise ExportNotFound(name, "not a function")
        return sig(info)

    def _arm_budget(self) -> None:
        """A call starts: a fresh budget (fuel, and a wall-clock deadline: its own timeout,
        or what is left before the instance's ``deadline`` if that comes first), and
        imports served as the interceptor is now."""
        self._last_import_error = None
        interrupt.stopped()  # (nothing stale)
        self._native_sync()
        self.store.set_fuel(self.fuel if self.fuel is not None else 1 << 62)
        timeout = self.timeout
        self._deadline_bound = False
        now = time.monotonic()
        if self.deadline is not None:
            left = max(self.deadline - now, 0.0)
            if timeout is None or left < timeout:
                timeout, self._deadline_bound = left, True
        self._call_deadline = None if timeout is None else now + timeout
        if timeout is not None or self.deadline_hook is not None:
            self.runtime.start_ticker()
        # One tick ahead: the store's callback decides at each tick (the deadline, an
        # interrupt); with no ticker running and no signal, ticks never come.
        self.store.set_epoch_deadline(1)

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
            stop = self._stop_error(name)
            if stop is not None:
                raise stop from stop.__cause__
            error = self._with_host_error(
                trap_error(name, trapped.trap, self.fuel, self.timeout, self._deadline_bound)
            )
            raise error from error.__cause__
        except wasmtime.WasmtimeError as exc:
            stop = self._stop_error(name)
            if stop is not None:  # the epoch callback stopped it (see .interrupt)
                raise stop from stop.__cause__
            raise GuestTrap(name, str(exc)) from None

    def call(self, name: str, *args: int | float) -> Any:
        """Call a plain (non-packr) export with wasm numbers, under the call budget.

        Returns ``None``, the single result, or a tuple of results. i32/i64 arguments
        may be given signed or unsigned; results are signed as wasm returns them.
        """
        with _interrupts.deferred():  # a signal is raised once the call is over
            self._enter()
            try:
                return self._call_plain(name, args)
            finally:
                self._busy.release()

    def _call_plain(self, name: str, args: tuple[int | float, ...]) -> Any:
        func = self._exports_get(name)
        if not isinstance(func, wasmtime.Func):
            raise ExportNotFound(name, "not a function" if func is not None else "")
        params, results = self._signature(name)
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
        with _interrupts.deferred():  # a signal is raised once the call is over
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
            func, name, i32(ptr), i32(len(data)), RESULT_PTR_OFFSET, RESULT_LEN_OFFSET
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
        if out_len > _MAX_OUTPUT:
            raise GuestMemoryError(
                f"export '{name}' returned a {out_len}-byte result, over the "
                f"{_MAX_OUTPUT}-byte CGRF buffer limit"
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

    def call_text(self, name: str, text: str) -> Value:
        """Call export ``name`` with value text read the way the guest declares the
        export's parameters in its ``__pack_types`` (``abi.typedtext``): case names get
        their tags, numbers their declared width, records their fields checked, and
        several parameters are written as a tuple. Bad text raises
        :class:`~packr_replay.errors.TypedParseError` naming the parameter and path. A
        guest without metadata, or an export it does not declare, reads the text as
        plain packr text (``parse_value``)."""
        from ..abi.typedtext import export_signature, parse_arguments

        if self._declared is None:
            self._declared = (self._declared_types(),)
        types = self._declared[0]
        sig = None if types is None else export_signature(types, name)
        if sig is None:
            from ..abi import parse_value

            return self.call_with_value(name, parse_value(text))
        return self.call_with_value(name, parse_arguments(text, sig, types))

    def _declared_types(self) -> PackageMetadata | None:
        """The metadata, read statically (no guest code runs) or else from the call."""
        try:
            return self.module.types()
        except MetadataError:
            pass
        try:
            return self.types()
        except MetadataError:
            return None

    async def call_with_value_async(self, name: str, value: Value | EncodedValue) -> Value:
        """The async variant: the guest runs in a worker thread, interceptor and async
        host-function coroutines run on this event loop, and the guest waits for them
        (packr's back-pressure)."""
        out: EncodedValue = await self._on_worker(self.call_raw, name, value)
        return out.value

    async def call_async(self, name: str, *args: int | float) -> Any:
        """:meth:`call` (a plain export, wasm numbers in and out), awaited as
        :meth:`call_with_value_async` is (packr's ``call_i32_i32_to_i32_async``)."""
        return await self._on_worker(self.call, name, *args)

    async def _on_worker(self, fn: Any, *args: Any) -> Any:
        """Run a call in a worker thread, one at a time, with this loop serving its
        coroutines."""
        if self._call_lock is None:
            self._call_lock = asyncio.Lock()
        async with self._call_lock:
            self.driver.loop = asyncio.get_running_loop()
            try:
                return await asyncio.to_thread(fn, *args)
            finally:
                self.driver.loop = None

    # --------------------------------------------------------------- metadata

    def types(self) -> PackageMetadata:
        """Call ``__pack_types`` and decode the package metadata (spec §6.1)."""
        with _interrupts.deferred():  # a signal is raised once the call is over
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


def _wasm_arg(kind: str, value: int | float) -> int | float:
    if kind == "i32":
        return i32(int(value))
    if kind == "i64":
        return ((int(value) + 2**63) % 2**64) - 2**63
    return float(value)

