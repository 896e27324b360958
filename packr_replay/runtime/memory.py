"""Bounds-checked access to a guest's linear memory, without per-call FFI copies.

The engine is configured with ``memory_may_move = False``, so a memory's base address
never changes; only its length grows. We keep a memoryview over the current length and
rebuild it only when an access would fall past its end, which keeps the hot path (read
the import input, write the reply and two slots) to slicing and ``struct`` calls. Every
guest pointer is treated as an untrusted unsigned 32-bit number.
"""

from __future__ import annotations

import ctypes
import struct
from typing import Any

import wasmtime

from ..errors import GuestMemoryError

__all__ = ["GuestMemory", "pack_u32_into"]

_U32 = struct.Struct("<I")
_pack_u32_into = pack_u32_into = _U32.pack_into
_unpack_u32_from = _U32.unpack_from


class GuestMemory:
    """A guest memory: the exported ``memory`` or a host-owned ``env.memory``.

    Accesses go through a memoryview over the memory's current length, rebuilt only
    when an access falls past it (after the guest grew its memory): a read or write is
    a slice of that view, with no FFI call on the hot path. ``Instance``'s typed-import
    path reads ``_view`` and ``_len`` directly for accesses within the current view
    (no method call) and uses the methods for everything else.
    """

    __slots__ = ("_base", "_len", "_view", "memory", "store")

    def __init__(self, store: wasmtime.Store, memory: wasmtime.Memory) -> None:
        self.store = store
        self.memory = memory
        self._base = ctypes.addressof(memory.data_ptr(store).contents)
        self._len = 0
        self._view = memoryview(b"")
        self._refresh()

    def _refresh(self) -> None:
        length = self.memory.data_len(self.store)
        if length != self._len or not self._view:
            self._len = length
            if length:
                buf: Any = (ctypes.c_ubyte * length).from_address(self._base)
                self._view = memoryview(buf).cast("B")
            else:
                self._view = memoryview(bytearray())

    def _check(self, ptr: int, length: int, what: str) -> int:
        """Validate ``[ptr, ptr+length)`` and return ``ptr`` as an unsigned offset."""
        ptr &= 0xFFFF_FFFF
        end = ptr + length
        if end > self._len:
            self._refresh()
            if end > self._len:
                raise GuestMemoryError(
                    f"{what}: range {ptr:#x}..{end:#x} ({length} bytes) is outside guest "
                    f"memory of {self._len} bytes"
                )
        return ptr

    @property
    def size(self) -> int:
        """Current length in bytes."""
        self._refresh()
        return self._len

    def read(self, ptr: int, length: int, what: str = "read") -> bytes:
        length &= 0xFFFF_FFFF
        ptr = self._check(ptr, length, what)
        return self._view[ptr : ptr + length].tobytes()

    def write(self, ptr: int, data: bytes, what: str = "write") -> None:
        n = len(data)
        ptr = self._check(ptr, n, what)
        self._view[ptr : ptr + n] = data

    def read_u32(self, ptr: int, what: str = "read u32") -> int:
        ptr = self._check(ptr, 4, what)
        return int(_unpack_u32_from(self._view, ptr)[0])

    def write_u32(self, ptr: int, value: int, what: str = "write u32") -> None:
        ptr = self._check(ptr, 4, what)
        _pack_u32_into(self._view, ptr, value & 0xFFFF_FFFF)

    def view(self) -> memoryview:
        """A writable view of the whole current memory (valid until the next grow)."""
        self._refresh()
        return self._view

    def grow(self, pages: int) -> int:
        """Grow by ``pages``; returns the previous size in pages."""
        old = self.memory.grow(self.store, pages)
        self._refresh()
        return int(old)
