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

from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import TYPE_CHECKING, Any

from .._text import printable
from ..abi import AbiError, EncodedValue
from ..abi.text import preview_bytes
from ..errors import HostFunctionError, ReplayDivergence, ReplayError, TraceExhausted
from ..runtime import CallInterceptor, ExportCall, ImportReply, RawCall, RawReply, native
from ..storage.model import Event, EventKind, Outcome
from .diff import Change, Difference, diff_values
from .matchers import (
    DEFAULT_MATCH_ON,
    CallKey,
    Matcher,
    failed_matchers,
    resolve_matchers,
)
from .rawevents import BadRawEvent, decode_reply, encode_args, raw_access
from .recorder import _error_text, export_outcome

if TYPE_CHECKING:
    from ..runtime import Instance
    from ..storage.protocols import EventSource

__all__ = ["RecordedFailure", "ReplayStopped", "Replayer", "describe_event"]

_LOOKAHEAD = 64  # recorded events kept ahead of the cursor for "nearest calls"
_HISTORY = 16
_CHUNK = 256  # records fetched at a time
_COMPACT = 4096  # consumed records kept before the buffer is trimmed to the history


class ReplayStopped(ReplayError):
    """Replay reached the ``until`` event; ``seq`` is the last event replayed."""

    def __init__(self, seq: int, where: str) -> None:
        self.seq = seq
        self.where = where
        super().__init__(f"stopped after event #{seq}: {where}")


class RecordedFailure(ReplayError):
    """Replay reached the point where the recorded run itself failed: a raw import's
    host function raised (the exception went out of the guest, so the recording ends
    there). ``seq`` is that event; ``error`` what was recorded."""

    def __init__(self, seq: int, name: str, error: str) -> None:
        self.seq = seq
        self.error = error
        super().__init__(
            f"the recorded run failed at event #{seq}: raw import {name} raised {error}"
        )


def _preview(data: bytes | None, limit: int = 120) -> str:
    return "-" if data is None else preview_bytes(data, limit)


def describe_event(event: Event) -> str:
    """One line for an event: ``#12 import demo:host/clock.now(()) -> 17u64`` (control
    characters in its names and error escaped: a trace's text never drives a terminal)."""
    return printable(_describe(event))


def _describe(event: Event) -> str:
    if event.kind == EventKind.IMPORT:
        text = f"#{event.seq} import {event.name}({_preview(event.input)})"
        if event.outcome == Outcome.OK:
            return f"{text} -> {_preview(event.output)}"
        return f"{text} failed: {event.error_kind}: {event.error}"
    if event.kind == EventKind.EXPORT:
        return f"#{event.seq} export {event.function}({_preview(event.input)}) [call {event.call}]"
    if event.kind == EventKind.RAW:
        text = f"#{event.seq} raw {event.name}{_preview(event.input)}"
        if event.outcome == Outcome.OK:
            return f"{text} -> {_preview(event.output)}"
        return f"{text} failed: {event.error_kind}: {event.error}"
    if event.outcome == Outcome.OK:
        return f"#{event.seq} return {event.function} -> {_preview(event.output)}"
    return f"#{event.seq} return {event.function}: {event.outcome} {event.error_kind}: {event.error}"


Record = tuple[tuple[Any, ...], bytes]
# Positions in a record's fields (Event.chain_fields order).
_SEQ, _CALL, _KIND, _IFACE, _FN, _IN, _OUT, _STATUS, _OUTCOME, _EKIND, _ERR, _DUR, _DEPTH = range(13)
_IMPORT, _EXPORT, _RETURN = str(EventKind.IMPORT), str(EventKind.EXPORT), str(EventKind.RETURN)
_RAW = str(EventKind.RAW)
_CALLS = (_IMPORT, _RAW)  # the host calls an export makes
_OK = str(Outcome.OK)


