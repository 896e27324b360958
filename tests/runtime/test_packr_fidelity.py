"""packr 0.7.0 host behaviours found missing when its own test suite was run against
the project, and the host API it has: each test is named after packr's behaviour."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from packr_replay.abi import S64, String, Tuple, Value, ValueType, Variant, encode
from packr_replay.abi.convert import TaggedUnion, case, s64
from packr_replay.abi.metadata import FunctionSig, ParamSig
from packr_replay.abi.metadata import TypeDesc as TD
from packr_replay.errors import (
    AbiError,
    GuestError,
    GuestMemoryError,
    HostFunctionError,
    InterfaceError,
    SchemaError,
)
from packr_replay.runtime import (
    INPUT_BUFFER_OFFSET,
    OUTPUT_BUFFER_CAPACITY,
    OUTPUT_BUFFER_OFFSET,
    RESULT_LEN_OFFSET,
    RESULT_PTR_OFFSET,
    CallInterceptor,
    Ctx,
    ExpectedSignature,
    ExportCall,
    HostLinkerBuilder,
    ImportCall,
    Runtime,
    validate_instance_implements_interface,
)
from tests.runtime import guests
from tests.runtime.conftest import Load

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "guests"


class Log(CallInterceptor):
    """Remembers what it saw."""

    def __init__(self) -> None:
        self.imports: list[str] = []
        self.exports: list[str] = []

    async def import_completed(self, call: ImportCall) -> None:
        self.imports.append(call.function)

    async def export_completed(self, call: ExportCall) -> None:
        self.exports.append(call.function)


def ident(ctx: Ctx, v: Value) -> Value:
    return v


async def async_ident(ctx: Ctx, v: Value) -> Value:
    return v


class TestAsyncImportMemoryRead:
    """func_async / func_async_result report an unreadable input as MemoryRead."""

    @pytest.mark.parametrize("result", [False, True], ids=["func_async", "func_async_result"])
    def test_async_import_with_unreadable_input_reports_memory_read(
        self, load: Load, result: bool
    ) -> None:
        errors: list[HostFunctionError] = []

        def host(b: HostLinkerBuilder) -> None:
            iface = b.interface("test")
            if result:
                iface.func_async_result(
                    "ident", async_ident, ok=ValueType.S64, err=ValueType.STRING
                )
            else:
                iface.func_async("ident", async_ident)

        inst = load(guests.typed_guest(("test", "ident"))).instantiate(host, on_error=errors.append)
        assert inst.call("poke_ident", 2**31 - 16, 64, 0, 4) == -1
        (err,) = errors
        assert err.kind == "MemoryRead"
        assert not err.message.startswith("Memory error")
        assert str(err).startswith("host function error in test::ident: memory read failed: ")

    def test_sync_import_with_unreadable_input_reports_decode(self, load: Load) -> None:
        errors: list[HostFunctionError] = []
        inst = load(guests.typed_guest(("test", "ident"))).instantiate(
            lambda b: b.interface("test").func_typed("ident", ident), on_error=errors.append
        )
        assert inst.call("poke_ident", 2**31 - 16, 64, 0, 4) == -1
        assert [(e.kind, e.message[:13]) for e in errors] == [("Decode", "Memory error:")]

    def test_async_import_decode_failure_carries_the_codec_text(self, load: Load) -> None:
        errors: list[HostFunctionError] = []
        inst = load(guests.typed_guest(("test", "ident"))).instantiate(
            lambda b: b.interface("test").func_async("ident", async_ident), on_error=errors.append
        )
        with pytest.raises(GuestError):
            inst.call_with_value("ident", b"not cgrf at all")
        assert [(e.kind, e.message) for e in errors] == [
            ("Decode", "Invalid encoding: Invalid magic")
        ]


class TestErrorReporting:
    """With no error handler, a failed host function is reported as packr does on stderr,
    here through logging."""

    def test_host_function_error_is_logged_without_a_handler(
        self, load: Load, caplog: pytest.LogCaptureFixture
    ) -> None:
        inst = load(guests.typed_guest(("test", "ident"))).instantiate(
            lambda b: b.interface("test").func_typed("ident", ident)
        )
        with (
            caplog.at_level(logging.ERROR, logger="packr_replay.runtime"),
            pytest.raises(GuestError),
        ):
            inst.call_with_value("ident", b"junk")
        (record,) = caplog.records
        assert record.name == "packr_replay.runtime"
        assert record.levelno == logging.ERROR
        assert record.getMessage().startswith("host function error in test::ident: decode failed:")

    def test_the_log_can_be_turned_off(self, load: Load, caplog: pytest.LogCaptureFixture) -> None:
        inst = load(guests.typed_guest(("test", "ident"))).instantiate(
            lambda b: b.interface("test").func_typed("ident", ident)
        )
        logger = logging.getLogger("packr_replay.runtime")
        logger.disabled = True
        try:
            with pytest.raises(GuestError):
                inst.call_with_value("ident", b"junk")
        finally:
            logger.disabled = False
        assert caplog.records == []

    def test_a_handler_replaces_the_log(self, load: Load, caplog: pytest.LogCaptureFixture) -> None:
        seen: list[HostFunctionError] = []
        inst = load(guests.typed_guest(("test", "ident"))).instantiate(
            lambda b: b.interface("test").func_typed("ident", ident), on_error=seen.append
        )
        with pytest.raises(GuestError):
            inst.call_with_value("ident", b"junk")
        assert len(seen) == 1
        assert caplog.records == []


class TestCaptureScope:
    """packr captures the error handler and the interceptor when interface() is called."""

    def test_error_handler_is_captured_when_interface_is_called(
        self, load: Load, caplog: pytest.LogCaptureFixture
    ) -> None:
        first: list[HostFunctionError] = []
        second: list[HostFunctionError] = []

        def host(b: HostLinkerBuilder) -> None:
            early = b.interface("early")  # before any handler: the default (logging)
            b.on_error(first.append)
            b.interface("a").func_typed("ident", ident)
            b.on_error(second.append)  # only for interfaces created from here on
            b.interface("b").func_typed("ident", ident)
            early.func_typed("ident", ident)

        wat = guests.typed_guest(("a", "ident", "a"), ("b", "ident", "b"), ("early", "ident", "e"))
        inst = load(wat).instantiate(host)
        for export in ("a", "b", "e"):
            with pytest.raises(GuestError):
                inst.call_with_value(export, b"junk")
        assert [e.interface for e in first] == ["a"]
        assert [e.interface for e in second] == ["b"]
        assert [r.getMessage().split("::")[0] for r in caplog.records] == [
            "host function error in early"
        ]

    def test_interceptor_is_captured_when_interface_is_called(self, load: Load) -> None:
        log = Log()

        def host(b: HostLinkerBuilder) -> None:
            b.interface("a").func_typed("ident", ident)
            b.set_interceptor(log)
            b.interface("b").func_typed("ident", ident)

        inst = load(guests.typed_guest(("a", "ident", "a"), ("b", "ident", "b"))).instantiate(host)
        inst.call_with_value("a", S64(1))
        inst.call_with_value("b", S64(2))
        assert log.imports == ["ident"]  # only b's
        assert log.exports == []  # a builder's interceptor never sees export calls

    def test_instantiate_interceptor_serves_every_function(self, load: Load) -> None:
        log, other = Log(), Log()

        def host(b: HostLinkerBuilder) -> None:
            b.set_interceptor(other)
            b.interface("a").func_typed("ident", ident)

        inst = load(guests.typed_guest(("a", "ident", "a"))).instantiate(host, interceptor=log)
        inst.call_with_value("a", S64(1))
        assert (log.imports, log.exports, other.imports) == (["ident"], ["a"], [])

    def test_set_interceptor_after_instantiation_intercepts_exports(self, load: Load) -> None:
        """packr's AsyncInstance::set_interceptor: export calls from now on."""
        recorder = Log()
        inst = load(guests.typed_guest(("a", "ident", "a"))).instantiate(
            lambda b: b.interface("a").func_typed("ident", ident)
        )
        inst.call_with_value("a", S64(1))
        inst.set_interceptor(recorder)
        inst.call_with_value("a", S64(2))
        assert recorder.exports == ["a"]
        assert recorder.imports == []  # imports keep what they were linked with

    def test_set_interceptor_short_circuits_exports(self, load: Load) -> None:
        class Canned(CallInterceptor):
            async def before_export(self, function: str, input: object) -> Value:
                return String("canned")

        inst = load(guests.typed_guest(("a", "ident", "a"))).instantiate(
            lambda b: b.interface("a").func_typed("ident", ident)
        )
        inst.set_interceptor(Canned())
        assert inst.call_with_value("a", S64(1)) == String("canned")
        inst.set_interceptor(None)
        assert inst.call_with_value("a", S64(1)) == S64(1)


