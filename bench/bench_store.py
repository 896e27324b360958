"""Trace-store write throughput and size, side by side with a plain-SQLite baseline.

    python bench/bench_store.py [--events 200000] [--payload 32] [--repeat 5] [--dir /tmp]

Variants, each run ``--repeat`` times interleaved (best and median reported):

* ``writer``          TraceWriter.extend in batches of 512 freshly built rows + finish,
                      default FlushPolicy (commits on the writing thread): the
                      Recorder's path (it batches 512 events per extend)
* ``writer append``   TraceWriter.append, one call per event (the single-event API)
* ``writer background`` ``writer`` with ``FlushPolicy(background=True)`` (a committer thread)
* ``chain only``      packing + SHA-256 chaining the same events, no storage (the floor)
* ``baseline``        plain ``executemany`` of the same events as rows of a 14-column
                      table (no hashing), as many rows per transaction as the writer
                      batches (FlushPolicy.max_events), same WAL settings

Sizes are file bytes per event after the writer closes, and the overhead over the
payload (input + output bytes). Ratios are against ``baseline``; absolute rates only
mean something next to them, on the same machine, at the same time.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from hashlib import sha256
from pathlib import Path
from typing import Any

import msgpack

from packr_replay.storage import EventKind, FlushPolicy, Outcome, TraceStore, chain_genesis

INTERFACE = "wasi:io/streams"
RECORDER_BATCH = 512  # Recorder's default batch
FUNCTION = "blocking-read"


def run_writer(path: Path, n: int, inp: bytes, out: bytes, background: bool) -> None:
    with TraceStore(path, create=True) as store:
        writer = store.begin_trace(None, flush=FlushPolicy(background=background))
        append = writer.append
        imp, ok = EventKind.IMPORT, Outcome.OK
        for _ in range(n):
            append(1, imp, INTERFACE, FUNCTION, inp, out, 0, ok, None, None, 1500, 0)
        writer.finish()


def run_writer_batches(path: Path, n: int, inp: bytes, out: bytes, background: bool = False) -> None:
    with TraceStore(path, create=True) as store:
        writer = store.begin_trace(None, flush=FlushPolicy(background=background))
        extend = writer.extend
        imp, ok = str(EventKind.IMPORT), str(Outcome.OK)
        for start in range(0, n, RECORDER_BATCH):
            extend([(1, imp, INTERFACE, FUNCTION, inp, out, 0, ok, None, None, 1500 + i, 0)
                    for i in range(min(RECORDER_BATCH, n - start))])  # fmt: skip
        writer.finish()


def run_chain_only(path: Path, n: int, inp: bytes, out: bytes) -> None:
    pack = msgpack.Packer(use_bin_type=True).pack
    head = chain_genesis("bench")
    buf = bytearray()
    for seq in range(n):
        packed = pack(
            [seq, 1, "import", INTERFACE, FUNCTION, inp, out, 0, "ok", None, None, 1500, 0]
        )
        head = sha256(head + packed).digest()
        buf += packed
        buf += head
        if len(buf) > 1 << 20:
            buf.clear()


def run_baseline(path: Path, n: int, inp: bytes, out: bytes) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(
        "CREATE TABLE events (trace_id INTEGER, seq INTEGER, call INTEGER, kind TEXT, "
        "interface TEXT, function TEXT, input BLOB, output BLOB, status INTEGER, outcome TEXT, "
        "error_kind TEXT, error TEXT, duration_ns INTEGER, depth INTEGER, "
        "PRIMARY KEY (trace_id, seq)) STRICT"
    )
    sql = "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    batch = FlushPolicy().max_events  # the writer's batch size
    for start in range(0, n, batch):
        rows = [
            (1, seq, 1, "import", INTERFACE, FUNCTION, inp, out, 0, "ok", None, None, 1500, 0)
            for seq in range(start, min(start + batch, n))
        ]
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(sql, rows)
        conn.execute("COMMIT")
    conn.close()


VARIANTS: dict[str, Callable[[Path, int, bytes, bytes], None]] = {
    "baseline": run_baseline,
    "writer": run_writer_batches,
    "writer append": lambda p, n, i, o: run_writer(p, n, i, o, False),
    "writer background": lambda p, n, i, o: run_writer_batches(p, n, i, o, True),
    "chain only": run_chain_only,
}


def run(
    events: int = 200_000, payload: int = 32, repeat: int = 5, directory: str | None = None
) -> dict[str, Any]:
    """Run every variant ``repeat`` times, interleaved; rates (events/s) per round, file
    bytes per event, and each round's rate as a ratio to that round's baseline."""
    n, inp, out = events, os.urandom(payload), os.urandom(payload)
    rates: dict[str, list[float]] = {name: [] for name in VARIANTS}
    sizes: dict[str, float] = {}
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        for r in range(repeat):
            for name, fn in VARIANTS.items():
                path = Path(tmp) / f"{name.replace(' ', '_')}-{r}.db"
                t0 = time.perf_counter()
                fn(path, n, inp, out)
                rates[name].append(n / (time.perf_counter() - t0))
                if path.exists():
                    sizes[name] = path.stat().st_size / n
                for f in Path(tmp).glob(f"{path.name}*"):
                    f.unlink()
    variants: dict[str, Any] = {}
    for name, values in rates.items():
        vs_base = [v / b for v, b in zip(values, rates["baseline"], strict=True)]
        size = sizes.get(name)
        variants[name] = {
            "rates": values,
            "best": max(values),
            "median": statistics.median(values),
            "min": min(values),
            "vs_baseline": {"median": statistics.median(vs_base), "min": min(vs_base),
                            "max": max(vs_base)},
            "bytes_per_event": size,
            "overhead_bytes_per_event": None if size is None else size - 2 * payload,
        }
    return {"events": n, "payload": payload, "repeat": repeat, "variants": variants}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--payload", type=int, default=32, help="bytes of input and of output")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dir", default=None, help="where the files go (default: a temp dir)")
    args = parser.parse_args(argv)
    result = run(args.events, args.payload, args.repeat, args.dir)
    n = result["events"]
    base = result["variants"]["baseline"]["best"]
    print(
        f"{n} events of {args.payload}+{args.payload} payload bytes, best/median of {args.repeat}"
    )
    print(
        f"python {sys.version.split()[0]}, sqlite {sqlite3.sqlite_version}, {os.cpu_count()} cpus"
    )
    print()
    print(
        f"{'variant':<19}{'events/s best':>15}{'median':>12}{'x baseline':>12}{'bytes/event':>13}{'overhead':>10}"
    )
    for name, v in result["variants"].items():
        size = v["bytes_per_event"]
        size_text = (
            f"{size:13.1f}{v['overhead_bytes_per_event']:10.1f}" if size else f"{'-':>13}{'-':>10}"
        )
        print(f"{name:<19}{v['best']:15,.0f}{v['median']:12,.0f}{v['best'] / base:12.2f}{size_text}")


if __name__ == "__main__":
    main()
