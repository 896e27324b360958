"""CGRF codec throughput vs msgpack's C implementation, measured side by side.

For each representative shape, encode and decode with packr_replay's codec and
``msgpack.packb``/``unpackb`` on the equivalent plain Python data, interleaved, several
rounds; report the ratio (ours / msgpack) as median and spread. Run::

    python bench/bench_codec.py            # full
    python bench/bench_codec.py --quick    # fewer rounds
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import timeit
from collections.abc import Callable
from typing import Any

import msgpack

from packr_replay.abi import (
    S64,
    U32,
    Bool,
    F64,
    List,
    Record,
    String,
    Value,
    ValueType,
    Variant,
    decode,
    encode,
)

SEXPR = ValueType.variant("sexpr")


def sexpr_tree(nodes: int) -> tuple[Value, Any]:
    """A balanced-ish tree of lst/num/sym variants with ``nodes`` values, and its plain twin."""
    # Build bottom-up, iteratively: leaves first, then group in fours.
    level: list[tuple[Value, Any]] = []
    count = 0
    i = 0
    while count < nodes * 3 // 4:
        if i % 2:
            level.append((Variant("sexpr", "num", 1, [S64(i)]), [1, i]))
        else:
            level.append((Variant("sexpr", "sym", 0, [String(f"s{i % 97}")]), [0, f"s{i % 97}"]))
        count += 2  # variant + payload
        i += 1
    while len(level) > 1:
        nxt = []
        for j in range(0, len(level), 4):
            group = level[j : j + 4]
            lst = List(SEXPR, [v for v, _ in group])
            nxt.append((Variant("sexpr", "lst", 4, [lst]), [4, [p for _, p in group]]))
        level = nxt
    return level[0]


def shapes() -> dict[str, tuple[Value, Any]]:
    fields = []
    plain: dict[str, Any] = {}
    for k in range(16):
        if k % 3 == 0:
            fields.append((f"field_{k}", String("x" * 40)))
            plain[f"field_{k}"] = "x" * 40
        elif k % 3 == 1:
            fields.append((f"field_{k}", S64(k * 1_000_003)))
            plain[f"field_{k}"] = k * 1_000_003
        else:
            fields.append((f"field_{k}", F64(k / 7)))
            plain[f"field_{k}"] = k / 7
    record = Record("config", fields)
    data = bytes(range(256)) * 40
    return {
        "s64 (import argument)": (S64(5), 5),
        "short string": (String("hello, world"), "hello, world"),
        "1 KiB record": (record, plain),
        "10k u8 array": (List.from_bytes(data[:10_000]), list(data[:10_000])),
        "10k u32 array": (List(ValueType.U32, [U32(i * 2654435761 % 2**32) for i in range(10_000)]),
                          [i * 2654435761 % 2**32 for i in range(10_000)]),
        "100k-node sexpr tree": sexpr_tree(100_000),
        "bool": (Bool(True), True),
    }


def best_time(fn: Callable[[], object], number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=3)) / number


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    rounds = 3 if args.quick else 7
    results = {}
    print(f"{'shape':24} {'op':6} {'ours/msgpack median':>20} {'spread':>16} {'ours µs':>10} {'msgpack µs':>11}")
    for name, (value, plain) in shapes().items():
        data = encode(value)
        packed = msgpack.packb(plain)
        assert decode(data) == value
        size = len(data)
        number = max(1, min(20000, 2_000_000 // max(size, 50)))
        for op, ours, theirs in (
            ("encode", lambda v=value: encode(v), lambda p=plain: msgpack.packb(p)),
            ("decode", lambda d=data: decode(d), lambda b=packed: msgpack.unpackb(b)),
        ):
            ratios, ours_t, theirs_t = [], [], []
            for _ in range(rounds):  # interleave so machine noise hits both sides
                a = best_time(ours, number)
                b = best_time(theirs, number)
                ratios.append(a / b)
                ours_t.append(a)
                theirs_t.append(b)
            med = statistics.median(ratios)
            print(
                f"{name:24} {op:6} {med:>19.1f}x {min(ratios):>7.1f}-{max(ratios):<7.1f}"
                f" {statistics.median(ours_t) * 1e6:>10.1f} {statistics.median(theirs_t) * 1e6:>11.2f}"
            )
            results[f"{name}/{op}"] = {
                "ratio_median": med,
                "ratio_min": min(ratios),
                "ratio_max": max(ratios),
                "ours_us": statistics.median(ours_t) * 1e6,
                "msgpack_us": statistics.median(theirs_t) * 1e6,
                "cgrf_bytes": size,
                "msgpack_bytes": len(packed),
            }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
