"""What every part of an :class:`Instance` shares: its state, export lookup, the
interceptor hook table, one-call-at-a-time, and how traps become typed errors.

``Instance`` is assembled from one class per concern (``memory.GuestHeap``,
``imports.ImportDispatch``, ``exports.ExportCalls``); each builds on this base, so
the state they share is declared once, here.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from typing import TYPE_CHECKING, Any, cast

import wasmtime

from .. import _interrupts
from ..errors import (
    GuestMemoryError,
    GuestRuntimeError,
    GuestTimeout,
    GuestTrap,
    HostFunctionError,
    Interrupted,
)
from . import interrupt
from .host import ErrorHandler, HostLinkerBuilder, ReplyMode
from .interceptor import HOOKS, CallInterceptor, CoroutineDriver, overrides

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..abi.metadata import PackageMetadata
    from .engine import ExternInfo, Module, Runtime
    from .handlers import Plan
    from .host import Ctx
    from .instance import Instance
    from .memory import GuestMemory

__all__ = ["InstanceBase", "fmt_sig", "i32", "sig", "trap_error"]



def sig(info: ExternInfo) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A function's parameter and result types, as read from the module's bytes (never
    from a wasmtime type: wasmtime-py aborts the process printing a ``v128``)."""
    return info.params, info.results


def fmt_sig(signature: tuple[tuple[str, ...], tuple[str, ...]]) -> str:
    return f"({', '.join(signature[0])}) -> ({', '.join(signature[1])})"


def i32(value: int) -> int:
    return ((value + 2**31) % 2**32) - 2**31


