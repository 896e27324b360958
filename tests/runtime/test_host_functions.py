"""Host functions: packr's ``host_functions`` acceptance behaviours (spec §8) and the
typed-import conventions of spec §3."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from packr_replay.abi import (
    S32,
    S64,
    U8,
    U64,
    Bool,
    EncodedValue,
    List,
    Option,
    Record,
    Result,
    String,
    Tuple,
    Value,
    ValueType,
    encode,
)
from packr_replay.abi.convert import s64, u64
from packr_replay.errors import GuestError, GuestMemoryError, HostFunctionError
from packr_replay.runtime import (
    AsyncCtx,
    Ctx,
    DefaultHostProvider,
    HostErr,
    HostLinkerBuilder,
    Module,
    ReplyMode,
)

from . import guests

Load = Callable[[str], Module]

LIST_U8 = ValueType.list(ValueType.U8)

RAW_STATE = """
(module
  (import "theater:simple/runtime" "compute" (func $compute (param i32 i32) (result i32)))
  (func (export "run") (result i32) (call $compute (i32.const 5) (i32.const 10))))
"""

TWO_NAMESPACES = """
(module
  (import "math" "add" (func $add (param i32 i32) (result i32)))
  (import "util" "double" (func $double (param i32) (result i32)))
  (func (export "run") (result i32) (call $double (call $add (i32.const 5) (i32.const 10)))))
"""

PROVIDER = """
(module
  (import "calc" "add" (func $add (param i32 i32) (result i32)))
  (import "calc" "mul" (func $mul (param i32 i32) (result i32)))
  (func (export "run") (result i32) (call $mul (call $add (i32.const 3) (i32.const 4)) (i32.const 2))))
