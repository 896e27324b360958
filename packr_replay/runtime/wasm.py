"""Reading the few facts we need straight from a wasm binary, without instantiating it.

packr's ``find_cgrf_metadata`` finds the ``__pack_types`` blob by scanning data
segments for one that starts with ``CGRF``; doing the same here lets ``Module.types()``
describe a guest that cannot (or should not) be run.

:func:`extern_types` reads the import and export signatures (and how many memories
and tables a module has) from the binary itself. wasmtime-py cannot show every type
(asking it to print a ``v128`` aborts the process), so nothing here asks it to: a
module's types are described from its own bytes, after wasmtime has validated them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

__all__ = [
    "Extern",
    "ExternTypes",
    "data_segments",
    "extern_types",
    "find_cgrf_segment",
    "memory_count",
]

_TYPE_SECTION = 1
_IMPORT_SECTION = 2
_FUNCTION_SECTION = 3
_TABLE_SECTION = 4
_MEMORY_SECTION = 5
_GLOBAL_SECTION = 6
_EXPORT_SECTION = 7
_DATA_SECTION = 11


class WasmFormatError(ValueError):
    """The bytes are not a well-formed wasm module (for our purposes)."""


def _leb_u32(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise WasmFormatError("truncated LEB128")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 35:
            raise WasmFormatError("LEB128 too long")


def _skip_const_expr(data: bytes, pos: int) -> tuple[int | None, int]:
    """Skip an init expression; return its value when it is a plain ``i32.const``."""
    value: int | None = None
    if pos < len(data) and data[pos] == 0x41:  # i32.const
        raw, end = _leb_u32_signed(data, pos + 1)
        value = raw & 0xFFFF_FFFF
        pos = end
    while pos < len(data) and data[pos] != 0x0B:
        pos += 1  # other expressions (global.get, ...): not needed, skip to `end`
    if pos >= len(data):
        raise WasmFormatError("unterminated init expression")
    return value, pos + 1


def _leb_u32_signed(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise WasmFormatError("truncated LEB128")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            if byte & 0x40:
                result -= 1 << shift
            return result, pos
        if shift > 35:
            raise WasmFormatError("LEB128 too long")


def _sections(wasm: bytes) -> Iterator[tuple[int, int, int]]:
    """``(id, start, end)`` of each section of a wasm binary, in order."""
    if wasm[:4] != b"\0asm":
        raise WasmFormatError("not a wasm binary")
    pos = 8
    while pos < len(wasm):
        section = wasm[pos]
        size, pos = _leb_u32(wasm, pos + 1)
        end = pos + size
        if end > len(wasm):
            raise WasmFormatError("section runs past the end of the module")
        yield section, pos, end
        pos = end


def data_segments(wasm: bytes) -> Iterator[tuple[int | None, bytes]]:
    """``(address or None, bytes)`` for each data segment of a wasm binary."""
    for section, pos, end in _sections(wasm):
        if section == _DATA_SECTION:
            count, p = _leb_u32(wasm, pos)
            for _ in range(count):
                flags, p = _leb_u32(wasm, p)
                address: int | None = None
                if flags == 0:
                    address, p = _skip_const_expr(wasm, p)
                elif flags == 2:
                    _mem, p = _leb_u32(wasm, p)
                    address, p = _skip_const_expr(wasm, p)
                elif flags != 1:
                    raise WasmFormatError(f"unknown data segment flags {flags}")
                length, p = _leb_u32(wasm, p)
                if p + length > end:
                    raise WasmFormatError("data segment runs past its section")
                yield address, wasm[p : p + length]
                p += length


def find_cgrf_segment(wasm: bytes) -> tuple[int | None, bytes] | None:
    """The first data segment that starts with the CGRF magic, if any."""
    for address, data in data_segments(wasm):
        if data[:4] == b"CGRF":
            return address, data
    return None


# ------------------------------------------------------------- import/export types

_VALTYPES = {0x7F: "i32", 0x7E: "i64", 0x7D: "f32", 0x7C: "f64", 0x7B: "v128",
             0x70: "funcref", 0x6F: "externref"}  # fmt: skip
_HEAPTYPES = {0x70: "func", 0x6F: "extern", 0x6E: "any", 0x71: "none", 0x72: "noextern",
              0x73: "nofunc", 0x6D: "eq", 0x6C: "i31", 0x6B: "struct", 0x6A: "array",
              0x69: "exn", 0x74: "noexn"}  # fmt: skip
_KINDS = {0: "func", 1: "table", 2: "memory", 3: "global", 4: "tag"}


@dataclass(frozen=True, slots=True)
class Extern:
    """One import or export: its kind and its type as text, and a function's
    parameter and result types (wasm's own names: ``i32``, ``v128``, ``funcref``...)."""

    module: str
    name: str
    kind: str
    signature: str
    params: tuple[str, ...] = ()
    results: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ExternTypes:
    """A module's imports and exports in order, and its memory and table counts
    (imported and defined)."""

    imports: tuple[Extern, ...]
    exports: tuple[Extern, ...]
    memories: int
    tables: int


class _Reader:
    def __init__(self, data: bytes, pos: int, end: int) -> None:
        self.data, self.pos, self.end = data, pos, end

    def byte(self) -> int:
        if self.pos >= self.end:
            raise WasmFormatError("section ends early")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def u32(self) -> int:
        value, self.pos = _leb_u32(self.data, self.pos)
        if self.pos > self.end:
            raise WasmFormatError("section ends early")
        return value

    def leb(self, max_bits: int = 64) -> None:
        """Skip a LEB128 of up to ``max_bits`` bits (signed or not)."""
        for _ in range((max_bits + 6) // 7):
            if not self.byte() & 0x80:
                return
        raise WasmFormatError("LEB128 too long")

    def skip(self, n: int) -> None:
        if self.pos + n > self.end:
            raise WasmFormatError("section ends early")
        self.pos += n

    def name(self) -> str:
        n = self.u32()
        start = self.pos
        self.skip(n)
        return self.data[start : self.pos].decode("utf-8", "replace")

    def valtype(self) -> str:
        b = self.byte()
        if b in _VALTYPES:
            return _VALTYPES[b]
        if b in (0x63, 0x64):  # (ref null ht) / (ref ht)
            return f"(ref {'null ' if b == 0x63 else ''}{self.heaptype()})"
        raise WasmFormatError(f"unknown value type 0x{b:02x}")

    def heaptype(self) -> str:
        b = self.data[self.pos] if self.pos < self.end else -1
        if b in _HEAPTYPES:
            self.pos += 1
            return _HEAPTYPES[b]
        value, self.pos = _leb_u32_signed(self.data, self.pos)  # a type index (s33)
        return str(value)

    def limits(self) -> tuple[int, int | None]:
        flags = self.byte()
        if flags & ~0x0F:
            raise WasmFormatError(f"unknown limits flags 0x{flags:02x}")
        low = self._limit(flags)
        high = self._limit(flags) if flags & 1 else None
        if flags & 0x08:
            self.u32()  # custom page size exponent
        return low, high

    def _limit(self, flags: int) -> int:
        if flags & 0x04:  # 64-bit limits
            value = 0
            for shift in range(0, 70, 7):
                b = self.byte()
                value |= (b & 0x7F) << shift
                if not b & 0x80:
                    return value
            raise WasmFormatError("LEB128 too long")
        return self.u32()

    def const_expr(self) -> None:
        """Skip a constant expression through its ``end`` (by its instructions: an
        immediate may hold a 0x0B byte)."""
        while True:
            op = self.byte()
            if op == 0x0B:
                return
            if op in (0x41, 0x23, 0xD2):  # i32.const, global.get, ref.func
                self.leb(35)
            elif op == 0x42:  # i64.const
                self.leb(70)
            elif op == 0x43:  # f32.const
                self.skip(4)
            elif op == 0x44:  # f64.const
                self.skip(8)
            elif op == 0xD0:  # ref.null ht
                self.heaptype()
            elif op in (0x6A, 0x6B, 0x6C, 0x7C, 0x7D, 0x7E):  # extended-const arithmetic
                pass
            elif op == 0xFD:  # v128.const
                if self.u32() != 12:
                    raise WasmFormatError("unexpected SIMD instruction in a constant")
                self.skip(16)
            else:
                raise WasmFormatError(f"unexpected opcode 0x{op:02x} in a constant")


def _func_text(params: tuple[str, ...], results: tuple[str, ...]) -> str:
    return f"({', '.join(params)}) -> ({', '.join(results)})"


def _memory_text(limits: tuple[int, int | None]) -> str:
    top = "no max" if limits[1] is None else f"max {limits[1]}"
    return f"memory (min {limits[0]} pages, {top})"


def extern_types(wasm: bytes) -> ExternTypes:
    """Every import and export of a (validated) wasm binary, described from its bytes."""
    types: list[tuple[tuple[str, ...], tuple[str, ...]]] = []
    funcs: list[int] = []  # type index of every function, imported ones first
    tables: list[str] = []
    memories: list[str] = []
    globals_: list[str] = []
    imports: list[Extern] = []
    exports: list[tuple[str, int, int]] = []
    for section, pos, end in _sections(wasm):
        r = _Reader(wasm, pos, end)
        if section == _TYPE_SECTION:
            for _ in range(r.u32()):
                if r.byte() != 0x60:
                    raise WasmFormatError("a type that is not a function type")
                params = tuple(r.valtype() for _ in range(r.u32()))
                results = tuple(r.valtype() for _ in range(r.u32()))
                types.append((params, results))
        elif section == _IMPORT_SECTION:
            for _ in range(r.u32()):
                module, name, kind = r.name(), r.name(), r.byte()
                imports.append(_read_import(r, module, name, kind, types, funcs, tables,
                                            memories, globals_))  # fmt: skip
        elif section == _FUNCTION_SECTION:
            funcs.extend(r.u32() for _ in range(r.u32()))
        elif section == _TABLE_SECTION:
            for _ in range(r.u32()):
                tables.append(_table_text(r))
        elif section == _MEMORY_SECTION:
            memories.extend(_memory_text(r.limits()) for _ in range(r.u32()))
        elif section == _GLOBAL_SECTION:
            for _ in range(r.u32()):
                globals_.append(_global_text(r))
                r.const_expr()
        elif section == _EXPORT_SECTION:
            for _ in range(r.u32()):
                name = r.name()
                exports.append((name, r.byte(), r.u32()))
    return ExternTypes(
        tuple(imports),
        tuple(_export(name, kind, index, types, funcs, tables, memories, globals_)
              for name, kind, index in exports),
        len(memories),
        len(tables),
    )  # fmt: skip


def _table_text(r: _Reader) -> str:
    if r.data[r.pos : r.pos + 2] == b"\x40\x00":  # a table with an initializer
        r.skip(2)
        element = r.valtype()
        r.limits()
        r.const_expr()
        return f"table {element}"
    element = r.valtype()
    r.limits()
    return f"table {element}"


def _global_text(r: _Reader) -> str:
    content = r.valtype()
    mutable = r.byte()
    return f"global {'mut ' if mutable & 1 else ''}{content}"


def _read_import(r: _Reader, module: str, name: str, kind: int,
                 types: list[tuple[tuple[str, ...], tuple[str, ...]]], funcs: list[int],
                 tables: list[str], memories: list[str], globals_: list[str]) -> Extern:  # fmt: skip
    if kind == 0:
        index = r.u32()
        if index >= len(types):
            raise WasmFormatError(f"import {module}.{name}: no type {index}")
        funcs.append(index)
        params, results = types[index]
        return Extern(module, name, "func", _func_text(params, results), params, results)
    if kind == 1:
        tables.append(_table_text(r))
        return Extern(module, name, "table", tables[-1])
    if kind == 2:
        memories.append(_memory_text(r.limits()))
        return Extern(module, name, "memory", memories[-1])
    if kind == 3:
        globals_.append(_global_text(r))
        return Extern(module, name, "global", globals_[-1])
    raise WasmFormatError(f"import {module}.{name}: unsupported kind {kind}")


def _export(name: str, kind: int, index: int,
            types: list[tuple[tuple[str, ...], tuple[str, ...]]], funcs: list[int],
            tables: list[str], memories: list[str], globals_: list[str]) -> Extern:  # fmt: skip
    try:
        if kind == 0:
            params, results = types[funcs[index]]
            return Extern("", name, "func", _func_text(params, results), params, results)
        if kind == 1:
            return Extern("", name, "table", tables[index])
        if kind == 2:
            return Extern("", name, "memory", memories[index])
        if kind == 3:
            return Extern("", name, "global", globals_[index])
    except IndexError:
        raise WasmFormatError(f"export {name!r} refers to a missing {_KINDS.get(kind)}") from None
    raise WasmFormatError(f"export {name!r}: unsupported kind {kind}")


def memory_count(wasm: bytes) -> int:
    """How many memories a module imports and defines (1 when its bytes do not say):
    whether it needs a runtime with multi-memory on."""
    try:
        return extern_types(wasm).memories
    except WasmFormatError:
        return 1
