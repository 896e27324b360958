"""CGRF codec throughput vs msgpack's C implementation, measured side by side.

For each representative shape, encode and decode with packr_replay's codec and
``msgpack.packb``/``unpackb`` on the equivalent plain Python data, interleaved, several
rounds; report the ratio (ours / msgpack) as median and spread, for the codec in use
(the C accelerator when it is built: ``packr_replay.abi.ACCELERATED``) and for the pure
Python codec (``py_encode``/``py_decode``) beside it. Run::

    python bench/bench_codec.py            # full
    python bench/bench_codec.py --quick    # fewer rounds
    python bench/bench_codec.py --gc       # keep the garbage collector on while timing

``timeit`` turns the garbage collector off while it times, for both sides; ``--gc``
shows the cost CPython's generational collector adds when many objects are built.
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
    ACCELERATED,
    F64,
    S64,
    U32,
    Bool,
    List,
    Record,
    String,
    Value,
    ValueType,
    Variant,
    decode,
    encode,
)
from packr_replay.abi.decoder import py_decode
from packr_replay.abi.encoder import py_encode

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
        nxt: list[tuple[Value, Any]] = []
        for j in range(0, len(level), 4):
            group = level[j : j + 4]
            lst = List(SEXPR, [v for v, _ in group])
            nxt.append((Variant("sexpr", "lst", 4, [lst]), [4, [p for _, p in group]]))
        level = nxt
    return level[0]


def shapes(tree_nodes: int = 100_000) -> dict[str, tuple[Value, Any]]:
    """The shapes compared, each as (Value, plain Python twin); ``tree_nodes`` sizes the
    sexpr tree (smaller only for smoke runs)."""
    fields: list[tuple[str, Value]] = []
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
        f"{tree_nodes // 1000}k-node sexpr tree": sexpr_tree(tree_nodes),
        "bool": (Bool(True), True),
    }


def best_time(fn: Callable[[], object], number: int, gc_on: bool) -> float:
    setup = "import gc; gc.enable()" if gc_on else "pass"
    return min(timeit.repeat(fn, setup=setup, number=number, repeat=3)) / number


def run(
    rounds: int = 7, *, gc_on: bool = False, echo: bool = True, tree_nodes: int = 100_000
) -> dict[str, Any]:
    """Time every shape, encode and decode, ``rounds`` interleaved times; a dict of ratios
    keyed ``"<shape>/<op>"`` (printing a table as it goes when ``echo``)."""
    say = print if echo else (lambda *a, **k: None)
    results: dict[str, Any] = {}
    impl = "C accelerator" if ACCELERATED else "pure Python (no C accelerator)"
    say(f"codec in use: {impl}; garbage collector {'on' if gc_on else 'off'} while timing")
    say(
        f"{'shape':22} {'op':6} {'in use/msgpack':>16} {'python/msgpack':>15}"
        f" {'in use µs':>10} {'python µs':>10} {'msgpack µs':>11}"
    )
    for name, (value, plain) in shapes(tree_nodes).items():
        data = encode(value)
        packed = msgpack.packb(plain)
        assert decode(data) == value
        assert py_decode(data) == value
        assert py_encode(value) == data
        size = len(data)
        number = max(1, min(20000, 2_000_000 // max(size, 50)))
        for op, ours, python, theirs in (
            ("encode", lambda v=value: encode(v), lambda v=value: py_encode(v),
             lambda p=plain: msgpack.packb(p)),
            ("decode", lambda d=data: decode(d), lambda d=data: py_decode(d),
             lambda b=packed: msgpack.unpackb(b)),
        ):
            ratios, py_ratios, ours_t, py_t, theirs_t = [], [], [], [], []
            for _ in range(rounds):  # interleave so machine noise hits every side
                a = best_time(ours, number, gc_on)
                b = best_time(theirs, number, gc_on)
                c = best_time(python, max(1, number // 20), gc_on)
                ratios.append(a / b)
                py_ratios.append(c / b)
                ours_t.append(a)
                py_t.append(c)
                theirs_t.append(b)
            med = statistics.median(ratios)
            py_med = statistics.median(py_ratios)
            say(
                f"{name:22} {op:6} {med:>9.1f}x {min(ratios):>4.1f}-{max(ratios):<4.1f}"
                f" {py_med:>9.1f}x"
                f" {statistics.median(ours_t) * 1e6:>15.1f} {statistics.median(py_t) * 1e6:>10.1f}"
                f" {statistics.median(theirs_t) * 1e6:>11.2f}"
            )
            results[f"{name}/{op}"] = {
                "accelerated": ACCELERATED,
                "gc": gc_on,
                "rounds": rounds,
                "ratio_median": med,
                "ratio_min": min(ratios),
                "ratio_max": max(ratios),
                "python_ratio_median": py_med,
                "python_ratio_min": min(py_ratios),
                "python_ratio_max": max(py_ratios),
                "ours_us": statistics.median(ours_t) * 1e6,
                "python_us": statistics.median(py_t) * 1e6,
                "msgpack_us": statistics.median(theirs_t) * 1e6,
                "cgrf_bytes": size,
                "msgpack_bytes": len(packed),
            }
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--gc", action="store_true", help="keep the garbage collector on")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args(argv)
    results = run(3 if args.quick else 7, gc_on=args.gc)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
