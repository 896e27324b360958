"""Inline WAT guests for the runtime tests, following packr's ABI exactly.

Every typed function uses the 4-i32 convention ``(in_ptr, in_len, out_ptr_ptr,
out_len_ptr) -> status``. Exports get the slots 16384/16388 from the host; without
``__pack_alloc`` the host writes export input at offset 0 (spec §4). Import replies land
at 16392 (scratch) or in a ``__pack_alloc`` buffer (status 1).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from packr_replay.abi import Value
from packr_replay.errors import HostFunctionError
from packr_replay.runtime import Ctx, HostLinkerBuilder, Instance, Module

SIZE = 2 * 65536  # typed_guest's default memory

ERROR_MESSAGE = "import failed"

#: The fallback error string an export returns (-1) when an import failed.
_ERROR_DATA = f'(data (i32.const 1024) "{ERROR_MESSAGE}")'

#: A bump ``__pack_alloc`` over the module's own memory starting at 64 KiB, growing it
#: when needed (returns 0 when it cannot), and a ``__pack_free`` that counts frees.
BUMP_ALLOC = """
  (global $heap (mut i32) (i32.const 65536))
  (global $frees (mut i32) (i32.const 0))
  (global $last_free_len (mut i32) (i32.const 0))
  (func $pack_alloc (export "__pack_alloc") (param $n i32) (result i32) (local $p i32) (local $need i32)
    (if (i32.le_s (local.get $n) (i32.const 0)) (then (return (i32.const 0))))
    (local.set $p (global.get $heap))
    (local.set $need (i32.add (local.get $p) (local.get $n)))
    (if (i32.gt_u (local.get $need) (i32.mul (memory.size) (i32.const 65536)))
      (then
        (if (i32.eq
              (memory.grow
                (i32.add
                  (i32.shr_u
                    (i32.sub (local.get $need) (i32.mul (memory.size) (i32.const 65536)))
                    (i32.const 16))
                  (i32.const 1)))
              (i32.const -1))
          (then (return (i32.const 0))))))
    (global.set $heap (local.get $need))
    (local.get $p))
  (func (export "__pack_free") (param $p i32) (param $n i32)
    (global.set $frees (i32.add (global.get $frees) (i32.const 1)))
    (global.set $last_free_len (local.get $n)))
  (func (export "frees") (result i32) (global.get $frees))
  (func (export "last_free_len") (result i32) (global.get $last_free_len))
"""

#: Echo: copy the input to 16392 and point the slots at it (no __pack_alloc).
ECHO = """
(module
  (memory (export "memory") 2)
  (func (export "echo") (param $p i32) (param $n i32) (param $opp i32) (param $olp i32) (result i32)
    (memory.copy (i32.const 16392) (local.get $p) (local.get $n))
    (i32.store (local.get $opp) (i32.const 16392))
    (i32.store (local.get $olp) (local.get $n))
    (i32.const 0)))
"""


def _forward(index: int, export: str) -> str:
    """An export that forwards its four arguments to import ``$imp{index}`` and returns
    0 on status >= 0 (the reply is already in the slots) or -1 with an error string."""
    return f"""
  (func (export "{export}") (param $p i32) (param $n i32) (param $opp i32) (param $olp i32) (result i32)
    (local $st i32)
    (local.set $st (call $imp{index} (local.get $p) (local.get $n) (local.get $opp) (local.get $olp)))
    (global.set $last_status (local.get $st))
    (if (i32.lt_s (local.get $st) (i32.const 0))
      (then
        (i32.store (local.get $opp) (i32.const 1024))
        (i32.store (local.get $olp) (i32.const {len(ERROR_MESSAGE)}))
        (return (i32.const -1))))
    (i32.const 0))
  (func (export "poke_{export}") (param i32 i32 i32 i32) (result i32)
    (call $imp{index} (local.get 0) (local.get 1) (local.get 2) (local.get 3)))"""


def typed_guest(
    *imports: tuple[str, str] | tuple[str, str, str],
    alloc: bool = False,
    pages: int = 2,
    max_pages: int | None = None,
    extra: str = "",
) -> str:
    """A guest importing typed functions ``(module, name[, export])``.

    Each import gets an export (default: its name) forwarding the export's own input
    and slots to it, plus ``poke_<export>(a, b, c, d)`` calling the import with raw
    arguments (for hostile-pointer tests) and ``last_status()``.
    """
    decls, funcs = [], []
    for i, imp in enumerate(imports):
        module, name = imp[0], imp[1]
        export = imp[2] if len(imp) == 3 else name
        decls.append(
            f'  (import "{module}" "{name}" (func $imp{i} (param i32 i32 i32 i32) (result i32)))'
        )
        funcs.append(_forward(i, export))
    limits = f"{pages}" if max_pages is None else f"{pages} {max_pages}"
    return f"""
