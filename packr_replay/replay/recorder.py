"""``Recorder``: an interceptor that writes every boundary crossing to a trace.

It stores the exact bytes the runtime already holds (no re-encoding) and returns to
the guest only after the sink accepted the event, so a slow sink slows the guest down
instead of losing events (packr's back-pressure guarantee).
"""

from __future__ import annotations

from time import monotonic
from typing import TYPE_CHECKING, Any

from .. import _interrupts
from ..errors import (
    GuestError,
    GuestRuntimeError,
    GuestTimeout,
    GuestTrap,
    HostFunctionError,
    InvalidGuestOutput,
)
from ..runtime import CallInterceptor, ExportCall, ImportCall, RawCall, native
from ..storage.model import EventKind, Outcome
from .rawevents import encode_args, encode_reply

if TYPE_CHECKING:
    from ..abi import EncodedValue
    from ..storage.protocols import EventSink

__all__ = ["CompositionRecorder", "Recorder", "export_outcome"]


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
    """Records typed imports, raw imports and exports into an :class:`EventSink`.

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

    def __init__(
        self,
        sink: EventSink,
        *,
        batch: int = 512,
        max_delay: float = 0.1,
        raw: bool = True,
        _log: _Log | None = None,
    ) -> None:
        self._log = log = _Log(sink, max_delay) if _log is None else _log
        self.sink = log.sink
        self.batch = batch
        self.max_delay = max_delay
        self._stack: list[int] = []
        self._pending = log.pending  # shared by the package views of a composition
        self._deadline = monotonic() + max_delay
        self.import_observer = self._observe_import
        if raw:  # raw imports as raw events (False: left to a host on replay, as packr)
            self.raw_observer = self._observe_raw
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
    def calls(self) -> int:
        """Export calls started so far (in the whole composition, for a package view)."""
        return self._log.calls

    @property
    def _call(self) -> int:
        return self._stack[-1] if self._stack else 0

    def _add(self, row: tuple[Any, ...]) -> None:
        pending = self._pending
        pending.append(row)
        if len(pending) >= self.batch or monotonic() >= self._deadline:
            self.drain()

    def drain(self) -> None:
        """Hand every collected event to the sink (not yet a durability point). The
        owner of a recording that stops early (an interrupt, an error) drains before it
        seals the sink, so no collected event is lost."""
        with _interrupts.deferred():
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

    def _observe_raw(self, call: RawCall) -> None:
        """A raw import call (``func_raw``), as a ``raw`` event (see :mod:`.rawevents`)."""
        self._add(self._raw_row(call))

    def _raw_row(self, call: RawCall) -> tuple[Any, ...]:
        stack = self._stack
        error = call.error
        return (
            stack[-1] if stack else 0,
            _RAW,
            call.interface,
            call.function,
            encode_args(call.params, call.args),
            encode_reply(call),
            None,
            _OK if error is None else _IMPORT_ERROR,
            None if error is None else "Handler",
            None if error is None else f"{type(error).__name__}: {error}",
            call.duration_ns,
            len(stack),
        )

    async def before_export(self, function: str, input: EncodedValue) -> None:
        log = self._log
        log.calls += 1
        log.open += 1
        number = log.calls
        self._stack.append(number)
        self._add((number, _EXPORT, "", function, input.data, None, None, _OK, None, None,
                   0, len(self._stack) - 1))  # fmt: skip

    async def import_completed(self, call: ImportCall) -> None:
        # Only used when the runtime does not take the import_observer fast path.
        self._observe_import(*call.observed())

    async def export_completed(self, call: ExportCall) -> None:
        number = self._stack.pop() if self._stack else 0
        self._add(self._return_row(number, call))
        self._returned()

    def _return_row(self, number: int, call: ExportCall) -> tuple[Any, ...]:
        error = call.error
        return (
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

    def _returned(self) -> None:
        """An export call ended: when it was the outermost one, make the log durable."""
        log = self._log
        if log.open > 0:
            log.open -= 1
        if log.open == 0:
            self.drain()


class _Log:
    """What the recorders of one trace share: the sink, the rows not yet handed to it,
    the export-call counter and how many export calls are open (over all packages)."""

    __slots__ = ("calls", "max_delay", "open", "pending", "sink")

    def __init__(self, sink: EventSink, max_delay: float) -> None:
        self.sink = sink
        self.max_delay = max_delay
        self.pending: list[tuple[Any, ...]] = []
        self.calls = 0
        self.open = 0


class _PackageRecorder(Recorder):
    """One package's recorder in a composition: its rows name the package (a 13th
    field), its ``call``/``depth`` count its own export calls, and it shares the trace
    with the other packages' recorders, in the order events happen."""

    def __init__(self, log: _Log, package: str, batch: int, max_delay: float) -> None:
        super().__init__(log.sink, batch=batch, max_delay=max_delay, _log=log)
        self.package = package

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
        # Recorder._observe_import's row and the package, written out again: this runs
        # for every import a composition makes (the recording's hot path).
        stack = self._stack
        call, depth = (stack[-1] if stack else 0), len(stack)
        row: tuple[Any, ...]
        if error is None:
            row = (call, _IMPORT, interface, function, input, output, status, _OK, None, None,
                   duration_ns, depth, self.package)  # fmt: skip
        else:
            row = (call, _IMPORT, interface, function, input, output, status, _IMPORT_ERROR,
                   error.kind, error.message, duration_ns, depth, self.package)  # fmt: skip
        self._add(row)

    async def before_export(self, function: str, input: EncodedValue) -> None:
        log = self._log
        log.calls += 1
        log.open += 1
        number = log.calls
        self._stack.append(number)
        self._add((number, _EXPORT, "", function, input.data, None, None, _OK, None, None,
                   0, len(self._stack) - 1, self.package))  # fmt: skip

    async def export_completed(self, call: ExportCall) -> None:
        number = self._stack.pop() if self._stack else 0
        self._add((*self._return_row(number, call), self.package))
        self._returned()

    def _observe_raw(self, call: RawCall) -> None:
        self._add((*self._raw_row(call), self.package))


class CompositionRecorder:
    """Records a whole composition into one trace: :meth:`package` gives the
    interceptor of each package (``CompositionBuilder.build(interceptors=...)`` takes
    this object's ``package`` method).

    Every event names its package. A wired call is recorded twice, from both sides:
    an ``import`` event of the caller and an ``export``/``return`` pair of the callee
    (inside it, in time). ``call`` numbers are unique in the trace; ``call`` and
    ``depth`` of an event count the export calls of its own package, so one package's
    events read exactly as a trace of that package alone.
    """

    def __init__(self, sink: EventSink, *, batch: int = 512, max_delay: float = 0.1) -> None:
        self.sink = sink
        self.batch = batch
        self.max_delay = max_delay
        self._log = _Log(sink, max_delay)
        self._views: dict[str, Recorder] = {}

    def package(self, name: str) -> Recorder:
        """The recorder of package ``name`` (one per name)."""
        view = self._views.get(name)
        if view is None:
            view = self._views[name] = _PackageRecorder(self._log, name, self.batch, self.max_delay)
        return view

    __call__ = package

    @property
    def calls(self) -> int:
        return self._log.calls

    def drain(self) -> None:
        pending = self._log.pending
        if pending:
            rows = pending[:]
            pending.clear()
            self.sink.extend(rows)


_EXPORT = str(EventKind.EXPORT)
_IMPORT = str(EventKind.IMPORT)
_RETURN = str(EventKind.RETURN)
_RAW = str(EventKind.RAW)
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
