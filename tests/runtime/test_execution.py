"""Running guests: packr's ``wasm_execution`` behaviours (spec §8), the export
convention (spec §4), budgets, traps and hostile export output."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from packr_replay.abi import (
    F64,
    S64,
    AbiError,
    Bool,
    List,
    Option,
    Record,
    String,
    Tuple,
    Value,
    ValueType,
    Variant,
    encode,
)
from packr_replay.errors import (
    ExportNotFound,
    GuestError,
    GuestMemoryError,
    GuestRuntimeError,
    GuestTimeout,
    GuestTrap,
    InvalidGuestOutput,
    ModuleLoadError,
)
from packr_replay.runtime import Ctx, HostLinkerBuilder, Instance, Module, Runtime

from . import guests
from .conftest import TEST_FUEL

Load = Callable[[str], Module]

EXPR = ValueType.variant("expr")


def num(n: int) -> Variant:
    return Variant("expr", "num", 1, [S64(n)])


def sym(s: str) -> Variant:
    return Variant("expr", "sym", 0, [String(s)])


def cons(head: Value, tail: Value) -> Variant:
    return Variant("expr", "cons", 6, [Tuple(head, tail)])


NIL = Variant("expr", "nil", 5)

ECHO_VALUES = {
    "s64": S64(42),
    "string": String("hello, wörld"),
    "list<s64>": List(ValueType.S64, [S64(1), S64(-2), S64(2**62)]),
    "variant-tag-1": num(7),
    "nested-variants": List(
        EXPR,
        [
            cons(sym("+"), cons(num(1), cons(num(2), NIL))),
            Variant("expr", "list", 4, [List(EXPR, [num(1), sym("x"), NIL])]),
        ],
    ),
    "record": Record("point", [("x", F64(1.5)), ("y", Option(ValueType.BOOL, Bool(True)))]),
    "unit": Tuple(),
}


class TestPlainExports:
    """Plain wasm exports and host access to guest memory."""

    def test_add(self, plain: Instance) -> None:
        assert plain.call("add", 2, 3) == 5
        assert plain.call("add", -1, 1) == 0
        assert plain.call("add", 0x7FFFFFFF, 1) == -0x80000000  # i32 wraps, signed out

    def test_add64(self, plain: Instance) -> None:
        assert plain.call("add64", 10**12, 2 * 10**12) == 3 * 10**12

    def test_floats_and_multi_value(self, plain: Instance) -> None:
        assert plain.call("addf", 1.25, 0.5) == 1.75
        assert plain.call("pair") == (7, -8)

    def test_wrong_arity(self, plain: Instance) -> None:
        with pytest.raises(TypeError, match="takes 2 arguments"):
            plain.call("add", 1)

    def test_missing_export(self, plain: Instance) -> None:
        with pytest.raises(ExportNotFound) as info:
            plain.call("nope")
        assert info.value.export == "nope"
        with pytest.raises(ExportNotFound):
            plain.call("memory")

    def test_host_writes_visible_to_wasm(self, plain: Instance) -> None:
        plain.memory.write(0, bytes([1, 2, 3, 4, 5]))
        assert plain.call("sum_bytes", 0, 5) == 15
        assert plain.memory.read(0, 5) == bytes([1, 2, 3, 4, 5])

    def test_string_at_offset_100(self, plain: Instance) -> None:
        text = b"Hello"
        plain.memory.write(100, text)
        assert plain.memory.read(100, 5) == text
        assert plain.call("sum_bytes", 100, 5) == sum(text)

    def test_reverse_in_place(self, plain: Instance) -> None:
        plain.memory.write(200, b"Hello")
        plain.call("reverse", 200, 5)
        assert plain.memory.read(200, 5) == b"olleH"

    def test_memory_view(self, plain: Instance) -> None:
        view = plain.memory.view()
        view[300:303] = b"abc"
        assert plain.memory.read(300, 3) == b"abc"
        assert len(view) == plain.memory.size == 65536


class TestEcho:
    """A WAT echo with no __pack_alloc: input at 0, output at 16392 (spec §4)."""

    @pytest.mark.parametrize("value", ECHO_VALUES.values(), ids=ECHO_VALUES.keys())
    def test_round_trip(self, echo: Module, value: Value) -> None:
        inst = echo.instantiate()
        out = inst.call_raw("echo", value)
        assert out.value == value
        assert out.data == encode(value)
        assert inst.memory.read(0, len(out.data)) == out.data  # input went to offset 0

    def test_variant_tag_survives(self, echo: Module) -> None:
        out = echo.instantiate().call_with_value("echo", num(3))
        assert isinstance(out, Variant)
        assert (out.type_name, out.case_name, out.tag) == ("expr", "num", 1)

    def test_one_tuple_input_passes_as_is(self, echo: Module) -> None:
        # the host does not unwrap; guests do (spec §7.2)
        assert echo.instantiate().call_with_value("echo", Tuple(S64(1))) == Tuple(S64(1))

    def test_unencodable_input(self, echo: Module) -> None:
        with pytest.raises(AbiError):
            echo.instantiate().call_with_value("echo", List(ValueType.U8, [S64(1)]))

    @pytest.mark.asyncio
    async def test_async_round_trip(self, echo: Module) -> None:
        inst = echo.instantiate()
        for value in ECHO_VALUES.values():
            assert await inst.call_with_value_async("echo", value) == value

    def test_input_too_big_for_memory(self, echo: Module) -> None:
        with pytest.raises(GuestMemoryError, match="Failed to write input"):
            echo.instantiate().call_with_value("echo", String("x" * 200_000))

    def test_load_from_bytes_and_path(self, runtime: Runtime, tmp_path: object) -> None:
        import pathlib

        assert isinstance(tmp_path, pathlib.Path)
        wasm = runtime.load_module(guests.ECHO).wasm
        from_bytes = runtime.load_module(wasm)
        (tmp_path / "echo.wasm").write_bytes(wasm)
        (tmp_path / "echo.wat").write_text(guests.ECHO)
        from_path = runtime.load_module(tmp_path / "echo.wasm")
        from_wat_path = runtime.load_module(str(tmp_path / "echo.wat"))
        assert from_path.name == "echo"
        assert from_bytes.sha256 == from_path.sha256 == from_wat_path.sha256
        commented = ";; a comment first\n(; block ;)\n" + guests.ECHO
        assert runtime.load_module(commented).sha256 == from_bytes.sha256
        assert from_path.instantiate().call_with_value("echo", S64(1)) == S64(1)

    def test_bad_module(self, runtime: Runtime) -> None:
        with pytest.raises(ModuleLoadError, match="invalid WAT"):
            runtime.load_module("(module (func (export")
        with pytest.raises(ModuleLoadError, match="cannot read"):
            runtime.load_module("/no/such/file.wasm")
        with pytest.raises(ModuleLoadError, match="cannot compile"):
            runtime.load_module(b"\0asm\x01\0\0\0\xff")

    def test_not_wasm_is_said_plainly(self, runtime: Runtime, tmp_path: Path) -> None:
        """Text that is not WAT and binary that is not wasm are "not a WebAssembly
        module", not a WAT syntax error at <anon>:1:1."""
        cases = {"notes.md": b"# notes\n", "empty.wasm": b"", "noise.wasm": b"\x89PNG\r\n\x1a\n"}
        for name, data in cases.items():
            (tmp_path / name).write_bytes(data)
            with pytest.raises(ModuleLoadError) as info:
                runtime.load_module(tmp_path / name)
            assert str(info.value).startswith(
                f"{tmp_path / name}: not a WebAssembly module (or WAT text): "
            )
            assert "<anon>" not in str(info.value)
        with pytest.raises(ModuleLoadError, match=r"^the bytes: not a WebAssembly module .*an empty"):
            runtime.load_module(b"")

    def test_module_introspection(self, echo: Module) -> None:
        assert echo.imports == []
        exp = echo.export("echo")
        assert exp is not None
        assert exp.signature == "(i32, i32, i32, i32) -> (i32)"
        assert echo.export("memory") is not None
        assert echo.export("memory").kind == "memory"  # type: ignore[union-attr]


