"""Reading the few facts we need straight from a wasm binary, without instantiating it.

packr's ``find_cgrf_metadata`` finds the ``__pack_types`` blob by scanning data
segments for one that starts with ``CGRF``; doing the same here lets ``Module.types()``
describe a guest that cannot (or should not) be run.
"""

from __future__ import annotations

from collections.abc import Iterator

__all__ = ["data_segments", "find_cgrf_segment"]

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


def data_segments(wasm: bytes) -> Iterator[tuple[int | None, bytes]]:
    """``(address or None, bytes)`` for each data segment of a wasm binary."""
    if wasm[:4] != b"\0asm":
        raise WasmFormatError("not a wasm binary")
    pos = 8
    while pos < len(wasm):
        section = wasm[pos]
        size, pos = _leb_u32(wasm, pos + 1)
        end = pos + size
        if end > len(wasm):
            raise WasmFormatError("section runs past the end of the module")
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
        pos = end


def find_cgrf_segment(wasm: bytes) -> tuple[int | None, bytes] | None:
    """The first data segment that starts with the CGRF magic, if any."""
    for address, data in data_segments(wasm):
        if data[:4] == b"CGRF":
            return address, data
    return None
