"""A regression corpus checked at scale: ``packr-replay check`` over many traces with
``--jobs 1``, ``--jobs 2`` and a Dask LocalCluster of two worker processes.

The corpus: ``traces`` traces of ``events`` events each (the ``bench`` guest's
``calls(n)``: n typed imports between an export and its return), recorded into
``files`` trace files. Each round checks it three ways back to back, every way
starting its own workers (their start-up is part of what a check costs); the cluster is
started once, before the rounds, and its start-up reported beside them. Besides wall
time, each run reports the coordinator's own CPU time per trace (listing, dispatching,
for Dask bundling each trace) and the workers' replay time per trace, which is what the
1M-trace arithmetic in BENCHMARKS.md is made of. Run::

    python bench/bench_corpus.py                # 1,000 traces x 1,000 events, 3 rounds
    python bench/bench_corpus.py --quick        # 100 traces x 200 events, 1 round
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from packr_replay.abi import S64
from packr_replay.corpus import CheckReport, check
from packr_replay.replay import Recorder
from packr_replay.runtime import Runtime
from packr_replay.runtime.demo import DemoHost, example_guest
from packr_replay.storage import TraceStore


def build(root: Path, traces: int, events: int, files: int) -> float:
    """Record the corpus; seconds it took."""
    t0 = time.perf_counter()
    runtime = Runtime()
    module = runtime.load_module(example_guest("bench"))
    per_file = -(-traces // files)
    made = 0
    for f in range(files):
        with TraceStore(root / f"corpus-{f:03d}.db", create=True) as store:
            sha = store.add_module(module.wasm, "bench", module.metadata_bytes())
            for _ in range(min(per_file, traces - made)):
                writer = store.begin_trace(sha, label=f"t{made}")
                inst = module.instantiate(DemoHost(), interceptor=Recorder(writer))
                inst.call_with_value("calls", S64(events - 2))  # + the export and its return
                inst.close()
                writer.finish()
                made += 1
    return time.perf_counter() - t0


def _timed(root: Path, **kwargs: Any) -> tuple[float, float, CheckReport]:
    cpu, t0 = time.process_time(), time.perf_counter()
    report = check([root], **kwargs)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu
    if not report.ok:
        raise AssertionError(f"the corpus did not reproduce: {report.counts()}")
    return wall, cpu, report


def _summary(xs: list[float]) -> dict[str, float]:
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs)}


def run(traces: int, events: int, rounds: int, files: int = 20) -> dict[str, Any]:
    from distributed import LocalCluster

    ways = ("jobs1", "jobs2", "dask")
    wall: dict[str, list[float]] = {w: [] for w in ways}
    cpu: dict[str, list[float]] = {w: [] for w in ways}
    replay: dict[str, list[float]] = {w: [] for w in ways}
    with tempfile.TemporaryDirectory(prefix="packr-bench-corpus-") as tmp:
        root = Path(tmp)
        build_s = build(root, traces, events, files)
        print(f"corpus: {traces} traces x {events} events in {files} files, "
              f"recorded in {build_s:.1f} s", flush=True)  # fmt: skip
        t0 = time.perf_counter()
        with LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address=":0",
        ) as cluster:
            cluster_s = time.perf_counter() - t0
            for r in range(rounds):
                for way in ways:
                    kwargs: dict[str, Any] = (
                        {"dask": cluster.scheduler_address} if way == "dask"
                        else {"jobs": 1 if way == "jobs1" else 2}
                    )  # fmt: skip
                    w, c, report = _timed(root, **kwargs)
                    wall[way].append(w)
                    cpu[way].append(c)
                    replay[way].append(sum(x.outcome.duration_s for x in report.results))
                    print(f"round {r + 1}/{rounds} {way}: {w:.2f} s, "
                          f"{traces / w:,.0f} traces/s", flush=True)  # fmt: skip
    speedup = [a / b for a, b in zip(wall["jobs1"], wall["jobs2"], strict=True)]
    dask_speedup = [a / b for a, b in zip(wall["jobs1"], wall["dask"], strict=True)]
    return {
        "traces": traces,
        "events": events,
        "files": files,
        "rounds": rounds,
        "build_s": build_s,
        "cluster_start_s": cluster_s,
        "seconds": wall,
        "coordinator_cpu_s": cpu,
        "worker_replay_s": replay,
        "traces_per_s": {w: _summary([traces / x for x in wall[w]]) for w in ways},
        "speedup_2_jobs": _summary(speedup),
        "speedup_dask": _summary(dask_speedup),
        "per_trace_s": {w: statistics.median(wall[w]) / traces for w in ways},
        "coordinator_cpu_per_trace_s": {w: statistics.median(cpu[w]) / traces for w in ways},
        "worker_replay_per_trace_s": {w: statistics.median(replay[w]) / traces for w in ways},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 traces x 200 events, 1 round")
    parser.add_argument("--traces", type=int, default=1000)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.quick:
        args.traces, args.events, args.rounds = 100, 200, 1
    print(json.dumps(run(args.traces, args.events, args.rounds), indent=1))


if __name__ == "__main__":
    main()
