"""Deleting traces: rows, segments, index and orphaned modules go; live traces stay."""

from __future__ import annotations

from pathlib import Path

import pytest

from packr_replay.errors import StoreError
from packr_replay.storage import TraceStore, delete_traces, index_all

from .util import MODULE_BYTES, raw, write_events


class TestDelete:
    """delete_traces removes everything a trace owns and nothing else."""

    def test_deletes_a_trace_and_what_it_owns(self, store: TraceStore) -> None:
        sha = store.add_module(MODULE_BYTES, "guest.wasm")
        other = store.add_module(MODULE_BYTES + b"!", "other.wasm")
        for label, module in (("a", sha), ("a", sha), ("b", other)):
            with store.begin_trace(module, label=label) as writer:
                write_events(writer, 30)
        index_all(store)
        assert delete_traces(store, [3, 1]) == 2
        assert [t.id for t in store.traces()] == [2]
        assert raw(store.path, "SELECT DISTINCT trace_id FROM segments") == [(2,)]
        assert raw(store.path, "SELECT DISTINCT trace_id FROM event_index") == [(2,)]
        assert [m.name for m in store.modules()] == ["guest.wasm"]
        assert store.verify(2).ok

    def test_a_label_means_its_newest_trace(self, store: TraceStore) -> None:
        for _ in range(2):
            with store.begin_trace(None, label="x") as writer:
                write_events(writer, 3)
        delete_traces(store, ["x"], vacuum=True)
        assert [t.id for t in store.traces()] == [1]
        assert delete_traces(store, []) == 0

    def test_refuses_a_live_trace_and_read_only_stores(self, store_path: Path) -> None:
        with TraceStore(store_path, create=True) as store:
            writer = store.begin_trace(None, label="live")
            with pytest.raises(StoreError, match="still being recorded"):
                delete_traces(store, ["live"])
            writer.finish()
        with (
            TraceStore(store_path, readonly=True) as store,
            pytest.raises(StoreError, match="read-only"),
        ):
            delete_traces(store, ["live"])

    def test_replays_lose_the_row_link_only(self, store: TraceStore) -> None:
        with store.begin_trace(None, label="orig") as writer:
            write_events(writer, 3)
        with store.begin_trace(None, label="replay", replay_of=1) as writer:
            write_events(writer, 3)
        delete_traces(store, ["orig"])
        info = store.trace("replay").info
        assert info.replay_of is None
        assert info.replay_of_uuid is not None
