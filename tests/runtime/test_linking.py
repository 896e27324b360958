"""Linking: every missing import in one LinkError, and modules shaped like packr's
fixed-base assets (imported ``env.memory`` plus ``pack:alloc``, spec §9)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from packr_replay.abi import S64, String, Tuple, Value, encode
from packr_replay.errors import LinkError
from packr_replay.runtime import Ctx, HostLinkerBuilder, Instance, Module, ReplyMode

Load = Callable[[str], Module]

MANY_IMPORTS = """
(module
  (import "theater:simple/runtime" "log" (func (param i32 i32 i32 i32) (result i32)))
  (import "math" "double" (func (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
  (import "env" "clock" (func (param i64) (result f64)))
  (import "env" "table" (table 1 funcref))
  (import "env" "g" (global i32))
  (import "other" "mem" (memory 1))
  (func (export "ok") (param i32 i32 i32 i32) (result i32) (i32.const 0)))
"""


def _double(ctx: Ctx, v: Value) -> Value:
    assert isinstance(v, S64)
    return S64(v.value * 2)


def math_host(b: HostLinkerBuilder) -> None:
    b.interface("math").func_typed("double", _double)


class TestLinkError:
    """Unresolved imports are all listed, each with its signature, in one error."""

    def test_lists_every_missing_import(self, load: Load) -> None:
        with pytest.raises(LinkError) as info:
            load(MANY_IMPORTS).instantiate(math_host)
        missing = {(m, n): sig for m, n, sig in info.value.missing}
        assert set(missing) == {
            ("theater:simple/runtime", "log"),
            ("wasi_snapshot_preview1", "fd_write"),
            ("env", "clock"),
            ("env", "table"),
            ("env", "g"),
            ("other", "mem"),
        }
        assert missing[("theater:simple/runtime", "log")] == "(i32, i32, i32, i32) -> (i32)"
        assert missing[("env", "clock")] == "(i64) -> (f64)"
        assert "memory" in missing[("other", "mem")]
        text = str(info.value)
        assert text.startswith("6 unresolved imports:")
        assert "theater:simple/runtime.log: (i32, i32, i32, i32) -> (i32)" in text
        assert "env.clock: (i64) -> (f64)" in text

    def test_nothing_provided(self, load: Load) -> None:
        with pytest.raises(LinkError) as info:
            load(MANY_IMPORTS).instantiate()
        assert len(info.value.missing) == 7

    def test_signature_mismatch_raw(self, load: Load) -> None:
        wat = '(module (import "m" "f" (func (param i32) (result i32))))'

        def host(b: HostLinkerBuilder) -> None:
            b.interface("m").func_raw("f", lambda ctx, a: a, params=("i64",), results=("i64",))

        with pytest.raises(LinkError) as info:
            load(wat).instantiate(host)
        (entry,) = info.value.missing
        assert entry[2] == "(i32) -> (i32) (host provides (i64) -> (i64))"

    def test_typed_function_needs_packr_signature(self, load: Load) -> None:
        wat = '(module (import "math" "double" (func (param i64) (result i64))))'
        with pytest.raises(LinkError, match="typed packr function"):
            load(wat).instantiate(math_host)

    def test_unused_host_functions_are_fine(self, echo: Module) -> None:
        assert echo.instantiate(math_host).call_with_value("echo", S64(1)) == S64(1)

    def test_pack_alloc_wrong_signature(self, load: Load) -> None:
        wat = '(module (import "pack:alloc" "alloc" (func (param i32) (result i32))))'
        with pytest.raises(LinkError, match=r"pack:alloc\.alloc"):
            load(wat).instantiate()


class TestFixedBase:
    """A guest importing env.memory and pack:alloc runs without extra user code."""

    def test_process_with_scratch_replies(self, fixed_base: Module) -> None:
        inst = fixed_base.instantiate(math_host)
        assert inst.call_with_value("process", S64(5)) == S64(10)
        assert inst.call_with_value("process", S64(20)) == S64(40)

    def test_process_with_guest_allocated_replies(self, fixed_base: Module) -> None:
        inst = fixed_base.instantiate(math_host, reply=ReplyMode.GUEST_ALLOC)
        assert inst.call_with_value("process", S64(5)) == S64(10)

    def test_imported_memory_is_the_guest_memory(self, fixed_base: Module) -> None:
        inst = fixed_base.instantiate(math_host)
        assert inst.memory.size == 128 * 65536
        # the data segment was written into the host-owned memory
        assert inst.memory.read(0xD0000, 11) == b"static-data"

    def test_allocations_start_at_heap_base(self, fixed_base: Module) -> None:
        inst = fixed_base.instantiate(math_host)
        inst.call_with_value("process", S64(1))
        first = inst.call("last_in")
        assert first >= 0xD1DA0
        assert first % 8 == 0  # aligned as asked
        inst.call_with_value("process", S64(1))
        assert inst.call("last_in") > first  # a bump allocator: never reuses

    def test_memory_grows_on_demand(self, fixed_base: Module) -> None:
        seen: list[int] = []

        def big(ctx: Ctx, v: Value) -> Value:
            seen.append(len(encode(v)))
            return v

        host = lambda b: b.interface("math").func_typed("double", big)  # noqa: E731
        inst = fixed_base.instantiate(host, reply=ReplyMode.GUEST_ALLOC)
        value = String("m" * (9 * 1024 * 1024))  # more than the 8 MiB initial memory
        assert inst.call_with_value("process", value) == value
        assert inst.memory.size > 128 * 65536
        assert seen == [len(encode(value))]

    def test_guest_allocated_reply_is_freed_by_guest(self, fixed_base: Module) -> None:
        frees: list[tuple[int, int, int]] = []

        def host(b: HostLinkerBuilder) -> None:
            math_host(b)
            # only dealloc is provided: alloc stays the default bump allocator
            b.interface("pack:alloc").func_raw(
                "dealloc",
                lambda ctx, p, s, a: frees.append((p, s, a)),
                params=("i32", "i32", "i32"),
            )

        inst = fixed_base.instantiate(host, reply=ReplyMode.GUEST_ALLOC)
        assert inst.call_with_value("process", S64(3)) == S64(6)
        reply_len = len(encode(S64(6)))
        # the input copy (align 8), the status-1 reply (align 1), then the host frees
        # the export's input and output through __pack_free (align 1)
        assert [(s, a) for _, s, a in frees] == [
            (len(encode(S64(3))), 8),
            (reply_len, 1),
            (len(encode(S64(3))), 1),
            (reply_len, 1),
        ]
        assert all(p >= 0xD1DA0 for p, _, _ in frees)

    def test_scratch_reply_is_not_freed(self, fixed_base: Module) -> None:
        frees: list[tuple[int, int, int]] = []

        def host(b: HostLinkerBuilder) -> None:
            math_host(b)
            b.interface("pack:alloc").func_raw(
                "dealloc",
                lambda ctx, p, s, a: frees.append((p, s, a)),
                params=("i32", "i32", "i32"),
            )

        inst = fixed_base.instantiate(host)
        assert inst.call_with_value("process", S64(3)) == S64(6)
        assert 16392 not in [p for p, _, _ in frees]
        assert len(frees) == 3

    def test_user_pack_alloc_overrides_default(self, fixed_base: Module) -> None:
        calls: list[tuple[int, int]] = []
        heap = [0x200000]

        def host(b: HostLinkerBuilder) -> None:
            math_host(b)
            alloc = b.interface("pack:alloc")

            @alloc.func_raw("alloc", params=("i32", "i32"), results=("i32",))
            def _alloc(ctx: Ctx, size: int, align: int) -> int:
                calls.append((size, align))
                ptr = (heap[0] + align - 1) & ~(align - 1)
                heap[0] = ptr + size
                return ptr

            alloc.func_raw("dealloc", lambda ctx, p, s, a: None, params=("i32", "i32", "i32"))

        inst = fixed_base.instantiate(host)
        assert inst.call_with_value("process", S64(4)) == S64(8)
        assert calls
        assert inst.call("last_in") >= 0x200000

    def test_default_alloc_exhaustion_returns_zero(self, load: Load) -> None:
        wat = """
        (module
          (import "env" "memory" (memory 1))
          (import "pack:alloc" "alloc" (func $alloc (param i32 i32) (result i32)))
          (func (export "alloc") (param i32 i32) (result i32)
            (call $alloc (local.get 0) (local.get 1))))"""
        inst = load(wat).instantiate(memory_limit=4 * 65536)
        assert inst.call("alloc", 0xFFFF_FFF0, 8) == 0  # would pass 4 GiB
        assert inst.call("alloc", 16 * 65536, 8) == 0  # over the memory limit
        ptr = inst.call("alloc", 100, 16)
        assert ptr != 0
        assert ptr % 16 == 0
        assert inst.call("alloc", 0, 1) != 0  # zero-size allocations are distinct

    def test_without_heap_base_starts_at_memory_end(self, load: Load) -> None:
        wat = """
        (module
          (import "env" "memory" (memory 2))
          (import "pack:alloc" "alloc" (func $alloc (param i32 i32) (result i32)))
          (func (export "alloc") (param i32 i32) (result i32)
            (call $alloc (local.get 0) (local.get 1))))"""
        inst = load(wat).instantiate()
        assert inst.call("alloc", 10, 1) == 2 * 65536
        assert inst.memory.size == 3 * 65536

    def test_bad_alignment_treated_as_one(self, load: Load) -> None:
        wat = """
        (module
          (import "env" "memory" (memory 1))
          (import "pack:alloc" "alloc" (func $alloc (param i32 i32) (result i32)))
          (func (export "alloc") (param i32 i32) (result i32)
            (call $alloc (local.get 0) (local.get 1))))"""
        inst = load(wat).instantiate()
        a = inst.call("alloc", 3, 3)
        b = inst.call("alloc", 3, 0)
        assert b == a + 3

    def test_ctors_run_after_instantiation(self, load: Load) -> None:
        wat = """
        (module
          (import "env" "memory" (memory 1))
          (import "pack:alloc" "alloc" (func $alloc (param i32 i32) (result i32)))
          (global (export "__heap_base") i32 (i32.const 4096))
          (global $p (mut i32) (i32.const 0))
          (func (export "__wasm_call_ctors") (global.set $p (call $alloc (i32.const 8) (i32.const 8))))
          (func (export "p") (result i32) (global.get $p)))"""
        inst = load(wat).instantiate()
        assert inst.call("p") == 4096  # ctors saw __heap_base


class TestHostOwnedMemoryWithTypedImports:
    """Typed imports read and write the host-owned env.memory."""

    def test_typed_reply_into_imported_memory(self, fixed_base: Module) -> None:
        got: list[Value] = []

        def host(b: HostLinkerBuilder) -> None:
            def double(ctx: Ctx, v: Value) -> Value:
                got.append(v)
                assert ctx.memory is ctx.instance.memory
                return _double(ctx, v)

            b.interface("math").func_typed("double", double)

        inst: Instance = fixed_base.instantiate(host)
        assert inst.call_with_value("process", S64(21)) == S64(42)
        assert got == [S64(21)]
        # the scratch reply is in the imported memory at 16392
        assert inst.memory.read(16392, 32) == encode(S64(42))

    def test_unit_input(self, fixed_base: Module) -> None:
        inst = fixed_base.instantiate(
            lambda b: b.interface("math").func_typed("double", lambda ctx, v: v)
        )
        assert inst.call_with_value("process", Tuple()) == Tuple()
