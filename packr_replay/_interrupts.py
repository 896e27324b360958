"""Ctrl-C and SIGTERM without raising where it is unsafe (layer-neutral part).

Python raises KeyboardInterrupt at whatever bytecode the main thread runs when the signal
arrives: inside a host function that wasmtime called (a ctypes callback: the process may
crash or the guest's trap lose the exception), between a writer's bookkeeping steps, in
the middle of a commit. And it raises nothing at all while the main thread stays in C (a
guest spinning, a C trampoline serving recorded replies), so a spinning guest ignores
Ctrl-C. This module fixes both halves; :mod:`packr_replay.runtime.interrupt` adds the
wasmtime half (stopping running guests through their epoch deadline).

* :func:`catching` installs handlers for SIGINT and SIGTERM (main thread only). A signal
  that arrives while the main thread is inside a :func:`deferred` region (a guest call,
  a writer's commit) is only *recorded*; the region raises :class:`Interrupted` when it
  ends. Outside such a region it raises :class:`Interrupted` at once, as Ctrl-C always
  does. Either way every registered *kicker* runs (the runtime increments its engines'
  epochs, so a running guest stops at its next epoch check).
* ``signal.set_wakeup_fd`` makes CPython's C-level handler write the signal's number to
  a pipe whatever the main thread is doing; a watcher thread reads it, marks the
  process :func:`interrupted` and runs the kickers, so a guest that never returns to
  Python code (a spinning loop, a C trampoline serving recorded replies) is stopped too.
  (Only the Python-level handler hands out the one :class:`Interrupted` a signal raises
  on the main thread: :func:`take`.)
* Once interrupted, every guest call stops and none starts, in any thread, until the
  outermost :func:`catching` context ends: the program is on its way out.

Interrupts are only caught inside :func:`catching` (the CLI, ``api.record_run``,
``api.replay``, the pytest plugin), so a program that embeds packr-replay keeps its own
signal handling otherwise.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType, TracebackType
from typing import Any

from .errors import Interrupted

__all__ = [
    "HANDLED",
    "Interrupted",
    "add_kicker",
    "catching",
    "check",
    "deferred",
    "interrupted",
    "pending",
    "take",
]

#: The signals :func:`catching` turns into interrupts.
HANDLED = (signal.SIGINT, signal.SIGTERM)


class _State:
    """Process-wide: signals are."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.interrupted: int | None = None  # sticky until catching() ends: stop guests
        self.pending: int | None = None  # the main thread's Interrupted, not yet raised
        self.delivered = False  # the main thread has had its Interrupted (one per context)
        self.depth = 0  # deferred regions open on the main thread
        self.catching = 0  # nested catching() contexts
        self.kickers: list[Callable[[], None]] = []


_state = _State()
_MAIN = threading.main_thread()


def add_kicker(kick: Callable[[], None]) -> None:
    """Run ``kick()`` (from any thread; it must not raise or block) on every signal."""
    with _state.lock:
        _state.kickers.append(kick)


def _kick() -> None:
    for kick in list(_state.kickers):
        try:
            kick()
        except Exception:  # a kicker must not stop the others
            pass


def _mark(signum: int) -> None:
    """The process is interrupted: stop every guest (from any thread)."""
    with _state.lock:
        if _state.interrupted is None:
            _state.interrupted = signum
    _kick()


def interrupted() -> int | None:
    """The signal that interrupted the process (sticky until :func:`catching` ends)."""
    return _state.interrupted


def pending() -> int | None:
    """The signal whose :class:`Interrupted` the main thread has not raised yet."""
    return _state.pending


def take() -> int | None:
    """Take the pending signal (the caller raises :class:`Interrupted` for it)."""
    with _state.lock:
        signum, _state.pending = _state.pending, None
        if signum is not None:
            _state.delivered = True
    return signum


def delivered() -> None:
    """The main thread raised its :class:`Interrupted` without taking the pending
    signal (a guest stopped before the Python handler ran): the handler, when it runs,
    must not owe it another one."""
    with _state.lock:
        _state.pending = None
        _state.delivered = True


def check() -> None:
    """A safe point: raise :class:`Interrupted` if a signal is pending (main thread)."""
    if _state.pending is not None:
        signum = take()
        if signum is not None:
            raise Interrupted(signum)


class deferred:
    """A region where a signal is recorded, not raised; it is raised when the region
    ends (unless an exception is already leaving it). Nestable, cheap."""

    __slots__ = ("_main",)

    def __enter__(self) -> None:
        self._main = threading.current_thread() is _MAIN
        if self._main:
            _state.depth += 1

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._main:
            _state.depth -= 1
            if exc_type is None and _state.depth == 0 and _state.pending is not None:
                check()


def _handler(signum: int, frame: FrameType | None) -> None:
    with _state.lock:
        if not _state.delivered:  # one Interrupted per context: the run is stopping
            _state.pending = signum
    _mark(signum)
    if _state.depth == 0:  # plain Python code: stop here, as Ctrl-C always does
        check()


@contextlib.contextmanager
def catching() -> Iterator[None]:
    """Turn SIGINT and SIGTERM into :class:`Interrupted` raised at safe points (see the
    module's docstring) for the duration. Does nothing off the main thread, and nests."""
    if threading.current_thread() is not _MAIN:
        yield
        return
    with _state.lock:
        _state.catching += 1
        outermost = _state.catching == 1
    if not outermost:
        try:
            yield
        finally:
            with _state.lock:
                _state.catching -= 1
        return
    previous: dict[int, Any] = {}
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    old_fd = -1
    watcher: threading.Thread | None = None
    try:
        for number in HANDLED:
            previous[number] = signal.signal(number, _handler)
        old_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        watcher = threading.Thread(
            target=_watch, args=(read_fd,), name="packr-replay-interrupts", daemon=True
        )
        watcher.start()
        yield
    finally:
        if old_fd != -1 or watcher is not None:
            signal.set_wakeup_fd(old_fd)
        for restored, handler in previous.items():
            signal.signal(restored, handler)
        os.close(write_fd)  # the watcher reads end-of-file and stops
        if watcher is not None:
            watcher.join()
        os.close(read_fd)
        with _state.lock:
            _state.catching -= 1
            _state.pending = _state.interrupted = None  # the interrupt ends with the context
            _state.delivered = False


def _watch(fd: int) -> None:
    """Read signal numbers that CPython's C handler wrote; kick the guests."""
    while True:
        try:
            data = os.read(fd, 64)
        except InterruptedError:
            continue
        except OSError:
            return
        if not data:
            return
        for signum in data:
            if signum in HANDLED:
                _mark(signum)
