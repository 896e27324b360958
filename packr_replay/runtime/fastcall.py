"""Calling into and out of wasm through wasmtime's *unchecked* C API.

wasmtime-py's ``Func.__call__`` and ``Linker.define_func`` re-derive the function type
and box every argument on every call: about 120 µs per export call and 28 µs per host
call here. The unchecked API takes the raw argument array instead (5 µs and 2 µs). The
types are fixed when a function is defined and checked by wasmtime at link time, so
nothing is given up. This module and :mod:`.native` (the C trampoline's loader) are the
only ones touching wasmtime's private ``_ffi``; the package pins the wasmtime major
version it was written against.

A Python exception raised inside a host function becomes a trap that unwinds the
guest, and is then re-raised *as itself* out of :func:`call` (per thread, so async
calls running in worker threads do not mix them up).
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable, Sequence
from ctypes import POINTER, byref, c_void_p, cast
from typing import Any

import wasmtime
from wasmtime import _ffi as ffi

__all__ = ["Trapped", "call", "define_func"]

_FINALIZER = ctypes.CFUNCTYPE(None, c_void_p)(lambda _env: None)
_pending = threading.local()
_TRAP_MSG = b"python exception in a host function"
_KINDS = frozenset({"i32", "i64", "f32", "f64"})
# wasmtime's unchecked callback type with the caller as a plain address and the raw
# arguments as int32s (see _make_callback).
_I32_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_size_t, c_void_p, c_void_p, POINTER(ctypes.c_int32), ctypes.c_size_t
)


class Trapped(Exception):
    """The guest trapped; ``trap`` has the message and code."""

    def __init__(self, trap: wasmtime.Trap) -> None:
        super().__init__(trap.message)
        self.trap = trap


def _raise_pending() -> None:
    exc = getattr(_pending, "exc", None)
    if exc is not None:
        _pending.exc = None
        raise exc


def _trap(exc: BaseException) -> int:
    """Park ``exc`` for :func:`call` to re-raise and unwind the guest with a trap."""
    _pending.exc = exc
    trap = ffi.wasmtime_trap_new(ctypes.create_string_buffer(_TRAP_MSG), len(_TRAP_MSG))
    return cast(trap, c_void_p).value or 0


def _make_callback(
    func: Callable[..., Any], params: Sequence[str], results: Sequence[str]
) -> tuple[Any, Any]:
    """The callback to give wasmtime, and the object that must outlive it."""
    kinds = tuple(params)
    out = tuple(results)
    for kind in (*kinds, *out):
        if kind not in _KINDS:
            raise ValueError(f"unsupported wasm value type {kind!r}")
    # The C callback, specialised to this signature: reads and writes on the raw
    # argument array around one Python call (kinds are validated above).
    if all(k == "i32" for k in (*kinds, *out)):
        # All i32 (every packr typed import): read the array as int32s, each 16-byte
        # wasmtime_val_raw_t holding its i32 in its first 4 bytes (little-endian, the
        # only byte order wasmtime runs on), so each access is a plain index instead
        # of a union object plus an attribute read.
        call = f"func({', '.join(f'args[{4 * i}]' for i in range(len(kinds)))})"
        results = [f"args[{4 * i}]" for i in range(len(out))]
        cb_type = _I32_CALLBACK
    else:
        call = f"func({', '.join(f'args[{i}].{k}' for i, k in enumerate(kinds))})"
        results = [f"args[{i}].{k}" for i, k in enumerate(out)]
        cb_type = None
    if not out:
        body = [call]
    elif len(out) == 1:
        body = [f"{results[0]} = {call}"]
    else:
        body = [f"{', '.join(f'r{i}' for i in range(len(out)))}, = {call}"]
        body += [f"{r} = r{i}" for i, r in enumerate(results)]
    lines = "\n".join(f"        {line}" for line in body)
    source = (
        "def callback(_env, _caller, args, _nargs):\n"
        "    try:\n"
        f"{lines}\n"
        "        return 0\n"
        "    except BaseException as exc:\n"
        "        return _trap(exc)\n"
    )
    namespace: dict[str, Any] = {"func": func, "_trap": _trap}
    exec(source, namespace)
    callback = namespace["callback"]
    if cb_type is None:
        thunk = ffi.wasmtime_func_unchecked_callback_t(callback)
        return thunk, thunk
    # Same C signature, other pointer types: hand wasmtime the same thunk under its type.
    thunk = cb_type(callback)
    return cast(thunk, ffi.wasmtime_func_unchecked_callback_t), thunk


def define_func(
    linker: wasmtime.Linker,
    module: str,
    name: str,
    params: Sequence[str],
    results: Sequence[str],
    func: Callable[..., Any],
    keepalive: list[Any],
) -> None:
    """Define ``module.name`` in ``linker`` as ``func`` taking raw wasm numbers.

    The C callback object is appended to ``keepalive``, which must live as long as any
    store that can call it.
    """
    vt = {
        "i32": wasmtime.ValType.i32,
        "i64": wasmtime.ValType.i64,
        "f32": wasmtime.ValType.f32,
        "f64": wasmtime.ValType.f64,
    }
    ftype = wasmtime.FuncType([vt[p]() for p in params], [vt[r]() for r in results])
    callback, thunk = _make_callback(func, params, results)
    keepalive.append((callback, thunk, ftype))
    mod = module.encode("utf-8")
    nam = name.encode("utf-8")
    error = ffi.wasmtime_linker_define_func_unchecked(
        linker.ptr(),
        ctypes.create_string_buffer(mod),
        len(mod),
        ctypes.create_string_buffer(nam),
        len(nam),
        ftype.ptr(),
        callback,
        None,
        _FINALIZER,
    )
    if error:
        raise wasmtime.WasmtimeError._from_ptr(error)


def call(
    store: wasmtime.Store,
    func: wasmtime.Func,
    args: Sequence[Any],
    nresults: int = 1,
    kinds: Sequence[str] | None = None,
    result_kinds: Sequence[str] | None = None,
) -> Any:
    """Call ``func`` with integer (i32 by default) arguments; return its first result.

    ``kinds`` / ``result_kinds`` name the wasm types ("i32", "i64", "f32", "f64") of
    the arguments and results when they are not all i32; with ``result_kinds`` every
    result is returned (``None`` for none, the value for one, a tuple for several).
    Raises :class:`Trapped` on a trap, or the Python exception a host function raised.
    """
    if result_kinds is not None:
        nresults = len(result_kinds)
    n = max(len(args), nresults, 1)
    raw = (ffi.wasmtime_val_raw_t * n)()
    if kinds is None:
        for i, value in enumerate(args):
            raw[i].i32 = value
    else:
        for i, (kind, value) in enumerate(zip(kinds, args, strict=True)):
            setattr(raw[i], kind, value)
    trap = POINTER(ffi.wasm_trap_t)()
    error = ffi.wasmtime_func_call_unchecked(
        store._context(), byref(func._func), raw, n, byref(trap)
    )
    if error:
        _raise_pending()
        raise wasmtime.WasmtimeError._from_ptr(error)
    if trap:
        trapped = wasmtime.Trap._from_ptr(trap)
        _raise_pending()
        raise Trapped(trapped)
    if result_kinds is None:
        return raw[0].i32 if nresults else None
    results = tuple(getattr(raw[i], kind) for i, kind in enumerate(result_kinds))
    if len(results) == 1:
        return results[0]
    return results or None
