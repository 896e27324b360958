"""CallInterceptor: packr's ``interceptor_backpressure`` behaviours and the hook
semantics of spec §5 (short-circuits, failures, exceptions, exact bytes)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest

from packr_replay.abi import (
    S64,
    AbiError,
    EncodedValue,
    Option,
    String,
    Tuple,
    Value,
    ValueType,
    encode,
)
from packr_replay.errors import ExportNotFound, GuestError, GuestTrap, HostFunctionError
from packr_replay.runtime import (
    AsyncCtx,
    CallInterceptor,
    Ctx,
    ExportCall,
    HostLinkerBuilder,
    ImportCall,
    ImportReply,
    Module,
)

from . import guests

Load = Callable[[str], Module]


def ident_host(b: HostLinkerBuilder) -> None:
    b.interface("test").func_typed("ident", lambda ctx, v: v)


async def _async_ident(ctx: AsyncCtx, v: Value) -> Value:
    return v


def async_ident_host(b: HostLinkerBuilder) -> None:
    b.interface("test").func_async("ident", _async_ident)


def _v(enc: EncodedValue) -> Any:
    """The value, or the raw bytes when they are not CGRF."""
    try:
        return enc.value
    except AbiError:
        return enc.data


class Log(CallInterceptor):
    """Records every hook call."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []
        self.imports: list[ImportCall] = []
        self.exports: list[ExportCall] = []

    async def before_import(self, interface: str, function: str, input: EncodedValue) -> Any:
        self.events.append(("before_import", interface, function, input.value))
        return None

    async def after_import(
        self, interface: str, function: str, input: EncodedValue, output: EncodedValue
    ) -> None:
        self.events.append(("after_import", interface, function, input.value, output.value))

    async def before_export(self, function: str, input: EncodedValue) -> Any:
        self.events.append(("before_export", function, _v(input)))
        return None

    async def after_export(self, function: str, input: EncodedValue, output: EncodedValue) -> None:
        self.events.append(("after_export", function, input.value, output.value))

    async def import_completed(self, call: ImportCall) -> None:
        self.imports.append(call)
        await super().import_completed(call)

    async def export_completed(self, call: ExportCall) -> None:
        self.exports.append(call)
        await super().export_completed(call)


class TestBackpressure:
    """after_import is fully awaited before the guest continues (spec §5)."""

    class Blocking(CallInterceptor):
        def __init__(self, queue: asyncio.Queue[Value]) -> None:
            self.queue = queue
            self.started = 0
            self.finished = 0

        async def after_import(
            self, interface: str, function: str, input: EncodedValue, output: EncodedValue
        ) -> None:
            self.started += 1
            await self.queue.put(output.value)
            self.finished += 1

    @pytest.mark.asyncio
    @pytest.mark.parametrize("host", [async_ident_host, ident_host], ids=["async", "sync"])
    async def test_export_blocks_until_queue_drained(
        self, load: Load, host: Callable[[HostLinkerBuilder], None]
    ) -> None:
        queue: asyncio.Queue[Value] = asyncio.Queue(maxsize=1)
        icpt = self.Blocking(queue)
        inst = load(guests.twice_guest("test", "ident")).instantiate(host, interceptor=icpt)
        task = asyncio.create_task(inst.call_with_value_async("twice", S64(7)))
        for _ in range(400):
            await asyncio.sleep(0.005)
            if icpt.started == 2:
                break
        await asyncio.sleep(0.02)  # give a wrongly non-blocking guest time to finish
        assert (icpt.started, icpt.finished) == (2, 1)
        assert not task.done()
        assert await queue.get() == S64(7)
        assert await asyncio.wait_for(task, 5) == S64(7)
        assert (icpt.started, icpt.finished) == (2, 2)
        assert await queue.get() == S64(7)

    @pytest.mark.asyncio
    async def test_hooks_run_on_callers_loop(self, load: Load) -> None:
        loops: list[asyncio.AbstractEventLoop] = []

        class Where(CallInterceptor):
            async def after_import(self, *args: Any) -> None:
                loops.append(asyncio.get_running_loop())

            async def after_export(self, *args: Any) -> None:
                loops.append(asyncio.get_running_loop())

        inst = load(guests.twice_guest("test", "ident")).instantiate(
            ident_host, interceptor=Where()
        )
        await inst.call_with_value_async("twice", S64(1))
        assert loops == [asyncio.get_running_loop()] * 3

    @pytest.mark.asyncio
    async def test_inline_interceptor_stays_on_guest_thread(self, load: Load) -> None:
        threads: list[threading.Thread] = []

        class Inline(CallInterceptor):
            inline = True

            async def after_import(self, *args: Any) -> None:
                threads.append(threading.current_thread())

        inst = load(guests.twice_guest("test", "ident")).instantiate(
            ident_host, interceptor=Inline()
        )
        await inst.call_with_value_async("twice", S64(1))
        assert len(threads) == 2
        assert threads[0] is not threading.current_thread()