class InstanceBase:
    """The state an instance's parts share (set up by ``Instance.__init__``)."""

    module: Module
    runtime: Runtime
    state: Any
    reply: ReplyMode
    fuel: int | None
    timeout: float | None
    scratch_capacity: int | None
    memory_limit: int | None
    deadline: float | None  # time.monotonic() by which every call must have ended
    _deadline_bound: bool  # the current call's time limit is what is left of it
    _call_deadline: float | None  # time.monotonic() by which the current call must end
    # Polled at each epoch tick while a guest call runs: an earlier time.monotonic()
    # limit, for one that depends on how far the run has got (None: none yet). A guest
    # it stops ends as at the instance's deadline (GuestTimeout, limit "deadline").
    deadline_hook: Callable[[], float | None] | None
    builder: HostLinkerBuilder
    interceptor: CallInterceptor | None
    _export_interceptor: CallInterceptor | None  # the instance's own (exports, raw imports)
    error_handler: ErrorHandler | None
    driver: CoroutineDriver
    ctx: Ctx
    store: wasmtime.Store
    _memory: GuestMemory | None
    _instance: wasmtime.Instance | None
    _exports: dict[str, Any]
    _checked_exports: dict[str, wasmtime.Func]
    _plans: dict[int, Plan]  # per typed function, keyed by id
    _busy: threading.RLock
    _hooks_for: type | None  # the interceptor class _hooks describes
    _hooks: dict[str, bool]
    _heap_next: int | None
    _alloc_trap: GuestRuntimeError | None  # why __pack_alloc last failed
    # The first failed import of the current call: a guest that spins afterwards
    # (packr guests panic on -1) gets it named in its GuestTimeout.
    _last_import_error: HostFunctionError | None
    on_host_error: str  # "status": -1 to the guest (packr); "trap": stop the guest there
    _call_lock: asyncio.Lock | None
    _declared: tuple[PackageMetadata | None] | None  # call_text's types, once looked up
    _keepalive: list[Any]  # C callbacks: must outlive the store
    _native: Any  # the trampoline's per-instance state (native.speedups.Host), or None

    # ------------------------------------------------------------- accessors

    @property
    def _whole(self) -> Instance:
        """This object as the assembled :class:`Instance` (what a ``Ctx`` holds)."""
        return cast("Instance", self)

    @property
    def memory(self) -> GuestMemory:
        if self._memory is None:
            raise GuestMemoryError("no exported memory named 'memory'")
        return self._memory

    def _exports_get(self, name: str) -> Any:
        try:
            return self._exports[name]
        except KeyError:
            if self._instance is None:
                return None  # still instantiating
            item = self._instance.exports(self.store).get(name)
            self._exports[name] = item
            return item

    def has_export(self, name: str) -> bool:
        return self._exports_get(name) is not None

    def _enter(self) -> None:
        """One call at a time: a wasmtime store is single-threaded. Re-entrant calls
        from the same thread (an export called from inside a host function) are fine.
        None starts once the process is interrupted."""
        self._refuse_if_interrupted()
        if not self._busy.acquire(blocking=False):
            raise RuntimeError(
                f"instance of {self.module.name} is running a call in another thread; an "
                "instance runs one call at a time (use one instance per thread, or "
                "await call_with_value_async, which queues calls)"
            )

    def _refuse_if_interrupted(self) -> None:
        """No guest call starts once SIGINT/SIGTERM interrupted the process (see
        :mod:`packr_replay._interrupts`)."""
        if _interrupts.interrupted() is not None:
            raise self._interrupted()

    def _stop_error(self, name: str) -> BaseException | None:
        """What to raise for a guest the epoch callback just stopped (see
        :mod:`.interrupt`): :class:`Interrupted` or :class:`GuestTimeout`; None when the
        guest was not stopped that way."""
        reason = interrupt.stopped()
        if reason is None:
            return None
        if reason == "deadline":
            error = self._timeout_error(name)
            if self._last_import_error is not None:
                error.__cause__ = self._last_import_error
            return error
        return self._interrupted()

    def _interrupted(self) -> Interrupted:
        signum = _interrupts.interrupted() or signal.SIGINT
        if threading.current_thread() is threading.main_thread():
            taken = _interrupts.take()  # this is the one the signal raises
            if taken is None:
                _interrupts.delivered()  # (its Python handler has not run yet)
            signum = taken or signum
        return Interrupted(signum)

    def _current_deadline(self) -> float | None:
        """The running call's limit, as the epoch callback checks it (see
        :attr:`deadline_hook`)."""
        limit = self._call_deadline
        hook = self.deadline_hook
        if hook is not None:
            earlier = hook()
            if earlier is not None and (limit is None or earlier < limit):
                self._deadline_bound = True  # a stop now is the instance's deadline's
                return earlier
        return limit

    def _timeout_error(self, name: str) -> GuestTimeout:
        host_error = self._last_import_error
        if self._deadline_bound:
            return GuestTimeout(name, "the instance's deadline", "deadline", host_error)
        return GuestTimeout(name, f"wall-clock timeout of {self.timeout}s", "timeout", host_error)

    def _with_host_error(self, error: GuestRuntimeError) -> GuestRuntimeError:
        """A timeout after a failed import names that import's failure (packr guests
        spin on a failed import, so that failure is why the budget ran out)."""
        host_error = self._last_import_error
        if isinstance(error, GuestTimeout) and host_error is not None:
            named = GuestTimeout(error.export, error.budget, error.limit, host_error)
            named.__cause__ = host_error
            return named
        return error

    def _native_sync(self) -> None:
        """Tell the C trampoline how to serve imports now (see ``ImportDispatch``)."""

    # ------------------------------------------------------- interceptor hooks

    def _hook(self, icpt: CallInterceptor, name: str) -> bool:
        """Whether ``icpt`` overrides hook ``name`` (cached per interceptor class)."""
        if type(icpt) is not self._hooks_for:
            self._hooks_of(icpt)
        return self._hooks[name]

    def _hooks_of(self, icpt: CallInterceptor) -> dict[str, bool]:
        """The hook table of ``icpt``'s class (computed when the class changes)."""
        cls = type(icpt)
        if cls is not self._hooks_for:
            self._hooks_for = cls
            self._hooks = {h: overrides(icpt, h) for h in HOOKS}
            # (derived: whether a completed import is shown to the interceptor at all)
            self._hooks["completes"] = self._hooks["import_completed"] or self._hooks["after_import"]
        return self._hooks

    def _completes(self, icpt: CallInterceptor) -> bool:
        """Whether ``icpt`` wants completed imports (``import_completed``/``after_import``)."""
        return self._hook(icpt, "completes")


def trap_error(
    name: str,
    trap: wasmtime.Trap,
    fuel: int | None,
    timeout: float | None,
    deadline_bound: bool = False,
) -> GuestRuntimeError:
    """A trap as a typed error; ``deadline_bound``: the call's time was what was left
    before the instance's deadline, not its own timeout."""
    code = trap.trap_code
    if code == wasmtime.TrapCode.OUT_OF_FUEL:
        return GuestTimeout(name, f"fuel budget of {fuel} instructions", limit="fuel")
    if code == wasmtime.TrapCode.INTERRUPT:
        if deadline_bound:
            return GuestTimeout(name, "the instance's deadline", limit="deadline")
        return GuestTimeout(name, f"wall-clock timeout of {timeout}s", limit="timeout")
    return GuestTrap(name, _trap_summary(trap.message))


def _trap_summary(message: str) -> str:
    """wasmtime's trap text: keep the cause and the backtrace, drop the boilerplate."""
    text = message.strip()
    if "Caused by:" in text:
        head, _, cause = text.partition("Caused by:")
        return f"{cause.strip()}\n{head.strip()}"
    return text
