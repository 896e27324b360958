"""The seams of the storage layer.

``EventSink`` / ``EventSource``: what the replay layer writes to and reads from. Both
are implemented by the SQLite store (:class:`TraceWriter`, :class:`Trace`) and by the
in-memory :class:`MemoryTrace`, so the recorder and replayer can be unit-tested without
a file. ``StoreFile``: what bundling and export/import need of a store, so those
modules do not import the store that calls them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .model import Event, EventKind, ExportCall, Outcome, TraceInfo, TraceStatus

if TYPE_CHECKING:
    import sqlite_utils

    from .reader import Trace
    from .rows import ModuleInfo, TraceRef

__all__ = ["EventSink", "EventSource", "StoreFile"]


@runtime_checkable
class EventSink(Protocol):
    """Where a recorder appends events; the sink assigns ``seq`` and the hash chain."""

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
        """Record one event (fields as in :class:`Event`); returns its ``seq``.

        Returns the sequence number rather than an :class:`Event` because building
        a frozen dataclass per call costs as much as hashing it; read the event back
        with ``event(seq)`` when it is needed.
        """
        ...

    def extend(self, rows: list[tuple[Any, ...]]) -> int:
        """Append many events; each row holds :meth:`append`'s 12 fields in order (13
        with a package). Returns the seq of the first (the recorder's batched path)."""
        ...

    def flush(self) -> None:
        """Make every appended event durable (the recorder calls this when an export returns)."""
        ...

    def finish(self, status: TraceStatus = TraceStatus.COMPLETE) -> TraceInfo:
        """Flush, seal the head hash and event count, and set the final status."""
        ...


@runtime_checkable
class EventSource(Protocol):
    """A recorded trace as the replayer and differ read it."""

    @property
    def info(self) -> TraceInfo: ...

    def __len__(self) -> int:
        """Events stored so far."""
        ...

    def events(
        self,
        kind: EventKind | str | None = None,
        interface: str | None = None,
        function: str | None = None,
        call: int | None = None,
        start: int = 0,
    ) -> Iterator[Event]:
        """Events in ``seq`` order from ``start``, optionally filtered (all filters AND)."""
        ...

    def event(self, seq: int) -> Event:
        """The event at ``seq``; ``IndexError`` if there is none."""
        ...

    def records(self, start: int = 0) -> Iterator[tuple[tuple[Any, ...], bytes]]:
        """Raw ``(fields, hash)`` pairs from ``start`` on: the 13 chain fields of
        :meth:`Event.chain_fields` (seq first, kind and outcome as str), validated.
        The replayer's hot path reads these instead of building Events."""
        ...

    def exports(self) -> list[ExportCall]:
        """Every export call, in order, paired with its ``return`` event."""
        ...


class StoreFile(Protocol):
    """An open trace store as bundling and export/import use it (:class:`TraceStore`)."""

    @property
    def path(self) -> Path: ...

    @property
    def db(self) -> sqlite_utils.Database: ...

    def trace(self, ref: TraceRef) -> Trace: ...

    def module_info(self, sha256: str) -> ModuleInfo: ...

    def module_bytes(self, sha256: str) -> bytes: ...