def _event(record: Record) -> Event:
    f, digest = record
    return Event(f[0], f[1], EventKind(f[2]), f[3], f[4], f[5], f[6], f[7], Outcome(f[8]),
                 f[9], f[10], f[11], f[12], digest)  # fmt: skip


class _Cursor:
    """Streams a trace's raw records with a bounded look-ahead and history.

    Records sit in a list with a read position, fetched a chunk at a time, so the
    replay hot path reads ``buf[pos]`` and advances ``pos`` (no method calls). A fetch
    that fails part-way keeps what it got and raises the error when the position
    reaches it, exactly where one-at-a-time reading would have raised.
    """

    def __init__(self, records: Iterator[Record]) -> None:
        self._records = records
        self.buf: list[Record] = []
        self.pos = 0  # the next record is buf[pos]
        self._dropped = 0  # records consumed and dropped from the front of buf
        self._error: BaseException | None = None
        self._done = False

    @property
    def consumed(self) -> int:
        """Records taken so far."""
        return self._dropped + self.pos

    def _fill(self, n: int) -> None:
        """Make ``n`` records available from ``pos`` (fewer at the end of the trace)."""
        while len(self.buf) - self.pos < n and not self._done:
            if self._error is not None:
                error, self._error = self._error, None
                raise error
            if self.pos > _COMPACT:  # keep the history, drop what is older
                cut = self.pos - _HISTORY
                del self.buf[:cut]
                self.pos -= cut
                self._dropped += cut
            size, want = len(self.buf), max(n, _CHUNK)
            try:
                self.buf.extend(islice(self._records, want))
            except Exception as exc:  # what came before it stays in buf
                self._error = exc
                continue
            if len(self.buf) - size < want:  # a short read: the records have ended
                self._done = True

    def ended(self, used: int) -> bool:
        """Whether no record follows the first ``used`` of the buffer. Reads ahead (one
        chunk, appended) when the buffer is used up and the end is not known yet; never
        raises, moves or trims the buffer, so it may be asked while the trampoline
        serves from it (the replay's deadline hook asks it from the guest's thread)."""
        if used < len(self.buf) or self._error is not None:
            return False
        if not self._done:
            size = len(self.buf)
            try:
                self.buf.extend(islice(self._records, _CHUNK))
            except Exception as exc:  # raised where the cursor reaches it, as in _fill
                self._error = exc
                return False
            if len(self.buf) - size < _CHUNK:
                self._done = True
            return self._done and len(self.buf) == size
        return True

    def peek(self) -> tuple[Any, ...] | None:
        """The next record's fields, or None at the end."""
        if self.pos >= len(self.buf):
            self._fill(1)
            if self.pos >= len(self.buf):
                return None
        return self.buf[self.pos][0]

    def peek_event(self) -> Event | None:
        if self.peek() is None:
            return None
        return _event(self.buf[self.pos])

    def take(self) -> tuple[Any, ...]:
        record = self.buf[self.pos]
        self.pos += 1
        return record[0]

    def window(self) -> list[Event]:
        self._fill(_LOOKAHEAD)
        return [_event(r) for r in self.buf[self.pos : self.pos + _LOOKAHEAD]]

    def past(self) -> list[Event]:
        return [_event(r) for r in self.buf[max(0, self.pos - _HISTORY) : self.pos]]


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
        match_on = tuple(match_on)
        self.matchers = resolve_matchers(match_on)
        self._strict = match_on == DEFAULT_MATCH_ON
        self.until = until
        self.live_after_end = live_after_end
        self.redacted = frozenset(redacted)
        self.on_event = on_event
        # Nothing but byte-for-byte matching to do per import: _serve_import's one-look path.
        self._plain = self._strict and until is None and on_event is None and not self.redacted
        self.instance: Instance | None = None
        self.redacted_served: list[int] = []
        self.live = False  # switched to the real host (new_episodes)
        self._stack: list[tuple[Any, ...]] = []
        self.import_server = self._serve_import
        # Raw imports are served from the trace when it recorded them (format 5 on:
        # meta raw_imports); an older trace leaves them to a host, as they ran then.
        meta = getattr(getattr(source, "info", None), "meta", None) or {}
        if meta.get("raw_imports") == "recorded":
            self.raw_server = self._serve_raw
        self.raw_access_served: list[int] = []  # raw calls that had raw memory access
        # The native seam: on the C trampoline, plain matching runs in C over the next
        # buffered records (see _refill); Python entry points take() what it served.
        # A source that can hand over records unbuilt (the SQLite trace with its C
        # accelerator) lets C read them in place: most are never built as Python objects.
        view = getattr(source, "record_view", None)
        lazy = getattr(source, "lazy_records", None)
        self.native_feed: Any = (
            native.ReplayFeed(_IMPORT, _OK, self._refill, view if lazy is not None else None)
            if self._plain and native.ReplayFeed is not None
            else None
        )
        records = source.records
        if self.native_feed is not None and lazy is not None and view is not None:
            records = lazy
        self.cursor = _Cursor(iter(records()))

    def bind(self, instance: Instance) -> None:
        """The instance being replayed (needed to re-invoke nested export calls)."""
        self.instance = instance

    @property
    def replayed(self) -> int:
        """Recorded events consumed so far (safe to sample from another thread)."""
        feed = self.native_feed
        return self.cursor.consumed + (feed.pending if feed is not None else 0)

    def past_end(self) -> str | None:
        """The export the guest is running in once every recorded event has been used
        (None: events are left, or it is not inside an export the replay re-runs).

        Nothing the guest does from there can be checked against the recording. Asked
        between guest instructions (the replay's deadline hook, at each epoch tick):
        cheap, and it never raises.
        """
        if not self._stack or self.live:
            return None
        feed = self.native_feed
        used = self.cursor.pos + (feed.pending if feed is not None else 0)
        if not self.cursor.ended(used):
            return None
        return printable(str(self._stack[-1][_FN]))

    # ------------------------------------------------------------ native seam

    def _sync(self) -> None:
        """Advance the cursor past what the trampoline served since the last look."""
        feed = self.native_feed
        if feed is not None:
            served = feed.take()
            if served:
                self.cursor.pos += served

    def _refill(self) -> None:
        """The trampoline ran out of loaded records: load the ones that follow (plain
        successful imports; C stops at the first other record, which Python serves)."""
        self._sync()
        if self.live or self.native_feed is None:
            return
        cur = self.cursor
        if cur.pos >= len(cur.buf):
            cur._fill(1)  # a failed read raises here, where _serve_import would raise it
        self.native_feed.load(cur.buf, cur.pos)

    # ------------------------------------------------------------ navigation

    def next_export(self) -> Event | None:
        """The next top-level export call to re-run (does not consume it)."""
        self._sync()
        while True:
            rec = self.cursor.peek()
            if rec is None:
                return None
            if rec[_KIND] == _EXPORT and rec[_DEPTH] == 0:
                return self.cursor.peek_event()
            if rec[_KIND] in _CALLS and rec[_CALL] == 0:
                return None  # imports outside exports: only consumed by instantiation
            self._consume()  # stray events (cannot normally happen): skip past them

    def remaining(self) -> Event | None:
        self._sync()
        return self.cursor.peek_event()

    def _consume(self) -> tuple[Any, ...]:
        rec = self.cursor.take()
        if self.on_event is not None:
            self.on_event(_event((rec, b"")))
        if self.until is not None and rec[_SEQ] >= self.until:
            raise ReplayStopped(rec[_SEQ], describe_event(_event((rec, b""))))
        return rec

    # ----------------------------------------------------------------- hooks

    async def before_export(self, function: str, input: EncodedValue) -> None:
        self._sync()
        if self.live:
            return None
        rec = self.cursor.peek()
        actual = CallKey(_EXPORT, "", function, input.data)
        if rec is None and self.live_after_end:
            self.live = True
            return None
        if rec is None or rec[_KIND] != _EXPORT:
            raise self._divergence(
                self.cursor.peek_event(), actual,
                "the guest started an export the trace does not have here",
            )
        failed = failed_matchers(self.matchers, _rkey(rec), actual)
        if failed:
            raise self._divergence(
                self.cursor.peek_event(), actual, "export call differs from the recorded one", failed
            )
        self._stack.append(self._consume())
        return None

    async def before_import(
        self, interface: str, function: str, input: EncodedValue
    ) -> ImportReply | None:
        served = self._serve_import(interface, function, input.data)
        if served is None or isinstance(served, ImportReply):
            return served
        return ImportReply(EncodedValue(served[0]), served[1])

    def _serve_import(
        self, interface: str, function: str, data: bytes
    ) -> ImportReply | tuple[bytes, int | None] | None:
        """The import hot path: match the next recorded import and return its reply.

        The common case (strict matching, nothing redacted, no ``until``/``on_event``,
        the next record an import with the same name and input bytes) is one look at
        the cursor's buffer; everything else takes :meth:`_serve_checked`.
        """
        self._sync()
        cur = self.cursor
        pos = cur.pos
        if pos < len(cur.buf) and self._plain and not self.live:
            rec = cur.buf[pos][0]
            if (
                rec[_KIND] == _IMPORT
                and rec[_IN] == data
                and rec[_FN] == function
                and rec[_IFACE] == interface
            ):
                cur.pos = pos + 1
                if rec[_OUTCOME] == _OK:
                    return (rec[_OUT] or b"", rec[_STATUS])
                return ImportReply.failure(rec[_EKIND] or "Decode", rec[_ERR] or "")
        return self._serve_checked(interface, function, data)

    def _serve_checked(
        self, interface: str, function: str, data: bytes
    ) -> ImportReply | tuple[bytes, int | None] | None:
        """:meth:`_serve_import` in full: nested exports, matchers, redaction, reports."""
        if self.live:
            return None
        rec = self._next_import_record()
        if rec is None or rec[_KIND] != _IMPORT:
            if self.live_after_end and rec is None:
                self.live = True
                return None
            raise self._not_here(rec, CallKey(_IMPORT, interface, function, data))
        redacted = bool(self.redacted) and _name(rec) in self.redacted
        if not (
            self._strict
            and not redacted
            and rec[_IFACE] == interface
            and rec[_FN] == function
            and rec[_IN] == data
        ):
            matchers = self.matchers
            if redacted:
                matchers = [(n, m) for n, m in matchers if n not in ("input", "input_value")]
            actual = CallKey(_IMPORT, interface, function, data)
            failed = failed_matchers(matchers, _rkey(rec), actual)
            if failed:
                raise self._divergence(
                    self.cursor.peek_event(), actual, "import call differs from the recorded one", failed
                )
        self._consume()
        if redacted:
            self.redacted_served.append(rec[_SEQ])
        if rec[_OUTCOME] != _OK:
            return ImportReply.failure(rec[_EKIND] or "Decode", rec[_ERR] or "")
        return (rec[_OUT] or b"", rec[_STATUS])

    def import_unserved(
        self, interface: str, function: str, data: bytes | None, error: HostFunctionError
    ) -> None:
        """The runtime failed an import before asking :meth:`_serve_import` (its input
        could not be read from guest memory or was too large: ``data`` is None, as the
        recorder stored it; or it did not decode under ``decode_inputs``).

        The recording went the same way, so the next recorded event must be that import
        failing the same way (kind and message); it is consumed. Anything else is a
        divergence. Only the runtime's failure path calls this.
        """
        self._sync()
        if self.live:
            return
        actual = CallKey(_IMPORT, interface, function, data)
        rec = self._next_import_record()
        if rec is None or rec[_KIND] != _IMPORT:
            if self.live_after_end and rec is None:
                self.live = True
                return
            raise self._not_here(rec, actual)
        redacted = bool(self.redacted) and _name(rec) in self.redacted
        matchers = self.matchers
        if redacted:
            matchers = [(n, m) for n, m in matchers if n not in ("input", "input_value")]
        failed = failed_matchers(matchers, _rkey(rec), actual)
        if failed:
            raise self._divergence(
                self.cursor.peek_event(), actual, "import call differs from the recorded one", failed
            )
        call = f"import {actual.name}"
        if rec[_OUTCOME] == _OK:
            raise self._divergence(
                self.cursor.peek_event(),
                actual,
                f"{call} failed before the host could serve it ({error.kind}: {error.message}), "
                "but succeeded when recorded",
                ["outcome"],
            )
        if (rec[_EKIND], rec[_ERR] or "") != (error.kind, error.message):
            raise self._divergence(
                self.cursor.peek_event(),
                actual,
                f"{call} failed with a different error: recorded {rec[_EKIND]}: {rec[_ERR]!r}; "
                f"replay {error.kind}: {error.message!r}",
                ["error"],
            )
        self._consume()
        if redacted:
            self.redacted_served.append(rec[_SEQ])

    def _not_here(self, rec: tuple[Any, ...] | None, actual: CallKey) -> ReplayDivergence:
        """A host call where the trace has something else: the trace ran out or the
        export returned here (exhausted), or it has a call of the other kind."""
        if rec is not None and rec[_KIND] in _CALLS:
            what = "a raw import call" if rec[_KIND] == _RAW else "a typed import call"
            return self._divergence(
                self.cursor.peek_event(), actual, f"the trace has {what} here", ["kind"]
            )
        return self._exhausted(self.cursor.peek_event(), actual)

    def _serve_raw(self, call: RawCall) -> RawReply | None:
        """A raw import (``func_raw``) served from its ``raw`` event: the recorded
        memory writes and results (see :mod:`.rawevents`), matched on name and arguments."""
        self._sync()
        if self.live:
            return None
        data = encode_args(call.params, call.args)
        actual = CallKey(_RAW, call.interface, call.function, data)
        rec = self._next_import_record()
        if rec is None or rec[_KIND] != _RAW:
            if self.live_after_end and rec is None:
                self.live = True
                return None
            raise self._not_here(rec, actual)
        failed = failed_matchers(self.matchers, _rkey(rec), actual)
        if failed:
            raise self._divergence(
                self.cursor.peek_event(), actual, "raw import call differs from the recorded one", failed
            )
        try:
            reply = decode_reply(rec[_OUT], call.results)
        except BadRawEvent as exc:
            raise self._divergence(
                self.cursor.peek_event(), actual, f"raw import {actual.name}: {exc}", ["output"]
            ) from None
        self._consume()
        if raw_access(rec[_OUT]):
            self.raw_access_served.append(rec[_SEQ])
        if rec[_OUTCOME] != _OK:
            raise RecordedFailure(rec[_SEQ], actual.name, f"{rec[_ERR] or rec[_EKIND]}")
        return reply

    def _next_import_record(self) -> tuple[Any, ...] | None:
        """The next record, after re-running any exports nested at this point."""
        while True:
            rec = self.cursor.peek()
            if rec is None or rec[_KIND] != _EXPORT or rec[_DEPTH] == 0:
                return rec
            if self.instance is None:
                raise ReplayError(
                    f"the trace has a nested export call at #{rec[_SEQ]}; bind() the "
                    "replayer to its instance to replay it"
                )
            try:
                self.instance.call_raw(rec[_FN], rec[_IN] or b"")
            except ReplayError:
                raise
            except Exception:
                pass  # its recorded outcome was compared in export_completed

    async def export_completed(self, call: ExportCall) -> None:
        self._sync()
        if self.live:
            return
        if not self._stack:
            return  # a short-circuited or foreign call
        started = self._stack[-1]
        rec = self.cursor.peek()
        actual_desc = CallKey(_RETURN, "", call.function, None)
        if rec is None and self.live_after_end:
            self._stack.pop()
            self.live = True
            return
        if rec is None:
            # Its recording was cut between its last host call and its return: the same
            # end of the trace as a cut anywhere else (reported before the pop, so the
            # report names this call).
            exhausted = self._exhausted(None, actual_desc)
            self._stack.pop()
            raise exhausted
        if rec[_KIND] != _RETURN or rec[_CALL] != started[_CALL]:
            reason = (
                "the export returned but the trace has more calls recorded for it"
                if rec is not None and rec[_KIND] in _CALLS
                else "the export returned where the trace has no matching return"
            )
            self._stack.pop()
            raise self._divergence(self.cursor.peek_event(), actual_desc, reason, ["kind"])
        expected = self.cursor.peek_event()
        assert expected is not None
        self._stack.pop()
        self._consume()
        outcome = export_outcome(call.error)
        if outcome != expected.outcome:
            got = "ok" if call.error is None else f"{outcome}: {call.error}"
            want = "ok" if expected.outcome == Outcome.OK else f"{expected.outcome}: {expected.error}"
            raise self._divergence(
                expected,
                actual_desc,
                f"export '{call.function}' ended differently: recorded {want}; replay {got}",
                ["outcome"],
                actual_error=call.error,
            )
        if call.error is not None:
            text = _error_text(call.error)
            if text != (expected.error or ""):
                raise self._divergence(
                    expected,
                    actual_desc,
                    f"export '{call.function}' failed with a different error: recorded "
                    f"{expected.error!r}; replay {text!r}",
                    ["error"],
                    actual_error=call.error,
                )
            return
        out = call.output.data if call.output is not None else None
        if out != expected.output:
            diffs: list[Difference] = []
            if out is not None and expected.output is not None:
                try:
                    diffs = diff_values(EncodedValue(expected.output), EncodedValue(out))
                except AbiError:
                    diffs = []
            raise self._divergence(
                expected,
                CallKey(_RETURN, "", call.function, out),
                f"export '{call.function}' returned a different value",
                ["output"],
                output_diffs=diffs,
                actual_output=out,
            )

    # ------------------------------------------------------------- reports

    def _exhausted(self, event: Event | None, actual: CallKey) -> TraceExhausted:
        if event is None and actual.kind == _RETURN:
            reason = "the trace ends before this export call returned"
        elif event is None:
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
        actual_error: BaseException | None = None,
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
            actual_error=actual_error,  # how the export ended in replay (in ``context``)
        )

    def _nearest(self, actual: CallKey) -> list[tuple[Event, list[str]]]:
        """Recorded calls near the cursor, most similar first."""
        pool = [
            e for e in (*self.cursor.past(), *self.cursor.window()) if e.kind != EventKind.RETURN
        ]
        scored = []
        cur = self.cursor.peek()
        here = cur[_SEQ] if cur is not None else (pool[-1].seq if pool else 0)
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
        inside = (
            f" inside export '{current[_FN]}' (call {current[_CALL]})" if current is not None else ""
        )
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
        return "\n".join(printable(line) for line in lines)


def _name(rec: tuple[Any, ...]) -> str:
    return f"{rec[_IFACE]}.{rec[_FN]}" if rec[_IFACE] else str(rec[_FN])


def _rkey(rec: tuple[Any, ...]) -> CallKey:
    return CallKey(rec[_KIND], rec[_IFACE], rec[_FN], rec[_IN])


def _key(event: Event) -> CallKey:
    return CallKey(str(event.kind), event.interface, event.function, event.input)


def _input_diffs(event: Event, actual: CallKey) -> list[Difference]:
    if event.input is None or actual.input is None:
        return []
    try:
        return diff_values(EncodedValue(event.input), EncodedValue(actual.input))
    except AbiError as exc:
        return [Difference("(input)", Change.VALUE, f"{len(event.input)} bytes", f"not valid CGRF: {exc}")]
