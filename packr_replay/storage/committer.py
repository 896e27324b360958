"""Committing a writer's segments on a thread of its own.

SQLite releases the GIL while it writes, so a committer thread lets one segment's
INSERT, COMMIT and WAL checkpoint run while the recording thread packs and hashes the
next one. At most ``QUEUE`` segments wait besides the one being written (enough to
ride out a WAL checkpoint's fsyncs), so a writer holds a bounded number of segments in
memory and a guest outrunning the disk is slowed down, never buffered without bound.

A failed commit (the file locked past the busy timeout, disk full) poisons the
committer: later segments cannot be written without a gap, so every later call
re-raises that error and the trace is left as a crashed recorder would leave it
(``incomplete``, with every earlier segment intact).
"""

from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import Any

import sqlite_utils

from ..errors import StoreError
from .sqlite import translate_errors

__all__ = ["Committer", "InlineCommitter", "Statements", "run_transaction"]

Statements = tuple[tuple[str, list[Any]], ...]
QUEUE = 4


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

    def __init__(self, db: sqlite_utils.Database, path: Path) -> None:
        self._db = db
        self._path = path
        self._jobs: queue.Queue[Statements | None] = queue.Queue(maxsize=QUEUE)
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, name=f"packr-replay commit {path.name}", daemon=True
        )
        self._thread.start()

    def submit(self, statements: Statements) -> None:
        """Queue a transaction; blocks while ``QUEUE`` are already waiting."""
        self.check()
        self._jobs.put(statements)

    def wait(self) -> None:
        """Return once every submitted transaction is committed; raise if one failed."""
        self._jobs.join()
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
            self._jobs.put(None)
            self._thread.join()

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                if job is None:
                    return
                if self._error is None:
                    run_transaction(self._db, self._path, job)
            except BaseException as exc:  # handed to the recording thread by check()
                self._error = exc
            finally:
                self._jobs.task_done()


class InlineCommitter:
    """The same interface, committing on the caller's thread (``background=False``)."""

    def __init__(self, db: sqlite_utils.Database, path: Path) -> None:
        self._db = db
        self._path = path
        self._error: BaseException | None = None

    def submit(self, statements: Statements) -> None:
        self.check()
        try:
            run_transaction(self._db, self._path, statements)
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
