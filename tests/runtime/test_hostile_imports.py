"""Hostile guests calling typed imports: every bad pointer, length or byte string ends
in status -1 plus a HostFunctionError, never a crash, hang or unbounded read."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from packr_replay.abi import S64, String, Tuple, Value, encode
from packr_replay.errors import GuestError, GuestTimeout, HostFunctionError
from packr_replay.runtime import Ctx, HostLinkerBuilder, Instance, Module, ReplyMode

from . import guests
from .guests import SIZE, Guest

Load = Callable[[str], Module]


class TestBadInput:
    """in_ptr / in_len outside memory, negative, 2 GiB, or not CGRF."""

    @pytest.mark.parametrize(
        ("ptr", "length"),
        [
            (SIZE - 4, 32),  # straddles the end
            (SIZE, 1),  # just past the end
            (-1, 32),  # negative pointer
            (-(2**31), 16),  # most negative pointer
            (0, -1),  # negative length = 4 GiB
            (0, 2**31 - 1),  # 2 GiB
            (2**31 - 1, 2**31 - 1),
            (1 << 20, 1 << 20),  # a MiB at 1 MiB: outside 128 KiB memory
        ],
    )
    def test_out_of_bounds(self, guest: Guest, ptr: int, length: int) -> None:
        assert guest.poke(ptr, length) == -1
        assert guest.kinds() == ["Decode"]
        assert guest.calls == []
        assert guest.inst.memory.read_u32(8000) == 0  # slots untouched

    def test_zero_length(self, guest: Guest) -> None:
        assert guest.poke(0, 0) == -1
        assert guest.kinds() == ["Decode"]

    @pytest.mark.parametrize(
        "data",
        [
            b"garbage!" * 4,
            b"CGRF",
            encode(S64(1))[:-1],  # truncated
            encode(S64(1)) + b"\0",  # trailing byte
            b"CGRF\x02\x00\x00\x00\xff\xff\xff\xff\x00\x00\x00\x00",  # 4 billion nodes
            b"CGRF\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00",  # version 1
        ],
        ids=["garbage", "magic-only", "truncated", "trailing", "node-count", "version"],
    )
    def test_garbage_cgrf(self, guest: Guest, data: bytes) -> None:
        guest.inst.memory.write(4096, data)
        assert guest.poke(4096, len(data)) == -1
        assert guest.kinds() == ["Decode"]
        assert guest.calls == []

    def test_host_survives(self, guest: Guest) -> None:
        assert guest.poke(-1, -1) == -1
        assert guest.inst.call_with_value("ident", S64(5)) == S64(5)
        assert guest.calls == [S64(5)]

    def test_export_reports_guest_error(self, guest: Guest) -> None:
        with pytest.raises(GuestError, match=guests.ERROR_MESSAGE):
            guest.inst.call_with_value("ident", b"\x00" * 40)
        assert guest.kinds() == ["Decode"]


class TestBadOutputSlots:
    """out_ptr_ptr / out_len_ptr outside memory: MemoryWrite, -1."""

    @pytest.mark.parametrize(
        ("out_pp", "out_lp"),
        [
            (SIZE, 9000),
            (8000, SIZE - 2),
            (-1, 9000),
            (8000, -4),
            (2**31, 2**31),
        ],
    )
    def test_slots_outside_memory(self, guest: Guest, out_pp: int, out_lp: int) -> None:
        data = encode(S64(3))
        guest.inst.memory.write(4096, data)
        assert guest.poke(4096, len(data), out_pp, out_lp) == -1
        assert guest.kinds() == ["MemoryWrite"]
        assert guest.calls == [S64(3)]  # the handler ran; only the write failed

    def test_slots_may_overlap_the_reply(self, guest: Guest) -> None:
        # legal though odd: the length slot inside the scratch area is written last
        data = encode(S64(3))
        guest.inst.memory.write(4096, data)
        assert guest.poke(4096, len(data), 8000, 16392) == 0
        assert guest.inst.memory.read_u32(16392) == len(data)

    def test_scratch_outside_memory(self, load: Load) -> None:
        # a one-page guest: 16392 + reply fits, but a big reply does not
        wat = """
        (module
          (import "test" "big" (func $big (param i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 1)
          (func (export "poke") (param i32 i32 i32 i32) (result i32)
            (call $big (local.get 0) (local.get 1) (local.get 2) (local.get 3))))"""
        errors: list[HostFunctionError] = []

        def host(b: HostLinkerBuilder) -> None:
            b.interface("test").func_typed("big", lambda ctx, v: String("z" * 60_000))

        inst = load(wat).instantiate(host, on_error=errors.append, scratch_capacity=None)
        data = encode(Tuple())
        inst.memory.write(0, data)
        assert inst.call("poke", 0, len(data), 100, 104) == -1
        assert [e.kind for e in errors] == ["MemoryWrite"]


class TestHostileAllocator:
    """A guest __pack_alloc that misbehaves when the host needs a reply buffer."""

    @staticmethod
    def _guest(load: Load, alloc_body: str) -> tuple[Instance, list[HostFunctionError]]:
        wat = f"""
        (module
          (import "test" "ident" (func $imp (param i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 1)
          (func (export "__pack_alloc") (param i32) (result i32) {alloc_body})
          (func (export "poke") (param i32 i32 i32 i32) (result i32)
            (call $imp (local.get 0) (local.get 1) (local.get 2) (local.get 3))))"""
        errors: list[HostFunctionError] = []
        inst = load(wat).instantiate(
            lambda b: b.interface("test").func_typed("ident", lambda ctx, v: v),
            reply=ReplyMode.GUEST_ALLOC,
            on_error=errors.append,
        )
        return inst, errors

    @pytest.mark.parametrize(
        ("body", "name"),
        [
            ("(i32.const 0)", "returns-0"),
            ("(i32.const -16)", "out-of-bounds"),
            ("(i32.const 65530)", "straddles-end"),
            ("unreachable", "traps"),
            ("(loop $l (br $l)) (i32.const 0)", "spins"),
        ],
    )
    def test_bad_pack_alloc(self, load: Load, body: str, name: str) -> None:
        inst, errors = self._guest(load, body)
        data = encode(S64(1))
        inst.memory.write(1024, data)
        if name == "spins":
            # the nested call used up the budget: the whole call stops, naming it
            with pytest.raises(GuestTimeout) as info:
                inst.call("poke", 1024, len(data), 8000, 8004)
            assert info.value.export == "__pack_alloc"
            assert errors == []
        else:
            assert inst.call("poke", 1024, len(data), 8000, 8004) == -1
            assert [e.kind for e in errors] == ["MemoryWrite"]
            if name == "traps":
                assert "unreachable" in str(errors[0])


class TestMemoryExhaustion:
    """Memory growth that fails is an error to the guest, not a crash."""

    def test_memory_limit_stops_guest_growth(self, load: Load) -> None:
        g = Guest(load, alloc=True, reply=ReplyMode.GUEST_ALLOC, memory_limit=2 * 65536)
        g.inst.memory.write(4096, encode(String("q" * 10)))

        def big(ctx: Ctx, v: Value) -> Value:
            return String("w" * 100_000)

        # swap the handler's reply for a big one through a replaying interceptor
        from packr_replay.runtime import CallInterceptor

        class Big(CallInterceptor):
            async def before_import(self, *args: object) -> Value:
                return big(g.inst.ctx, Tuple())

        g.inst.interceptor = Big()
        assert g.poke(4096, len(encode(String("q" * 10)))) == -1
        assert g.kinds() == ["MemoryWrite"]
        assert g.inst.memory.size == 2 * 65536

    def test_memory_limit_too_small_to_instantiate(self, load: Load) -> None:
        from packr_replay.errors import GuestRuntimeError

        with pytest.raises(GuestRuntimeError):
            load(guests.ECHO).instantiate(memory_limit=65536)

    def test_host_grow_past_limit(self, load: Load) -> None:
        import wasmtime

        inst = load(guests.ECHO).instantiate(memory_limit=3 * 65536)
        inst.memory.grow(1)
        with pytest.raises(wasmtime.WasmtimeError):
            inst.memory.grow(1)
