"""The native call path: packr's typed imports served by a C trampoline.

``_speedups.c`` registers each typed import with wasmtime's C API directly and serves
the ordinary call without a Python frame: on replay from a :class:`ReplayFeed` (no GIL
at all), live and on record by calling the handler once (the GIL is taken for that
only) and, recording, appending the event to the recorder's rows (a
:class:`RecordLog`). Everything else (errors, replies through ``__pack_alloc``, an
interceptor with hooks of its own, a divergence) is handed to the Python path in
:mod:`.imports`, which stays the reference: both give the same traces, values and
errors.

The extension is optional (``PACKR_REPLAY_PURE_PYTHON=1`` turns it off with the other
accelerators); :data:`AVAILABLE` says whether it loaded, :data:`UNAVAILABLE_REASON` why
not. ``Runtime(native=False)`` (or ``PACKR_REPLAY_NATIVE_IMPORTS=0``) keeps one runtime
on the Python path, to compare the two side by side.
"""

from __future__ import annotations

import ctypes
import os
from typing import TYPE_CHECKING, Any

import wasmtime
from wasmtime import _ffi as ffi

from .._native import import_accelerator
from ..abi import Limits, decode, encode
from . import fastcall

if TYPE_CHECKING:
    from types import ModuleType

__all__ = [
    "AVAILABLE",
    "DEFAULT",
    "MODE_LIVE",
    "MODE_PYTHON",
    "MODE_RECORD",
    "MODE_REPLAY",
    "UNAVAILABLE_REASON",
    "RecordLog",
    "ReplayFeed",
    "define_typed",
    "new_host",
    "speedups",
]

#: The rules of imports.py that _speedups.c follows, numbered: bump it here and in
#: _speedups.c (``CONTRACT``) together when they change, so a stale build is not used.
CONTRACT = 1

MODE_PYTHON, MODE_LIVE, MODE_RECORD, MODE_REPLAY = 0, 1, 2, 3

_FUNCTIONS = (
    "wasmtime_caller_context",
    "wasmtime_memory_data",
    "wasmtime_memory_data_size",
    "wasmtime_trap_new",
    "wasmtime_linker_define_func_unchecked",
)


def _load() -> tuple[ModuleType | None, str | None]:
    module, why = import_accelerator(__package__ or "packr_replay.runtime", CONTRACT)
    if module is None:
        return None, why
    try:
        addresses = {
            name: ctypes.cast(getattr(ffi.dll, name), ctypes.c_void_p).value for name in _FUNCTIONS
        }
    except AttributeError as exc:  # a libwasmtime without the unchecked API
        return None, f"libwasmtime lacks a function the trampoline needs ({exc})"
    module.configure(
        {
            **addresses,
            "decode": decode,
            "encode": encode,
            "trap": fastcall._trap,
            "max_input": Limits().max_buffer_size,
        }
    )
    return module, None


speedups: ModuleType | None
UNAVAILABLE_REASON: str | None
speedups, UNAVAILABLE_REASON = _load()

#: True when the trampoline is built and loaded.
AVAILABLE: bool = speedups is not None

#: Whether a Runtime uses the native path unless told (``Runtime(native=...)``).
DEFAULT: bool = AVAILABLE and os.environ.get("PACKR_REPLAY_NATIVE_IMPORTS", "") != "0"

#: The C types the replay layer builds its fast state with (None without the extension).
ReplayFeed: Any = None if speedups is None else speedups.ReplayFeed
RecordLog: Any = None if speedups is None else speedups.RecordLog


def _address(pointer: Any) -> int:
    return ctypes.cast(pointer, ctypes.c_void_p).value or 0


def define_typed(linker: wasmtime.Linker, typed: Any) -> None:
    """Define ``typed`` (a ``TypedImport``) in ``linker`` with the C trampoline."""
    assert speedups is not None
    ftype = wasmtime.FuncType([wasmtime.ValType.i32()] * 4, [wasmtime.ValType.i32()])
    error = speedups.define(_address(linker.ptr()), _address(ftype.ptr()), typed)
    if error:
        raise wasmtime.WasmtimeError._from_ptr(
            ctypes.cast(error, ctypes.POINTER(ffi.wasmtime_error_t))
        )


def new_host() -> Any:
    """An instance's trampoline state (a ``Host``), serving imports the Python way
    until the instance's first call configures it."""
    assert speedups is not None
    return speedups.Host()