class TestInlineInterceptors:
    """inline interceptors are driven without an event loop."""

    class Yielding(CallInterceptor):
        inline = True

        def __init__(self) -> None:
            self.seen: list[Value] = []

        async def after_import(
            self, interface: str, function: str, input: EncodedValue, output: EncodedValue
        ) -> None:
            await asyncio.sleep(0)  # a bare yield: finished on a loop
            self.seen.append(output.value)

    def test_yielding_hook_sync(self, load: Load) -> None:
        icpt = self.Yielding()
        inst = load(guests.twice_guest("test", "ident")).instantiate(ident_host, interceptor=icpt)
        assert inst.call_with_value("twice", S64(4)) == S64(4)
        assert icpt.seen == [S64(4), S64(4)]

    @pytest.mark.asyncio
    async def test_yielding_hook_async(self, load: Load) -> None:
        icpt = self.Yielding()
        inst = load(guests.twice_guest("test", "ident")).instantiate(ident_host, interceptor=icpt)
        assert await inst.call_with_value_async("twice", S64(4)) == S64(4)
        assert icpt.seen == [S64(4), S64(4)]

    def test_loop_needing_hook_fails_clearly(self, load: Load) -> None:
        class NeedsLoop(CallInterceptor):
            inline = True

            async def after_import(self, *args: Any) -> None:
                asyncio.get_running_loop()

        inst = load(guests.twice_guest("test", "ident")).instantiate(
            ident_host, interceptor=NeedsLoop()
        )
        with pytest.raises(RuntimeError, match="no running event loop"):
            inst.call_with_value("twice", S64(4))

    def test_non_inline_hooks_see_a_running_loop(self, load: Load) -> None:
        loops: list[asyncio.AbstractEventLoop] = []

        class Uses(CallInterceptor):
            async def after_import(self, *args: Any) -> None:
                loops.append(asyncio.get_running_loop())
                await asyncio.sleep(0.001)  # a real timer on that loop

        inst = load(guests.twice_guest("test", "ident")).instantiate(ident_host, interceptor=Uses())
        assert inst.call_with_value("twice", S64(4)) == S64(4)
        assert len(loops) == 2
        assert loops[0] is loops[1]  # this thread's private loop