(module
{chr(10).join(decls)}
  (memory (export "memory") {limits})
  (global $last_status (mut i32) (i32.const 99))
  (func (export "last_status") (result i32) (global.get $last_status))
  {_ERROR_DATA}
  {BUMP_ALLOC if alloc else ""}
  {"".join(funcs)}
  {extra}
)"""


def twice_guest(module: str, name: str, *, alloc: bool = False) -> str:
    """Export ``twice`` calls the typed import two times with its input and returns
    the second reply (the interceptor back-pressure test)."""
    return f"""
(module
  (import "{module}" "{name}" (func $imp (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  {_ERROR_DATA}
  {BUMP_ALLOC if alloc else ""}
  (func (export "twice") (param $p i32) (param $n i32) (param $opp i32) (param $olp i32) (result i32)
    (if (i32.lt_s (call $imp (local.get $p) (local.get $n) (local.get $opp) (local.get $olp)) (i32.const 0))
      (then (return (i32.const -1))))
    (if (i32.lt_s (call $imp (local.get $p) (local.get $n) (local.get $opp) (local.get $olp)) (i32.const 0))
      (then (return (i32.const -1))))
    (i32.const 0)))
"""


#: Plain wasm exports (spec §8 wasm_execution).
PLAIN = """
(module
  (memory (export "memory") 1)
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (func (export "add64") (param i64 i64) (result i64) (i64.add (local.get 0) (local.get 1)))
  (func (export "addf") (param f64 f32) (result f64)
    (f64.add (local.get 0) (f64.promote_f32 (local.get 1))))
  (func (export "pair") (result i32 i64) (i32.const 7) (i64.const -8))
  (func (export "sum_bytes") (param $p i32) (param $n i32) (result i32) (local $s i32)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $s (i32.add (local.get $s) (i32.load8_u (local.get $p))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next)))
    (local.get $s))
  (func (export "reverse") (param $p i32) (param $n i32) (local $q i32) (local $t i32)
    (local.set $q (i32.sub (i32.add (local.get $p) (local.get $n)) (i32.const 1)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_s (local.get $p) (local.get $q)))
        (local.set $t (i32.load8_u (local.get $p)))
        (i32.store8 (local.get $p) (i32.load8_u (local.get $q)))
        (i32.store8 (local.get $q) (local.get $t))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (local.set $q (i32.sub (local.get $q) (i32.const 1)))
        (br $next)))))
"""

#: Misbehaving exports: spin forever, trap, and return whatever ptr/len/status the host
#: put at 2048/2052/2056 (hostile output).
HOSTILE_EXPORTS = """
(module
  (memory (export "memory") 1 4)
  (func (export "spin") (param i32 i32 i32 i32) (result i32)
    (loop $forever (br $forever))
    (i32.const 0))
  (func (export "boom") (param i32 i32 i32 i32) (result i32) unreachable)
  (func (export "oob") (param i32 i32 i32 i32) (result i32)
    (i32.load (i32.const -16)))
  (func (export "div0") (param i32 i32 i32 i32) (result i32)
    (i32.div_s (i32.const 1) (i32.const 0)))
  (func (export "bad") (param $p i32) (param $n i32) (param $opp i32) (param $olp i32) (result i32)
    (i32.store (local.get $opp) (i32.load (i32.const 2048)))
    (i32.store (local.get $olp) (i32.load (i32.const 2052)))
    (i32.load (i32.const 2056)))
  (func (export "not_packr") (param i32) (result i32) (local.get 0))
  (func (export "spin_plain") (loop $forever (br $forever))))
"""


def fixed_base_guest(*, metadata: bytes | None = None) -> str:
    """A guest shaped like spec §9's fixed-base assets.

    Imported ``env.memory`` (min 128 pages, no max), allocation through
    ``pack:alloc.alloc/dealloc``, a ``__heap_base`` global at 0xD1DA0, static data at
    0xD0000 (the metadata blob when given), typed import ``math.double`` called with
    out-slots on the guest stack that are **not adjacent** (0x3ff98 / 0x3ffe8, as a
    real guest passes them). ``process`` copies its input into a pack:alloc buffer,
    calls ``double``, frees a status-1 reply with ``dealloc(ptr, len, 1)`` after
    copying it into a fresh buffer, and returns that.
    """
    blob = metadata or b"static-data"
    data = "".join(f"\\{b:02x}" for b in blob)
    types_export = ""
    if metadata is not None:
        types_export = f"""
  (func (export "__pack_types") (param $opp i32) (param $olp i32) (result i32)
    (i32.store (local.get $opp) (i32.const 0xD0000))
    (i32.store (local.get $olp) (i32.const {len(metadata)}))
    (i32.const 0))"""
    return f"""