"""

LEGACY_HOST = """
(module
  (import "host" "log" (func $log (param i32 i32)))
  (import "host" "alloc" (func $alloc (param i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 256) "test")
  (func (export "log_test") (call $log (i32.const 256) (i32.const 4)))
  (func (export "alloc") (param i32) (result i32) (call $alloc (local.get 0))))
"""


@dataclass
class ActorState:
    actor_id: int


def double_host(builder: HostLinkerBuilder) -> None:
    builder.interface("test").func_typed("double", lambda ctx, v: S64(v.value * 2))


class TestRawImports:
    """func_raw: plain wasm signatures under namespaced modules (spec §3.6)."""

    def test_raw_import_reads_store_state(self, load: Load) -> None:
        def host(b: HostLinkerBuilder) -> None:
            b.interface("theater:simple/runtime").func_raw(
                "compute",
                lambda ctx, a, b: a + b + ctx.data.actor_id,
                params=("i32", "i32"),
                results=("i32",),
            )

        inst = load(RAW_STATE).instantiate(host, state=ActorState(actor_id=100))
        assert inst.call("run") == 115

    def test_two_namespaces(self, load: Load) -> None:
        def host(b: HostLinkerBuilder) -> None:
            b.interface("math").func_raw(
                "add", lambda ctx, a, b: a + b, params=("i32", "i32"), results=("i32",)
            )
            b.interface("util").func_raw(
                "double", lambda ctx, a: a * 2, params=("i32",), results=("i32",)
            )

        assert load(TWO_NAMESPACES).instantiate(host).call("run") == 30

    def test_provider_registers_several_functions(self, load: Load) -> None:
        class Calc:
            def register(self, builder: HostLinkerBuilder) -> None:
                calc = builder.interface("calc")
                calc.func_raw("add", self.add, params=("i32", "i32"), results=("i32",))
                calc.func_raw("mul", self.mul, params=("i32", "i32"), results=("i32",))

            def add(self, ctx: Ctx, a: int, b: int) -> int:
                return a + b

            def mul(self, ctx: Ctx, a: int, b: int) -> int:
                return a * b

        assert load(PROVIDER).instantiate(Calc()).call("run") == 14

    def test_decorator_form(self, load: Load) -> None:
        def host(b: HostLinkerBuilder) -> None:
            calc = b.interface("calc")

            @calc.func_raw("add", params=("i32", "i32"), results=("i32",))
            def add(ctx: Ctx, a: int, b: int) -> int:
                return a + b

            @calc.func_raw("mul", params=("i32", "i32"), results=("i32",))
            def mul(ctx: Ctx, a: int, b: int) -> int:
                return a * b

        assert load(PROVIDER).instantiate([host]).call("run") == 14

    def test_raw_handler_exception_propagates(self, load: Load) -> None:
        class Boom(Exception):
            pass

        def host(b: HostLinkerBuilder) -> None:
            def compute(ctx: Ctx, a: int, b: int) -> int:
                raise Boom("raw")

            b.interface("theater:simple/runtime").func_raw(
                "compute", compute, params=("i32", "i32"), results=("i32",)
            )

        inst = load(RAW_STATE).instantiate(host)
        with pytest.raises(Boom, match="raw"):
            inst.call("run")

    def test_all_value_types_and_multi_value(self, load: Load) -> None:
        wat = """
        (module
          (import "m" "mix" (func $mix (param i32 i64 f32 f64) (result f64 i64)))
          (import "m" "sink" (func $sink (param i64)))
          (func (export "run") (result f64)
            (local $f f64)
            (call $mix (i32.const -2) (i64.const 10000000000) (f32.const 1.5) (f64.const 0.25))
            (call $sink)
            (local.set $f)
            (local.get $f)))"""
        sunk: list[int] = []

        def host(b: HostLinkerBuilder) -> None:
            m = b.interface("m")
            m.func_raw(
                "mix",
                lambda ctx, a, b, c, d: (a + c + d, b + 1),
                params=("i32", "i64", "f32", "f64"),
                results=("f64", "i64"),
            )
            m.func_raw("sink", lambda ctx, x: sunk.append(x), params=("i64",))

        assert load(wat).instantiate(host).call("run") == -0.25
        assert sunk == [10_000_000_001]

    def test_bad_raw_type_rejected(self) -> None:
        with pytest.raises(ValueError, match="unsupported raw wasm type"):
            HostLinkerBuilder().interface("m").func_raw("f", lambda ctx: 0, params=("v128",))

    def test_duplicate_definition_rejected(self) -> None:
        b = HostLinkerBuilder()
        b.interface("m").func_raw("f", lambda ctx: None)
        with pytest.raises(ValueError, match="defined twice"):
            b.interface("m").func_raw("f", lambda ctx: None)


class TestDefaultHostProvider:
    """packr's legacy ``host`` module: raw UTF-8 log and a bump allocator (spec §3.8)."""

    def test_log_captures_text(self, load: Load) -> None:
        provider = DefaultHostProvider()
        inst = load(LEGACY_HOST).instantiate(provider)
        inst.call("log_test")
        assert provider.logs == ["test"]
        provider.clear_logs()
        assert provider.logs == []

    def test_alloc_starts_at_48k_and_rounds_to_8(self, load: Load) -> None:
        provider = DefaultHostProvider()
        inst = load(LEGACY_HOST).instantiate(provider)
        first = inst.call("alloc", 5)
        second = inst.call("alloc", 1)
        assert first >= 48 * 1024
        assert first == 49152
        assert second == first + 8

    def test_invalid_utf8_dropped(self, load: Load) -> None:
        provider = DefaultHostProvider()
        inst = load(LEGACY_HOST).instantiate(provider)
        inst.memory.write(256, b"\xff\xfe\xfd\xfc")
        inst.call("log_test")
        assert provider.logs == []


class TestTypedImports:
    """func_typed through a WAT wrapper using the 4-i32 ABI (spec §3.3)."""

    def test_double_via_wrapper(self, load: Load) -> None:
        inst = load(guests.typed_guest(("test", "double"))).instantiate(double_host)
        assert inst.call_with_value("double", S64(21)) == S64(42)
        assert inst.call("last_status") == 0

    def test_reply_lands_in_scratch(self, load: Load) -> None:
        inst = load(guests.typed_guest(("test", "double"))).instantiate(double_host)
        data = encode(S64(21))
        inst.memory.write(4096, data)
        status = inst.call("poke_double", 4096, len(data), 8000, 9000)
        assert status == 0
        assert inst.memory.read_u32(8000) == 16392
        assert inst.memory.read_u32(9000) == len(encode(S64(42)))
        assert inst.memory.read(16392, 32) == encode(S64(42))

    def test_handler_sees_interface_function_and_state(self, load: Load) -> None:
        seen: list[Any] = []

        def host(b: HostLinkerBuilder) -> None:
            def handler(ctx: Ctx, v: Value) -> Value:
                seen.append((ctx.interface, ctx.function, ctx.data, ctx.caller is inst_box[0]))
                return v

            b.interface("theater:simple/runtime").func_typed("log", handler)

        inst_box: list[Any] = [None]
        module = load(guests.typed_guest(("theater:simple/runtime", "log")))
        inst_box[0] = inst = module.instantiate(host, state={"k": 1})
        assert inst.call_with_value("log", String("hi")) == String("hi")
        assert seen == [("theater:simple/runtime", "log", {"k": 1}, True)]

    def test_garbage_input_reports_decode_once(self, load: Load) -> None:
        errors: list[HostFunctionError] = []
        called: list[Value] = []

        def host(b: HostLinkerBuilder) -> None:
            b.on_error(errors.append)
            b.interface("test").func_typed("process", lambda ctx, v: called.append(v) or v)

        inst = load(guests.typed_guest(("test", "process"))).instantiate(host)
        with pytest.raises(GuestError, match=guests.ERROR_MESSAGE):
            inst.call_with_value("process", b"this is not CGRF at all")
        assert inst.call("last_status") == -1
        assert called == []
        assert len(errors) == 1
        (err,) = errors
        assert (err.interface, err.function, err.kind) == ("test", "process", "Decode")
        assert "Invalid magic" in str(err)

    def test_on_error_argument_overrides_builder(self, load: Load) -> None:
        from_builder: list[HostFunctionError] = []
        from_arg: list[HostFunctionError] = []

        def host(b: HostLinkerBuilder) -> None:
            b.on_error(from_builder.append)
            b.interface("test").func_typed("process", lambda ctx, v: v)

        inst = load(guests.typed_guest(("test", "process"))).instantiate(
            host, on_error=from_arg.append
        )
        with pytest.raises(GuestError):
            inst.call_with_value("process", b"garbage")
        assert (len(from_builder), len(from_arg)) == (0, 1)

    def test_handler_exception_is_reported_and_host_survives(self, load: Load) -> None:
        errors: list[HostFunctionError] = []
        calls = []

        def handler(ctx: Ctx, v: Value) -> Value:
            calls.append(v)
            if len(calls) == 1:
                raise KeyError("no such actor")
            return v

        def host(b: HostLinkerBuilder) -> None:
            b.interface("test").func_typed("process", handler)

        inst = load(guests.typed_guest(("test", "process"))).instantiate(
            host, on_error=errors.append
        )
        with pytest.raises(GuestError):
            inst.call_with_value("process", S64(1))
        assert inst.call("last_status") == -1
        (err,) = errors
        assert err.kind == "Handler"
        assert "KeyError" in str(err)
        assert "no such actor" in str(err)
        assert isinstance(err.cause, KeyError)
        # the host survives: the next call works
        assert inst.call_with_value("process", S64(2)) == S64(2)

    def test_handler_returning_non_value_is_type_conversion(self, load: Load) -> None:
        errors: list[HostFunctionError] = []

        def host(b: HostLinkerBuilder) -> None:
            b.interface("test").func_typed("process", lambda ctx, v: 42)

        inst = load(guests.typed_guest(("test", "process"))).instantiate(
            host, on_error=errors.append
        )
        with pytest.raises(GuestError):
            inst.call_with_value("process", S64(1))
        assert [e.kind for e in errors] == ["TypeConversion"]

    def test_unencodable_reply_is_encode_error(self, load: Load) -> None:
        errors: list[HostFunctionError] = []
        bad = List(ValueType.U8, [S32(1)])  # a fixed-width list with a non-matching item

        def host(b: HostLinkerBuilder) -> None:
            b.interface("test").func_typed("process", lambda ctx, v: bad)

        inst = load(guests.typed_guest(("test", "process"))).instantiate(
            host, on_error=errors.append
        )
        with pytest.raises(GuestError):
            inst.call_with_value("process", S64(1))
        assert [e.kind for e in errors] == ["Encode"]

    def test_without_an_error_handler_the_guest_still_gets_minus_one(self, load: Load) -> None:
        def host(b: HostLinkerBuilder) -> None:
            b.interface("test").func_typed("process", lambda ctx, v: v)

        inst = load(guests.typed_guest(("test", "process"))).instantiate(host)
        with pytest.raises(GuestError):
            inst.call_with_value("process", b"junk")


class TestTypedResult:
    """func_typed_result / func_async_result build Value::Result with both declared
    types (spec §3.4)."""

    @staticmethod
    def _host(is_async: bool) -> Callable[[HostLinkerBuilder], None]:
        def host(b: HostLinkerBuilder) -> None:
            iface = b.interface("test")
            register = iface.func_async_result if is_async else iface.func_typed_result

            def check(v: Value) -> Value:
                assert isinstance(v, S64)
                if v.value < 0:
                    raise HostErr(String("negative not allowed"))
                return v

            if is_async:

                async def handler(ctx: Ctx, v: Value) -> Value:
                    await asyncio.sleep(0)
                    return check(v)

                register("check", handler, ok=ValueType.S64, err=ValueType.STRING)
            else:
                register("check", lambda ctx, v: check(v), ok=ValueType.S64, err=ValueType.STRING)

        return host

    @pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
    def test_ok_is_result_not_variant(self, load: Load, is_async: bool) -> None:
        inst = load(guests.typed_guest(("test", "check"))).instantiate(self._host(is_async))
        out = inst.call_with_value("check", S64(42))
        assert isinstance(out, Result)
        assert out.kind.name == "RESULT"
        assert not out.is_err
        assert out == Result(ValueType.S64, ValueType.STRING, S64(42))

    @pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
    def test_err_is_result(self, load: Load, is_async: bool) -> None:
        inst = load(guests.typed_guest(("test", "check"))).instantiate(self._host(is_async))
        out = inst.call_with_value("check", S64(-1))
        assert isinstance(out, Result)
        assert out.is_err
        assert out == Result(
            ValueType.S64, ValueType.STRING, String("negative not allowed"), is_err=True
        )

    @pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
    def test_err_keeps_ok_type(self, load: Load, is_async: bool) -> None:
        def host(b: HostLinkerBuilder) -> None:
            iface = b.interface("test")
            if is_async:

                async def fail(ctx: Ctx, v: Value) -> Value:
                    raise HostErr("nope")

                iface.func_async_result("f", fail, ok=LIST_U8, err=ValueType.STRING)
            else:

                def fail_sync(ctx: Ctx, v: Value) -> Value:
                    raise HostErr("nope")

                iface.func_typed_result("f", fail_sync, ok=LIST_U8, err=ValueType.STRING)

        out = (
            load(guests.typed_guest(("test", "f"))).instantiate(host).call_with_value("f", Tuple())
        )
        assert isinstance(out, Result)
        assert out.is_err
        assert out.ok_type == LIST_U8
        assert out.err_type == ValueType.STRING
        assert out.value == String("nope")

    @pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
    def test_ok_keeps_err_type(self, load: Load, is_async: bool) -> None:
        def host(b: HostLinkerBuilder) -> None:
            iface = b.interface("test")
            if is_async:

                async def ok(ctx: Ctx, v: Value) -> str:
                    return "fine"

                iface.func_async_result("f", ok, ok=ValueType.STRING, err=LIST_U8)
            else:
                iface.func_typed_result(
                    "f", lambda ctx, v: "fine", ok=ValueType.STRING, err=LIST_U8
                )

        out = (
            load(guests.typed_guest(("test", "f"))).instantiate(host).call_with_value("f", Tuple())
        )
        assert isinstance(out, Result)
        assert not out.is_err
        assert out.ok_type == ValueType.STRING
        assert out.err_type == LIST_U8
        assert out.value == String("fine")

    def test_plain_python_err_converted_to_declared_type(self, load: Load) -> None:
        def host(b: HostLinkerBuilder) -> None:
            def fail(ctx: Ctx, v: Value) -> Value:
                raise HostErr(b"\x01\x02")

            b.interface("test").func_typed_result("f", fail, ok=ValueType.STRING, err=LIST_U8)

        out = (
            load(guests.typed_guest(("test", "f"))).instantiate(host).call_with_value("f", Tuple())
        )
        assert out == Result(
            ValueType.STRING, LIST_U8, List(ValueType.U8, [U8(1), U8(2)]), is_err=True
        )

    def test_host_err_outside_result_function_is_handler_error(self, load: Load) -> None:
        errors: list[HostFunctionError] = []

        def host(b: HostLinkerBuilder) -> None:
            def fail(ctx: Ctx, v: Value) -> Value:
                raise HostErr("x")

            b.interface("test").func_typed("f", fail)

        inst = load(guests.typed_guest(("test", "f"))).instantiate(host, on_error=errors.append)
        with pytest.raises(GuestError):
            inst.call_with_value("f", Tuple())
        assert [e.kind for e in errors] == ["Handler"]


@dataclass
class Point:
    x: s64
    y: s64


class TestPlainPythonHandlers:
    """Typed handlers over plain Python through declared types (params=/returns= or
    annotations)."""

    def test_params_and_returns_keywords(self, load: Load) -> None:
        def host(b: HostLinkerBuilder) -> None:
            b.interface("test").func_typed(
                "double", lambda ctx, n: n * 2, params=ValueType.S64, returns=ValueType.S64
            )

        inst = load(guests.typed_guest(("test", "double"))).instantiate(host)
        assert inst.call_with_value("double", S64(21)) == S64(42)

    def test_annotations(self, load: Load) -> None:
        def double(ctx: Ctx, n: s64) -> s64:
            return n * 2

        inst = load(guests.typed_guest(("test", "double"))).instantiate(
            lambda b: b.interface("test").func_typed("double", double)
        )
        assert inst.call_with_value("double", S64(21)) == S64(42)

    def test_several_params_take_a_tuple(self, load: Load) -> None:
        def add(ctx: Ctx, a: s64, b: s64) -> s64:
            return a + b

        inst = load(guests.typed_guest(("test", "add"))).instantiate(
            lambda b: b.interface("test").func_typed("add", add)
        )
        assert inst.call_with_value("add", Tuple(S64(2), S64(3))) == S64(5)

    def test_several_params_keyword_form(self, load: Load) -> None:
        def host(b: HostLinkerBuilder) -> None:
            b.interface("kv").func_typed(
                "set",
                lambda ctx, k, v: k == "a" and v == "b",
                params=[ValueType.STRING, ValueType.STRING],
                returns=ValueType.BOOL,
            )

        inst = load(guests.typed_guest(("kv", "set"))).instantiate(host)
        assert inst.call_with_value("set", Tuple(String("a"), String("b"))) == Bool(True)

    def test_zero_params_take_unit(self, load: Load) -> None:
        def now(ctx: Ctx) -> u64:
            return 123

        inst = load(guests.typed_guest(("clock", "now"))).instantiate(
            lambda b: b.interface("clock").func_typed("now", now)
        )
        assert inst.call_with_value("now", Tuple()) == U64(123)

    def test_zero_params_with_returns_keyword(self, load: Load) -> None:
        inst = load(guests.typed_guest(("clock", "now"))).instantiate(
            lambda b: b.interface("clock").func_typed("now", lambda ctx: 7, returns=ValueType.U64)
        )
        assert inst.call_with_value("now", Tuple()) == U64(7)

    def test_none_return_is_unit(self, load: Load) -> None:
        got: list[str] = []

        def log(ctx: Ctx, msg: str) -> None:
            got.append(msg)

        inst = load(guests.typed_guest(("log", "write"))).instantiate(
            lambda b: b.interface("log").func_typed("write", log)
        )
        assert inst.call_with_value("write", String("hello")) == Tuple()
        assert got == ["hello"]

    def test_optional_return(self, load: Load) -> None:
        table = {"pi": "3.14"}

        def get(ctx: Ctx, key: str) -> str | None:
            return table.get(key)

        inst = load(guests.typed_guest(("env", "get"))).instantiate(
            lambda b: b.interface("env").func_typed("get", get)
        )
        assert inst.call_with_value("get", String("pi")) == Option(ValueType.STRING, String("3.14"))
        assert inst.call_with_value("get", String("e")) == Option(ValueType.STRING)

    def test_dataclass_param_and_return(self, load: Load) -> None:
        def flip(ctx: Ctx, p: Point) -> Point:
            assert isinstance(p, Point)
            return Point(p.y, p.x)

        inst = load(guests.typed_guest(("geo", "flip"))).instantiate(
            lambda b: b.interface("geo").func_typed("flip", flip)
        )
        out = inst.call_with_value("flip", Record("Point", [("x", S64(1)), ("y", S64(2))]))
        assert out == Record("Point", [("x", S64(2)), ("y", S64(1))])

    def test_value_annotation_receives_value(self, load: Load) -> None:
        def ident(ctx: Ctx, v: Value) -> Value:
            assert isinstance(v, Value)
            return v

        inst = load(guests.typed_guest(("t", "ident"))).instantiate(
            lambda b: b.interface("t").func_typed("ident", ident)
        )
        assert inst.call_with_value("ident", String("x")) == String("x")

    def test_wrong_input_type_is_type_conversion(self, load: Load) -> None:
        errors: list[HostFunctionError] = []

        def double(ctx: Ctx, n: s64) -> s64:
            return n * 2

        inst = load(guests.typed_guest(("test", "double"))).instantiate(
            lambda b: b.interface("test").func_typed("double", double), on_error=errors.append
        )
        with pytest.raises(GuestError):
            inst.call_with_value("double", String("21"))
        assert [e.kind for e in errors] == ["TypeConversion"]

    def test_wrong_tuple_arity_is_type_conversion(self, load: Load) -> None:
        errors: list[HostFunctionError] = []

        def add(ctx: Ctx, a: s64, b: s64) -> s64:
            return a + b

        inst = load(guests.typed_guest(("test", "add"))).instantiate(
            lambda b: b.interface("test").func_typed("add", add), on_error=errors.append
        )
        with pytest.raises(GuestError):
            inst.call_with_value("add", Tuple(S64(1)))
        assert [e.kind for e in errors] == ["TypeConversion"]

    def test_unconvertible_return_is_type_conversion(self, load: Load) -> None:
        errors: list[HostFunctionError] = []

        def bad(ctx: Ctx, n: s64) -> s64:
            return "not a number"  # type: ignore[return-value]

        inst = load(guests.typed_guest(("test", "double"))).instantiate(
            lambda b: b.interface("test").func_typed("double", bad), on_error=errors.append
        )
        with pytest.raises(GuestError):
            inst.call_with_value("double", S64(1))
        assert [e.kind for e in errors] == ["TypeConversion"]

    def test_annotations_resolve_one_by_one(self, load: Load) -> None:
        # `Ctx` imported only under TYPE_CHECKING: the ctx annotation cannot be
        # resolved, which must not switch conversion off for the others
        ns: dict[str, Any] = {"s64": s64}
        exec(
            "from __future__ import annotations\n"
            "def double(ctx: Ctx, n: s64) -> s64:\n"
            "    return n * 2\n",
            ns,
        )
        inst = load(guests.typed_guest(("test", "double"))).instantiate(
            lambda b: b.interface("test").func_typed("double", ns["double"])
        )
        assert inst.call_with_value("double", S64(21)) == S64(42)

    def test_unresolvable_annotation_rejected_at_registration(self) -> None:
        ns: dict[str, Any] = {}
        exec(
            "from __future__ import annotations\ndef f(ctx, n: Missing) -> None: ...\n",
            ns,
        )
        with pytest.raises(TypeError, match="'Missing' of parameter 'n'"):
            HostLinkerBuilder().interface("t").func_typed("f", ns["f"])

    def test_bound_method_handler(self, load: Load) -> None:
        class Doubler:
            factor = 2

            def double(self, ctx: Ctx, n: s64) -> s64:
                return n * self.factor

        inst = load(guests.typed_guest(("test", "double"))).instantiate(
            lambda b: b.interface("test").func_typed("double", Doubler().double)
        )
        assert inst.call_with_value("double", S64(21)) == S64(42)

    def test_bare_int_annotation_rejected_at_registration(self) -> None:
        def bad(ctx: Ctx, n: int) -> int:
            return n

        with pytest.raises(TypeError, match="width"):
            HostLinkerBuilder().interface("t").func_typed("f", bad)

    def test_func_async_requires_coroutine_function(self) -> None:
        with pytest.raises(TypeError, match="async def"):
            HostLinkerBuilder().interface("t").func_async("f", lambda ctx, v: v)


class TestAsyncHostFunctions:
    """func_async from call_with_value and call_with_value_async (spec §3.5)."""

    @staticmethod
    def _host(b: HostLinkerBuilder) -> None:
        async def double(ctx: AsyncCtx, v: Value) -> Value:
            await asyncio.sleep(0)
            assert isinstance(v, S64)
            return S64(v.value * 2)

        b.interface("test").func_async("double", double)

    @pytest.mark.asyncio
    async def test_async_instance_echo(self, echo: Module) -> None:
        inst = echo.instantiate()
        assert await inst.call_with_value_async("echo", S64(42)) == S64(42)

    @pytest.mark.asyncio
    async def test_async_import_doubles(self, load: Load) -> None:
        inst = load(guests.typed_guest(("test", "double"))).instantiate(self._host)
        assert await inst.call_with_value_async("double", S64(21)) == S64(42)

    def test_async_import_from_sync_call(self, load: Load) -> None:
        inst = load(guests.typed_guest(("test", "double"))).instantiate(self._host)
        assert inst.call_with_value("double", S64(21)) == S64(42)
        assert inst.call_with_value("double", S64(5)) == S64(10)

    @pytest.mark.asyncio
    async def test_sync_call_inside_running_loop(self, load: Load) -> None:
        async def slow_double(ctx: AsyncCtx, v: Value) -> Value:
            await asyncio.sleep(0.001)  # really suspends
            assert isinstance(v, S64)
            return S64(v.value * 2)

        inst = load(guests.typed_guest(("test", "double"))).instantiate(
            lambda b: b.interface("test").func_async("double", slow_double)
        )
        # a plain call from inside a running loop (a notebook, an async test)
        assert inst.call_with_value("double", S64(4)) == S64(8)

    def test_suspending_async_handler_from_sync_call(self, load: Load) -> None:
        async def slow_double(ctx: AsyncCtx, v: Value) -> Value:
            await asyncio.sleep(0.001)
            assert isinstance(v, S64)
            return S64(v.value * 2)

        inst = load(guests.typed_guest(("test", "double"))).instantiate(
            lambda b: b.interface("test").func_async("double", slow_double)
        )
        assert inst.call_with_value("double", S64(4)) == S64(8)

    @pytest.mark.asyncio
    async def test_async_import_reads_shallow_copied_state(self, load: Load) -> None:
        @dataclass
        class State:
            multiplier: int
            seen: list[int]

        async def mul(ctx: AsyncCtx, v: Value) -> Value:
            assert isinstance(ctx, AsyncCtx)
            assert isinstance(v, S64)
            ctx.data.seen.append(v.value)  # shared container: visible
            result = S64(v.value * ctx.data.multiplier)
            ctx.data.multiplier = 0  # the copy: discarded
            return result

        state = State(multiplier=10, seen=[])
        inst = load(guests.typed_guest(("test", "mul"))).instantiate(
            lambda b: b.interface("test").func_async("mul", mul), state=state
        )
        assert await inst.call_with_value_async("mul", S64(7)) == S64(70)
        assert inst.call_with_value("mul", S64(7)) == S64(70)
        assert state.multiplier == 10
        assert state.seen == [7, 7]

    @pytest.mark.asyncio
    async def test_async_handler_runs_on_callers_loop(self, load: Load) -> None:
        loops: list[asyncio.AbstractEventLoop] = []

        async def ident(ctx: AsyncCtx, v: Value) -> Value:
            loops.append(asyncio.get_running_loop())
            await asyncio.sleep(0.001)
            return v

        inst = load(guests.typed_guest(("test", "ident"))).instantiate(
            lambda b: b.interface("test").func_async("ident", ident)
        )
        assert await inst.call_with_value_async("ident", S64(1)) == S64(1)
        assert loops == [asyncio.get_running_loop()]

    @pytest.mark.asyncio
    async def test_async_handler_exception_reported(self, load: Load) -> None:
        errors: list[HostFunctionError] = []

        async def fail(ctx: AsyncCtx, v: Value) -> Value:
            await asyncio.sleep(0)
            raise RuntimeError("async boom")

        inst = load(guests.typed_guest(("test", "fail"))).instantiate(
            lambda b: b.interface("test").func_async("fail", fail), on_error=errors.append
        )
        with pytest.raises(GuestError):
            await inst.call_with_value_async("fail", S64(1))
        with pytest.raises(GuestError):
            inst.call_with_value("fail", S64(1))
        assert [e.kind for e in errors] == ["Handler", "Handler"]
        assert "async boom" in str(errors[0])

    @pytest.mark.asyncio
    async def test_concurrent_calls_are_serialised(self, load: Load) -> None:
        async def slow(ctx: AsyncCtx, v: Value) -> Value:
            await asyncio.sleep(0.005)
            return v

        inst = load(guests.typed_guest(("test", "slow"))).instantiate(
            lambda b: b.interface("test").func_async("slow", slow)
        )
        results = await asyncio.gather(
            *(inst.call_with_value_async("slow", S64(i)) for i in range(5))
        )
        assert results == [S64(i) for i in range(5)]


class TestReplyModes:
    """Scratch replies (status 0, 32 KiB cap) and guest-allocated replies (status 1)."""

    BIG = String("x" * 40_000)

    @staticmethod
    def _big_host(b: HostLinkerBuilder) -> None:
        b.interface("test").func_typed("big", lambda ctx, v: TestReplyModes.BIG)

    def test_guest_alloc_status_1(self, load: Load) -> None:
        inst = load(guests.typed_guest(("test", "double"), alloc=True)).instantiate(
            double_host, reply=ReplyMode.GUEST_ALLOC
        )
        data = encode(S64(21))
        inst.memory.write(4096, data)
        assert inst.call("poke_double", 4096, len(data), 8000, 9000) == 1
        ptr = inst.memory.read_u32(8000)
        assert ptr >= 65536  # from the guest's bump __pack_alloc, not scratch
        assert inst.memory.read(ptr, inst.memory.read_u32(9000)) == encode(S64(42))

    def test_guest_alloc_through_export(self, load: Load) -> None:
        inst = load(guests.typed_guest(("test", "double"), alloc=True)).instantiate(
            double_host, reply="guest"
        )
        assert inst.call_with_value("double", S64(21)) == S64(42)
        assert inst.call("last_status") == 1

    def test_guest_alloc_without_pack_alloc_falls_back_to_scratch(self, load: Load) -> None:
        inst = load(guests.typed_guest(("test", "double"))).instantiate(
            double_host, reply=ReplyMode.GUEST_ALLOC
        )
        assert inst.call_with_value("double", S64(21)) == S64(42)
        assert inst.call("last_status") == 0

    def test_scratch_cap_is_a_setting(self, load: Load) -> None:
        """packr HEAD's 32 KiB cap, when asked for: a bigger reply is a MemoryWrite."""
        errors: list[HostFunctionError] = []
        inst = load(guests.typed_guest(("test", "big"), alloc=True)).instantiate(
            self._big_host, on_error=errors.append, scratch_capacity=32768
        )
        with pytest.raises(GuestError):
            inst.call_with_value("big", Tuple())
        (err,) = errors
        assert err.kind == "MemoryWrite"
        size = len(encode(self.BIG))
        assert f"host return {size} bytes exceeds capacity 32768" in str(err)

    def test_large_reply_with_guest_alloc(self, load: Load) -> None:
        inst = load(guests.typed_guest(("test", "big"), alloc=True)).instantiate(
            self._big_host, reply=ReplyMode.GUEST_ALLOC
        )
        assert inst.call_with_value("big", Tuple()) == self.BIG

    def test_no_host_reply_cap_by_default_like_v070(self, load: Load) -> None:
        """packr 0.7.0 puts no cap on a host's reply: 40 KB works by default."""
        reply = String("z" * 40_000)
        inst = load(guests.typed_guest(("test", "big"), pages=3)).instantiate(
            lambda b: b.interface("test").func_typed("big", lambda ctx, v: reply)
        )
        assert inst.scratch_capacity is None
        assert inst.call_with_value("big", Tuple()) == reply
        assert inst.call("last_status") == 0  # in scratch, as v0.7.0 writes it

    def test_the_runtime_default_cap(self, load: Load) -> None:
        from packr_replay.runtime import Runtime

        module = Runtime(scratch_capacity=1024).load_module(guests.typed_guest(("test", "big")))
        inst = module.instantiate(self._big_host)
        assert inst.scratch_capacity == 1024
        assert module.instantiate(self._big_host, scratch_capacity=None).scratch_capacity is None

    def test_pack_alloc_failure_is_memory_write(self, load: Load) -> None:
        errors: list[HostFunctionError] = []
        # max 2 pages: the bump allocator (starting at 64 KiB) cannot grow for 100 KB
        inst = load(guests.typed_guest(("test", "big"), alloc=True, max_pages=2)).instantiate(
            lambda b: b.interface("test").func_typed("big", lambda ctx, v: String("y" * 100_000)),
            reply=ReplyMode.GUEST_ALLOC,
            on_error=errors.append,
        )
        with pytest.raises(GuestError):
            inst.call_with_value("big", Tuple())
        (err,) = errors
        assert err.kind == "MemoryWrite"
        assert "__pack_alloc" in str(err)

    def test_export_output_freed_with_pack_free(self, load: Load) -> None:
        inst = load(guests.typed_guest(("test", "double"), alloc=True)).instantiate(
            double_host, reply=ReplyMode.GUEST_ALLOC
        )
        inst.call_with_value("double", S64(21))
        # input buffer and output buffer are both freed by the host
        assert inst.call("frees") == 2
        assert inst.call("last_free_len") == len(encode(S64(42)))

    def test_encoded_value_round_trip(self, load: Load) -> None:
        inst = load(guests.typed_guest(("test", "double"))).instantiate(double_host)
        out = inst.call_raw("double", EncodedValue.of(S64(4)))
        assert isinstance(out, EncodedValue)
        assert out.data == encode(S64(8))
        assert inst.call_raw("double", encode(S64(5))).value == S64(10)


class TestCtx:
    """What a host function can do with its context."""

    def test_memory_helpers(self, load: Load) -> None:
        seen: dict[str, Any] = {}

        def handler(ctx: Ctx, v: Value) -> Value:
            ctx.write_bytes(30000, b"raw text")
            seen["text"] = ctx.read_string(30000, 8)
            n = ctx.write_value_at(31000, 100, String("cgrf"))
            seen["value"] = ctx.read_value(31000, n)
            with pytest.raises(GuestMemoryError, match="output buffer too small: need 36 bytes, have 4 capacity"):
                ctx.write_value_at(31000, 4, String("too long"))
            seen["legacy"] = ctx.write_value(S64(3))
            seen["legacy_value"] = ctx.read_value(*seen["legacy"])
            ptr = ctx.alloc(16)
            seen["alloc"] = ptr
            assert ctx.memory is ctx.caller.memory
            return v

        inst = load(guests.typed_guest(("test", "ident"), alloc=True)).instantiate(
            lambda b: b.interface("test").func_typed("ident", handler)
        )
        inst.call_with_value("ident", Tuple())
        assert seen["text"] == "raw text"
        assert seen["value"] == String("cgrf")
        assert seen["alloc"] >= 65536
        # packr's legacy Ctx::write_value: at OUTPUT_BUFFER_OFFSET, returns (ptr, len)
        assert seen["legacy"] == (16384, len(encode(S64(3))))
        assert seen["legacy_value"] == S64(3)

    def test_alloc_without_pack_alloc_is_zero(self, load: Load) -> None:
        got: list[int] = []

        def handler(ctx: Ctx, v: Value) -> Value:
            got.append(ctx.alloc(16))
            return v

        inst = load(guests.typed_guest(("test", "ident"))).instantiate(
            lambda b: b.interface("test").func_typed("ident", handler)
        )
        inst.call_with_value("ident", Tuple())
        assert got == [0]