class TestHostReplyCap:
    """packr 0.7.0 puts no cap on a host's reply; the cap is a setting."""

    def test_forty_kilobyte_reply_works_by_default(self, load: Load) -> None:
        big = String("x" * 40_000)
        inst = load(guests.typed_guest(("test", "big"), pages=3)).instantiate(
            lambda b: b.interface("test").func_typed("big", lambda ctx, v: big)
        )
        assert inst.call_with_value("big", Tuple()) == big

    def test_cap_as_a_setting(self, load: Load) -> None:
        errors: list[HostFunctionError] = []
        big = String("x" * 40_000)
        inst = load(guests.typed_guest(("test", "big"), pages=3)).instantiate(
            lambda b: b.interface("test").func_typed("big", lambda ctx, v: big),
            scratch_capacity=32768,
            on_error=errors.append,
        )
        with pytest.raises(GuestError):
            inst.call_with_value("big", Tuple())
        assert [e.kind for e in errors] == ["MemoryWrite"]
        assert "exceeds capacity 32768" in errors[0].message


class TestHostApi:
    """packr's runtime API with a Python counterpart."""

    def test_abi_layout_constants(self) -> None:
        assert (INPUT_BUFFER_OFFSET, RESULT_PTR_OFFSET, RESULT_LEN_OFFSET) == (0, 16384, 16388)
        assert (OUTPUT_BUFFER_OFFSET, OUTPUT_BUFFER_CAPACITY) == (16384, 32768)

    def test_instance_read_and_write_value(self, load: Load) -> None:
        inst = load(guests.ECHO).instantiate()
        n = inst.write_value(100, Variant("node", "leaf", 0, [S64(7)]))
        assert n == len(encode(Variant("node", "leaf", 0, [S64(7)])))
        assert inst.read_value(100, n) == Variant("node", "leaf", 0, [S64(7)])
        assert inst.read_memory(100, 4) == b"CGRF"
        inst.write_memory(200, b"\x01\x02")
        assert inst.read_memory(200, 2) == b"\x01\x02"
        assert inst.memory_size() == inst.memory.size
        with pytest.raises(AbiError):
            inst.read_value(200, 2)
        with pytest.raises(GuestMemoryError):
            inst.read_value(inst.memory_size() - 1, 8)

    def test_async_plain_export_call(self, load: Load) -> None:
        inst = load(guests.PLAIN).instantiate()

        async def run() -> tuple[int, int]:
            a, b = await asyncio.gather(inst.call_async("add", 2, 3), inst.call_async("add", -1, 1))
            return a, b

        assert asyncio.run(run()) == (5, 0)

    def test_decode_arg_and_encode_result_with_schema(self) -> None:
        class Tree(TaggedUnion):
            leaf = case(s64)
            node = case(list["Tree"])

        rt = Runtime()
        value = Variant("Tree", "node", 1, [_tree_list([_leaf(3)])])
        data = encode(value)
        assert rt.decode_arg([], data, Tree) == value
        assert rt.encode_result_with_schema([], value, Tree) == data
        assert rt.encode_result(value) == data
        with pytest.raises(SchemaError, match="Variant tag out of range"):
            rt.decode_arg([], encode(Variant("Tree", "x", 7)), Tree)
        point = TD.record("point", [("x", TD.S32)])
        with pytest.raises(SchemaError) as info:
            rt.decode_arg([point], encode(S64(1)), TD.ref("point"))
        assert info.value.kind == "TypeMismatch"


