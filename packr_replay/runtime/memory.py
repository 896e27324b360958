"""Guest linear memory: bounds-checked access without per-call FFI copies, packr's
fixed memory layout, and the guest heap (``__pack_alloc``/``__pack_free`` and the
default ``pack:alloc`` provider).

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

from ..errors import GuestMemoryError, GuestTimeout
from . import fastcall
from .base import InstanceBase, fmt_sig, i32, trap_error
from .layout import INPUT_BUFFER_OFFSET, RESULT_LEN_OFFSET, RESULT_PTR_OFFSET, SCRATCH_OFFSET

__all__ = [
    "INPUT_FALLBACK_OFFSET",
    "RESULT_LEN_OFFSET",
    "RESULT_PTR_OFFSET",
    "SCRATCH_OFFSET",
    "GuestHeap",
    "GuestMemory",
    "pack_u32_into",
]

# packr's fixed layout (spec §3-4): the export result slots, the scratch reply buffer,
# and where an export's input goes when the guest has no __pack_alloc.
INPUT_FALLBACK_OFFSET = INPUT_BUFFER_OFFSET

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


class GuestHeap(InstanceBase):
    """An instance's guest heap: the guest's own allocator, or packr's default one."""

    def _define_default_alloc(
        self,
        linker: wasmtime.Linker,
        name: str,
        have: tuple[tuple[str, ...], tuple[str, ...]],
        missing: list[tuple[str, str, str]],
    ) -> None:
        """packr's default ``pack:alloc`` provider: a bump allocator, free is a no-op."""
        if name == "alloc" and have == (("i32", "i32"), ("i32",)):
            fastcall.define_func(
                linker, "pack:alloc", "alloc", *have, self._bump_alloc, self._keepalive
            )
        elif name == "dealloc" and have == (("i32", "i32", "i32"), ()):
            fastcall.define_func(
                linker,
                "pack:alloc",
                "dealloc",
                *have,
                lambda ptr, size, align: None,
                self._keepalive,
            )
        else:
            missing.append(("pack:alloc", name, fmt_sig(have)))

    def _bump_alloc(self, size: int, align: int) -> int:
        memory = self._memory
        if memory is None:
            return 0
        size &= 0xFFFF_FFFF
        align &= 0xFFFF_FFFF
        if align == 0 or align & (align - 1):
            align = 1
        if self._heap_next is None:
            heap_base = self._exports_get("__heap_base")
            if isinstance(heap_base, wasmtime.Global):
                self._heap_next = int(heap_base.value(self.store)) & 0xFFFF_FFFF
            else:
                self._heap_next = memory.size
        ptr = (self._heap_next + align - 1) & ~(align - 1)
        end = ptr + max(size, 1)
        if end > 0xFFFF_FFFF:
            return 0
        if end > memory.size:
            pages = (end - memory.size + 65535) // 65536
            try:
                memory.grow(pages)
            except wasmtime.WasmtimeError:
                return 0
        self._heap_next = end
        return i32(ptr)

    def guest_alloc(self, size: int) -> int:
        """Call the guest's ``__pack_alloc(size)``; 0 when absent or failing.

        A trap counts as failure (packr falls back silently), except running out of
        fuel or time: that raises :class:`GuestTimeout`, since the guest could not go
        on anyway.
        """
        alloc = self._exports_get("__pack_alloc")
        if not isinstance(alloc, wasmtime.Func):
            return 0
        self._alloc_trap = None
        try:
            return int(fastcall.call(self.store, alloc, (i32(size),))) & 0xFFFF_FFFF
        except (fastcall.Trapped, wasmtime.WasmtimeError) as failed:
            stop = self._stop_error("__pack_alloc")
            if stop is not None:
                raise stop from None
            if not isinstance(failed, fastcall.Trapped):
                raise
            trapped = failed
            error = trap_error(
                "__pack_alloc", trapped.trap, self.fuel, self.timeout, self._deadline_bound
            )
            if isinstance(error, GuestTimeout):
                raise self._with_host_error(error) from None
            self._alloc_trap = error
            return 0

    def guest_free(self, ptr: int, size: int) -> None:
        free = self._exports_get("__pack_free")
        if isinstance(free, wasmtime.Func) and ptr and size:
            try:
                fastcall.call(self.store, free, (i32(ptr), i32(size)), nresults=0)
            except (fastcall.Trapped, wasmtime.WasmtimeError) as failed:
                stop = self._stop_error("__pack_free")
                if stop is not None:
                    raise stop from None
                if not isinstance(failed, fastcall.Trapped):
                    raise
