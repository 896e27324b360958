"""Store limits over the whole instance, a deadline for the start function and every
call, features packr guests do not use switched off, and module types read from the
module's bytes (wasmtime-py aborts the process printing a ``v128``)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import wasmtime

from packr_replay.errors import (
    ExportNotFound,
    GuestRuntimeError,
    GuestTimeout,
    GuestTrap,
    LinkError,
    ModuleLoadError,
)
from packr_replay.runtime import Runtime
from packr_replay.runtime.demo import EXAMPLE_GUESTS, example_guest
from packr_replay.runtime.limits import MIN_TABLE_ELEMENTS, store_limits
from packr_replay.runtime.wasm import extern_types, memory_count

MiB = 1 << 20

#: Four tables, each grown by 300M elements in the start function (9 GB unchecked);
#: traps if any growth succeeded.
FOUR_TABLES = """(module
  (table $a 0 funcref) (table $b 0 funcref) (table $c 0 funcref) (table $d 0 funcref)
  (func $grow
    (drop (table.grow $a (ref.null func) (i32.const 300000000)))
    (drop (table.grow $b (ref.null func) (i32.const 300000000)))
    (drop (table.grow $c (ref.null func) (i32.const 300000000)))
    (drop (table.grow $d (ref.null func) (i32.const 300000000)))
    (if (i32.gt_u (i32.add (table.size $a) (table.size $d)) (i32.const 0)) (then (unreachable))))
  (start $grow))"""

#: Three memories, each grown to the whole limit: together they must stay under it.
THREE_MEMORIES = """(module
  (memory $a 1) (memory $b 1) (memory $c 1)
  (func (export "grow") (param $pages i32) (result i32)
    (i32.add (i32.add
      (i32.ne (memory.grow $a (local.get $pages)) (i32.const -1))
      (i32.ne (memory.grow $b (local.get $pages)) (i32.const -1)))
      (i32.ne (memory.grow $c (local.get $pages)) (i32.const -1)))))"""

SPIN_START = "(module (func $spin (loop $l (br $l))) (start $spin))"


class TestStoreLimits:
    """The memory limit holds for the instance as a whole, tables included."""

    def test_tables_cannot_outgrow_their_share(self) -> None:
        module = Runtime(memory_limit=64 * MiB).load_module(FOUR_TABLES)
        module.instantiate()  # the start function's growth all failed: no trap

    def test_tables_without_a_memory_limit_grow(self) -> None:
        module = Runtime().load_module(FOUR_TABLES.replace("300000000", "10"))
        with pytest.raises(GuestTrap, match="unreachable"):
            module.instantiate()

    def test_several_memories_share_the_limit(self) -> None:
        module = Runtime(memory_limit=12 * MiB, multi_memory=True).load_module(THREE_MEMORIES)
        instance = module.instantiate()
        assert instance.call("grow", 63) == 3  # 3 x 4 MiB fits
        assert instance.call("grow", 1) == 0  # a 4th MiB each would not

    def test_multi_memory_is_off_by_default(self) -> None:
        with pytest.raises(ModuleLoadError, match="multi_memory=True"):
            Runtime().load_module(THREE_MEMORIES)

    def test_an_imported_memory_is_made_under_the_limit(self) -> None:
        module = Runtime(memory_limit=64 * MiB).load_module(
            '(module (import "env" "memory" (memory 65536)))'
        )
        with pytest.raises(GuestRuntimeError, match=r"env\.memory.*memory limit of 67108864"):
            module.instantiate()

    def test_a_declared_minimum_over_the_limit_is_refused(self) -> None:
        module = Runtime(memory_limit=64 * MiB).load_module("(module (memory 65536))")
        with pytest.raises(GuestRuntimeError, match="memory limit"):
            module.instantiate()

    @pytest.mark.parametrize(
        ("limit", "memories", "tables", "want"),
        [
            (None, 1, 1, (-1, -1, 1, 1, 1)),
            (1 << 30, 1, 1, (1 << 30, (1 << 30) // 32, 1, 1, 1)),
            (1 << 30, 3, 4, ((1 << 30) // 3, (1 << 30) // 32 // 4, 1, 4, 3)),
            (1 << 20, 1, 2, (1 << 20, MIN_TABLE_ELEMENTS, 1, 2, 1)),
        ],
    )
    def test_store_limits(
        self, limit: int | None, memories: int, tables: int, want: tuple[int, ...]
    ) -> None:
        got = store_limits(limit, memories, tables)
        assert (got.memory_size, got.table_elements, got.instances, got.tables,
                got.memories) == want  # fmt: skip


class TestDeadline:
    """An instance's deadline ends every guest call by then, the start function's too."""

    def test_a_spinning_start_function_stops_at_the_deadline(self) -> None:
        module = Runtime(fuel=None).load_module(SPIN_START)
        t0 = time.monotonic()
        with pytest.raises(GuestTimeout) as err:
            module.instantiate(deadline=time.monotonic() + 0.3)
        assert err.value.limit == "deadline"
        assert time.monotonic() - t0 < 5

    def test_a_start_function_runs_under_the_fuel_budget(self) -> None:
        module = Runtime(fuel=100_000).load_module(SPIN_START)
        with pytest.raises(GuestTimeout) as err:
            module.instantiate()
        assert err.value.limit == "fuel"

    def test_the_deadline_covers_export_calls(self) -> None:
        module = Runtime(fuel=None).load_module(
            '(module (func (export "spin") (loop $l (br $l))))'
        )
        instance = module.instantiate(deadline=time.monotonic() + 0.2)
        with pytest.raises(GuestTimeout) as err:
            instance.call("spin")
        assert err.value.limit == "deadline"

    def test_a_call_timeout_shorter_than_the_deadline_is_the_call_s(self) -> None:
        module = Runtime(fuel=None, timeout=0.1).load_module(
            '(module (func (export "spin") (loop $l (br $l))))'
        )
        instance = module.instantiate(deadline=time.monotonic() + 30)
        with pytest.raises(GuestTimeout) as err:
            instance.call("spin")
        assert err.value.limit == "timeout"


class TestFeatures:
    """Features packr guests do not use are refused at load, naming them."""

    @pytest.mark.parametrize(
        "wat",
        [
            "(module (memory 1 1 shared))",
            "(module (memory i64 1))",
            "(module (func (return_call 0)))",
        ],
        ids=["threads", "memory64", "tail_call"],
    )
    def test_refused(self, wat: str) -> None:
        with pytest.raises(ModuleLoadError, match="cannot compile"):
            Runtime().load_module(wat)


V128_MODULE = """(module
  (import "m" "f" (func (param v128 i32) (result i64)))
  (global (export "g") v128 (v128.const i64x2 11 11))
  (func (export "e") (param v128) (result v128) (local.get 0))
  (func (export "run") (param i32 i32 i32 i32) (result i32) (i32.const 0)))"""


V128_EXPORTS = V128_MODULE.replace('(import "m" "f" (func (param v128 i32) (result i64)))', "")


class TestTypesFromBytes:
    """Imports and exports are described from the module's bytes, the same way
    wasmtime would for every type it can print, and a v128 never aborts."""

    @pytest.mark.parametrize("name", EXAMPLE_GUESTS)
    def test_same_as_wasmtime_for_the_example_guests(self, name: str) -> None:
        wasm = example_guest(name).read_bytes()
        compiled = wasmtime.Module(wasmtime.Engine(), wasm)
        types = extern_types(wasm)
        want = [(i.module, i.name, _wasmtime_text(i.type)) for i in compiled.imports]
        assert [(i.module, i.name, i.signature) for i in types.imports] == want
        want = [(e.name, _wasmtime_text(e.type)) for e in compiled.exports]
        assert [(e.name, e.signature) for e in types.exports] == want
        assert memory_count(wasm) == 1

    def test_v128_in_imports_exports_and_globals(self) -> None:
        """In a child process: a regression would abort it (SIGABRT), not the tests."""
        script = (
            "from packr_replay.runtime import Runtime\n"
            "from packr_replay.errors import ExportNotFound, LinkError\n"
            f"m = Runtime().load_module({V128_MODULE!r})\n"
            "print([i.signature for i in m.imports], [e.signature for e in m.exports])\n"
            "try:\n    m.instantiate()\nexcept LinkError as e:\n    print('LinkError', e.missing)\n"
            f"i = Runtime().load_module({V128_EXPORTS!r}).instantiate()\n"
            "try:\n    i.call('e', 1)\nexcept (ExportNotFound, TypeError) as e:\n    print('call', e)\n"
            "try:\n    i.call_raw('e', b'')\nexcept ExportNotFound as e:\n    print('raw', e)\n"
        )
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              timeout=120, cwd=Path(__file__).resolve().parents[2])  # fmt: skip
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert lines[0] == (
            "['(v128, i32) -> (i64)'] ['global v128', '(v128) -> (v128)', "
            "'(i32, i32, i32, i32) -> (i32)']"
        )
        assert lines[1].startswith("LinkError [('m', 'f', '(v128, i32) -> (i64)')]")
        assert "v128" in lines[2]
        assert "(v128) -> (v128)" in lines[3]

    def test_unusual_constants_are_skipped_exactly(self) -> None:
        """A global initialiser whose immediate holds 0x0B (``end``) is not cut short."""
        wat = """(module
          (global (export "a") i32 (i32.const 11))
          (global (export "b") i64 (i64.const 2827))
          (global (export "c") f64 (f64.const 11.0))
          (global (export "d") (mut f32) (f32.const 0))
          (func (export "f") (result i32) (global.get 0)))"""
        types = extern_types(wasmtime.wat2wasm(wat))
        assert [e.signature for e in types.exports] == [
            "global i32", "global i64", "global f64", "global mut f32", "() -> (i32)"
        ]  # fmt: skip

    def test_a_v128_export_is_not_a_packr_export(self) -> None:
        instance = Runtime().load_module(
            '(module (func (export "e") (param v128) (result v128) (local.get 0)))'
        ).instantiate()
        with pytest.raises(ExportNotFound, match="v128"):
            instance.call_raw("e", b"")

    def test_a_v128_import_cannot_be_linked(self) -> None:
        module = Runtime().load_module('(module (import "m" "f" (func (param v128))))')
        with pytest.raises(LinkError) as err:
            module.instantiate()
        assert err.value.missing == [("m", "f", "(v128) -> ()")]


def _wasmtime_text(ty: object) -> str:
    """How wasmtime-py's types print (safe for the example guests: no v128)."""
    if isinstance(ty, wasmtime.FuncType):
        params = ", ".join(str(p) for p in ty.params)
        results = ", ".join(str(r) for r in ty.results)
        return f"({params}) -> ({results})"
    if isinstance(ty, wasmtime.MemoryType):
        top = "no max" if ty.limits.max is None else f"max {ty.limits.max}"
        return f"memory (min {ty.limits.min} pages, {top})"
    if isinstance(ty, wasmtime.GlobalType):
        return f"global {'mut ' if ty.mutable else ''}{ty.content}"
    assert isinstance(ty, wasmtime.TableType)
    return f"table {ty.element}"