class TestImportHooks:
    """before_import / after_import / import_completed around typed imports."""

    def test_order_and_values(self, load: Load) -> None:
        log = Log()
        inst = load(guests.twice_guest("test", "ident")).instantiate(ident_host, interceptor=log)
        assert inst.call_with_value("twice", S64(3)) == S64(3)
        assert log.events == [
            ("before_export", "twice", S64(3)),
            ("before_import", "test", "ident", S64(3)),
            ("after_import", "test", "ident", S64(3), S64(3)),
            ("before_import", "test", "ident", S64(3)),
            ("after_import", "test", "ident", S64(3), S64(3)),
            ("after_export", "twice", S64(3), S64(3)),
        ]
        call = log.imports[0]
        assert (call.status, call.error, call.replayed) == (0, None, False)
        assert call.input is not None
        assert call.input.data == encode(S64(3))
        assert call.output is not None
        assert call.output.data == encode(S64(3))
        assert call.duration_ns > 0

    def test_exact_input_bytes_reach_interceptor(self, load: Load) -> None:
        # Option none with a non-canonical presence byte 2: valid, decodes as None,
        # but must be seen byte for byte.
        canonical = encode(Option(ValueType.U8))
        odd = canonical[:-1] + b"\x02"
        seen: list[bytes] = []

        class Bytes(CallInterceptor):
            async def before_import(
                self, interface: str, function: str, input: EncodedValue
            ) -> Any:
                seen.append(input.data)
                return None

        inst = load(guests.typed_guest(("test", "ident"))).instantiate(
            ident_host, interceptor=Bytes()
        )
        inst.call_with_value("ident", odd)
        assert seen == [odd]

    def test_short_circuit_skips_handler(self, load: Load) -> None:
        handled: list[Value] = []

        class Replay(Log):
            async def before_import(
                self, interface: str, function: str, input: EncodedValue
            ) -> Any:
                await super().before_import(interface, function, input)
                return String("replayed")

        def host(b: HostLinkerBuilder) -> None:
            b.interface("test").func_typed("ident", lambda ctx, v: handled.append(v) or v)

        log = Replay()
        inst = load(guests.typed_guest(("test", "ident"))).instantiate(host, interceptor=log)
        assert inst.call_with_value("ident", S64(1)) == String("replayed")
        assert handled == []
        assert ("after_import", "test", "ident", S64(1), String("replayed")) in log.events
        assert log.imports[0].replayed

    def test_short_circuit_any_value_no_type_check(self, load: Load) -> None:
        # the handler would demand s64; a replayed reply of another type still goes through
        class Replay(CallInterceptor):
            async def before_import(self, *args: Any) -> Any:
                return Tuple(String("anything"))

        def host(b: HostLinkerBuilder) -> None:
            b.interface("test").func_typed(
                "ident", lambda ctx, n: n, params=ValueType.S64, returns=ValueType.S64
            )

        inst = load(guests.typed_guest(("test", "ident"))).instantiate(host, interceptor=Replay())
        assert inst.call_with_value("ident", String("not s64")) == Tuple(String("anything"))

    def test_short_circuit_exact_bytes(self, load: Load) -> None:
        odd = encode(Option(ValueType.U8))[:-1] + b"\x02"

        class Replay(CallInterceptor):
            async def before_import(self, *args: Any) -> Any:
                return EncodedValue(odd)

        inst = load(guests.typed_guest(("test", "ident"))).instantiate(
            ident_host, interceptor=Replay()
        )
        data = encode(S64(1))
        inst.memory.write(4096, data)
        assert inst.call("poke_ident", 4096, len(data), 8000, 9000) == 0
        assert inst.memory.read(16392, len(odd)) == odd

    def test_short_circuit_status(self, load: Load) -> None:
        class Replay(CallInterceptor):
            async def before_import(self, *args: Any) -> Any:
                return ImportReply(S64(5), status=1)

        inst = load(guests.typed_guest(("test", "ident"), alloc=True)).instantiate(
            ident_host, interceptor=Replay()
        )
        assert inst.call_with_value("ident", S64(1)) == S64(5)
        assert inst.call("last_status") == 1

    def test_short_circuit_failure(self, load: Load) -> None:
        errors: list[HostFunctionError] = []
        log = Log()

        class Replay(Log):
            async def before_import(self, *args: Any) -> Any:
                return ImportReply.failure("Decode", "recorded decode failure")

        log = Replay()
        inst = load(guests.typed_guest(("test", "ident"))).instantiate(
            ident_host, interceptor=log, on_error=errors.append
        )
        with pytest.raises(GuestError):
            inst.call_with_value("ident", S64(1))
        assert inst.call("last_status") == -1
        assert [(e.kind, e.message) for e in errors] == [("Decode", "recorded decode failure")]
        (call,) = log.imports
        assert call.status == -1
        assert call.replayed
        assert call.error is errors[0]
        assert not any(e[0] == "after_import" for e in log.events)

    def test_bad_short_circuit_type_propagates(self, load: Load) -> None:
        class Wrong(CallInterceptor):
            async def before_import(self, *args: Any) -> Any:
                return 42

        inst = load(guests.typed_guest(("test", "ident"))).instantiate(
            ident_host, interceptor=Wrong()
        )
        with pytest.raises(TypeError, match="before_import returned int"):
            inst.call_with_value("ident", S64(1))

    def test_empty_import_reply_propagates(self, load: Load) -> None:
        class Empty(CallInterceptor):
            async def before_import(self, *args: Any) -> Any:
                return ImportReply()

        inst = load(guests.typed_guest(("test", "ident"))).instantiate(
            ident_host, interceptor=Empty()
        )
        with pytest.raises(TypeError, match="neither output nor error"):
            inst.call_with_value("ident", S64(1))

    def test_import_completed_sees_failures(self, load: Load) -> None:
        log = Log()

        def host(b: HostLinkerBuilder) -> None:
            def fail(ctx: Ctx, v: Value) -> Value:
                raise ValueError("handler bug")

            b.interface("test").func_typed("ident", fail)

        inst = load(guests.typed_guest(("test", "ident"))).instantiate(host, interceptor=log)
        with pytest.raises(GuestError):
            inst.call_with_value("ident", S64(1))
        with pytest.raises(GuestError):
            inst.call_with_value("ident", b"garbage")
        assert [(c.status, c.error.kind if c.error else None) for c in log.imports] == [
            (-1, "Handler"),
            (-1, "Decode"),
        ]
        assert log.imports[1].input is not None
        assert log.imports[1].input.data == b"garbage"
        # packr: no before_import for undecodable input, no after_import for failures
        assert [e[0] for e in log.events if "import" in e[0]] == ["before_import"]

    def test_undecoded_inputs(self, load: Load) -> None:
        class RawReplay(CallInterceptor):
            decode_inputs = False

            async def before_import(
                self, interface: str, function: str, input: EncodedValue
            ) -> Any:
                assert not input.is_decoded
                return EncodedValue(encode(S64(9)))

        inst = load(guests.typed_guest(("test", "ident"))).instantiate(
            ident_host, interceptor=RawReplay()
        )
        # garbage input is never decoded, so it replays fine
        assert inst.call_with_value("ident", b"garbage") == S64(9)

    def test_builder_interceptor(self, load: Load) -> None:
        log = Log()

        def host(b: HostLinkerBuilder) -> None:
            b.set_interceptor(log)
            ident_host(b)

        inst = load(guests.typed_guest(("test", "ident"))).instantiate(host)
        inst.call_with_value("ident", S64(1))
        assert len(log.imports) == 1

    def test_raw_imports_not_intercepted(self, load: Load) -> None:
        log = Log()
        wat = """
        (module
          (import "math" "add" (func $add (param i32 i32) (result i32)))
          (func (export "run") (result i32) (call $add (i32.const 1) (i32.const 2))))"""

        def host(b: HostLinkerBuilder) -> None:
            b.interface("math").func_raw(
                "add", lambda ctx, a, b: a + b, params=("i32", "i32"), results=("i32",)
            )

        assert load(wat).instantiate(host, interceptor=log).call("run") == 3
        assert log.events == []
        assert log.imports == []


