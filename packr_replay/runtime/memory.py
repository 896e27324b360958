"""Bounds-checked access to a guest's linear memory, without per-call FFI copies.

The engine is configured with ``memory_may_move = False``, so a memory's base address
never changes; only its length grows. We cache both and refresh the length only when
an access would fall past the cached end, which keeps the hot path (read the import
input, write the reply and two slots) to a couple of ``ctypes`` calls. Every guest
pointer is treated as an untrusted unsigned 32-bit number.
"""

from __future__ import annotations

import ctypes
import struct
from typing import Any

import wasmtime

from ..errors import GuestMemoryError

__all__ = ["GuestMemory"]

_pack_u32 = struct.Struct("<I").pack
_unpack_u32 = struct.Struct("<I").unpack


class GuestMemory:
    """A guest memory: the exported ``memory`` or a host-owned ``env.memory``."""

    __slots__ = ("_base", "_len", "memory", "store")

    def __init__(self, store: wasmtime.Store, memory: wasmtime.Memory) -> None:
        self.store = store
        self.memory = memory
        self._base = ctypes.addressof(memory.data_ptr(store).contents)
        self._len = memory.data_len(store)

    def _check(self, ptr: int, length: int, what: str) -> int:
        """Validate ``[ptr, ptr+length)`` and return the absolute address."""
        ptr &= 0xFFFF_FFFF
        end = ptr + length
        if end > self._len:
            self._len = self.memory.data_len(self.store)
            if end > self._len:
                raise GuestMemoryError(
                    f"{what}: range {ptr:#x}..{end:#x} ({length} bytes) is outside guest "
                    f"memory of {self._len} bytes"
                )
        return self._base + ptr

    @property
    def size(self) -> int:
        """Current length in bytes."""
        self._len = self.memory.data_len(self.store)
        return self._len

    def read(self, ptr: int, length: int, what: str = "read") -> bytes:
        length &= 0xFFFF_FFFF
        addr = self._check(ptr, length, what)
        return ctypes.string_at(addr, length)

    def write(self, ptr: int, data: bytes, what: str = "write") -> None:
        addr = self._check(ptr, len(data), what)
        ctypes.memmove(addr, data, len(data))

    def read_u32(self, ptr: int, what: str = "read u32") -> int:
        addr = self._check(ptr, 4, what)
        return int(_unpack_u32(ctypes.string_at(addr, 4))[0])

    def write_u32(self, ptr: int, value: int, what: str = "write u32") -> None:
        addr = self._check(ptr, 4, what)
        ctypes.memmove(addr, _pack_u32(value & 0xFFFF_FFFF), 4)

    def view(self) -> memoryview:
        """A writable view of the whole current memory (valid until the next grow)."""
        length = self.size
        buf: Any = (ctypes.c_ubyte * length).from_address(self._base)
        return memoryview(buf).cast("B")

    def grow(self, pages: int) -> int:
        """Grow by ``pages``; returns the previous size in pages."""
        old = self.memory.grow(self.store, pages)
        self._len = self.memory.data_len(self.store)
        return int(old)
