"""What goes into a store comes back out exactly: events, trace headers, modules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from packr_replay.storage import (
    TRACE_FORMAT_VERSION,
    Event,
    EventKind,
    FlushPolicy,
    MemoryTrace,
    Outcome,
    TraceInfo,
    TraceStatus,
    TraceStore,
    chain_hash,
    trace_genesis,
)

from .util import MODULE_BYTES, MODULE_TYPES, event_fields, write_events

i64 = st.integers(-(2**63), 2**63 - 1)
opt_bytes = st.none() | st.binary(max_size=300)
opt_text = st.none() | st.text(max_size=40)

event_kwargs = st.fixed_dictionaries(
    {
        "call": i64,
        "kind": st.sampled_from(list(EventKind)),
        "interface": st.text(max_size=30),
        "function": st.text(max_size=30),
        "input": opt_bytes,
        "output": opt_bytes,
        "status": st.none() | i64,
        "outcome": st.sampled_from(list(Outcome)),
        "error_kind": opt_text,
        "error": opt_text,
        "duration_ns": i64,
        "depth": st.integers(0, 2**31),
    }
)


def expected_events(info: TraceInfo, kwargs_list: list[dict[str, Any]]) -> list[Event]:
    """The events the model says these appends produce, hashes included (the chain
    starts from the trace's header)."""
    head = trace_genesis(info)
    out = []
    for seq, kw in enumerate(kwargs_list):
        event = Event(seq=seq, **kw)
        head = chain_hash(head, event)
        out.append(Event(seq=seq, **kw, hash=head))
    return out


def assert_same(actual: list[Event], expected: list[Event]) -> None:
    assert actual == expected
    assert [e.hash for e in actual] == [e.hash for e in expected]


class TestEventRoundTrip:
    """Every field of every event survives writing and reading, hashes included."""

    @settings(
        max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(st.lists(event_kwargs, max_size=12))
    def test_arbitrary_events(self, store: TraceStore, kwargs_list: list[dict[str, Any]]) -> None:
        with store.begin_trace(None) as writer:
            seqs = [writer.append(**kw) for kw in kwargs_list]
        assert seqs == list(range(len(kwargs_list)))
        trace = store.trace(writer.trace_id)
        assert_same(list(trace.events()), expected_events(store.trace(writer.trace_id).info, kwargs_list))
        assert store.verify(writer.trace_id).ok

    def test_none_empty_and_large_blobs(self, store: TraceStore) -> None:
        big = bytes(range(256)) * 12_000  # 3 MB: over a segment's byte threshold
        cases = [
            {"input": None, "output": None},
            {"input": b"", "output": b""},
            {"input": big, "output": None},
            {"input": b"x", "output": big},
        ]
        kwargs_list = [
            {"call": 1, "kind": EventKind.IMPORT, "interface": "i", "function": "f", **c}
            for c in cases
        ]
        with store.begin_trace(None) as writer:
            for kw in kwargs_list:
                writer.append(**kw)
        events = list(store.trace(writer.trace_id).events())
        assert_same(events, expected_events(store.trace(writer.trace_id).info, kwargs_list))
        assert events[0].input is None
        assert events[1].input == b""
        assert events[2].input == big

    def test_enum_members_come_back_as_members(self, store: TraceStore) -> None:
        with store.begin_trace(None) as writer:
            writer.append(0, "import", "i", "f", b"", outcome="trap")  # type: ignore[arg-type]
        event = store.trace(writer.trace_id).event(0)
        assert event.kind is EventKind.IMPORT
        assert event.outcome is Outcome.TRAP

    def test_bytes_likes_are_stored_as_bytes(self, store: TraceStore) -> None:
        with store.begin_trace(None) as writer:
            writer.append(0, EventKind.IMPORT, "i", "f", bytearray(b"ab"), memoryview(b"cd"))
        event = store.trace(writer.trace_id).event(0)
        assert (event.input, event.output) == (b"ab", b"cd")
        assert type(event.input) is bytes

    def test_lazy_values(self, store: TraceStore) -> None:
        from packr_replay.abi import String, encode

        data = encode(String("hi"))
        with store.begin_trace(None) as writer:
            writer.append(0, EventKind.EXPORT, "", "run", data)
        value = store.trace(writer.trace_id).event(0).input_value
        assert value is not None
        assert not value.is_decoded
        assert value.data == data
        assert value == String("hi")

    def test_memory_trace_matches_the_store(self, store: TraceStore) -> None:
        memory = MemoryTrace()
        with store.begin_trace(None) as writer:
            write_events(writer, 50)
        write_events(memory, 50)
        stored = list(store.trace(writer.trace_id).events())
        # Same fields; hashes differ only because the uuids (chain genesis) differ.
        assert stored == list(memory.events())
        rechained = expected_events(memory.info, [event_fields(i) for i in range(50)])
        assert_same(list(memory.events()), rechained)


class TestTraceHeader:
    """Trace rows: every header field, metadata, lookup by id, uuid and label."""

    def test_fields(self, store: TraceStore, module_sha: str) -> None:
        meta = {"fuel": 10**6, "nested": {"list": [1, "two", b"3", None, 4.5, True]}}
        writer = store.begin_trace(module_sha, label="run-1", host="python host", meta=meta)
        write_events(writer, 7)
        info = writer.finish()
        assert info.id == writer.trace_id
        assert info.uuid == writer.uuid
        assert info.status is TraceStatus.COMPLETE
        assert (info.label, info.host, info.module_sha256) == ("run-1", "python host", module_sha)
        assert info.meta == meta
        assert info.event_count == 7
        assert info.head_hash == writer.head
        assert info.format_version == TRACE_FORMAT_VERSION
        assert info.tool_version
        assert info.created_at <= (info.completed_at or "")
        assert store.traces() == [info]

    def test_lookup(self, store: TraceStore) -> None:
        first = store.begin_trace(None, label="same").finish()
        second = store.begin_trace(None, label="same").finish()
        assert store.trace(first.id).info == first
        assert store.trace(first.uuid).info == first
        assert store.trace("same").info == second  # the newest trace with that label
        assert store.trace(str(first.id)).info == first
        assert first.uuid in store
        assert "nope" not in store
        from packr_replay.errors import TraceNotFound

        with pytest.raises(TraceNotFound) as err:
            store.trace("nope")
        assert err.value.trace_id == "nope"

    def test_replay_of(self, store: TraceStore) -> None:
        original = store.begin_trace(None).finish()
        replay = store.begin_trace(None, replay_of=original.id).finish(TraceStatus.DIVERGED)
        assert replay.replay_of == original.id
        assert replay.replay_of_uuid == original.uuid
        assert replay.status is TraceStatus.DIVERGED

    def test_empty_trace(self, store: TraceStore) -> None:
        info = store.begin_trace(None).finish()
        trace = store.trace(info.id)
        assert len(trace) == 0
        assert list(trace.events()) == []
        assert trace.exports() == []
        assert info.head_hash == trace_genesis(info)
        assert store.verify(info.id).ok


class TestModules:
    """Modules are content-addressed, idempotent, and keep their name and types."""

    def test_add_and_read(self, store: TraceStore) -> None:
        import hashlib

        sha = store.add_module(MODULE_BYTES, "guest.wasm", MODULE_TYPES)
        assert sha == hashlib.sha256(MODULE_BYTES).hexdigest()
        assert store.add_module(MODULE_BYTES, "other-name.wasm") == sha
        assert store.module_bytes(sha) == MODULE_BYTES
        (info,) = store.modules()
        assert (info.name, info.size, info.types) == ("guest.wasm", len(MODULE_BYTES), MODULE_TYPES)

    def test_trace_module_bytes(self, store: TraceStore, module_sha: str) -> None:
        with_module = store.begin_trace(module_sha).finish()
        without = store.begin_trace(None).finish()
        assert store.trace(with_module.id).module_bytes() == MODULE_BYTES
        assert store.trace(without.id).module_bytes() is None

    def test_unknown_module(self, store: TraceStore) -> None:
        from packr_replay.errors import StoreError

        with pytest.raises(StoreError, match="no module"):
            store.begin_trace("ab" * 32)
        with pytest.raises(StoreError, match="no module"):
            store.module_bytes("ab" * 32)


class TestPolicyVariants:
    """Background and inline commits store the same bytes."""

    def test_same_content(self, tmp_path: Path) -> None:
        results = []
        for background in (True, False):
            with TraceStore(tmp_path / f"{background}.db", create=True) as store:
                policy = FlushPolicy(max_events=7, background=background)
                with store.begin_trace(None, flush=policy) as writer:
                    write_events(writer, 100)
                results.append(list(store.trace(writer.trace_id).events()))
        assert results[0] == results[1]
