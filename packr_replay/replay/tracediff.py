"""Comparing two traces: identical or not, the first divergence, and a summary.

Traces are streamed side by side with a bounded look-ahead, so two million-event
traces diff in constant memory. Events are compared by bytes first; only events that
differ are decoded, to explain *where* inside the values they differ. After an
inserted or removed call the alignment resynchronises on the nearest matching call
within the look-ahead window, so one extra call does not make everything after it
"different".
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import chain
from typing import TYPE_CHECKING, Any

from .._text import printable
from ..abi import AbiError, EncodedValue
from ..storage.model import Event, EventKind, Outcome
from .diff import Difference, diff_values
from .replayer import describe_event

if TYPE_CHECKING:
    from ..storage.protocols import EventSource

__all__ = ["EventChange", "TraceChange", "TraceDiff", "diff_traces"]


class EventChange(StrEnum):
    CHANGED = "changed"  # same call, different input/output/outcome
    INSERTED = "inserted"  # only in b
    REMOVED = "removed"  # only in a


@dataclass(slots=True)
class TraceChange:
    """One difference between the traces, with value-level details when decodable."""

    change: EventChange
    a: Event | None
    b: Event | None
    fields: list[str] = field(default_factory=list)  # for CHANGED: input/output/outcome/...
    input_diffs: list[Difference] = field(default_factory=list)
    output_diffs: list[Difference] = field(default_factory=list)

    @property
    def name(self) -> str:
        event = self.a or self.b
        assert event is not None
        where = "" if event.package is None else f"{event.package}: "
        return f"{event.kind} {where}{event.name}"

    def __str__(self) -> str:
        if self.change is EventChange.INSERTED:
            assert self.b is not None
            return f"inserted in b: {describe_event(self.b)}"  # (describe_event escapes)
        if self.change is EventChange.REMOVED:
            assert self.a is not None
            return f"removed from a: {describe_event(self.a)}"
        assert self.a is not None and self.b is not None
        lines = [f"changed {self.name} (a #{self.a.seq}, b #{self.b.seq}): {', '.join(self.fields)}"]
        lines += [f"  input {d}" for d in self.input_diffs]
        lines += [f"  output {d}" for d in self.output_diffs]
        if "outcome" in self.fields or "error" in self.fields:
            lines.append(f"  a: {describe_event(self.a)}")
            lines.append(f"  b: {describe_event(self.b)}")
        return "\n".join(printable(line) for line in lines)


@dataclass(slots=True)
class CallStats:
    """Per call name (``import iface.fn`` / ``export fn``): counts on both sides."""

    a: int = 0
    b: int = 0
    changed: int = 0
    inserted: int = 0
    removed: int = 0


@dataclass(slots=True)
class TraceDiff:
    """The result of :func:`diff_traces`."""

    events_a: int = 0
    events_b: int = 0
    equal: int = 0
    changed: int = 0
    inserted: int = 0
    removed: int = 0
    first: TraceChange | None = None
    changes: list[TraceChange] = field(default_factory=list)  # the first ``max_changes``
    calls: dict[str, CallStats] = field(default_factory=dict)
    #: The sha256 of the module each trace ran (``None``: not recorded).
    modules: tuple[str | None, str | None] = (None, None)
    #: Two compositions' traces: each package's own diff (see ``diff_compositions``),
    #: and the package where the first change is.
    packages: dict[str, TraceDiff] = field(default_factory=dict)
    first_package: str | None = None

    @property
    def identical(self) -> bool:
        """The events are the same (the modules may still differ: ``modules_differ``)."""
        return self.changed == self.inserted == self.removed == 0

    @property
    def modules_differ(self) -> bool:
        """The two traces ran different guest modules (both known, not equal)."""
        a, b = self.modules
        return a is not None and b is not None and a != b

    def __bool__(self) -> bool:  # truthy when there *are* differences, like a diff
        return not self.identical

    def summary(self) -> str:
        if self.identical:
            text = f"identical: {self.events_a} events"
        else:
            text = (
                f"different: {self.changed} changed, {self.inserted} inserted, "
                f"{self.removed} removed, {self.equal} equal "
                f"({self.events_a} events in a, {self.events_b} in b)"
            )
        a, b = self.modules
        if a is not None and b is not None and a != b:
            text += f"; the modules differ (a ran sha256 {a[:12]}, b ran {b[:12]})"
        if self.packages:
            differing = [name for name, d in self.packages.items() if not d.identical]
            text += f"; {len(self.packages)} package(s) compared one by one"
            if differing:
                text += f", differing: {', '.join(differing)}"
        return text


Record = tuple[tuple[Any, ...], bytes]


def _event(record: Record) -> Event:
    f, digest = record
    return Event(f[0], f[1], EventKind(f[2]), f[3], f[4], f[5], f[6], f[7], Outcome(f[8]),
                 f[9], f[10], f[11], f[12], digest)  # fmt: skip


class _Stream:
    """Raw records of one trace with a bounded look-ahead buffer."""

    def __init__(self, records: Iterator[Record], window: int) -> None:
        self.records = records
        self.buf: deque[Record] = deque()
        self.window = window
        self.done = False
        self.count = 0

    def fill(self) -> None:
        while len(self.buf) < self.window and not self.done:
            try:
                self.buf.append(next(self.records))
            except StopIteration:
                self.done = True

    def head(self) -> tuple[Any, ...] | None:
        if not self.buf:
            self.fill()
            if not self.buf:
                return None
        return self.buf[0][0]

    def pop(self) -> Record:
        self.count += 1
        return self.buf.popleft()


def diff_traces(
    a: EventSource,
    b: EventSource,
    *,
    window: int = 256,
    max_changes: int = 100,
) -> TraceDiff:
    """Compare two traces event by event (see the module docstring).

    Two compositions' traces are compared package by package (see
    :func:`~.composition.diff_compositions`)."""
    from ..storage.packages import composition_of

    if composition_of(a.info) is not None and composition_of(b.info) is not None:
        from .composition import diff_compositions

        return diff_compositions(a, b, window=window, max_changes=max_changes)
    return diff_streams(a, b, window=window, max_changes=max_changes)


def diff_streams(a: Any, b: Any, *, window: int = 256, max_changes: int = 100) -> TraceDiff:
    """:func:`diff_traces` of two event streams (``info`` and ``records()``), in order."""
    result = TraceDiff()
    ita, itb = iter(a.records()), iter(b.records())
    # Counters per call identity (kind, interface, function): [a, b, changed, inserted, removed]
    counts: dict[tuple[Any, ...], list[int]] = {}
    tally: Counter[EventChange] = Counter()

    def note(change: EventChange, ra: Record | None, rb: Record | None) -> None:
        tally[change] += 1
        if result.first is None or len(result.changes) < max_changes:
            tc = TraceChange(
                change,
                None if ra is None else _event(ra),
                None if rb is None else _event(rb),
            )
            if change is EventChange.CHANGED:
                assert tc.a is not None
                assert tc.b is not None
                tc.fields = _changed_fields(tc.a, tc.b)
                _explain(tc)
            if result.first is None:
                result.first = tc
            if len(result.changes) < max_changes:
                result.changes.append(tc)

    # Lockstep while both traces make the same calls (the common case: two runs of one
    # guest), with no look-ahead buffers; the first unmatched pair, or the end of one
    # trace, hands over to the windowed loop below.
    equal = 0
    lockstep = 0
    left: list[Record] = []
    right: list[Record] = []
    next_b = itb.__next__
    for ra in ita:
        try:
            rb = next_b()
        except StopIteration:
            left.append(ra)
            break
        fa, fb = ra[0], rb[0]
        key = fa[2:5]
        if key != fb[2:5]:
            left.append(ra)
            right.append(rb)
            break
        lockstep += 1
        c = counts.get(key)
        if c is None:
            c = counts[key] = [0, 0, 0, 0, 0]
        c[0] += 1
        c[1] += 1
        if fa[5:11] == fb[5:11]:
            equal += 1
        else:
            c[2] += 1
            note(EventChange.CHANGED, ra, rb)
    sa = _Stream(chain(left, ita), window)
    sb = _Stream(chain(right, itb), window)
    sa.count = sb.count = lockstep
    while True:
        x, y = sa.head(), sb.head()
        if x is None and y is None:
            break
        if x is not None and y is not None and x[2:5] == y[2:5]:
            ra, rb = sa.pop(), sb.pop()
            c = counts.get(x[2:5])
            if c is None:
                c = counts[x[2:5]] = [0, 0, 0, 0, 0]
            c[0] += 1
            c[1] += 1
            if x[5:11] == y[5:11]:
                equal += 1
            else:
                c[2] += 1
                note(EventChange.CHANGED, ra, rb)
            continue
        if y is None or (x is not None and _prefer_removal(sa, sb)):
            ra = sa.pop()
            c = counts.setdefault(ra[0][2:5], [0, 0, 0, 0, 0])
            c[0] += 1
            c[4] += 1
            note(EventChange.REMOVED, ra, None)
            continue
        rb = sb.pop()
        c = counts.setdefault(rb[0][2:5], [0, 0, 0, 0, 0])
        c[1] += 1
        c[3] += 1
        note(EventChange.INSERTED, None, rb)
    result.equal = equal
    result.events_a, result.events_b = sa.count, sb.count
    result.modules = (a.info.module_sha256, b.info.module_sha256)
    result.changed = tally[EventChange.CHANGED]
    result.inserted = tally[EventChange.INSERTED]
    result.removed = tally[EventChange.REMOVED]
    result.calls = {
        f"{kind} {iface}.{fn}" if iface else f"{kind} {fn}": CallStats(*c)
        for (kind, iface, fn), c in counts.items()
    }
    return result


def _prefer_removal(sa: _Stream, sb: _Stream) -> bool:
    """At a mismatch, is the head of ``a`` an extra (removed) call?

    Look for each head in the other stream's window: if ``b``'s head appears soon in
    ``a``, the ``a`` events before it were removed; if ``a``'s head appears soon in
    ``b``, ``b`` inserted calls. The nearer resynchronisation wins; with neither in
    sight, treat the ``a`` head as removed (and the ``b`` head becomes an insertion).
    """
    sa.fill()
    sb.fill()
    x, y = sa.buf[0][0], sb.buf[0][0]
    ix = _find(sa.buf, y)  # how many a-events to drop to meet b's head
    iy = _find(sb.buf, x)  # how many b-events to insert to meet a's head
    if ix is None or iy is None:
        return iy is None
    return ix <= iy


def _find(buf: deque[Record], target: tuple[Any, ...]) -> int | None:
    ident = target[2:5]
    fallback = None
    for i, (f, _) in enumerate(buf):
        if f[2:5] == ident:
            if f[5] == target[5]:
                return i
            if fallback is None:
                fallback = i
    return fallback


def _changed_fields(a: Event, b: Event) -> list[str]:
    out = []
    if a.input != b.input:
        out.append("input")
    if a.output != b.output:
        out.append("output")
    if a.outcome != b.outcome:
        out.append("outcome")
    if a.status != b.status:
        out.append("status")
    if a.error != b.error or a.error_kind != b.error_kind:
        out.append("error")
    return out


def _explain(change: TraceChange) -> None:
    """Decode only the differing values of a changed pair."""
    a, b = change.a, change.b
    assert a is not None and b is not None
    if "input" in change.fields:
        change.input_diffs = _value_diffs(a.input, b.input)
    if "output" in change.fields:
        change.output_diffs = _value_diffs(a.output, b.output)


def _value_diffs(x: bytes | None, y: bytes | None) -> list[Difference]:
    from .diff import Change

    if x is None or y is None:
        return [Difference("", Change.VALUE, "none" if x is None else f"{len(x)} bytes",
                           "none" if y is None else f"{len(y)} bytes")]
    try:
        diffs = diff_values(EncodedValue(x), EncodedValue(y), limit=20)
    except AbiError as exc:
        return [Difference("", Change.VALUE, f"{len(x)} bytes", f"{len(y)} bytes ({exc})")]
    if not diffs:  # equal values, different bytes (non-canonical encoding)
        diffs = [Difference("", Change.VALUE, f"{len(x)} bytes", f"{len(y)} bytes (same value, different encoding)")]
    return diffs
