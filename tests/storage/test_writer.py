"""The writer: seq and chain assignment, batching thresholds, durability, lifecycle."""

from __future__ import annotations

import gc
import sqlite3
import time
import tracemalloc
from pathlib import Path

import pytest

from packr_replay.errors import StoreError
from packr_replay.storage import (
    EventKind,
    FlushPolicy,
    Outcome,
    TraceStatus,
    TraceStore,
    chain_hash,
    trace_genesis,
)

from .util import raw, write_events

INLINE = {"background": False, "max_delay": 3600.0}


def segment_counts(path: Path, trace_id: int) -> list[int]:
    return [
        r[0]
        for r in raw(
            path, "SELECT count FROM segments WHERE trace_id = ? ORDER BY first_seq", (trace_id,)
        )
    ]


class TestThresholds:
    """Events are committed in batches: by count, by bytes, by time, and on demand."""

    def test_by_count(self, store: TraceStore) -> None:
        writer = store.begin_trace(None, flush=FlushPolicy(max_events=10, **INLINE))
        write_events(writer, 25)
        assert segment_counts(store.path, writer.trace_id) == [10, 10]
        assert writer.pending == 5
        writer.finish()
        assert segment_counts(store.path, writer.trace_id) == [10, 10, 5]

    def test_by_bytes(self, store: TraceStore) -> None:
        writer = store.begin_trace(None, flush=FlushPolicy(max_bytes=4096, **INLINE))
        for i in range(20):
            writer.append(1, EventKind.IMPORT, "i", "f", bytes(1000), None, duration_ns=i)
        counts = segment_counts(store.path, writer.trace_id)
        assert counts
        assert set(counts) == {4}  # ~1040 bytes per record: the 4th crosses 4096
        writer.finish()

    def test_by_time(self, store: TraceStore) -> None:
        policy = FlushPolicy(max_events=10**6, max_delay=0.05, background=False)
        writer = store.begin_trace(None, flush=policy)
        writer.append(1, EventKind.IMPORT, "i", "f", b"")
        assert segment_counts(store.path, writer.trace_id) == []
        time.sleep(0.08)
        writer.append(1, EventKind.IMPORT, "i", "f", b"")  # past the deadline: both go
        assert segment_counts(store.path, writer.trace_id) == [2]
        writer.finish()

    @pytest.mark.parametrize("background", [True, False])
    def test_flush_is_durable(self, store: TraceStore, background: bool) -> None:
        policy = FlushPolicy(max_events=10**6, max_delay=3600, background=background)
        writer = store.begin_trace(None, flush=policy)
        write_events(writer, 12)
        writer.flush()
        with TraceStore(store.path, readonly=True) as other:
            assert len(other.trace(writer.trace_id)) == 12
            assert other.trace(writer.trace_id).info.event_count == 12
        writer.flush()  # nothing pending: no empty segment
        assert segment_counts(store.path, writer.trace_id) == [12]
        writer.finish()

    def test_thresholds_validated(self) -> None:
        with pytest.raises(ValueError, match="positive"):
            FlushPolicy(max_events=0)


class TestChainAssignment:
    """The writer assigns consecutive seqs and the model's hash chain."""

    def test_seq_and_hash(self, store: TraceStore) -> None:
        writer = store.begin_trace(None)
        assert writer.head == trace_genesis(store.trace(writer.trace_id).info)
        assert [writer.append(1, EventKind.IMPORT, "i", "f", bytes([n])) for n in range(3)] == [
            0,
            1,
            2,
        ]
        assert len(writer) == 3
        writer.finish()
        head = trace_genesis(store.trace(writer.trace_id).info)
        for event in store.trace(writer.trace_id).events():
            head = chain_hash(head, event)
            assert event.hash == head
        assert writer.head == head

    @pytest.mark.parametrize(
        ("kwargs", "error"),
        [
            ({"kind": "nope"}, ValueError),
            ({"outcome": "nope"}, ValueError),
            ({"interface": None}, TypeError),
            ({"function": b"f"}, TypeError),
            ({"input": "text"}, TypeError),
            ({"output": 3}, TypeError),
            ({"call": 1.5}, TypeError),
            ({"call": True}, TypeError),
            ({"status": "0"}, TypeError),
            ({"duration_ns": None}, TypeError),
            ({"error": 5}, TypeError),
            ({"error_kind": b"k"}, TypeError),
        ],
    )
    def test_bad_fields_rejected(
        self, store: TraceStore, kwargs: dict[str, object], error: type
    ) -> None:
        fields: dict[str, object] = {"call": 1, "kind": EventKind.IMPORT, "interface": "i",
                                     "function": "f", "input": b""}  # fmt: skip
        fields.update(kwargs)
        with store.begin_trace(None) as writer:
            with pytest.raises(error):
                writer.append(**fields)  # type: ignore[arg-type]
            assert writer.append(1, EventKind.IMPORT, "i", "f", b"") == 0  # no seq was used
        assert store.verify(writer.trace_id).ok

    def test_subclasses_are_normalised(self, store: TraceStore) -> None:
        import enum

        class Num(enum.IntEnum):
            ONE = 1

        class Name(str):
            pass

        with store.begin_trace(None) as writer:
            writer.append(Num.ONE, EventKind.IMPORT, Name("i"), "f", b"", status=Num.ONE)
        event = store.trace(writer.trace_id).event(0)
        assert type(event.call) is int
        assert type(event.interface) is str
        assert store.verify(writer.trace_id).ok


