"""``Recorder``: an interceptor that writes every boundary crossing to a trace.

It stores the exact bytes the runtime already holds (no re-encoding) and returns to
the guest only after the sink accepted the event, so a slow sink slows the guest down
instead of losing events (packr's back-pressure guarantee).
"""

from __future__ import annotations

from time import monotonic
from typing import TYPE_CHECKING, Any

from ..errors import (
    GuestError,
    GuestRuntimeError,
    GuestTimeout,
    GuestTrap,
    HostFunctionError,
    InvalidGuestOutput,
)
from ..runtime import CallInterceptor, ExportCall, ImportCall, native
from ..storage.model import EventKind, Outcome

if TYPE_CHECKING:
    from ..abi import EncodedValue
    from ..storage.protocols import EventSink

__all__ = ["Recorder", "export_outcome"]


def export_outcome(error: GuestRuntimeError | None) -> Outcome:
    """How an export call ended, as stored in its ``return`` event."""
    if error is None:
        return Outcome.OK
    if isinstance(error, GuestTimeout):
        return Outcome.TIMEOUT
    if isinstance(error, GuestTrap):
        return Outcome.TRAP
    if isinstance(error, (GuestError, InvalidGuestOutput)):
        return Outcome.GUEST_ERROR
    return Outcome.HOST_ERROR


class Recorder(CallInterceptor):
    """Records typed imports and exports into an :class:`EventSink`.

    Export calls are numbered from 1 (``call``); imports made outside any export (for
    example from a start function) belong to call 0. ``depth`` counts exports nested
    inside host functions.

    Events are collected as plain tuples and handed to the sink in batches (``extend``)
    every ``batch`` events or ``max_delay`` seconds, and when a top-level export
    returns. When they become durable is the sink's policy (a :class:`TraceWriter`
    commits by size and time, and at the end), not the export boundaries': a guest
    making one import per export call records as cheaply as one making them all in one
    call. Batching keeps a recorded import down to a tuple append on the guest's path;
    the delays bound what a crash can lose to the last fraction of a second.
    """

    inline = True  # never awaits: safe and cheap to drive on the guest's thread

    def __init__(self, sink: EventSink, *, batch: int = 512, max_delay: float = 0.1) -> None:
        self.sink = sink
        self.calls = 0
        self.batch = batch
        self.max_delay = max_delay
        self._stack: list[int] = []
        self._pending: list[tuple[Any, ...]] = []
        self._deadline = monotonic() + max_delay
        self.import_observer = self._observe_import
        # The native seam: on the C trampoline, a successful import's row is appended to
        # _pending by C, as _observe_import would append it (a subclass that observes
        # differently keeps the Python path).
        self.native_log: Any = (
            native.RecordLog(
                self._pending, self._stack, self.drain, batch, max_delay, _IMPORT, _OK
            )
            if native.RecordLog is not None
            and type(self)._observe_import is Recorder._observe_import
            else None
        )

    @property
    def _call(self) -> int:
        return self._stack[-1] if self._stack else 0

    def _add(self, row: tuple[Any, ...]) -> None:
        pending = self._pending
        pending.append(row)
        if len(pending) >= self.batch or monotonic() >= self._deadline:
            self.drain()

    def drain(self) -> None:
        """Hand every collected event to the sink (not yet a durability point)."""
        self._deadline = monotonic() + self.max_delay
        pending = self._pending
        if pending:
            rows = pending.copy()  # (the list itself stays: the native log appends to it)
            pending.clear()
            self.sink.extend(rows)

    def _observe_import(
        self,
        interface: str,
        function: str,
        input: bytes | None,
        output: bytes | None,
        status: int,
        error: HostFunctionError | None,
        duration_ns: int,
        replayed: bool,
    ) -> None:
        stack = self._stack
        row: tuple[Any, ...]
        if error is None:
            row = (stack[-1] if stack else 0, _IMPORT, interface, function, input, output,
                   status, _OK, None, None, duration_ns, len(stack))  # fmt: skip
        else:
            row = (stack[-1] if stack else 0, _IMPORT, interface, function, input, output,
                   status, _IMPORT_ERROR, error.kind, error.message, duration_ns, len(stack))  # fmt: skip
        pending = self._pending
        pending.append(row)
        if len(pending) >= self.batch or monotonic() >= self._deadline:
            self.drain()

    async def before_export(self, function: str, input: EncodedValue) -> None:
        self.calls += 1
        self._stack.append(self.calls)
        self._add((self.calls, _EXPORT, "", function, input.data, None, None, _OK, None, None,
                   0, len(self._stack) - 1))  # fmt: skip

    async def import_completed(self, call: ImportCall) -> None:
        # Only used when the runtime does not take the import_observer fast path.
        self._observe_import(
            call.interface,
            call.function,
            None if call.input is None else call.input.data,
            None if call.output is None else call.output.data,
            call.status,
            call.error,
            call.duration_ns,
            call.replayed,
        )

    async def export_completed(self, call: ExportCall) -> None:
        error = call.error
        number = self._stack.pop() if self._stack else 0
        self._add(
            (
                number,
                _RETURN,
                "",
                call.function,
                None,
                None if call.output is None else call.output.data,
                call.status,
                str(export_outcome(error)),
                None if error is None else type(error).__name__,
                None if error is None else _error_text(error),
                call.duration_ns,
                len(self._stack),
            )
        )
        if not self._stack:
            self.drain()


_EXPORT = str(EventKind.EXPORT)
_IMPORT = str(EventKind.IMPORT)
_RETURN = str(EventKind.RETURN)
_OK = str(Outcome.OK)
_IMPORT_ERROR = str(Outcome.IMPORT_ERROR)


def _error_text(error: GuestRuntimeError) -> str:
    """The part of an export error that a faithful replay must reproduce."""
    if isinstance(error, GuestError):
        return error.message
    if isinstance(error, GuestTrap):
        return error.trap.splitlines()[0] if error.trap else ""
    if isinstance(error, GuestTimeout):
        return error.budget
    return str(error)
