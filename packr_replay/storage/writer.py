"""Recording one trace: chained, batched, crash-safe appends.

``append``/``extend`` pack the events' chain fields once, hash them after the previous
hash and append ``record + hash`` to an in-memory segment (:func:`chain.pack_chain`,
in C when the accelerator is built); nothing else happens per batch except a clock
read. The segment is written as one row in one ``BEGIN IMMEDIATE``
transaction when any of these comes first:

* ``FlushPolicy.max_events`` events or ``max_bytes`` bytes are pending (bounds memory);
* ``max_delay`` seconds have passed since the last flush (checked on append);
* :meth:`TraceWriter.flush` is called;
* :meth:`TraceWriter.finish` or :meth:`close`.

Export calls are not commit points: a guest making one import per export call records
as cheaply as one making them all inside one call. A recorder killed at any instant
loses at most the events appended since the last commit (under ``max_bytes`` and about
``max_delay`` seconds of recording).

Reaching a threshold hands the segment to the writer's committer thread (see
:mod:`.committer`) and recording continues while SQLite writes; :meth:`flush` waits
until everything appended is committed, so when it returns the events are durable.

Each writer has its own connection, so recorders in several processes (or a replay
recording while its original is being read) share one WAL file; the busy timeout
makes them take turns. A commit is the unit of durability: a recorder killed at any
instant leaves every committed segment readable and chain-valid, and the trace row
still says ``recording`` with the dead writer's identity, which readers report as
``incomplete`` (see :mod:`.liveness`).
"""

from __future__ import annotations

import atexit
import os
import sqlite3
import uuid as uuid_module
from dataclasses import dataclass
from pathlib import Path
from time import monotonic
from types import TracebackType
from typing import Any

import sqlite_utils

from .. import _interrupts
from .._version import __version__
from ..errors import StoreError
from .chain import hash_records, pack_rows
from .codec import check_meta, pack_meta, unpack_meta
from .committer import Committer, InlineCommitter, Statements
from .liveness import WriterIdentity, live_writers, register_live, unregister_live
from .model import EventKind, Outcome, TraceInfo, TraceStatus, header_genesis
from .packages import insert_packages
from .rows import fetch_info, now_iso
from .schema import TRACE_FORMAT_VERSION
from .sqlite import Tracer, connect, translate_errors

__all__ = ["FlushPolicy", "TraceWriter"]

_FINAL = frozenset(
    {TraceStatus.COMPLETE, TraceStatus.INCOMPLETE, TraceStatus.DIVERGED, TraceStatus.FAILED}
)


@dataclass(frozen=True, slots=True)
class FlushPolicy:
    """When buffered events are committed (whichever threshold is reached first).

    ``background=True`` (the default) commits on a thread of the writer's own, which
    may hold up to ``max_queued`` bytes of segments waiting for the disk; ``False``
    commits on the recording thread. The committer also chains the segment's hashes,
    with the GIL released, so the recording thread only packs: measured on 2 CPUs with
    the native call path, the recording thread then spends 1.35x live's CPU time per
    s64 call (1.8x when it hashes and commits inline), and 1.6x on 2 KB events (3x
    inline). (With the old ctypes call path, whose guest thread re-took the GIL twice
    per call, inline was cheaper; see BENCHMARKS.md 1b/1c.)
    """

    max_events: int = 1024
    max_bytes: int = 1024 * 1024
    max_delay: float = 0.1
    background: bool = True
    max_queued: int = 16 * 1024 * 1024

    def __post_init__(self) -> None:
        if min(self.max_events, self.max_bytes, self.max_queued) < 1 or self.max_delay < 0:
            raise ValueError("flush thresholds must be positive")