class TestLifecycle:
    """finish seals, close abandons, the context manager records failures."""

    def test_finish_seals_once(self, store: TraceStore) -> None:
        writer = store.begin_trace(None)
        write_events(writer, 3)
        info = writer.finish(TraceStatus.FAILED)
        assert info.status is TraceStatus.FAILED
        assert writer.finish() is info
        assert writer.closed
        with pytest.raises(StoreError, match="closed"):
            writer.append(1, EventKind.IMPORT, "i", "f", b"")

    def test_cannot_finish_as_recording(self, store: TraceStore) -> None:
        writer = store.begin_trace(None)
        with pytest.raises(ValueError, match="cannot finish"):
            writer.finish(TraceStatus.RECORDING)
        writer.finish()

    def test_context_manager(self, store: TraceStore) -> None:
        with store.begin_trace(None) as ok:
            write_events(ok, 2)
        assert store.trace(ok.trace_id).info.status is TraceStatus.COMPLETE
        bad = store.begin_trace(None)

        def explode() -> None:
            with bad:
                write_events(bad, 2)
                raise RuntimeError("guest exploded")

        with pytest.raises(RuntimeError):
            explode()
        info = store.trace(bad.trace_id).info
        assert info.status is TraceStatus.FAILED
        assert info.event_count == 2

    def test_live_then_closed(self, store: TraceStore) -> None:
        writer = store.begin_trace(None)
        write_events(writer, 4)
        assert store.trace(writer.trace_id).info.status is TraceStatus.RECORDING
        writer.close()
        info = store.trace(writer.trace_id).info
        assert info.status is TraceStatus.INCOMPLETE  # flushed, never sealed
        assert info.event_count == 4
        assert info.head_hash is None
        assert store.verify(writer.trace_id).ok

    def test_abandoned_writer_is_incomplete(self, store: TraceStore) -> None:
        writer = store.begin_trace(None)
        trace_id = writer.trace_id
        write_events(writer, 3)
        writer.flush()
        del writer
        gc.collect()
        assert store.trace(trace_id).info.status is TraceStatus.INCOMPLETE

    def test_readonly_store_cannot_record(self, store: TraceStore) -> None:
        with (
            TraceStore(store.path, readonly=True) as ro,
            pytest.raises(StoreError, match="read-only"),
        ):
            ro.begin_trace(None)


class TestCommitFailure:
    """A commit that cannot happen surfaces as StoreError and stops the trace cleanly."""

    @pytest.mark.parametrize("background", [True, False])
    def test_locked_file(self, store_path: Path, background: bool) -> None:
        with TraceStore(store_path, create=True, busy_timeout=0.05) as store:
            policy = FlushPolicy(max_events=10**6, max_delay=3600, background=background)
            writer = store.begin_trace(None, flush=policy)
            write_events(writer, 3)
            writer.flush()
            blocker = sqlite3.connect(store_path, isolation_level=None)
            blocker.execute("BEGIN IMMEDIATE")
            try:
                write_events(writer, 3, start=3)
                with pytest.raises(StoreError, match="locked"):
                    writer.flush()
            finally:
                blocker.execute("ROLLBACK")
                blocker.close()
            with pytest.raises(StoreError, match="earlier commit failed"):
                writer.flush()
            with pytest.raises(StoreError):
                writer.finish()
            assert writer.closed
            (info,) = store.traces()
            assert info.status is TraceStatus.INCOMPLETE
            assert info.event_count == 3
            assert store.verify(info.id).ok


class TestWriterMemory:
    """The writer holds a bounded amount of data however long the trace."""

    def test_bounded(self, store: TraceStore) -> None:
        payload = b"p" * 500
        segment = 256 * 1024
        policy = FlushPolicy(max_bytes=segment, max_queued=4 * segment)
        with store.begin_trace(None, flush=policy) as writer:
            tracemalloc.start()
            try:
                for i in range(10_000):  # ~10.5 MB of records
                    writer.append(
                        1,
                        EventKind.IMPORT,
                        "i",
                        "f",
                        payload,
                        payload,
                        0,
                        Outcome.OK,
                        None,
                        None,
                        i,
                        0,
                    )
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
        # The segment being filled and at most max_queued bytes waiting for the disk.
        assert peak < 8 * segment, peak
        assert len(store.trace(writer.trace_id)) == 10_000


class TestExtend:
    """Batched appends: the recorder's path."""

    def test_a_refused_row_leaves_the_writer_unchanged(self, store: TraceStore) -> None:
        w = store.begin_trace(None)
        good = (1, "import", "i", "f", b"in", b"out", 0, "ok", None, None, 5, 1)
        assert w.extend([good, good]) == 0
        with pytest.raises(TypeError):
            w.extend([good, (1, "import", "i", "f", 42, b"out", 0, "ok", None, None, 5, 1)])
        assert w.extend([good]) == 2
        info = w.finish()
        assert info.event_count == 3
        assert store.verify(info.id).ok

    def test_extend_equals_append(self, store: TraceStore) -> None:
        rows = [(1, "import", "i", "f", bytes([k]), None, -1, "import_error", "Decode", "x", k, 0)
                for k in range(5)]
        a = store.begin_trace(None)
        a.extend(rows)
        b = store.begin_trace(None)
        for r in rows:
            b.append(*r)
        ia, ib = a.finish(), b.finish()
        fa = [e.chain_fields() for e in store.trace(ia.id).events()]
        fb = [e.chain_fields() for e in store.trace(ib.id).events()]
        assert fa == fb