class TestBudgets:
    """Guests run under fuel and an optional wall-clock timeout (packr guests spin
    forever on panic)."""

    def test_fuel(self, hostile: Instance) -> None:
        with pytest.raises(GuestTimeout) as info:
            hostile.call_with_value("spin", S64(1))
        assert info.value.export == "spin"
        assert "fuel" in info.value.budget
        assert str(TEST_FUEL) in str(info.value)

    def test_fuel_plain_export(self, hostile: Instance) -> None:
        with pytest.raises(GuestTimeout, match="spin_plain"):
            hostile.call("spin_plain")

    def test_fuel_is_per_call(self, hostile: Instance) -> None:
        for _ in range(3):
            with pytest.raises(GuestTimeout):
                hostile.call_with_value("spin", S64(1))
        # a well-behaved call afterwards has its full budget again
        hostile.memory.write(1024, b"ok")
        for off, val in ((2048, 1024), (2052, 2), (2056, 0xFFFFFFFF)):
            hostile.memory.write_u32(off, val)
        with pytest.raises(GuestError, match="ok"):
            hostile.call_with_value("bad", S64(1))

    def test_wall_clock_timeout(self, load: Load) -> None:
        inst = load(guests.HOSTILE_EXPORTS).instantiate(fuel=None, timeout=0.05)
        start = time.monotonic()
        with pytest.raises(GuestTimeout) as info:
            inst.call_with_value("spin", S64(1))
        assert time.monotonic() - start < 5
        assert info.value.export == "spin"
        assert "wall-clock" in info.value.budget

    def test_runtime_defaults_apply(self) -> None:
        rt = Runtime(fuel=10_000)
        inst = rt.load_module(guests.HOSTILE_EXPORTS).instantiate()
        assert inst.fuel == 10_000
        with pytest.raises(GuestTimeout, match="10000"):
            inst.call("spin_plain")

    @pytest.mark.asyncio
    async def test_fuel_async(self, hostile: Instance) -> None:
        with pytest.raises(GuestTimeout):
            await hostile.call_with_value_async("spin", S64(1))

    def test_spinning_start_function(self, runtime: Runtime) -> None:
        wat = "(module (func $s (loop $l (br $l))) (start $s))"
        with pytest.raises(GuestTimeout, match="instantiation"):
            runtime.load_module(wat).instantiate()


