"""Trace files work wherever they are copied: a closed store is one self-contained file,
and a file that cannot be written (a read-only mount, a CI artifact, an attachment in a
read-only checkout) still reads."""

from __future__ import annotations

import shutil
import sqlite3
import sys
import threading
import time
from contextlib import closing
from pathlib import Path

from packr_replay import api
from packr_replay.abi import String
from packr_replay.runtime.demo import example_guest
from packr_replay.storage import TraceStore, index_trace
from tests.readonly import PYTHON_SNIPPET, read_only_dir
from tests.replay.conftest import demo_host

from .util import MODULE_BYTES, write_events


def companions(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(f"{path.name}-"))


def record(path: Path, label: str = "t") -> int:
    return api.record_run(
        example_guest("clock_actor"), [("run", String("Ada"))], host=demo_host(1),
        store=path, label=label,
    ).trace_id  # fmt: skip


class TestOneFile:
    """No -wal or -shm is left beside a closed store."""

    def test_after_recording(self, tmp_path: Path) -> None:
        path = tmp_path / "t.db"
        record(path)
        assert companions(path) == []

    def test_after_a_read_only_open(self, tmp_path: Path) -> None:
        path = tmp_path / "t.db"
        record(path)
        with TraceStore(path, readonly=True) as store:
            assert [i.status for i in store.traces()] == ["complete"]
            list(store.trace(1).events())
        assert companions(path) == []

    def test_while_a_reader_stays_open_the_file_alone_holds_the_finished_trace(
        self, tmp_path: Path
    ) -> None:
        """A finished trace is checkpointed into the file even when another connection
        keeps the WAL alive, so copying the .db alone copies the trace."""
        path = tmp_path / "t.db"
        record(path, "first")
        with TraceStore(path, readonly=True) as reader:
            reader.traces()
            record(path, "second")
            copy = tmp_path / "copy.db"
            shutil.copy(path, copy)  # without its -wal
            assert companions(path)  # the reader keeps them while it is open
        with TraceStore(copy, readonly=True) as store:
            assert [i.label for i in store.traces()] == ["first", "second"]
            assert store.verify("second").ok

    def test_a_reader_leaves_a_live_writer_alone(self, store_path: Path) -> None:
        """Tidying up after a read never disturbs a writer still recording."""
        with TraceStore(store_path, create=True) as store:
            sha = store.add_module(MODULE_BYTES, "m")
            writer = store.begin_trace(sha)
            write_events(writer, 10)
            writer.flush()
            with TraceStore(store_path, readonly=True) as reader:
                assert len(reader.trace(writer.trace_id)) == 10
            write_events(writer, 10, start=10)
            info = writer.finish()
        assert info.event_count == 20
        assert companions(store_path) == []