class TestExportHooks:
    """before_export / after_export / export_completed around export calls."""

    def test_short_circuit_never_touches_guest(self, load: Load) -> None:
        class Replay(Log):
            async def before_export(self, function: str, input: EncodedValue) -> Any:
                await super().before_export(function, input)
                return S64(99)

        log = Replay()
        inst = load(guests.HOSTILE_EXPORTS).instantiate(interceptor=log)
        before = inst.memory.read(0, 4096)
        fuel = inst.store.get_fuel()
        # "boom" would trap and "spin" would loop: neither runs
        assert inst.call_with_value("boom", S64(1)) == S64(99)
        assert inst.call_with_value("spin", String("x")) == S64(99)
        assert inst.memory.read(0, 4096) == before
        assert inst.store.get_fuel() == fuel
        assert ("after_export", "boom", S64(1), S64(99)) in log.events
        assert all(c.replayed for c in log.exports)

    def test_short_circuit_exact_bytes(self, echo: Module) -> None:
        data = encode(String("recorded"))

        class Replay(CallInterceptor):
            async def before_export(self, *args: Any) -> Any:
                return EncodedValue(data)

        out = echo.instantiate(interceptor=Replay()).call_raw("echo", S64(1))
        assert out.data == data

    def test_after_export_sees_exact_bytes(self, echo: Module) -> None:
        log = Log()
        echo.instantiate(interceptor=log).call_with_value("echo", String("hi"))
        (call,) = log.exports
        assert call.output is not None
        assert call.output.data == encode(String("hi"))
        assert call.input.data == encode(String("hi"))
        assert (call.status, call.error, call.replayed) == (0, None, False)

    def test_export_completed_sees_failures(self, load: Load) -> None:
        log = Log()
        inst = load(guests.HOSTILE_EXPORTS).instantiate(interceptor=log)
        with pytest.raises(GuestTrap):
            inst.call_with_value("boom", S64(1))
        with pytest.raises(ExportNotFound):
            inst.call_with_value("nope", S64(1))
        inst.memory.write(1024, b"bad")
        for off, val in ((2048, 1024), (2052, 3), (2056, 0xFFFFFFFF)):
            inst.memory.write_u32(off, val)
        with pytest.raises(GuestError):
            inst.call_with_value("bad", S64(1))
        assert [type(c.error) for c in log.exports] == [GuestTrap, ExportNotFound, GuestError]
        assert log.exports[2].status == -1
        assert not any(e[0] == "after_export" for e in log.events)

    @pytest.mark.asyncio
    async def test_async_export_hooks(self, echo: Module) -> None:
        log = Log()
        inst = echo.instantiate(interceptor=log)
        assert await inst.call_with_value_async("echo", S64(42)) == S64(42)
        assert log.events == [
            ("before_export", "echo", S64(42)),
            ("after_export", "echo", S64(42), S64(42)),
        ]