(module
  (import "env" "memory" (memory 128))
  (import "pack:alloc" "alloc" (func $alloc (param i32 i32) (result i32)))
  (import "pack:alloc" "dealloc" (func $dealloc (param i32 i32 i32)))
  (import "math" "double" (func $double (param i32 i32 i32 i32) (result i32)))
  (global (export "__heap_base") i32 (i32.const 0xD1DA0))
  (global (export "__data_end") i32 (i32.const 0xD1D94))
  (global $last_in (mut i32) (i32.const 0))
  (data (i32.const 0xD0000) "{data}")
  (func (export "last_in") (result i32) (global.get $last_in))
  (func (export "__pack_alloc") (param $n i32) (result i32)
    (if (i32.le_s (local.get $n) (i32.const 0)) (then (return (i32.const 0))))
    (call $alloc (local.get $n) (i32.const 1)))
  (func (export "__pack_free") (param $p i32) (param $n i32)
    (if (i32.or (i32.eqz (local.get $p)) (i32.eqz (local.get $n))) (then (return)))
    (call $dealloc (local.get $p) (local.get $n) (i32.const 1)))
  {types_export}
  (func (export "process") (param $p i32) (param $n i32) (param $opp i32) (param $olp i32) (result i32)
    (local $buf i32) (local $st i32) (local $rp i32) (local $rl i32) (local $out i32)
    (local.set $buf (call $alloc (local.get $n) (i32.const 8)))
    (global.set $last_in (local.get $buf))
    (memory.copy (local.get $buf) (local.get $p) (local.get $n))
    (i32.store (i32.const 0x3ff98) (i32.const 0))
    (i32.store (i32.const 0x3ffe8) (i32.const 0))
    (local.set $st (call $double (local.get $buf) (local.get $n) (i32.const 0x3ff98) (i32.const 0x3ffe8)))
    (call $dealloc (local.get $buf) (local.get $n) (i32.const 8))
    (if (i32.lt_s (local.get $st) (i32.const 0)) (then unreachable))
    (local.set $rp (i32.load (i32.const 0x3ff98)))
    (local.set $rl (i32.load (i32.const 0x3ffe8)))
    (local.set $out (call $alloc (local.get $rl) (i32.const 1)))
    (memory.copy (local.get $out) (local.get $rp) (local.get $rl))
    (if (i32.eq (local.get $st) (i32.const 1))
      (then (call $dealloc (local.get $rp) (local.get $rl) (i32.const 1))))
    (i32.store (local.get $opp) (local.get $out))
    (i32.store (local.get $olp) (local.get $rl))
    (i32.const 0)))
"""


def with_metadata(blob: bytes, *, export_types: bool = True) -> str:
    """A guest with exported memory whose first data segment (at 0x10000) is the CGRF
    metadata ``blob``, followed by unrelated rodata; ``__pack_types`` points at it."""
    data = "".join(f"\\{b:02x}" for b in blob) + "trailing rodata"
    types_export = (
        f"""
  (func (export "__pack_types") (param $opp i32) (param $olp i32) (result i32)
    (i32.store (local.get $opp) (i32.const 0x10000))
    (i32.store (local.get $olp) (i32.const {len(blob)}))
    (i32.const 0))"""
        if export_types
        else ""
    )
    return f"""
(module
  (memory (export "memory") 2)
  (data (i32.const 0x10000) "{data}")
  {types_export}
  (func (export "process") (param i32 i32 i32 i32) (result i32) (i32.const 0)))
"""


class Guest:
    """A typed_guest instance plus what its host saw."""

    def __init__(self, load: Callable[[str], Module], **kwargs: Any) -> None:
        self.errors: list[HostFunctionError] = []
        self.calls: list[Value] = []

        def host(b: HostLinkerBuilder) -> None:
            def ident(ctx: Ctx, v: Value) -> Value:
                self.calls.append(v)
                return v

            b.interface("test").func_typed("ident", ident)

        alloc = bool(kwargs.pop("alloc", False))
        max_pages = kwargs.pop("max_pages", None)
        module = load(typed_guest(("test", "ident"), alloc=alloc, max_pages=max_pages))  # type: ignore[arg-type]
        self.inst: Instance = module.instantiate(host, on_error=self.errors.append, **kwargs)  # type: ignore[arg-type]

    def poke(self, in_ptr: int, in_len: int, out_pp: int = 8000, out_lp: int = 9000) -> int:
        status: int = self.inst.call("poke_ident", in_ptr, in_len, out_pp, out_lp)
        return status

    def kinds(self) -> list[str]:
        return [e.kind for e in self.errors]
