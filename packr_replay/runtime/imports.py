"""The Python side of typed import dispatch: one import call in packr's order
(spec §3.3), through the interceptor's seams, with every failure reported.

This is the import hot path. :meth:`ImportDispatch._handle_import` serves the common
shapes inline (no interceptor; the recorder's and replayer's synchronous seams) and
hands anything else to :meth:`ImportDispatch._general_import`, which drives the
coroutine hooks. Raw imports (``func_raw``) go to their host function, or to the
interceptor's raw seams (:mod:`.rawcalls`).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

import wasmtime

from ..abi import AbiError, EncodedValue, Limits, Value, decode, encode
from ..errors import GuestMemoryError, HostFunctionError
from . import native
from .handlers import ConversionFailed, handler_call, simple_call
from .host import Ctx, RawFunction, ReplyMode, TypedFunction
from .interceptor import CallInterceptor, ImportCall, ImportReply
from .memory import SCRATCH_OFFSET, GuestHeap, pack_u32_into
from .rawcalls import raw_dispatch

__all__ = ["ImportDispatch"]

_MAX_INPUT = Limits().max_buffer_size
_STAGE_DECODE, _STAGE_CALL, _STAGE_ENCODE = 0, 1, 2  # where the trampoline's call failed


class ImportDispatch(GuestHeap):
    """Serving an instance's typed and raw imports."""

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
        """Fail the import (-1 to the guest, or with ``on_host_error="trap"`` stop the
        guest there: the error is raised) and tell whoever wants to know.

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
        if self._last_import_error is None:
            self._last_import_error = error  # the first of the call: why it spins
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
        if self.on_host_error == "trap":
            # Stop the guest at the failing import instead of letting it spin: the error
            # unwinds the guest (as a trap) and comes out of the export call as itself.
            raise error
        return -1

    def _decode_failed(
        self, fn: TypedFunction, data: bytes, exc: AbiError, t0: int, unserved: bool = False
    ) -> int:
        """The input did not decode (both paths report it through here)."""
        return self._report(
            fn, EncodedValue(data), "Decode", _undecodable(fn, exc), t0, exc, unserved=unserved
        )

    def _encode_failed(
        self, fn: TypedFunction, data: bytes, value: Value | None, exc: AbiError, t0: int
    ) -> int:
        """The handler's reply did not encode (both paths report it through here)."""
        return self._report(fn, EncodedValue(data, value), "Encode", str(exc), t0, exc)

    def _typed_import(self, fn: TypedFunction) -> Callable[[int, int, int, int], int]:
        """The Python path of ``fn``: ``(in_ptr, in_len, out_pp, out_lp) -> status``."""
        ctx, call = self._import_parts(fn)
        # A partial, not a closure: one Python frame less on every call.
        return functools.partial(self._handle_import, fn, ctx, call)

    def _import_parts(self, fn: TypedFunction) -> tuple[Ctx, Callable[[Ctx, Value], Value]]:
        """``fn``'s context and its handler as ``call(ctx, value) -> Value``."""
        simple = (
            fn.params is None and fn.returns is None and fn.result_types is None and not fn.is_async
        )
        ctx = Ctx(self._whole, self.state)
        ctx.interface, ctx.function = fn.module, fn.name
        call = simple_call(fn.handler) if simple else handler_call(self._whole, fn)
        return ctx, call

    # ------------------------------------------------------------ native path

    def _define_native(self, linker: wasmtime.Linker, fn: TypedFunction) -> None:
        """Define ``fn`` with the C trampoline (see :mod:`.native`); the Python path
        (:meth:`_handle_import`) is what it hands any call it does not serve itself."""
        assert native.speedups is not None and self._native is not None
        ctx, call = self._import_parts(fn)
        typed = native.speedups.TypedImport(
            host=self._native,
            interface=fn.module,
            function=fn.name,
            fallback=functools.partial(self._handle_import, fn, ctx, call),
            call=call,
            ctx=ctx,
            failed=functools.partial(self._native_failed, fn),
            write=functools.partial(self._native_write, fn),
        )
        self._keepalive.append(typed)
        native.define_typed(linker, typed)

    def _native_sync(self) -> None:
        """Tell the trampoline how to serve imports from now on (at every call's start).

        Natively only what the Python path would do without running Python code of the
        interceptor's per call: no interceptor (live), the recorder's observer with its
        row log (record), the replayer's server with its feed (replay). Anything else,
        including a subclass hook or a changed seam, takes the Python path.
        """
        host = self._native
        if host is None:
            return
        icpt = self.interceptor
        mode, server = native.MODE_PYTHON, None
        if icpt is None:
            mode = native.MODE_LIVE
        elif (
            icpt.native_feed is not None
            and icpt.import_server is not None
            and icpt.import_observer is None
            and not icpt.decode_inputs
            and not self._completes(icpt)
        ):
            mode, server = native.MODE_REPLAY, icpt.native_feed
        elif (
            icpt.native_log is not None
            and icpt.import_server is None
            and icpt.import_observer is not None
            and not self._hook(icpt, "before_import")
        ):
            mode, server = native.MODE_RECORD, icpt.native_log
        host.configure(
            mode, server, self.reply is ReplyMode.GUEST_ALLOC, self.scratch_capacity
        )

    def _native_failed(
        self, fn: TypedFunction, stage: int, data: bytes, value: Value | None,
        exc: BaseException, t0: int,
    ) -> int:
        """A failure after the trampoline read the input, reported as
        :meth:`_handle_import` reports it (an exception it would not catch is raised)."""
        icpt = self.interceptor
        if stage == _STAGE_CALL:
            if not isinstance(exc, Exception):
                raise exc
            return self._handler_failed(
                fn, None if icpt is None else EncodedValue(data, value), exc, t0
            )
        if not isinstance(exc, AbiError):
            raise exc
        if stage == _STAGE_DECODE:
            unserved = icpt is not None and icpt.decode_inputs
            return self._decode_failed(fn, data, exc, t0, unserved)
        return self._encode_failed(fn, data, value, exc, t0)

    def _native_write(
        self, fn: TypedFunction, data: bytes, value: Value, out: bytes, out_pp: int,
        out_lp: int, t0: int,
    ) -> int:
        """A reply the trampoline could not put in the scratch buffer, written (or its
        failure reported) as :meth:`_handle_import` does."""
        try:
            return self._write_reply(out, out_pp, out_lp, None)
        except GuestMemoryError as exc:
            return self._report(
                fn, EncodedValue(data, value), "MemoryWrite", str(exc), t0, exc, False
            )

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
                fn, None, *_unreadable(fn, "no exported memory named 'memory'"), t0, unserved=True
            )
        in_len &= 0xFFFF_FFFF
        if in_len > _MAX_INPUT:
            return self._report(
                fn,
                None,
                "Decode",
                _undecodable(fn, f"Invalid encoding: Buffer too large ({in_len} bytes)"),
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
                return self._report(fn, None, *_unreadable(fn, str(exc)), t0, unserved=True)

        value: Value | None
        status: int | None = None
        replayed = False
        if icpt is None:
            # The hot path: no interceptor, nothing to record.
            try:
                value = decode(data)
            except AbiError as exc:
                return self._decode_failed(fn, data, exc, t0)
            try:
                result = call(ctx, value)
            except Exception as exc:  # a handler bug must not crash the host
                return self._handler_failed(fn, None, exc, t0)
            try:
                out = encode(result)
            except AbiError as exc:
                return self._encode_failed(fn, data, value, exc, t0)
        else:
            value = None
            if icpt.decode_inputs:
                try:
                    value = decode(data)
                except AbiError as exc:
                    return self._decode_failed(fn, data, exc, t0, True)
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
                        return self._decode_failed(fn, data, exc, t0)
                try:
                    result = call(ctx, value)
                except Exception as exc:  # a handler bug must not crash the host
                    return self._handler_failed(fn, EncodedValue(data, value), exc, t0)
                try:
                    out = encode(result)
                except AbiError as exc:
                    return self._encode_failed(fn, data, value, exc, t0)
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
                    return self._report(fn, input, "Decode", _undecodable(fn, exc), t0, exc)
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
        if isinstance(exc, ConversionFailed):
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

    # -------------------------------------------------------------- raw imports

    def _raw_import(self, fn: RawFunction) -> Callable[..., Any]:
        """``fn`` for wasmtime: served or recorded by the instance's own interceptor
        (the one given to ``instantiate``) when it takes raw calls (see :mod:`.rawcalls`)."""
        return raw_dispatch(self._whole, fn, lambda: self._export_interceptor)


def _unreadable(fn: TypedFunction, what: str) -> tuple[str, str]:
    """How packr reports an input it cannot read: ``Decode("Memory error: ...")`` on the
    sync path, ``MemoryRead(...)`` on the async one (``func_async``)."""
    if fn.is_async:
        return "MemoryRead", what
    return "Decode", f"Memory error: {what}"


def _undecodable(fn: TypedFunction, error: object) -> str:
    """packr's message for input that does not decode: the sync path goes through its
    linker's ``Decoding error: ...``; the async path reports the codec's text as is."""
    return str(error) if fn.is_async else f"Decoding error: {error}"
