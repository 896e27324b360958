"""Reading a stored trace: in order with bounded memory, by seq, filtered, as exports."""

from __future__ import annotations

import tracemalloc

import pytest

from packr_replay.storage import (
    EventKind,
    FlushPolicy,
    MemoryTrace,
    Outcome,
    Trace,
    TraceStore,
)

from .util import event_fields, write_events


@pytest.fixture
def trace(store: TraceStore) -> Trace:
    """200 events in segments of 16 (so pages and segment boundaries are exercised)."""
    with store.begin_trace(None, flush=FlushPolicy(max_events=16)) as writer:
        write_events(writer, 200)
    return store.trace(writer.trace_id)


class TestStreaming:
    """Events stream in order across segments and pages, with bounded memory."""

    def test_order_and_length(self, trace: Trace) -> None:
        events = list(trace.events())
        assert [e.seq for e in events] == list(range(200))
        assert len(trace) == 200
        assert list(trace) == events

    def test_start(self, trace: Trace) -> None:
        assert [e.seq for e in trace.events(start=37)] == list(range(37, 200))
        assert list(trace.events(start=200)) == []
        with pytest.raises(ValueError, match="start"):
            trace.events(start=-1)

    def test_bounded_memory(self, store: TraceStore) -> None:
        n, size = 20_000, 300  # ~13 MB of events
        with store.begin_trace(None) as writer:
            for i in range(n):
                writer.append(i, EventKind.IMPORT, "i", "f", bytes([i % 256]) * size, b"o" * size)
        trace = store.trace(writer.trace_id)
        tracemalloc.start()
        try:
            count = 0
            for event in trace.events():
                count += 1
                assert event.input is not None
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert count == n
        # A few segments (≤ 1 MiB each) at a time, not the ~13 MB trace.
        assert peak < 6 * 1024 * 1024, peak


class TestRandomAccess:
    """``event(seq)`` finds any event; out-of-range is an IndexError."""

    def test_every_seq(self, trace: Trace) -> None:
        in_order = list(trace.events())
        for seq in (0, 15, 16, 17, 100, 199, 3, 150):
            assert trace.event(seq) == in_order[seq]
            assert trace.event(seq).hash == in_order[seq].hash

    @pytest.mark.parametrize("seq", [-1, 200, 10**9])
    def test_out_of_range(self, trace: Trace, seq: int) -> None:
        with pytest.raises(IndexError):
            trace.event(seq)


class TestFilters:
    """Filters by kind, interface, function and call, combined with AND."""

    def test_each_filter(self, trace: Trace) -> None:
        expected = [event_fields(i) for i in range(200)]

        def seqs(**f: object) -> list[int]:
            return [e.seq for e in trace.events(**f)]  # type: ignore[arg-type]

        assert seqs(kind=EventKind.EXPORT) == [
            i for i, e in enumerate(expected) if e["kind"] is EventKind.EXPORT
        ]
        assert seqs(kind="return") == list(range(4, 200, 5))
        assert seqs(interface="wasi:io/streams") == list(range(1, 200, 5))
        assert seqs(function="clock") == sorted([*range(2, 200, 5), *range(3, 200, 5)])
        assert seqs(call=3) == list(range(10, 15))
        assert seqs(kind="import", function="clock", call=3) == [12, 13]
        assert seqs(interface="nope") == []

    def test_unknown_kind(self, trace: Trace) -> None:
        with pytest.raises(ValueError, match="kind"):
            trace.events(kind="nope")

    def test_exports(self, trace: Trace) -> None:
        exports = trace.exports()
        assert [x.call for x in exports] == list(range(1, 41))
        first = exports[0]
        assert first.function == "run"
        assert (first.start.seq, first.end.seq if first.end else None) == (0, 4)
        assert first.outcome is Outcome.OK

    def test_exports_of_a_cut_trace(self) -> None:
        memory = MemoryTrace()
        write_events(memory, 7)  # the second export never returns
        exports = memory.exports()
        assert len(exports) == 2
        assert exports[1].end is None
        assert exports[1].outcome is None


class TestMemoryParity:
    """MemoryTrace answers every reading question exactly as the store does."""

    def test_same_answers(self, trace: Trace) -> None:
        memory = MemoryTrace()
        write_events(memory, 200)
        for f in ({}, {"kind": "import"}, {"function": "clock", "call": 7}, {"start": 150}):
            assert list(memory.events(**f)) == list(trace.events(**f))  # type: ignore[arg-type]
        assert memory.exports() == trace.exports()
        assert memory.event(42) == trace.event(42)
        assert len(memory) == len(trace)
        with pytest.raises(IndexError):
            memory.event(200)


class TestLiveReading:
    """A reader sees what a writer has flushed, and nothing it has not."""

    def test_flush_makes_events_visible(self, store: TraceStore) -> None:
        writer = store.begin_trace(None, flush=FlushPolicy(max_events=10**6, max_delay=3600))
        write_events(writer, 10)
        trace = store.trace(writer.trace_id)
        assert len(trace) == 0
        writer.flush()
        assert len(trace) == 10
        assert [e.seq for e in trace.events()] == list(range(10))
        write_events(writer, 5, start=10)
        assert len(trace) == 10
        writer.finish()
        assert len(trace) == 15
        assert trace.refresh().event_count == 15
