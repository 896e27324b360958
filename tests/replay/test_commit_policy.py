"""When a recording commits: by size and time, and at the end, never per export call
(a commit per export made a guest of short export calls record at ~6x live)."""

from __future__ import annotations

import gc
import time
import tracemalloc
from pathlib import Path
from typing import Any

from packr_replay import api
from packr_replay.abi import S64
from packr_replay.replay import Recorder
from packr_replay.runtime import Runtime
from packr_replay.runtime.demo import DemoHost, example_guest
from packr_replay.storage import FlushPolicy, TraceStatus, TraceStore


def bench() -> Any:
    return Runtime().load_module(example_guest("bench"))


class TestCommits:
    """Segments written for a run of many short export calls."""

    def test_not_one_commit_per_export_call(self, tmp_path: Path) -> None:
        inserts: list[str] = []

        def tracer(sql: str, params: Any) -> None:
            if sql.startswith("INSERT INTO segments"):
                inserts.append(sql)

        module = bench()
        path = tmp_path / "t.db"
        with TraceStore(path, create=True, tracer=tracer) as store:
            writer = store.begin_trace(store.add_module(module.wasm, "bench"))
            inst = module.instantiate(DemoHost(), interceptor=Recorder(writer))
            for _ in range(500):
                inst.call_with_value("calls", S64(1))
            info = writer.finish()
        assert info.event_count == 1500
        # By size (1,024 events) and time (100 ms): a handful, not 500.
        assert len(inserts) <= 1500 // 1024 + 1 + 20, len(inserts)

    def test_time_bounds_what_is_not_yet_committed(self, tmp_path: Path) -> None:
        """Events become durable within about max_delay of recording, not only at the end."""
        module = bench()
        path = tmp_path / "t.db"
        with TraceStore(path, create=True) as store:
            writer = store.begin_trace(
                store.add_module(module.wasm, "bench"), flush=FlushPolicy(max_delay=0.05)
            )
            inst = module.instantiate(
                DemoHost(), interceptor=Recorder(writer, max_delay=0.05)
            )
            inst.call_with_value("calls", S64(1))
            time.sleep(0.1)
            inst.call_with_value("calls", S64(1))  # the first call's events go out now
            deadline = time.monotonic() + 5
            with TraceStore(path, readonly=True) as reader:
                trace = reader.trace(writer.trace_id)
                while len(trace) < 3 and time.monotonic() < deadline:
                    time.sleep(0.01)
                assert len(trace) >= 3
            writer.finish()

    def test_a_closed_writer_commits_everything(self, tmp_path: Path) -> None:
        module = bench()
        path = tmp_path / "t.db"
        with TraceStore(path, create=True) as store:
            writer = store.begin_trace(store.add_module(module.wasm, "bench"))
            inst = module.instantiate(DemoHost(), interceptor=Recorder(writer))
            for _ in range(10):
                inst.call_with_value("calls", S64(1))
            writer.close()  # without sealing: reads incomplete, nothing lost
            (info,) = store.traces()
            assert info.status is TraceStatus.INCOMPLETE
            assert len(store.trace(info.id)) == 30


class TestMemory:
    """A long recording does not keep a copy of every call."""

    def test_record_run_without_results(self, tmp_path: Path) -> None:
        seen = []
        result = api.record_run(
            bench(), (("calls", S64(1)) for _ in range(50)), host=DemoHost(),
            store=tmp_path / "t.db", keep_results=False, on_result=seen.append,
        )  # fmt: skip
        assert result.results == []
        assert len(seen) == 50
        assert result.calls == 50
        assert result.events == 150

    def test_memory_is_flat_during_a_long_recording(self, tmp_path: Path) -> None:
        """Today's recording keeps nothing per call (it grew ~1 KB a call)."""
        samples: dict[int, int] = {}
        count = 0

        def sample(_: api.CallResult) -> None:
            nonlocal count
            count += 1
            if count in (500, 2500):
                gc.collect()
                samples[count] = tracemalloc.get_traced_memory()[0]

        tracemalloc.start()
        try:
            api.record_run(
                bench(), (("calls", S64(1)) for _ in range(2500)), host=DemoHost(),
                store=tmp_path / "t.db", keep_results=False, on_result=sample,
            )  # fmt: skip
        finally:
            tracemalloc.stop()
        per_call = (samples[2500] - samples[500]) / 2000
        assert per_call < 64, f"{per_call:.0f} bytes a call"