class TestReadOnlyStorage:
    """Reads of a file where nothing can be written (issue: "unable to open database
    file" on every read)."""

    def test_cli_reads(self, tmp_path: Path) -> None:
        with read_only_dir(tmp_path) as ro:
            record(ro.source / "t.db", "first")
            record(ro.source / "t.db", "second")
            exe = str(Path(sys.executable).parent / "packr-replay")
            db = ro.path / "t.db"
            for argv, expect in (
                (["play", db], "reproduced"),
                (["play", f"{db}#first"], "reproduced"),
                (["show", db], "2 traces in"),
                (["show", f"{db}#1", "2"], "event #2 of trace 1"),
                (["info", db], "complete"),
                (["verify", db], "hash chain intact"),
                (["diff", f"{db}#1", f"{db}#2"], "a: trace 1"),
                (["export", f"{db}#1", "-o", tmp_path / "out.stream"], ""),
                (["sql", db, "select count(*) from traces"], "2"),
            ):
                done = ro.run([exe, *argv])
                assert done.returncode in (0, 1), (ro.how, argv, done.stderr)
                assert "unable to open" not in done.stderr
                assert expect in done.stdout, (argv, done.stdout, done.stderr)
            written = ro.run([exe, "play", db, "--save"])
            assert written.returncode == 2
            assert "packr-replay: error:" in written.stderr
            assert companions(ro.source / "t.db") == []

    def test_library_reads(self, tmp_path: Path) -> None:
        with read_only_dir(tmp_path) as ro:
            record(ro.source / "t.db")
            code = (
                "from packr_replay import api\n"
                "from packr_replay.storage import TraceStore\n"
                f"path = {str(ro.path / 't.db')!r}\n"
                "with TraceStore(path, readonly=True) as store:\n"
                "    assert store.verify(1).ok\n"
                "    assert len(list(store.trace(1).events())) == 7\n"
                "assert api.replay(path).reproduced\n"
                "print('read ok')\n"
            )
            done = ro.run([sys.executable, "-c", PYTHON_SNIPPET, code])
            assert done.returncode == 0, done.stderr
            assert "read ok" in done.stdout

    def test_a_file_with_changes_still_in_its_wal_says_so(self, tmp_path: Path) -> None:
        """Copied away mid-recording with its -wal but not its -shm: immutable reading
        would miss the WAL's events, so it is refused with the reason."""
        with read_only_dir(tmp_path) as ro:
            path = ro.source / "t.db"
            record(path, "first")
            keep = sqlite3.connect(path)  # holds the WAL open while the second is written
            keep.execute("PRAGMA wal_autocheckpoint=0")
            try:
                keep.execute("SELECT 1 FROM traces").fetchall()
                with closing(sqlite3.connect(path)) as conn:
                    conn.execute("PRAGMA wal_autocheckpoint=0")
                    conn.execute("UPDATE traces SET label = 'changed'")
                    conn.commit()
                wal = Path(f"{path}-wal")
                assert wal.stat().st_size > 0
                saved = wal.read_bytes()
            finally:
                keep.close()
            wal.write_bytes(saved)  # as a copy taken mid-write would have it
            Path(f"{path}-shm").unlink(missing_ok=True)
            exe = str(Path(sys.executable).parent / "packr-replay")
            done = ro.run([exe, "show", ro.path / "t.db"])
            assert done.returncode == 2
            assert "t.db-wal" in done.stderr, done.stderr
            assert "written" in done.stderr


class TestIndexWaits:
    """``index`` waits for the write lock like every other writer."""

    def test_index_while_a_recorder_commits(self, store_path: Path) -> None:
        with TraceStore(store_path, create=True) as store:
            sha = store.add_module(MODULE_BYTES, "m")
            with store.begin_trace(sha) as writer:
                write_events(writer, 20_000)
        stop = threading.Event()
        errors: list[BaseException] = []

        def recorder() -> None:
            try:
                with TraceStore(store_path) as other, other.begin_trace(sha) as busy:
                    i = 0
                    while not stop.is_set():
                        write_events(busy, 50, start=i)
                        busy.flush()  # a commit every few ms
                        i += 50
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=recorder)
        thread.start()
        try:
            time.sleep(0.05)
            with TraceStore(store_path) as store:
                written = index_trace(store, 1, progress=lambda n: time.sleep(0.01))
        finally:
            stop.set()
            thread.join()
        assert written == 20_000
        assert errors == []

    def test_index_waits_for_a_held_lock(self, store_path: Path) -> None:
        with TraceStore(store_path, create=True) as store:
            sha = store.add_module(MODULE_BYTES, "m")
            with store.begin_trace(sha) as writer:
                write_events(writer, 100)
        holder = sqlite3.connect(store_path, isolation_level=None, check_same_thread=False)
        released: list[float] = []

        def release() -> None:
            released.append(time.monotonic())
            holder.execute("COMMIT")

        timer = threading.Timer(0.3, release)
        try:
            with TraceStore(store_path, busy_timeout=10) as store:
                # The lock is taken once the store is open, so only the index waits for it;
                # it must end after the lock was let go (timed from the release itself: a
                # start time a busy machine delays past the release made this flaky).
                holder.execute("BEGIN IMMEDIATE")
                timer.start()
                assert index_trace(store, 1) == 100
                done = time.monotonic()
            assert released
            assert done >= released[0]
        finally:
            if timer.is_alive():
                timer.join()
            holder.close()


def test_writing_to_read_only_storage_is_one_clear_error(tmp_path: Path) -> None:
    with read_only_dir(tmp_path) as ro:
        record(ro.source / "t.db")
        code = (
            "from packr_replay.storage import TraceStore\n"
            "from packr_replay.errors import StoreError\n"
            "try:\n"
            f"    TraceStore({str(ro.path / 't.db')!r})\n"
            "except StoreError as exc:\n"
            "    print('refused:', exc)\n"
        )
        done = ro.run([sys.executable, "-c", PYTHON_SNIPPET, code])
        assert done.returncode == 0, done.stderr
        assert "refused:" in done.stdout
        assert "read-only" in done.stdout, done.stdout
