"""Reading one stored trace: streamed in order, by seq, filtered, decoded on demand.

Segments are fetched a page at a time with a short query each (keyset pagination on
``first_seq``), so iterating a million-event trace holds one segment in memory and
never keeps a long read transaction open against recorders writing the same file.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import sqlite_utils

from ..errors import IntegrityError, TraceFormatError
from . import codec
from .codec import RawRecord, event_from_record
from .integrity import altered
from .model import Event, EventKind, ExportCall, TraceInfo, header_covered, trace_genesis
from .query import collect_exports, matcher
from .rows import fetch_info, read_module
from .sqlite import translate_errors

__all__ = ["Segment", "Trace", "decode_segment"]

Segment = tuple[int, int, bytes, bytes]
"""``(first_seq, count, head_hash, data)`` as stored."""

_PAGE = 64  # segments looked at per page
_PAGE_BYTES = 1024 * 1024  # segment data fetched per page (at least one segment)


def decode_segment(segment: Segment) -> Iterator[RawRecord]:
    """Validated records of one segment; trailing or missing bytes are format errors."""
    first_seq, count, _head, data = segment
    yield from codec.decode_segment(data, first_seq, count)


_DECODER: ThreadPoolExecutor | None = None
_DECODER_LOCK = threading.Lock()


def _decoder() -> ThreadPoolExecutor:
    """The one worker thread that checks segments ahead of their readers."""
    global _DECODER
    with _DECODER_LOCK:
        if _DECODER is None:
            _DECODER = ThreadPoolExecutor(1, thread_name_prefix="packr-replay decode")
        return _DECODER


def _check_head(trace_id: int, last: int, chained: bytes | None, head: bytes) -> None:
    """A segment's stored head hash must be the chain's hash at its last event."""
    if chained != head:
        raise IntegrityError(
            trace_id, last, f"trace {trace_id}: event {last}: the segment's head hash differs"
        )


def _header_hint(records: Iterable[RawRecord], info: TraceInfo) -> Iterator[RawRecord]:
    """Say that a break at event 0 may be an edited header (it is hashed into the genesis)."""
    try:
        yield from records
    except IntegrityError as exc:
        if exc.seq != 0:
            raise
        text = str(exc).replace("it was altered after recording", altered(info, 0), 1)
        raise IntegrityError(exc.trace_id, 0, text) from None


class Trace:
    """A trace in a :class:`TraceStore`; implements :class:`EventSource`.

    ``info`` is read when the trace is opened (call :meth:`refresh` to re-read it,
    e.g. for a trace another process is still recording); ``len()`` and the event
    iterators always see everything committed so far.
    """

    def __init__(self, db: sqlite_utils.Database, path: Path, info: TraceInfo) -> None:
        self._db = db
        self._path = path
        self._info = info
        self._cache: tuple[int, list[RawRecord]] | None = None

    def __repr__(self) -> str:
        return f"<Trace {self._info.id} {self._info.uuid} {self._info.status} in {self._path}>"

    @property
    def info(self) -> TraceInfo:
        return self._info

    @property
    def id(self) -> int:
        return self._info.id

    def refresh(self) -> TraceInfo:
        self._info = fetch_info(self._db, self._info.id, self._path)
        return self._info

    def __len__(self) -> int:
        """Events committed so far (the end of the last segment)."""
        with translate_errors(self._path):
            (end,) = self._db.execute(
                "SELECT coalesce(max(first_seq + count), 0) FROM segments WHERE trace_id = ?",
                [self._info.id],
            ).fetchone()
        if type(end) is not int:
            raise TraceFormatError(f"{self._path}: segment table holds non-integer positions")
        return end

    def __iter__(self) -> Iterator[Event]:
        return self.events()

    # ------------------------------------------------------------------ events

    def events(
        self,
        kind: EventKind | str | None = None,
        interface: str | None = None,
        function: str | None = None,
        call: int | None = None,
        start: int = 0,
    ) -> Iterator[Event]:
        """Events in order from ``start``, optionally filtered (all filters AND)."""
        match = matcher(kind, interface, function, call)
        if start < 0:
            raise ValueError("start must be >= 0")
        return self._events(match, start)

    def _events(self, match: Any, start: int) -> Iterator[Event]:
        for fields, digest in self.records(start):
            if match is None or match(fields):
                yield event_from_record(fields, digest)

    def event(self, seq: int) -> Event:
        """The event at ``seq`` (its segment is decoded, checked against the chain from
        the segment before it, and kept for its neighbours)."""
        if seq < 0:
            raise IndexError(f"trace {self._info.id} has no event {seq}")
        cached = self._cache
        if cached is not None and 0 <= seq - cached[0] < len(cached[1]):
            return event_from_record(*cached[1][seq - cached[0]])
        with translate_errors(self._path):
            row = self._db.execute(
                "SELECT first_seq, count, head_hash, data FROM segments "
                "WHERE trace_id = ? AND first_seq <= ? ORDER BY first_seq DESC LIMIT 1",
                [self._info.id, seq],
            ).fetchone()
        if row is None:
            raise IndexError(f"trace {self._info.id} has no event {seq}")
        first_seq, count, head, data = self._checked(row)
        if seq >= first_seq + count:
            raise IndexError(f"trace {self._info.id} has no event {seq}")
        trace_id = self._info.id
        decoded = codec.decode_segment(data, first_seq, count, self._chain_before(first_seq), trace_id)
        if first_seq == 0 and header_covered(self._info):
            decoded = _header_hint(decoded, self._info)
        records = list(decoded)
        _check_head(trace_id, first_seq + count - 1, records[-1][1], head)
        self._cache = (first_seq, records)
        return event_from_record(*records[seq - first_seq])

    def exports(self) -> list[ExportCall]:
        """Every export call paired with its return (other events are not decoded)."""
        wanted = (str(EventKind.EXPORT), str(EventKind.RETURN))
        return collect_exports(event_from_record(f, d) for f, d in self.records() if f[2] in wanted)

    def module_bytes(self) -> bytes | None:
        """The module this trace ran, if it was stored with one."""
        sha = self._info.module_sha256
        if sha is None:
            return None
        return read_module(self._db, sha, self._path)

    # --------------------------------------------------------------- internals

    def records(self, start: int = 0) -> Iterator[RawRecord]:
        """Validated ``(fields, hash)`` records from ``start`` on, each checked against
        the hash chain as it is read.

        Everything that reads events (replay, diff, show, export) goes through here, so
        a damaged or edited event is an :class:`IntegrityError` at that event, never a
        value served as if recorded. The C accelerator hashes each record's stored
        bytes (~0.3 µs an event); only a mismatch takes the Python check, which
        re-packs the fields canonically as ``verify`` does. A sealed trace must also
        end at its sealed count and head hash.
        """
        return self._records(start, codec.decode_segment)

    def lazy_records(self, start: int = 0) -> Iterator[RawRecord]:
        """:meth:`records`, checked the same way, each built as Python objects only when
        first used (the C accelerator's ``LazyRecord``; plain records without it). A
        replay on the native call path serves most of them from the stored bytes
        (:attr:`record_view`) without ever building them. Each segment is checked on a
        worker thread (the GIL released) while the one before it is read."""
        lazy = codec.decode_segment_lazy
        if lazy is None:
            return self.records(start)
        return self._records(start, lazy, ahead=True)

    #: The accelerator's C view of a ``LazyRecord`` (a capsule; None without it).
    record_view: Any = codec.RECORD_VIEW

    def _records(
        self, start: int, decode: Callable[..., Iterable[RawRecord]], *, ahead: bool = False
    ) -> Iterator[RawRecord]:
        info = self._info
        trace_id = info.id
        prev: bytes | None = None
        last = -1
        decoded = (self._decode_ahead if ahead else self._decode_each)(start, decode)
        for first_seq, count, head, records in decoded:
            if first_seq == 0 and records.__class__ is not list and header_covered(info):
                records = _header_hint(records, info)  # a list was checked whole, without fault
            if records.__class__ is list:  # the common case: decoded and checked at once
                if first_seq >= start:
                    yield from records
                else:
                    for i, record in enumerate(records):
                        if first_seq + i >= start:
                            yield record
                prev = records[-1][1]
            else:
                for record in records:
                    prev = record[1]
                    if record[0][0] >= start:
                        yield record
            last = first_seq + count - 1
            _check_head(trace_id, last, prev, head)
        if info.head_hash is not None and last + 1 >= start:
            if last + 1 != info.event_count:
                seq = min(last + 1, info.event_count)
                raise IntegrityError(
                    trace_id, seq, f"trace {trace_id}: it was sealed with {info.event_count} "
                    f"events but {last + 1} are stored"
                )  # fmt: skip
            if prev is not None and prev != info.head_hash:
                raise IntegrityError(
                    trace_id, last, f"trace {trace_id}: the last event does not match the sealed head hash"
                )

    def _decode_each(
        self, start: int, decode: Callable[..., Iterable[RawRecord]]
    ) -> Iterator[tuple[int, int, bytes, Iterable[RawRecord]]]:
        """Each segment from ``start`` with its records, decoded as it is reached.

        A segment chains after the stored head of the one before it: by the time its
        records are read, that head was checked against the last of them (or reading
        stopped there with the error), so it is the hash the records end with.
        """
        prev: bytes | None = None
        for first_seq, count, head, data in self.segments(start):
            if prev is None:
                prev = self._chain_before(first_seq)
            yield first_seq, count, head, decode(data, first_seq, count, prev, self._info.id)
            prev = head

    def _decode_ahead(
        self, start: int, decode: Callable[..., Iterable[RawRecord]]
    ) -> Iterator[tuple[int, int, bytes, Iterable[RawRecord]]]:
        """:meth:`_decode_each`, each segment decoded on a worker thread while the one
        before it is read (its result, or its error, comes where it would have)."""
        pool = _decoder()
        prev: bytes | None = None
        pending: tuple[int, int, bytes, Future[Iterable[RawRecord]]] | None = None
        for first_seq, count, head, data in self.segments(start):
            if prev is None:
                prev = self._chain_before(first_seq)
            future = pool.submit(decode, data, first_seq, count, prev, self._info.id)
            if pending is not None:
                yield pending[0], pending[1], pending[2], pending[3].result()
            pending = (first_seq, count, head, future)
            prev = head
        if pending is not None:
            yield pending[0], pending[1], pending[2], pending[3].result()

    def _chain_before(self, first_seq: int) -> bytes:
        """The hash the segment starting at ``first_seq`` chains after."""
        if first_seq == 0:
            return trace_genesis(self._info)
        with translate_errors(self._path):
            row = self._db.execute(
                "SELECT head_hash FROM segments WHERE trace_id = ? AND first_seq < ? "
                "ORDER BY first_seq DESC LIMIT 1",
                [self._info.id, first_seq],
            ).fetchone()
        if row is None or type(row[0]) is not bytes or len(row[0]) != 32:
            raise IntegrityError(
                self._info.id, 0, f"trace {self._info.id}: events 0..{first_seq - 1} are missing"
            )
        return bytes(row[0])

    def segments(self, start: int = 0) -> Iterator[Segment]:
        """Stored segments in order from the one holding ``start``; gaps are errors."""
        trace_id = self._info.id
        with translate_errors(self._path):
            row = self._db.execute(
                "SELECT first_seq FROM segments WHERE trace_id = ? AND first_seq <= ? "
                "ORDER BY first_seq DESC LIMIT 1",
                [trace_id, start],
            ).fetchone()
        expected = 0 if row is None else row[0]
        if type(expected) is not int:
            raise TraceFormatError(f"{self._path}: segment position is not an integer")
        while True:
            # Each page is fetched whole: no statement stays open while the caller works
            # on a segment, so this connection holds no read snapshot between pages (a
            # caller that writes meanwhile, as ``index`` does, would otherwise find its
            # snapshot stale and its write refused at once instead of waiting its turn).
            # A page is as many segments as fit in _PAGE_BYTES (at least one).
            with translate_errors(self._path):
                sizes = self._db.execute(
                    "SELECT first_seq, length(data) FROM segments "
                    "WHERE trace_id = ? AND first_seq >= ? ORDER BY first_seq LIMIT ?",
                    [trace_id, expected, _PAGE],
                ).fetchall()
                if not sizes:
                    return
                take, total = 1, sizes[0][1]
                while take < len(sizes):
                    size = sizes[take][1]
                    if type(total) is not int or type(size) is not int:
                        break
                    if total + size > _PAGE_BYTES:
                        break
                    total += size
                    take += 1
                page = self._db.execute(
                    "SELECT first_seq, count, head_hash, data FROM segments "
                    "WHERE trace_id = ? AND first_seq >= ? AND first_seq <= ? ORDER BY first_seq",
                    [trace_id, expected, sizes[take - 1][0]],
                ).fetchall()
            for raw in page:
                segment = self._checked(raw)
                if segment[0] != expected:
                    raise IntegrityError(
                        trace_id,
                        expected,
                        f"trace {trace_id}: events {expected}..{segment[0] - 1} are missing",
                    )
                expected = segment[0] + segment[1]
                yield segment
            if not page or (take == len(sizes) and len(sizes) < _PAGE):
                return

    def _checked(self, row: Any) -> Segment:
        first_seq, count, head, data = row
        if not (
            type(first_seq) is int
            and type(count) is int
            and count > 0
            and type(head) is bytes
            and len(head) == 32
            and type(data) is bytes
        ):
            raise TraceFormatError(
                f"{self._path}: trace {self._info.id} has a malformed segment near event {first_seq!r}"
            )
        return first_seq, count, head, data
