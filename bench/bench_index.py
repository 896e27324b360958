"""What filling the per-event index would cost if the recorder did it — side by side.

The recorder's budget is ≤ 1.05x a live run. This measures, on the ``bench`` example
guest (``calls(n)``: n typed import calls), in each round back to back:

* ``live``    the run with the demo host, no interceptor;
* ``record``  the same run recorded into a trace store (segments only, as shipped);
* ``index``   ``index_trace`` on that trace afterwards: one ``event_index`` row per
  event, with values rendered as text (what recording with the index would add);
* ``rows``    the same rows without the text columns (the SQLite cost alone).

and reports ``record/live``, ``(record + index)/live`` and ``index/record`` (what
indexing at record time would add to the recorder's own cost). Run::

    python bench/bench_index.py            # n=50k, 5 rounds
    python bench/bench_index.py --quick    # n=10k, 3 rounds
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from packr_replay.abi import S64
from packr_replay.replay import Recorder
from packr_replay.runtime import Runtime
from packr_replay.runtime.demo import DemoHost, example_guest
from packr_replay.storage import TraceStore, index_trace
from packr_replay.storage import index as index_module

FUEL = 10**13


def run_live(runtime: Runtime, n: int) -> float:
    inst = runtime.load_module(example_guest("bench")).instantiate(DemoHost())
    t = time.perf_counter()
    inst.call_with_value("calls", S64(n))
    return time.perf_counter() - t


def run_record(runtime: Runtime, n: int, db: Path) -> float:
    module = runtime.load_module(example_guest("bench"))
    with TraceStore(db, create=True) as store:
        sha = store.add_module(module.wasm, "bench")
        writer = store.begin_trace(sha, label="bench", meta={"fuel": FUEL})
        inst = module.instantiate(DemoHost(), interceptor=Recorder(writer))
        t = time.perf_counter()
        inst.call_with_value("calls", S64(n))
        writer.finish()
        return time.perf_counter() - t


def run_index(db: Path, *, text: bool) -> float:
    original = index_module.value_text
    if not text:
        index_module.value_text = lambda data: None
    try:
        with TraceStore(db) as store:
            t = time.perf_counter()
            index_trace(store, "bench", rebuild=True)
            return time.perf_counter() - t
    finally:
        index_module.value_text = original


def run(n: int = 50_000, rounds: int = 5) -> dict[str, Any]:
    """``rounds`` back-to-back rounds of live, record, rows and index; per-round ratios."""
    runtime = Runtime(fuel=FUEL)
    live, rec, idx, rows = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            db = Path(tmp) / f"r{r}.db"
            live.append(run_live(runtime, n))
            rec.append(run_record(runtime, n, db))
            rows.append(run_index(db, text=False))
            idx.append(run_index(db, text=True))
    per_round = {
        "record_vs_live": [b / a for a, b in zip(live, rec, strict=True)],
        "record_rows_vs_live": [(b + c) / a for a, b, c in zip(live, rec, rows, strict=True)],
        "record_index_vs_live": [(b + c) / a for a, b, c in zip(live, rec, idx, strict=True)],
        "index_vs_record": [c / b for b, c in zip(rec, idx, strict=True)],
    }
    med = statistics.median
    return {
        "calls": n,
        "events": n + 2,
        "rounds": rounds,
        "seconds": {"live": live, "record": rec, "rows": rows, "index": idx},
        **{k: {"median": med(v), "min": min(v), "max": max(v)} for k, v in per_round.items()},
        "index_us_per_event": med(idx) / (n + 2) * 1e6,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("-n", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args(argv)
    n = args.n or (10_000 if args.quick else 50_000)
    rounds = args.rounds or (3 if args.quick else 5)
    r = run(n, rounds)
    med = statistics.median
    s = r["seconds"]
    live, rec, rows, idx = med(s["live"]), med(s["record"]), med(s["rows"]), med(s["index"])
    print(f"n={n} calls ({r['events']} events), {rounds} rounds, medians:")
    print(f"  live    {live * 1e3:9.1f} ms")
    print(f"  record  {rec * 1e3:9.1f} ms   record/live          {r['record_vs_live']['median']:6.2f}x")
    print(
        f"  rows    {rows * 1e3:9.1f} ms   (record+rows)/live   {r['record_rows_vs_live']['median']:6.2f}x"
    )
    print(
        f"  index   {idx * 1e3:9.1f} ms   (record+index)/live  {r['record_index_vs_live']['median']:6.2f}x"
    )
    print(
        f"  index/record {r['index_vs_record']['median']:.2f}x; per event {r['index_us_per_event']:.2f} us"
    )


if __name__ == "__main__":
    main()
