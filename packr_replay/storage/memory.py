"""``MemoryTrace``: a trace kept in a list, for tests and for the replay layer's seams.

It implements both :class:`EventSink` and :class:`EventSource` with the same
behaviour as the SQLite store -- same seq assignment, same hash chain, same filters,
same sealing -- so code tested against it behaves the same against a file.
"""

from __future__ import annotations

import uuid as uuid_module
from collections.abc import Iterator
from dataclasses import replace
from hashlib import sha256
from typing import Any

from .._version import __version__
from ..errors import StoreError
from .chain import new_packer, normalize_fields
from .codec import KINDS, OUTCOMES, check_meta, pack_meta, unpack_meta
from .integrity import VerifyReport, check_events
from .model import (
    Event,
    EventKind,
    ExportCall,
    Outcome,
    TraceInfo,
    TraceStatus,
    trace_genesis,
)
from .query import collect_exports, matcher
from .rows import now_iso
from .schema import TRACE_FORMAT_VERSION

__all__ = ["MemoryTrace"]

_FINAL = frozenset(
    {TraceStatus.COMPLETE, TraceStatus.INCOMPLETE, TraceStatus.DIVERGED, TraceStatus.FAILED}
)


class MemoryTrace:
    """An in-memory trace: append to it, finish it, read it back, verify it."""

    def __init__(
        self,
        *,
        module_sha256: str | None = None,
        label: str | None = None,
        host: str | None = None,
        meta: dict[str, Any] | None = None,
        replay_of: int | None = None,
        uuid: str | None = None,
        id: int = 0,
    ) -> None:
        self._info = TraceInfo(
            id=id,
            uuid=uuid or str(uuid_module.uuid4()),
            created_at=now_iso(),
            module_sha256=module_sha256,
            status=TraceStatus.RECORDING,
            label=label,
            host=host,
            tool_version=__version__,
            format_version=TRACE_FORMAT_VERSION,
            replay_of=replay_of,
            meta=unpack_meta(pack_meta(check_meta(meta))),  # as a store would keep it
        )
        self._events: list[Event] = []
        self._head = trace_genesis(self._info)
        self._pack = new_packer().pack
        self._sealed = False

    @classmethod
    def copy_of(cls, source: Any) -> MemoryTrace:
        """A memory copy of any :class:`EventSource` (info, events and hashes as they are)."""
        trace = cls()
        trace._events = list(source.events())
        info: TraceInfo = source.info
        trace._info = replace(info, event_count=len(trace._events))
        trace._head = trace._events[-1].hash if trace._events else trace_genesis(info)
        trace._sealed = info.status is not TraceStatus.RECORDING
        return trace

    def __repr__(self) -> str:
        return f"<MemoryTrace {self._info.uuid} {self._info.status}, {len(self._events)} events>"

    # -------------------------------------------------------------------- sink

    def append(
        self,
        call: int,
        kind: EventKind,
        interface: str,
        function: str,
        input: bytes | None,
        output: bytes | None = None,
        status: int | None = None,
        outcome: Outcome = Outcome.OK,
        error_kind: str | None = None,
        error: str | None = None,
        duration_ns: int = 0,
        depth: int = 0,
        package: str | None = None,
    ) -> int:
        """Record one event; returns its seq (see :meth:`EventSink.append`)."""
        if self._sealed:
            raise StoreError(f"trace {self._info.uuid} is finished; no more events can be appended")
        fields = normalize_fields(
            call, kind, interface, function, input, output, status, outcome,
            error_kind, error, duration_ns, depth, *(() if package is None else (package,)),
        )  # fmt: skip
        seq = len(self._events)
        digest = sha256(self._head + self._pack([seq, *fields])).digest()
        self._events.append(
            Event(
                seq,
                fields[0],
                KINDS[fields[1]],
                fields[2],
                fields[3],
                fields[4],
                fields[5],
                fields[6],
                OUTCOMES[fields[7]],
                fields[8],
                fields[9],
                fields[10],
                fields[11],
                digest,
                fields[12] if len(fields) == 13 else None,
            )
        )
        self._head = digest
        return seq

    def extend(self, rows: list[tuple[Any, ...]]) -> int:
        """Append many events (rows of :meth:`append`'s fields); returns the first seq."""
        first = len(self._events)
        for row in rows:
            self.append(*row)
        return first

    def flush(self) -> None:
        """Nothing to make durable; here for :class:`EventSink`."""

    def finish(self, status: TraceStatus = TraceStatus.COMPLETE) -> TraceInfo:
        """Seal the trace (idempotent): final status, head hash and event count."""
        if self._sealed:
            return self.info
        status = TraceStatus(status)
        if status not in _FINAL:
            raise ValueError(f"a trace cannot finish as {status!r}")
        self._sealed = True
        self._info = replace(
            self._info, status=status, completed_at=now_iso(), head_hash=self._head
        )
        return self.info

    # ------------------------------------------------------------------ source

    @property
    def info(self) -> TraceInfo:
        return replace(self._info, event_count=len(self._events))

    @property
    def head(self) -> bytes:
        return self._head

    def __len__(self) -> int:
        return len(self._events)

    def __iter__(self) -> Iterator[Event]:
        return iter(self._events)

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
        events = self._events[start:]
        if match is None:
            return iter(events)
        return (e for e in events if match(e.chain_fields()))

    def records(self, start: int = 0) -> Iterator[tuple[tuple[Any, ...], bytes]]:
        """``(fields, hash)`` from ``start`` on, as :meth:`Trace.records` gives them."""
        for event in self._events[start:]:
            yield tuple(event.chain_fields()), event.hash

    def event(self, seq: int) -> Event:
        if not 0 <= seq < len(self._events):
            raise IndexError(f"trace {self._info.uuid} has no event {seq}")
        return self._events[seq]

    def exports(self) -> list[ExportCall]:
        return collect_exports(self._events)

    def verify(self) -> VerifyReport:
        """Recompute the hash chain, exactly as ``TraceStore.verify`` does for a file."""
        info = self.info
        if not self._sealed:
            info = replace(info, head_hash=None)
        return check_events(info, ((e.chain_fields(), e.hash) for e in self._events))
