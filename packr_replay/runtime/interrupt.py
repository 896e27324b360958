"""Stopping running guests: on SIGINT/SIGTERM within a second whatever their fuel, and
at their wall-clock deadline.

Every store gets an epoch-deadline callback (:func:`watch_store`) and every call arms its
epoch deadline one tick ahead. Epochs advance only when something increments them: the
runtime's ticker while a call has a wall-clock limit, and
:mod:`packr_replay._interrupts` on a signal, which runs :func:`kick` (every engine
registered here gets one tick). At each deadline the callback decides, and never raises
(a wasmtime callback must not):

* the process is interrupted: stop the guest, reason ``"interrupt"``;
* the call's wall-clock deadline has passed: stop it, reason ``"deadline"``;
* otherwise: continue, one tick more.

A stopped guest unwinds with a wasmtime error; :func:`stopped` tells the code that
called into the guest why, and that code raises :class:`~packr_replay.errors.Interrupted`
or :class:`~packr_replay.errors.GuestTimeout` where it is safe to.

Nothing here relies on a Python signal handler running: the signal reaches the watcher
thread through ``signal.set_wakeup_fd`` and the engines through :func:`kick`, and the
callback is entered from guest code. So import dispatch moved into C (a trampoline that
serves replies without Python) is stopped the same way; a loop in C that does not run
guest code between iterations should poll :func:`packr_replay._interrupts.interrupted`.
"""

from __future__ import annotations

import ctypes
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import wasmtime
from wasmtime import _ffi as ffi

from .. import _interrupts

__all__ = ["kick", "register_engine", "stopped", "watch_store"]

_engines: weakref.WeakSet[wasmtime.Engine] = weakref.WeakSet()
_engines_lock = threading.Lock()
_stop = threading.local()  # .reason: why this thread's guest was stopped

# wasmtime_store_epoch_deadline_callback's callback type (ctypes caches function types,
# so this is the very class its binding declares).
_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_size_t,  # wasmtime_error_t *: NULL continues, an error stops the guest
    ctypes.POINTER(ffi.wasmtime_context_t),
    ctypes.c_void_p,  # data
    ctypes.POINTER(ctypes.c_uint64),  # the next deadline, in ticks from now
    ctypes.POINTER(ffi.wasmtime_update_deadline_kind_t),
)
_FINALIZER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(lambda _data: None)
_CONTINUE = 0  # WASMTIME_UPDATE_DEADLINE_CONTINUE
_MESSAGES = {
    "interrupt": b"packr-replay: interrupted",
    "deadline": b"packr-replay: wall-clock deadline reached",
}


def register_engine(engine: wasmtime.Engine) -> None:
    """Let a signal reach the guests of ``engine`` (every ``Runtime`` does this)."""
    with _engines_lock:
        _engines.add(engine)


def kick() -> None:
    """One epoch tick on every registered engine: each running guest reaches its epoch
    deadline at its next check, and its callback sees the interrupt."""
    with _engines_lock:
        engines = list(_engines)
    for engine in engines:
        engine.increment_epoch()


_interrupts.add_kicker(kick)


def stopped() -> str | None:
    """Why this thread's guest was just stopped (``"interrupt"``, ``"deadline"``), once."""
    reason: str | None = getattr(_stop, "reason", None)
    _stop.reason = None
    return reason


def _error(reason: str) -> int:
    _stop.reason = reason
    message = _MESSAGES[reason]
    error = ffi.wasmtime_error_new(ctypes.create_string_buffer(message))
    return ctypes.cast(error, ctypes.c_void_p).value or 0


def watch_store(store: wasmtime.Store, deadline: Callable[[], float | None]) -> Any:
    """Install the epoch-deadline callback on ``store``; ``deadline()`` gives the current
    call's ``time.monotonic()`` limit (None: none). Returns what must outlive the store."""
    monotonic = time.monotonic
    interrupted = _interrupts.interrupted

    def callback(_context: Any, _data: Any, delta: Any, kind: Any) -> int:
        try:
            if interrupted() is not None:
                return _error("interrupt")
            limit = deadline()
            if limit is not None and monotonic() >= limit:
                return _error("deadline")
            delta[0] = 1
            kind[0] = _CONTINUE
            return 0
        except BaseException:  # never raise into wasmtime; stopping is the safe side
            return _error("interrupt")

    thunk = _CALLBACK(callback)
    ffi.wasmtime_store_epoch_deadline_callback(store.ptr(), thunk, None, _FINALIZER)
    return thunk
