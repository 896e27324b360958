"""``Recorder``: an interceptor that writes every boundary crossing to a trace.

It stores the exact bytes the runtime already holds (no re-encoding) and returns to
the guest only after the sink accepted the event, so a slow sink slows the guest down
instead of losing events (packr's back-pressure guarantee).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import (
    GuestError,
    GuestRuntimeError,
    GuestTimeout,
    GuestTrap,
    InvalidGuestOutput,
)
from ..runtime import CallInterceptor, ExportCall, ImportCall
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
    inside host functions. The sink is flushed whenever a top-level export returns.
    """

    inline = True  # never awaits: safe and cheap to drive on the guest's thread

    def __init__(self, sink: EventSink) -> None:
        self.sink = sink
        self.calls = 0
        self._stack: list[int] = []

    @property
    def _call(self) -> int:
        return self._stack[-1] if self._stack else 0

    async def before_export(self, function: str, input: EncodedValue) -> None:
        self.calls += 1
        self._stack.append(self.calls)
        self.sink.append(
            kind=EventKind.EXPORT,
            call=self.calls,
            interface="",
            function=function,
            input=input.data,
            depth=len(self._stack) - 1,
        )

    async def import_completed(self, call: ImportCall) -> None:
        error = call.error
        self.sink.append(
            kind=EventKind.IMPORT,
            call=self._call,
            interface=call.interface,
            function=call.function,
            input=None if call.input is None else call.input.data,
            output=None if call.output is None else call.output.data,
            status=call.status,
            outcome=Outcome.OK if error is None else Outcome.IMPORT_ERROR,
            error_kind=None if error is None else error.kind,
            error=None if error is None else error.message,
            duration_ns=call.duration_ns,
            depth=len(self._stack),
        )

    async def export_completed(self, call: ExportCall) -> None:
        error = call.error
        number = self._stack.pop() if self._stack else 0
        self.sink.append(
            kind=EventKind.RETURN,
            call=number,
            interface="",
            function=call.function,
            input=None,
            output=None if call.output is None else call.output.data,
            status=call.status,
            outcome=export_outcome(error),
            error_kind=None if error is None else type(error).__name__,
            error=None if error is None else _error_text(error),
            duration_ns=call.duration_ns,
            depth=len(self._stack),
        )
        if not self._stack:
            self.sink.flush()


def _error_text(error: GuestRuntimeError) -> str:
    """The part of an export error that a faithful replay must reproduce."""
    if isinstance(error, GuestError):
        return error.message
    if isinstance(error, GuestTrap):
        return error.trap.splitlines()[0] if error.trap else ""
    if isinstance(error, GuestTimeout):
        return error.budget
    return str(error)
