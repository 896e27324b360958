"""``Replayer``: serve every import from a trace, and catch the first divergence.

Replay is positional and strict: the k-th typed import the guest makes must match the
k-th recorded one (by default on kind, interface, function and exact input bytes). The
recorded output bytes are written back verbatim with the recorded status, and recorded
import failures fail again (-1 to the guest, same error). A mismatch raises
:class:`ReplayDivergence` out of the export call, explained: where, what was expected,
what came, where inside the values they differ, which matchers failed, and the nearest
recorded calls.

Exports that a host function called re-entrantly during recording are re-invoked by the
replayer at the same point, so guest state evolves exactly as recorded.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from ..abi import AbiError, EncodedValue
from ..abi.text import format_value
from ..errors import ReplayDivergence, ReplayError, TraceExhausted
from ..runtime import CallInterceptor, ExportCall, ImportReply
from ..storage.model import Event, EventKind, Outcome
from .diff import Change, Difference, diff_values
from .matchers import (
    DEFAULT_MATCH_ON,
    CallKey,
    Matcher,
    failed_matchers,
    resolve_matchers,
)
from .recorder import _error_text, export_outcome

if TYPE_CHECKING:
    from ..runtime import Instance
    from ..storage.protocols import EventSource

__all__ = ["ReplayStopped", "Replayer", "describe_event"]

_LOOKAHEAD = 64  # recorded events kept ahead of the cursor for "nearest calls"
_HISTORY = 16


class ReplayStopped(ReplayError):
    """Replay reached the ``until`` event; ``seq`` is the last event replayed."""

    def __init__(self, seq: int, where: str) -> None:
        self.seq = seq
        self.where = where
        super().__init__(f"stopped after event #{seq}: {where}")


def _preview(data: bytes | None, limit: int = 120) -> str:
    if data is None:
        return "-"
    try:
        return format_value(EncodedValue(data).value, limit=limit)
    except AbiError as exc:
        return f"<{len(data)} bytes, not valid CGRF: {exc}>"


def describe_event(event: Event) -> str:
    """One line for an event: ``#12 import demo:host/clock.now(()) -> 17u64``."""
    if event.kind == EventKind.IMPORT:
        text = f"#{event.seq} import {event.name}({_preview(event.input)})"
        if event.outcome == Outcome.OK:
            return f"{text} -> {_preview(event.output)}"
        return f"{text} failed: {event.error_kind}: {event.error}"
    if event.kind == EventKind.EXPORT:
        return f"#{event.seq} export {event.function}({_preview(event.input)}) [call {event.call}]"
    if event.outcome == Outcome.OK:
        return f"#{event.seq} return {event.function} -> {_preview(event.output)}"
    return f"#{event.seq} return {event.function}: {event.outcome} {event.error_kind}: {event.error}"


class _Cursor:
    """Streams a trace's events with a bounded look-ahead and history."""

    def __init__(self, events: Iterator[Event]) -> None:
        self._events = events
        self._ahead: deque[Event] = deque()
        self.history: deque[Event] = deque(maxlen=_HISTORY)
        self._done = False

    def _fill(self, n: int) -> None:
        while len(self._ahead) < n and not self._done:
            try:
                self._ahead.append(next(self._events))
            except StopIteration:
                self._done = True

    def peek(self) -> Event | None:
        self._fill(1)
        return self._ahead[0] if self._ahead else None

    def take(self) -> Event:
        self._fill(1)
        event = self._ahead.popleft()
        self.history.append(event)
        return event

    def window(self) -> list[Event]:
        self._fill(_LOOKAHEAD)
        return list(self._ahead)