class Stop(Exception):
    """What a replayer raises on divergence."""


HOOKS = ["before_import", "after_import", "before_export", "after_export", "import_completed"]


def _raising(hook: str) -> CallInterceptor:
    class Raising(CallInterceptor):
        pass

    async def raise_(self: Any, *args: Any) -> Any:
        await asyncio.sleep(0)
        raise Stop(hook)

    setattr(Raising, hook, raise_)
    return Raising()


class TestHookExceptions:
    """An exception raised by a hook stops the guest and propagates unchanged."""

    @pytest.mark.parametrize("hook", HOOKS)
    def test_sync(self, load: Load, hook: str) -> None:
        inst = load(guests.twice_guest("test", "ident")).instantiate(
            ident_host, interceptor=_raising(hook)
        )
        with pytest.raises(Stop, match=hook):
            inst.call_with_value("twice", S64(1))

    @pytest.mark.asyncio
    @pytest.mark.parametrize("hook", HOOKS)
    async def test_async(self, load: Load, hook: str) -> None:
        inst = load(guests.twice_guest("test", "ident")).instantiate(
            async_ident_host, interceptor=_raising(hook)
        )
        with pytest.raises(Stop, match=hook):
            await inst.call_with_value_async("twice", S64(1))

    def test_guest_stops_at_the_raising_call(self, load: Load) -> None:
        calls: list[Value] = []

        class StopSecond(CallInterceptor):
            async def before_import(self, *args: Any) -> Any:
                if len(calls) == 1:
                    raise Stop("second call")
                return None

        def host(b: HostLinkerBuilder) -> None:
            b.interface("test").func_typed("ident", lambda ctx, v: calls.append(v) or v)

        inst = load(guests.twice_guest("test", "ident")).instantiate(host, interceptor=StopSecond())
        with pytest.raises(Stop):
            inst.call_with_value("twice", S64(1))
        assert len(calls) == 1

    def test_instance_usable_afterwards(self, load: Load) -> None:
        class Once(CallInterceptor):
            fired = False

            async def before_import(self, *args: Any) -> Any:
                if not self.fired:
                    self.fired = True
                    raise Stop("once")
                return None

        inst = load(guests.twice_guest("test", "ident")).instantiate(ident_host, interceptor=Once())
        with pytest.raises(Stop):
            inst.call_with_value("twice", S64(1))
        assert inst.call_with_value("twice", S64(2)) == S64(2)

    def test_error_handler_exception_propagates(self, load: Load) -> None:
        def on_error(err: HostFunctionError) -> None:
            raise Stop(err.kind)

        inst = load(guests.typed_guest(("test", "ident"))).instantiate(
            ident_host, on_error=on_error
        )
        with pytest.raises(Stop, match="Decode"):
            inst.call_with_value("ident", b"garbage")