class TestTraps:
    """Traps become GuestTrap naming the export, with wasmtime's trap text."""

    @pytest.mark.parametrize(
        ("export", "text"),
        [
            ("boom", "unreachable"),
            ("oob", "out of bounds"),
            ("div0", "divide by zero"),
        ],
    )
    def test_trap(self, hostile: Instance, export: str, text: str) -> None:
        with pytest.raises(GuestTrap) as info:
            hostile.call_with_value(export, S64(1))
        assert info.value.export == export
        assert text in info.value.trap
        assert export in str(info.value)

    def test_trap_in_plain_export(self, runtime: Runtime) -> None:
        inst = runtime.load_module('(module (func (export "f") unreachable))').instantiate()
        with pytest.raises(GuestTrap, match="unreachable"):
            inst.call("f")

    def test_trap_in_start_function(self, runtime: Runtime) -> None:
        wat = "(module (func $s unreachable) (start $s))"
        with pytest.raises(GuestTrap, match="instantiation"):
            runtime.load_module(wat).instantiate()

    def test_instance_survives_a_trap(self, hostile: Instance) -> None:
        with pytest.raises(GuestTrap):
            hostile.call_with_value("boom", S64(1))
        with pytest.raises(GuestTrap):
            hostile.call_with_value("boom", S64(1))

    def test_all_are_guest_runtime_errors(self) -> None:
        for cls in (GuestTrap, GuestTimeout, GuestError, InvalidGuestOutput, ExportNotFound):
            assert issubclass(cls, GuestRuntimeError)


def _set_output(inst: Instance, ptr: int, length: int, status: int) -> None:
    inst.memory.write_u32(2048, ptr)
    inst.memory.write_u32(2052, length)
    inst.memory.write_u32(2056, status)