class Replayer(CallInterceptor):
    """Serves typed imports from ``source`` without calling any host function.

    ``match_on``: matcher names or callables (see :mod:`.matchers`). ``until``: stop
    (raise :class:`ReplayStopped`) after that sequence number. ``live_after_end``: when
    the trace runs out, let calls through to the real host instead of raising
    :class:`TraceExhausted` (record mode ``new_episodes``). ``redacted``: function names
    (``interface.function``) whose recorded values are placeholders; their inputs are
    not compared and the report says a redacted call was served.
    """

    inline = True
    decode_inputs = False  # compare raw bytes; never decode on the replay hot path

    def __init__(
        self,
        source: EventSource,
        *,
        match_on: Iterable[str | Matcher] = DEFAULT_MATCH_ON,
        until: int | None = None,
        live_after_end: bool = False,
        redacted: Iterable[str] = (),
        on_event: Callable[[Event], None] | None = None,
    ) -> None:
        self.source = source
        self.matchers = resolve_matchers(match_on)
        self.until = until
        self.live_after_end = live_after_end
        self.redacted = frozenset(redacted)
        self.on_event = on_event
        self.instance: Instance | None = None
        self.cursor = _Cursor(iter(source.events()))
        self.replayed = 0
        self.redacted_served: list[int] = []
        self.live = False  # switched to the real host (new_episodes)
        self._stack: list[Event] = []

    def bind(self, instance: Instance) -> None:
        """The instance being replayed (needed to re-invoke nested export calls)."""
        self.instance = instance

    # ------------------------------------------------------------ navigation

    def next_export(self) -> Event | None:
        """The next top-level export call to re-run (does not consume it)."""
        while True:
            event = self.cursor.peek()
            if event is None:
                return None
            if event.kind == EventKind.EXPORT and event.depth == 0:
                return event
            if event.kind == EventKind.IMPORT and event.call == 0:
                return None  # imports outside exports: only consumed by instantiation
            self._consume()  # stray events (cannot normally happen): skip past them

    def remaining(self) -> Event | None:
        return self.cursor.peek()

    def _consume(self) -> Event:
        event = self.cursor.take()
        self.replayed += 1
        if self.on_event is not None:
            self.on_event(event)
        if self.until is not None and event.seq >= self.until:
            raise ReplayStopped(event.seq, describe_event(event))
        return event

    # ----------------------------------------------------------------- hooks

    async def before_export(self, function: str, input: EncodedValue) -> None:
        if self.live:
            return None
        event = self.cursor.peek()
        actual = CallKey(EventKind.EXPORT, "", function, input.data)
        if event is None and self.live_after_end:
            self.live = True
            return None
        if event is None or event.kind != EventKind.EXPORT:
            raise self._divergence(event, actual, "the guest started an export the trace does not have here")
        failed = failed_matchers(self.matchers, _key(event), actual)
        if failed:
            raise self._divergence(event, actual, "export call differs from the recorded one", failed)
        self._stack.append(self._consume())
        return None

    async def before_import(
        self, interface: str, function: str, input: EncodedValue
    ) -> ImportReply | None:
        if self.live:
            return None
        actual = CallKey(EventKind.IMPORT, interface, function, input.data)
        event = self._next_import_event()
        if event is None or event.kind != EventKind.IMPORT:
            if self.live_after_end and event is None:
                self.live = True
                return None
            raise self._exhausted(event, actual)
        matchers = self.matchers
        name = event.name
        if name in self.redacted:
            matchers = [(n, m) for n, m in matchers if n not in ("input", "input_value")]
        failed = failed_matchers(matchers, _key(event), actual)
        if failed:
            raise self._divergence(event, actual, "import call differs from the recorded one", failed)
        self._consume()
        if name in self.redacted:
            self.redacted_served.append(event.seq)
        if event.outcome != Outcome.OK:
            return ImportReply.failure(event.error_kind or "Decode", event.error or "")
        return ImportReply(EncodedValue(event.output or b""), event.status)

    def _next_import_event(self) -> Event | None:
        """The next event, after re-running any exports nested at this point."""
        while True:
            event = self.cursor.peek()
            if event is None or event.kind != EventKind.EXPORT or event.depth == 0:
                return event
            if self.instance is None:
                raise ReplayError(
                    f"the trace has a nested export call at #{event.seq}; bind() the "
                    "replayer to its instance to replay it"
                )
            try:
                self.instance.call_raw(event.function, event.input or b"")
            except ReplayError:
                raise
            except Exception:
                pass  # its recorded outcome was compared in export_completed

    async def export_completed(self, call: ExportCall) -> None:
        if self.live:
            return
        if not self._stack:
            return  # a short-circuited or foreign call
        started = self._stack[-1]
        event = self.cursor.peek()
        actual_desc = CallKey(EventKind.RETURN, "", call.function, None)
        if event is None and self.live_after_end:
            self._stack.pop()
            self.live = True
            return
        if event is None or event.kind != EventKind.RETURN or event.call != started.call:
            expected = event
            reason = (
                "the export returned but the trace has more calls recorded for it"
                if event is not None and event.kind == EventKind.IMPORT
                else "the export returned where the trace has no matching return"
            )
            self._stack.pop()
            raise self._divergence(expected, actual_desc, reason, ["kind"])
        self._stack.pop()
        self._consume()
        outcome = export_outcome(call.error)
        if outcome != event.outcome:
            got = "ok" if call.error is None else f"{outcome}: {call.error}"
            want = "ok" if event.outcome == Outcome.OK else f"{event.outcome}: {event.error}"
            raise self._divergence(
                event,
                actual_desc,
                f"export '{call.function}' ended differently: recorded {want}; replay {got}",
                ["outcome"],
            )
        if call.error is not None:
            text = _error_text(call.error)
            if text != (event.error or ""):
                raise self._divergence(
                    event,
                    actual_desc,
                    f"export '{call.function}' failed with a different error: recorded "
                    f"{event.error!r}; replay {text!r}",
                    ["error"],
                )
            return
        out = call.output.data if call.output is not None else None
        if out != event.output:
            diffs: list[Difference] = []
            if out is not None and event.output is not None:
                try:
                    diffs = diff_values(EncodedValue(event.output), EncodedValue(out))
                except AbiError:
                    diffs = []
            raise self._divergence(
                event,
                CallKey(EventKind.RETURN, "", call.function, out),
                f"export '{call.function}' returned a different value",
                ["output"],
                output_diffs=diffs,
                actual_output=out,
            )

    # ------------------------------------------------------------- reports

    def _exhausted(self, event: Event | None, actual: CallKey) -> TraceExhausted:
        if event is None:
            reason = "the trace has no more events, but the guest made another call"
        else:
            reason = (
                f"the guest made more calls than recorded for export '{event.function}' "
                f"(call {event.call}): the trace has it returning here"
            )
        report = self._render(event, actual, reason, ["kind"], [])
        return TraceExhausted(
            report,
            seq=None if event is None else event.seq,
            expected=event,
            actual=actual,
            failed_matchers=["kind"],
        )

    def _divergence(
        self,
        event: Event | None,
        actual: CallKey,
        reason: str,
        failed: list[str] | None = None,
        *,
        output_diffs: list[Difference] | None = None,
        actual_output: bytes | None = None,
    ) -> ReplayDivergence:
        failed = failed or []
        diffs = output_diffs or []
        if not diffs and event is not None and ("input" in failed or "input_value" in failed):
            diffs = _input_diffs(event, actual)
        report = self._render(event, actual, reason, failed, diffs, actual_output)
        return ReplayDivergence(
            report,
            seq=None if event is None else event.seq,
            expected=event,
            actual=actual,
            differences=diffs,
            failed_matchers=failed,
            nearest=self._nearest(actual),
        )

    def _nearest(self, actual: CallKey) -> list[tuple[Event, list[str]]]:
        """Recorded calls near the cursor, most similar first."""
        pool = [e for e in (*self.cursor.history, *self.cursor.window()) if e.kind != EventKind.RETURN]
        scored = []
        cur = self.cursor.peek()
        here = cur.seq if cur is not None else (pool[-1].seq if pool else 0)
        for e in pool:
            failed = failed_matchers(self.matchers, _key(e), actual)
            scored.append((len(failed), abs(e.seq - here), e, failed))
        scored.sort(key=lambda t: (t[0], t[1]))
        return [(e, failed) for _, _, e, failed in scored[:3]]

    def _render(
        self,
        event: Event | None,
        actual: CallKey,
        reason: str,
        failed: list[str],
        diffs: list[Difference],
        actual_output: bytes | None = None,
    ) -> str:
        lines = []
        where = f"event #{event.seq}" if event is not None else "the end of the trace"
        current = self._stack[-1] if self._stack else None
        inside = f" inside export '{current.function}' (call {current.call})" if current else ""
        lines.append(f"replay diverged at {where}{inside}: {reason}")
        lines.append(f"  expected: {describe_event(event) if event is not None else '(nothing: trace ended)'}")
        if actual.kind == EventKind.RETURN:
            shown = f"return {actual.function}"
            if actual_output is not None:
                shown += f" -> {_preview(actual_output)}"
            lines.append(f"  actual:   {shown}")
        else:
            lines.append(f"  actual:   {actual.kind} {actual.name}({_preview(actual.input)})")
        if failed:
            lines.append(f"  failed matchers: {', '.join(failed)}")
        if diffs:
            lines.append("  differences:")
            lines.extend(f"    {d}" for d in diffs[:20])
            if len(diffs) > 20:
                lines.append(f"    ... {len(diffs) - 20} more")
        nearest = self._nearest(actual)
        if nearest:
            lines.append("  nearest recorded calls:")
            for e, bad in nearest:
                verdict = "matches" if not bad else f"differs on {', '.join(bad)}"
                lines.append(f"    {describe_event(e)}  ({verdict})")
        if self.redacted_served:
            first = self.redacted_served[0]
            lines.append(
                f"  note: {len(self.redacted_served)} redacted call(s) were served with "
                f"placeholder values (first at #{first}); the divergence may come from redaction"
            )
        return "\n".join(lines)


def _key(event: Event) -> CallKey:
    return CallKey(str(event.kind), event.interface, event.function, event.input)


def _input_diffs(event: Event, actual: CallKey) -> list[Difference]:
    if event.input is None or actual.input is None:
        return []
    try:
        return diff_values(EncodedValue(event.input), EncodedValue(actual.input))
    except AbiError as exc:
        return [Difference("(input)", Change.VALUE, f"{len(event.input)} bytes", f"not valid CGRF: {exc}")]