def _leaf(n: int) -> Variant:
    return Variant("Tree", "leaf", 0, [S64(n)])


def _tree_list(items: list[Variant]) -> Value:
    from packr_replay.abi import List

    return List(ValueType.variant("Tree"), items)


class TestValidateInterface:
    """validate_instance_implements_interface and its error type."""

    def test_example_guest_implements_its_declared_exports(self) -> None:
        module = Runtime().load_module(EXAMPLES / "echo.wasm")
        inst = module.instantiate()
        inst.validate_interface(module.types())
        validate_instance_implements_interface(inst, ["echo", "transform"])

    def test_missing_function(self) -> None:
        inst = Runtime().load_module(EXAMPLES / "echo.wasm").instantiate()
        with pytest.raises(InterfaceError) as info:
            inst.validate_interface([FunctionSig("", "reverse", (ParamSig("x", TD.VALUE),))])
        assert (info.value.kind, info.value.name) == ("MissingFunction", "reverse")
        assert str(info.value) == "Missing function 'reverse' required by interface"

    def test_signature_mismatch(self, load: Load) -> None:
        inst = load(guests.PLAIN).instantiate()
        with pytest.raises(InterfaceError) as info:
            inst.validate_interface(["add"])
        assert info.value.kind == "SignatureMismatch"
        assert info.value.expected == "(i32, i32, i32, i32) -> (i32)"
        assert str(info.value).startswith("Function 'add' has wrong signature: expected ")

    def test_packr_legacy_check(self, load: Load) -> None:
        """packr 0.7.0's own rule: (i32, i32) -> i64, or () -> () with no params/results."""
        wat = """(module (memory (export "memory") 1)
          (func (export "process") (param i32 i32) (result i64) (i64.const 0))
          (func (export "init")))"""
        inst = load(wat).instantiate()
        process = FunctionSig("api", "process", (ParamSig("input", TD.STRING),), (TD.STRING,))
        init = FunctionSig("api", "init")
        inst.validate_interface([process, init], legacy=True)
        with pytest.raises(InterfaceError, match="expected \\(i32, i32\\) -> i64"):
            inst.validate_interface([FunctionSig("api", "init", (), (TD.S32,))], legacy=True)
        with pytest.raises(InterfaceError, match="wrong signature"):
            inst.validate_interface([process])
        assert ExpectedSignature.NO_ARGS_NO_RESULTS == "() -> ()"

    def test_missing_memory(self, load: Load) -> None:
        inst = load('(module (func (export "f")))').instantiate()
        with pytest.raises(InterfaceError) as info:
            inst.validate_interface([])
        assert info.value.kind == "MissingMemory"
        assert str(info.value) == "Missing memory export 'memory'"

    def test_an_empty_interface_passes(self, load: Load) -> None:
        load(guests.ECHO).instantiate().validate_interface([])
