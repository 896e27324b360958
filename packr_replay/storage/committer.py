"""Committing a writer's segments on a thread of its own.

SQLite releases the GIL while it writes, and a segment's hashes are chained here with
the GIL released too (``chain.hash_records``), so a committer thread lets one segment's
hashing, INSERT, COMMIT and WAL checkpoint run while the recording thread packs the
next one. Segments queue up to ``FlushPolicy.max_queued`` bytes -- enough to ride out
the stall of a WAL checkpoint (its fsyncs) -- so a writer's memory is bounded and a
guest outrunning the disk is slowed down, never buffered without bound.

A failed commit (the file locked past the busy timeout, disk full) poisons the
committer: later segments cannot be written without a gap, so every later call
re-raises that error and the trace is left as a crashed recorder would leave it
(``incomplete``, with every earlier segment intact).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlite_utils

from ..errors import StoreError
from .sqlite import translate_errors

__all__ = ["Committer", "InlineCommitter", "Job", "Statements", "run_transaction"]

Statements = tuple[tuple[str, list[Any]], ...]
#: What a writer submits: statements, or a function run on the committer's thread, in
#: submission order, that returns them (it may do work first: chaining a segment's hashes).
Job = Statements | Callable[[], Statements]


def _statements(job: Job) -> Statements:
    return job() if callable(job) else job


def run_transaction(db: sqlite_utils.Database, path: Path, statements: Statements) -> None:
    """Run ``statements`` in one ``BEGIN IMMEDIATE`` transaction (busy timeout applies)."""
    with translate_errors(path):
        db.execute("BEGIN IMMEDIATE")
        try:
            for sql, params in statements:
                db.execute(sql, params)
            db.execute("COMMIT")
        except BaseException:
            db.rollback()
            raise


class Committer:
    """A thread that runs submitted transactions in order on one connection."""

    def __init__(self, db: sqlite_utils.Database, path: Path, max_queued: int) -> None:
        self._db = db
        self._path = path
        self._max_queued = max_queued
        self._cond = threading.Condition()
        self._jobs: deque[tuple[Job | None, int]] = deque()
        self._queued = 0  # bytes submitted and not yet committed
        self._busy = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, name=f"packr-replay commit {path.name}", daemon=True
        )
        self._thread.start()

    def submit(self, job: Job, size: int = 0) -> None:
        """Queue a transaction of ``size`` bytes; blocks while the queue is full."""
        self.check()
        with self._cond:
            while self._queued and self._queued + size > self._max_queued and not self._error:
                self._cond.wait()
            self._jobs.append((job, size))
            self._queued += size
            self._cond.notify_all()

    def wait(self) -> None:
        """Return once every submitted transaction is committed; raise if one failed."""
        with self._cond:
            while self._jobs or self._busy:
                self._cond.wait()
        self.check()

    def check(self) -> None:
        if self._error is not None:
            raise StoreError(
                f"{self._path}: an earlier commit failed, so this trace cannot continue: "
                f"{self._error}"
            ) from self._error

    def stop(self) -> None:
        """Finish queued work and end the thread (idempotent)."""
        if self._thread.is_alive():
            with self._cond:
                self._jobs.append((None, 0))
                self._cond.notify_all()
            self._thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._jobs:
                    self._cond.wait()
                job, size = self._jobs.popleft()
                self._busy = True
            try:
                if job is None:
                    return
                if self._error is None:
                    run_transaction(self._db, self._path, _statements(job))
            except BaseException as exc:  # handed to the recording thread by check()
                self._error = exc
            finally:
                job = None  # (a job may hold its writer: let an abandoned one be collected)
                with self._cond:
                    self._busy = False
                    self._queued -= size
                    self._cond.notify_all()


class InlineCommitter:
    """The same interface, committing on the caller's thread (``background=False``)."""

    def __init__(self, db: sqlite_utils.Database, path: Path, max_queued: int = 0) -> None:
        self._db = db
        self._path = path
        self._error: BaseException | None = None

    def submit(self, job: Job, size: int = 0) -> None:
        self.check()
        try:
            run_transaction(self._db, self._path, _statements(job))
        except BaseException as exc:
            self._error = exc
            raise

    def wait(self) -> None:
        self.check()

    def check(self) -> None:
        if self._error is not None:
            raise StoreError(
                f"{self._path}: an earlier commit failed, so this trace cannot continue: "
                f"{self._error}"
            ) from self._error

    def stop(self) -> None:
        pass
