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
        index_module.value_text = lambda data: None  # type: ignore[assignment]
    try:
        with TraceStore(db) as store:
            t = time.perf_counter()
            index_trace(store, "bench", rebuild=True)
            return time.perf_counter() - t
    finally:
        index_module.value_text = original


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("-n", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args()
    n = args.n or (10_000 if args.quick else 50_000)
    rounds = args.rounds or (3 if args.quick else 5)
    runtime = Runtime(fuel=FUEL)
    live, rec, idx, rows = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            db = Path(tmp) / f"r{r}.db"
            live.append(run_live(runtime, n))
            rec.append(run_record(runtime, n, db))
            rows.append(run_index(db, text=False))
            idx.append(run_index(db, text=True))
    med = statistics.median
    events = 2 * n + 2
    print(f"n={n} calls ({events} events), {rounds} rounds, medians:")
    print(f"  live    {med(live) * 1e3:9.1f} ms")
    print(f"  record  {med(rec) * 1e3:9.1f} ms   record/live          {med(rec) / med(live):6.2f}x")
    print(
        f"  rows    {med(rows) * 1e3:9.1f} ms   (record+rows)/live   {(med(rec) + med(rows)) / med(live):6.2f}x"
    )
    print(
        f"  index   {med(idx) * 1e3:9.1f} ms   (record+index)/live  {(med(rec) + med(idx)) / med(live):6.2f}x"
    )
    print(f"  index/record {med(idx) / med(rec):.2f}x; per event {med(idx) / events * 1e6:.2f} us")


if __name__ == "__main__":
    main()
