"""``TraceStore``: one SQLite file holding traces and the modules they ran.

The store is the front door: it opens (or explicitly creates) a file, checks that it
is a trace store this version can read, and hands out readers (:class:`Trace`) and
writers (:class:`TraceWriter`). A single file is a complete bug report: every module
a trace ran is stored with it, content-addressed by SHA-256.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import sqlite_utils

from ..errors import IntegrityError, StoreError, TraceFormatError, TraceNotFound
from .bundle import bundle
from .exchange import export_trace, import_trace
from .integrity import ChainChecker, VerifyReport
from .model import TraceInfo
from .packages import composition_of
from .reader import Trace, decode_segment
from .rows import (
    ModuleInfo,
    TraceRef,
    fetch_info,
    info_from_row,
    insert_module,
    module_infos,
    read_module,
    resolve_trace,
    trace_columns,
)
from .schema import ensure_schema, open_database
from .sqlite import Tracer, limit_length, tidy, translate_errors
from .writer import FlushPolicy, TraceWriter

__all__ = ["TraceRef", "TraceStore"]


class TraceStore:
    """A trace store file. ``create=True`` makes the file if it does not exist.

    Not thread-safe; every :class:`TraceWriter` it begins uses a connection of its own.
    ``tracer`` receives every SQL statement and its parameters, like sqlite-utils'.
    ``threads`` lets the store be used from another thread, one at a time (a replayed
    async guest call reads its trace from a worker thread).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        create: bool = False,
        readonly: bool = False,
        tracer: Tracer | None = None,
        busy_timeout: float = 30.0,
        threads: bool = False,
    ) -> None:
        self.path = Path(path)
        if create and readonly:
            raise ValueError("a store cannot be created read-only")
        if not create and not self.path.exists():
            raise StoreError(f"no trace store at {self.path} (pass create=True to make a new one)")
        self.readonly = readonly
        self._borrowed = False
        self._tracer = tracer
        self._busy_timeout = busy_timeout
        self._db: sqlite_utils.Database | None = None
        self._db, self.format_version = open_database(
            self.path,
            create=create,
            readonly=readonly,
            tracer=tracer,
            busy_timeout=busy_timeout,
            threads=threads,
        )

    @classmethod
    def over_connection(cls, conn: sqlite3.Connection, path: str | os.PathLike[str]) -> TraceStore:
        """A read-only store on a connection someone else opened and owns (Datasette's,
        opened ``mode=ro`` or ``immutable=1``), so reading never opens the file another way.

        The schema is checked as for any open; the connection gets the store's cap on
        blob length, and :meth:`close` leaves it open.
        """
        store = cls.__new__(cls)
        store.path = Path(path)
        store.readonly = True
        store._tracer = None
        store._busy_timeout = 0.0
        store._borrowed = True
        with translate_errors(store.path):
            limit_length(conn)
            store._db = sqlite_utils.Database(
                conn, recursive_triggers=False, execute_plugins=False
            )
            store.format_version = ensure_schema(
                store._db, store.path, create=False, readonly=True
            )
        return store

    # ------------------------------------------------------------------ basics

    @property
    def db(self) -> sqlite_utils.Database:
        """The underlying sqlite-utils database (for inspection; writes void the warranty)."""
        if self._db is None:
            raise StoreError(f"trace store {self.path} is closed")
        return self._db

    def close(self) -> None:
        """Close the file (a borrowed connection stays open); after a read-only use,
        leave it one self-contained file (see :func:`.sqlite.tidy`)."""
        if self._db is not None and not self._borrowed:
            self._db.close()
            if self.readonly:
                tidy(self.path)
        self._db = None

    def __enter__(self) -> TraceStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<TraceStore {self.path}{' (closed)' if self._db is None else ''}>"

    # ----------------------------------------------------------------- modules

    def add_module(self, wasm: bytes, name: str, types: bytes | None = None) -> str:
        """Store a module's bytes (idempotent); returns its SHA-256 hex digest."""
        if not isinstance(wasm, bytes | bytearray | memoryview):
            raise TypeError("wasm must be bytes")
        if types is not None and not isinstance(types, bytes | bytearray | memoryview):
            raise TypeError("types must be bytes or None")
        wasm = bytes(wasm)
        sha = hashlib.sha256(wasm).hexdigest()
        with translate_errors(self.path):
            insert_module(self.db, sha, str(name), wasm, None if types is None else bytes(types))
        return sha

    def module_bytes(self, sha256: str) -> bytes:
        """The bytes of a stored module; :class:`StoreError` if it is not here."""
        return read_module(self.db, sha256, self.path)

    def module_info(self, sha256: str) -> ModuleInfo:
        for info in self._module_infos("WHERE sha256 = ?", [sha256]):
            return info
        raise StoreError(f"{self.path} holds no module {sha256}")

    def modules(self) -> list[ModuleInfo]:
        """Every stored module (without its bytes)."""
        return self._module_infos("ORDER BY added_at, sha256", [])

    def _module_infos(self, where: str, params: list[Any]) -> list[ModuleInfo]:
        return module_infos(self.db, where, params, self.path)

    # ------------------------------------------------------------------ traces

    def begin_trace(
        self,
        module_sha256: str | None,
        *,
        label: str | None = None,
        host: str | None = None,
        meta: dict[str, Any] | None = None,
        replay_of: int | None = None,
        flush: FlushPolicy | None = None,
        replay_of_uuid: str | None = None,
    ) -> TraceWriter:
        """Start recording a new trace; the writer has its own connection.

        ``replay_of`` is a trace of this store the new one replays; ``replay_of_uuid``
        names one by uuid, possibly in another file (``replay_of`` sets it too).
        """
        if self.readonly:
            raise StoreError(f"{self.path} is open read-only")
        self.db  # noqa: B018 - raise if closed
        return TraceWriter(
            self.path,
            module_sha256=module_sha256,
            label=label,
            host=host,
            meta=meta,
            replay_of=replay_of,
            replay_of_uuid=replay_of_uuid,
            policy=flush,
            busy_timeout=self._busy_timeout,
            tracer=self._tracer,
        )

    def traces(self) -> list[TraceInfo]:
        """Every trace's header, oldest first (dead writers' traces as ``incomplete``)."""
        with translate_errors(self.path):
            columns = trace_columns(self.db)
            rows = self.db.execute(f"SELECT {columns} FROM traces ORDER BY id").fetchall()
        return [info_from_row(tuple(row), self.path) for row in rows]

    def trace(self, ref: TraceRef) -> Trace:
        """Open a trace by id, uuid or label; :class:`TraceNotFound` if there is none."""
        trace_id = resolve_trace(self.db, ref, self.path)
        return Trace(self.db, self.path, fetch_info(self.db, trace_id, self.path))

    def __contains__(self, ref: object) -> bool:
        try:
            resolve_trace(self.db, ref, self.path)  # type: ignore[arg-type]
        except (TraceNotFound, TypeError):
            return False
        return True

    def verify(self, ref: TraceRef) -> VerifyReport:
        """Recompute the hash chain; the report names the first altered or missing event."""
        trace = self.trace(ref)
        checker = ChainChecker(trace.info)
        try:
            for segment in trace.segments():
                for fields, digest in decode_segment(segment):
                    checker.feed(fields, digest)
                checker.check_head(segment[0] + segment[1] - 1, segment[2])
        except (IntegrityError, TraceFormatError) as exc:
            return checker.report(exc)
        report = checker.finish()
        if not report.ok:
            return report
        try:
            composition = composition_of(trace.info)
        except TraceFormatError as exc:
            return VerifyReport(report.trace_id, False, report.events, None, str(exc))
        shas = [trace.info.module_sha256] + (
            [] if composition is None else [p.module_sha256 for p in composition.packages]
        )
        for sha in dict.fromkeys(s for s in shas if s is not None):
            try:
                read_module(self.db, sha, self.path)  # checks the bytes against their key
            except StoreError as exc:
                what = "altered" if isinstance(exc, IntegrityError) else "missing"
                return VerifyReport(
                    report.trace_id,
                    False,
                    report.events,
                    None,
                    f"trace {report.trace_id}: the stored module {sha} is {what}",
                    header_covered=report.header_covered,
                )
        return report

    # -------------------------------------------------------- export / import

    def export_trace(self, ref: TraceRef, fileobj: IO[bytes]) -> int:
        """Write one trace (and its module) as a msgpack stream; returns events written."""
        return export_trace(self, self.trace(ref), fileobj)

    def import_trace(self, fileobj: IO[bytes]) -> int:
        """Read a stream written by :meth:`export_trace`; returns the new trace's id.

        The trace keeps its uuid and hashes; every event's hash is checked on the way
        in, and nothing is stored unless the whole stream is valid.
        """
        if self.readonly:
            raise StoreError(f"{self.path} is open read-only")
        return import_trace(self, fileobj)

    def bundle(self, ref: TraceRef, dest: str | os.PathLike[str], **kwargs: Any) -> Path:
        """Copy one trace and its module into a new compact file (see :func:`bundle`)."""
        return bundle(self, ref, dest, **kwargs)