class TraceWriter:
    """Appends events to one trace; implements :class:`EventSink`.

    Use as a context manager: leaving the block normally finishes the trace as
    ``complete``, leaving it with an exception finishes it as ``failed``.
    Not thread-safe: one writer per recording thread.
    """

    __slots__ = (
        "__weakref__",
        "_buf",
        "_committer",
        "_db",
        "_deadline",
        "_first",
        "_head",
        "_info",
        "_lens",
        "_max_bytes",
        "_max_delay",
        "_max_events",
        "_open",
        "_path",
        "_pid",
        "_policy",
        "_seq",
        "trace_id",
        "uuid",
    )

    def __init__(
        self,
        path: Path,
        *,
        module_sha256: str | None,
        label: str | None = None,
        host: str | None = None,
        meta: dict[str, Any] | None = None,
        replay_of: int | None = None,
        replay_of_uuid: str | None = None,
        policy: FlushPolicy | None = None,
        busy_timeout: float = 30.0,
        tracer: Tracer | None = None,
    ) -> None:
        """Open a connection of our own and insert the trace row (status ``recording``)."""
        policy = policy or FlushPolicy()
        for name, value in (("module_sha256", module_sha256), ("label", label), ("host", host)):
            if value is not None and not isinstance(value, str):
                raise TypeError(f"{name} must be a str or None, not {type(value).__name__}")
        if replay_of is not None and (
            not isinstance(replay_of, int) or isinstance(replay_of, bool)
        ):
            raise TypeError("replay_of must be a trace id (int) or None")
        meta_bytes = pack_meta(check_meta(meta))
        self._path = path
        self._policy = policy
        self.uuid = str(uuid_module.uuid4())
        self._db: sqlite_utils.Database | None = connect(
            path, busy_timeout=busy_timeout, tracer=tracer, threads=True
        )
        try:
            self.trace_id, genesis = self._insert_row(
                module_sha256, label, host, meta_bytes, replay_of, replay_of_uuid
            )
        except BaseException:
            self._db.close()
            raise
        self._pid = os.getpid()
        register_live(self.uuid, self)
        self._committer = (Committer if policy.background else InlineCommitter)(
            self._db, path, policy.max_queued
        )
        # Hot-path state, kept in plain attributes.
        self._head = genesis  # the last chained event's hash (set where segments are hashed)
        self._seq = 0
        self._first = 0  # seq of the first unflushed event
        self._buf = bytearray(32)  # room for the hash the segment chains after, then records
        self._lens = bytearray()  # each pending record's length (uint32s), for hash_records
        self._max_events = policy.max_events
        self._max_bytes = policy.max_bytes
        self._max_delay = policy.max_delay
        self._deadline = monotonic() + policy.max_delay
        self._info: TraceInfo | None = None
        self._open = True  # False once finished or closed (one check on the hot path)

    def _insert_row(
        self,
        module_sha256: str | None,
        label: str | None,
        host: str | None,
        meta: bytes,
        replay_of: int | None,
        replay_of_uuid: str | None = None,
    ) -> tuple[int, bytes]:
        """Insert the trace's row; returns its id and the genesis hash its header gives."""
        assert self._db is not None
        db = self._db
        who = WriterIdentity.current()
        with translate_errors(self._path):
            if module_sha256 is not None and (
                db.execute("SELECT 1 FROM modules WHERE sha256 = ?", [module_sha256]).fetchone()
                is None
            ):
                raise StoreError(
                    f"{self._path} holds no module {module_sha256}; add_module it first"
                )
            if replay_of_uuid is not None and not isinstance(replay_of_uuid, str):
                raise TypeError("replay_of_uuid must be a str or None")
            if replay_of is not None:
                row = db.execute("SELECT uuid FROM traces WHERE id = ?", [replay_of]).fetchone()
                if row is None:
                    raise StoreError(f"{self._path} holds no trace {replay_of} to be a replay of")
                replay_of_uuid = row[0]
            created_at = now_iso()
            cursor = db.execute(
                "INSERT INTO traces (uuid, created_at, module_sha256, status, label, host, "
                "tool_version, format_version, event_count, replay_of, replay_of_uuid, meta, "
                "writer_host, writer_boot, writer_pid, writer_start) "
                "VALUES (?, ?, ?, 'recording', ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?)",
                [
                    self.uuid,
                    created_at,
                    module_sha256,
                    label,
                    host,
                    __version__,
                    TRACE_FORMAT_VERSION,
                    replay_of,
                    replay_of_uuid,
                    meta,
                    who.host,
                    who.boot,
                    who.pid,
                    who.start,
                ],
            )
            insert_packages(db, int(cursor.lastrowid or 0), unpack_meta(meta), self._path)
        genesis = header_genesis(
            uuid=self.uuid,
            format_version=TRACE_FORMAT_VERSION,
            created_at=created_at,
            tool_version=__version__,
            module_sha256=module_sha256,
            label=label,
            host=host,
            replay_of_uuid=replay_of_uuid,
            meta=unpack_meta(meta),  # as readers will see it
        )
        return int(cursor.lastrowid or 0), genesis

    # ------------------------------------------------------------------ hot path

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
        """Record one event; returns its seq. Fields are those of :class:`Event`."""
        row = (call, kind, interface, function, input, output, status, outcome,
               error_kind, error, duration_ns, depth)  # fmt: skip
        return self.extend([row if package is None else (*row, package)])

    def extend(self, rows: list[tuple[Any, ...]]) -> int:
        """Append many events at once; each row holds the 12 fields of :meth:`append`
        after ``seq``, in order. Returns the seq of the first one.

        The recorder's batch path: one :func:`chain.pack_rows` call packs and
        type-checks the whole batch (rows whose fields are not the plain types are
        normalised or refused by ``normalize_fields``; a refused row leaves the writer
        as it was). Chaining the hashes waits for the segment's commit, where
        :func:`chain.hash_records` does it (with the GIL released: on the committer
        thread, in parallel with the recording).
        """
        with _interrupts.deferred():  # a signal never leaves the segment half-built
            return self._extend(rows)

    def _extend(self, rows: list[tuple[Any, ...]]) -> int:
        if not self._open:
            raise StoreError(f"trace {self.trace_id} is closed; no more events can be appended")
        first = self._seq
        data, lens, count = pack_rows(rows, first)
        buf = self._buf
        buf += data
        self._lens += lens
        self._seq = seq = first + count
        if (
            seq - self._first >= self._max_events
            or len(buf) - 32 >= self._max_bytes
            or monotonic() >= self._deadline
        ):
            self._submit()
        return first

    # ---------------------------------------------------------------- durability

    def flush(self) -> None:
        """Return once every appended event is committed (durable)."""
        with _interrupts.deferred():
            self._submit()
            self._committer.wait()

    def _submit(self) -> None:
        """Hand the pending events to the committer as one segment, without waiting."""
        self._deadline = monotonic() + self._max_delay
        count = self._seq - self._first
        if count == 0 or self._db is None:
            return
        if os.getpid() != self._pid:
            raise StoreError(
                "a TraceWriter cannot be used after fork(); begin a trace in the child"
            )
        buf, lens, first, end = self._buf, bytes(self._lens), self._first, self._seq
        self._buf = bytearray(32)
        self._lens = bytearray()
        self._first = end

        def commit() -> Statements:  # run by the committer, in submission order
            self._head = head = hash_records(buf, lens, self._head)
            return (
                ("INSERT INTO segments (trace_id, first_seq, count, head_hash, data) "
                 "VALUES (?, ?, ?, ?, ?)", [self.trace_id, first, count, head, memoryview(buf)[32:]]),
                ("UPDATE traces SET event_count = ? WHERE id = ?", [end, self.trace_id]),
            )  # fmt: skip

        self._committer.submit(commit, len(buf))

    def finish(
        self, status: TraceStatus = TraceStatus.COMPLETE, reason: str | None = None
    ) -> TraceInfo:
        """Flush, then seal: final status, head hash, event count; the writer closes.

        ``reason`` says why a trace ends ``incomplete`` (``"interrupted"``: SIGINT or
        SIGTERM stopped the run; stored as ``end_reason``). A signal arriving meanwhile
        is raised once the trace is sealed, never in the middle. Calling it again
        returns the sealed info.
        """
        with _interrupts.deferred():
            return self._finish(status, reason)

    def _finish(self, status: TraceStatus, reason: str | None) -> TraceInfo:
        if self._info is not None:
            return self._info
        status = TraceStatus(status)
        if status not in _FINAL:
            raise ValueError(f"a trace cannot finish as {status!r}")
        if reason is not None and not isinstance(reason, str):
            raise TypeError("reason must be a str or None")
        if self._db is None:
            raise StoreError(f"trace {self.trace_id} was closed without being finished")
        try:
            self._submit()

            def seal() -> Statements:  # after every segment: the last one set the head
                return (
                    (
                        "UPDATE traces SET status = ?, completed_at = ?, head_hash = ?, "
                        "event_count = ?, end_reason = ?, writer_host = NULL, "
                        "writer_boot = NULL, writer_pid = NULL, writer_start = NULL WHERE id = ?",
                        [str(status), now_iso(), self._head, self._seq, reason, self.trace_id],
                    ),
                )

            self._committer.submit(seal)
            self._committer.wait()
            self._committer.stop()
        except BaseException:
            self._close()  # a failed commit cannot be retried; the trace reads incomplete
            raise
        self._info = fetch_info(self._db, self.trace_id, self._path)
        self._checkpoint()
        self._close()
        return self._info

    def _checkpoint(self) -> None:
        """Copy the sealed trace from the WAL into the file itself, so the file alone holds
        it even while other connections keep the WAL (a copy of just the ``.db`` is
        complete). Passive: it never waits for, or blocks, anyone."""
        assert self._db is not None
        try:
            self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error:
            pass  # not fatal: the trace is sealed; the last connection to close does it

    def close(self) -> None:
        """Flush and release the file *without* sealing: the trace reads as incomplete.

        The file is released even if the flush fails (the error is raised after).
        """
        if self._db is None:
            return
        with _interrupts.deferred():
            try:
                self.flush()
            finally:
                self._close()

    def _close(self) -> None:
        self._open = False
        unregister_live(self.uuid)
        self._committer.stop()
        if self._db is not None:
            self._db.close()
            self._db = None

    # ------------------------------------------------------------------- state

    @property
    def head(self) -> bytes:
        """The hash of the last appended event (the genesis hash before any). Events are
        chained as they are committed, so pending ones are flushed first."""
        if self._db is not None:
            self.flush()
        return self._head

    @property
    def pending(self) -> int:
        """Events appended but not yet committed."""
        return self._seq - self._first

    def __len__(self) -> int:
        return self._seq

    @property
    def closed(self) -> bool:
        return self._db is None

    def __repr__(self) -> str:
        return f"<TraceWriter trace {self.trace_id} {self.uuid}, {self._seq} events>"

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._db is None:
            return
        if exc_type is None:
            self.finish(TraceStatus.COMPLETE)
        else:
            try:
                self.finish(TraceStatus.FAILED)
            except StoreError:
                self._close()  # the original exception matters more


@atexit.register
def _close_abandoned_writers() -> None:
    """At interpreter exit, commit what unfinished writers hold; their traces stay incomplete."""
    for writer in live_writers():
        try:
            if writer._pid == os.getpid():
                writer.close()
        except Exception:
            pass