class TestHostileExports:
    """An export's ptr/len/status are untrusted: every abuse is a typed error."""

    def test_not_packr_signature(self, hostile: Instance) -> None:
        with pytest.raises(ExportNotFound, match="signature"):
            hostile.call_with_value("not_packr", S64(1))

    def test_missing(self, hostile: Instance) -> None:
        with pytest.raises(ExportNotFound) as info:
            hostile.call_with_value("missing", S64(1))
        assert info.value.export == "missing"

    def test_garbage_bytes(self, hostile: Instance) -> None:
        hostile.memory.write(4096, b"definitely not cgrf")
        _set_output(hostile, 4096, 19, 0)
        with pytest.raises(InvalidGuestOutput) as info:
            hostile.call_with_value("bad", S64(1))
        assert info.value.export == "bad"
        assert isinstance(info.value.cause, AbiError)
        assert "Invalid magic" in str(info.value)

    def test_truncated_cgrf(self, hostile: Instance) -> None:
        data = encode(String("hello"))
        hostile.memory.write(4096, data)
        _set_output(hostile, 4096, len(data) - 1, 0)
        with pytest.raises(InvalidGuestOutput):
            hostile.call_with_value("bad", S64(1))

    @pytest.mark.parametrize(
        ("ptr", "length"),
        [
            (0xFFFF_FF00, 32),  # pointer past the end
            (65536 - 8, 32),  # straddles the end
            (0x8000_0000, 16),  # "negative" pointer
            (0, 0x7FFF_FFFF),  # 2 GiB
            (16, 0xFFFF_FFFF),  # length -1
            (0, 1 << 28 + 1),  # over the CGRF buffer limit
        ],
    )
    def test_out_of_bounds_output(self, hostile: Instance, ptr: int, length: int) -> None:
        _set_output(hostile, ptr, length, 0)
        with pytest.raises(GuestMemoryError):
            hostile.call_with_value("bad", S64(1))

    def test_length_inside_memory_but_not_cgrf(self, hostile: Instance) -> None:
        _set_output(hostile, 0, 65536, 0)
        with pytest.raises(InvalidGuestOutput):
            hostile.call_with_value("bad", S64(1))

    def test_error_status_with_message(self, hostile: Instance) -> None:
        hostile.memory.write(4096, "bad input: ünïcode".encode())
        _set_output(hostile, 4096, len("bad input: ünïcode".encode()), 0xFFFFFFFF)
        with pytest.raises(GuestError) as info:
            hostile.call_with_value("bad", S64(1))
        assert info.value.message == "bad input: ünïcode"
        assert info.value.status == -1
        assert "function 'bad' returned error: bad input" in str(info.value)

    def test_status_1_is_an_error(self, hostile: Instance) -> None:
        hostile.memory.write(4096, b"one")
        _set_output(hostile, 4096, 3, 1)
        with pytest.raises(GuestError) as info:
            hostile.call_with_value("bad", S64(1))
        assert info.value.status == 1

    def test_error_status_with_bad_pointer(self, hostile: Instance) -> None:
        _set_output(hostile, 0xFFFF_FFF0, 64, 0xFFFFFFFF)
        with pytest.raises(GuestError, match="unreadable error message"):
            hostile.call_with_value("bad", S64(1))

    def test_error_status_invalid_utf8(self, hostile: Instance) -> None:
        hostile.memory.write(4096, b"\xff\xfeoops")
        _set_output(hostile, 4096, 6, 0xFFFFFFFF)
        with pytest.raises(GuestError, match="oops"):
            hostile.call_with_value("bad", S64(1))

    def test_huge_error_message_is_cut(self, load: Load) -> None:
        inst = load(guests.HOSTILE_EXPORTS).instantiate()
        inst.memory.grow(3)  # 4 pages = 256 KiB
        _set_output(inst, 0, 4 * 65536, 0xFFFFFFFF)
        with pytest.raises(GuestError) as info:
            inst.call_with_value("bad", S64(1))
        assert len(info.value.message) <= 4 * 65536


class TestConcurrency:
    """One call at a time per instance; re-entrant calls from host functions work."""

    def test_reentrant_call_from_host_function(self, load: Load) -> None:
        seen: list[int] = []

        def host(b: HostLinkerBuilder) -> None:
            def ident(ctx: Ctx, v: Value) -> Value:
                seen.append(ctx.instance.call("last_status"))  # back into the guest
                return v

            b.interface("test").func_typed("ident", ident)

        inst = load(guests.typed_guest(("test", "ident"))).instantiate(host)
        assert inst.call_with_value("ident", S64(1)) == S64(1)
        assert seen == [99]

    def test_second_thread_is_refused(self, load: Load) -> None:
        entered, release = threading.Event(), threading.Event()

        def host(b: HostLinkerBuilder) -> None:
            def slow(ctx: Ctx, v: Value) -> Value:
                entered.set()
                release.wait(5)
                return v

            b.interface("test").func_typed("slow", slow)

        inst = load(guests.typed_guest(("test", "slow"))).instantiate(host)
        results: list[Value] = []
        worker = threading.Thread(
            target=lambda: results.append(inst.call_with_value("slow", S64(1)))
        )
        worker.start()
        try:
            assert entered.wait(5)
            with pytest.raises(RuntimeError, match="another thread"):
                inst.call_with_value("slow", S64(2))
            with pytest.raises(RuntimeError, match="another thread"):
                inst.call("last_status")
        finally:
            release.set()
            worker.join(5)
        assert results == [S64(1)]
        assert inst.call_with_value("slow", S64(3)) == S64(3)  # free again
