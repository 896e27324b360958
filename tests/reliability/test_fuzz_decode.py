"""Generated and mutated CGRF buffers through ``decode``: only ``AbiError`` escapes,
every case ends quickly and within a memory bound, and the C accelerator and the pure
Python decoder agree on every case.

tests/abi/test_codec.py (TestFuzz) and tests/abi/test_speedups.py (TestDifferential)
already fuzz with Hypothesis at a few thousand examples; this is the plain seeded loop
for volume (a million cases with ``--slow``), over inputs Hypothesis does not build:
whole random node graphs with valid framing, splices of two buffers, length fields
pointing past the end, and tight ``Limits``.
"""

from __future__ import annotations

import random
import resource
import struct
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest

from packr_replay.abi import (
    F32,
    F64,
    S8,
    S16,
    S32,
    S64,
    U8,
    U16,
    U32,
    U64,
    AbiError,
    Bool,
    Char,
    Flags,
    Limits,
    List,
    Option,
    Record,
    Result,
    String,
    Tuple,
    Value,
    ValueType,
    Variant,
    decode,
    encode,
)
from packr_replay.abi.decoder import py_decode
from packr_replay.abi.encoder import py_encode

from .conftest import Tally, quick_count

#: A case slower than this is a failure (the slowest seen is far below it).
CASE_SECONDS = 2.0
#: Peak traced allocation for one case (checked on every ``TRACE_EVERY``-th case).
CASE_BYTES = 64 * 1024 * 1024
TRACE_EVERY = 97

PRIMITIVE_TYPES = [
    ValueType.BOOL, ValueType.U8, ValueType.U16, ValueType.U32, ValueType.U64, ValueType.S8,
    ValueType.S16, ValueType.S32, ValueType.S64, ValueType.F32, ValueType.F64, ValueType.CHAR,
    ValueType.STRING, ValueType.FLAGS,
]  # fmt: skip

INTERESTING_U32 = [0, 1, 2, 3, 4, 7, 8, 0x10, 0x7F, 0x80, 0xFF, 0x100, 0xFFFF, 0x10000,
                   0xD800, 0xDFFF, 0x10FFFF, 0x110000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE,
                   0xFFFFFFFF]  # fmt: skip


# ------------------------------------------------------------------ generators


def _name(rng: random.Random) -> str:
    return rng.choice(["", "a", "x", "point", "sexpr", "é", "名前", "\u0000", "k" * 40])


def _type(rng: random.Random, depth: int = 0) -> ValueType:
    r = rng.random()
    if depth > 2 or r < 0.55:
        return rng.choice(PRIMITIVE_TYPES)
    if r < 0.65:
        return ValueType.list(_type(rng, depth + 1))
    if r < 0.75:
        return ValueType.option(_type(rng, depth + 1))
    if r < 0.82:
        return ValueType.result(_type(rng, depth + 1), _type(rng, depth + 1))
    if r < 0.9:
        return ValueType.tuple(*(_type(rng, depth + 1) for _ in range(rng.randrange(3))))
    return ValueType.record(_name(rng)) if rng.random() < 0.5 else ValueType.variant(_name(rng))


def _scalar(rng: random.Random, t: ValueType | None = None) -> Value:
    makers: dict[ValueType, Callable[[], Value]] = {
        ValueType.BOOL: lambda: Bool(rng.random() < 0.5),
        ValueType.U8: lambda: U8(rng.randrange(2**8)),
        ValueType.U16: lambda: U16(rng.randrange(2**16)),
        ValueType.U32: lambda: U32(rng.choice(INTERESTING_U32)),
        ValueType.U64: lambda: U64(rng.randrange(2**64)),
        ValueType.S8: lambda: S8(rng.randrange(-(2**7), 2**7)),
        ValueType.S16: lambda: S16(rng.randrange(-(2**15), 2**15)),
        ValueType.S32: lambda: S32(rng.randrange(-(2**31), 2**31)),
        ValueType.S64: lambda: S64(rng.randrange(-(2**63), 2**63)),
        ValueType.F32: lambda: F32.from_bits(rng.randrange(2**32)),
        ValueType.F64: lambda: F64.from_bits(rng.randrange(2**64)),
        ValueType.CHAR: lambda: Char(rng.choice("aé名😀\u0000")),
        ValueType.STRING: lambda: String(rng.choice(["", "hi", "héllo", "名前" * 3, "x" * 70])),
        ValueType.FLAGS: lambda: Flags(rng.randrange(2**64)),
    }
    return makers[t if t in makers else rng.choice(PRIMITIVE_TYPES)]()


def random_value(rng: random.Random, budget: int = 24) -> Value:
    """A random value of any kind, at most about ``budget`` nodes, built iteratively."""
    r = rng.random()
    if budget <= 1 or r < 0.35:
        return _scalar(rng)
    sub = max(1, budget // 3)
    if r < 0.45:
        t = rng.choice(PRIMITIVE_TYPES)
        return List(t, [_scalar(rng, t) for _ in range(rng.randrange(6))])
    if r < 0.55:
        t = ValueType.list(rng.choice(PRIMITIVE_TYPES))  # not fixed width: a List node
        return List(t, [random_value(rng, sub) for _ in range(rng.randrange(3))])
    if r < 0.65:
        return Tuple(*(random_value(rng, sub) for _ in range(rng.randrange(4))))
    if r < 0.75:
        return Record(_name(rng), [(_name(rng), random_value(rng, sub))
                                   for _ in range(rng.randrange(4))])  # fmt: skip
    if r < 0.85:
        return Variant(_name(rng), _name(rng), rng.choice(INTERESTING_U32),
                       [random_value(rng, sub) for _ in range(rng.randrange(3))])  # fmt: skip
    if r < 0.93:
        return Option(_type(rng), random_value(rng, sub) if rng.random() < 0.7 else None)
    return Result(_type(rng), _type(rng), random_value(rng, sub), is_err=rng.random() < 0.5)


def _u32(x: int) -> bytes:
    return struct.pack("<I", x & 0xFFFFFFFF)


def random_graph(rng: random.Random) -> bytes:
    """Valid framing (header, node headers, payload lengths) around random node kinds
    and payloads: child indices in and out of range, shared children, cycles."""
    n = rng.randrange(1, 9)

    def idx() -> int:
        return rng.randrange(n + 1) if rng.random() < 0.9 else rng.choice(INTERESTING_U32)

    nodes = []
    for _ in range(n):
        kind = rng.choice([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19,
                           20, 21, 0, 22, 0xFF])  # fmt: skip
        kids = [idx() for _ in range(rng.randrange(4))]
        shape = rng.random()
        if shape < 0.3:
            payload = _u32(len(kids)) + b"".join(map(_u32, kids))
        elif shape < 0.5:
            tag = bytes([rng.choice([1, 2, 6, 9, 11, 12, 13, 14, 15, 16, 18, 19, 20, 0x30])])
            payload = tag + _u32(len(kids)) + b"".join(map(_u32, kids))
        elif shape < 0.7:
            payload = (_u32(1) + b"r" + _u32(len(kids)) + b"".join(_u32(1) + b"f" for _ in kids)
                       + b"".join(map(_u32, kids)))  # fmt: skip
        elif shape < 0.8:
            payload = _u32(1) + b"v" + _u32(1) + b"c" + _u32(rng.randrange(9)) + _u32(
                len(kids)) + b"".join(map(_u32, kids))  # fmt: skip
        else:
            payload = rng.randbytes(rng.randrange(0, 24))
        nodes.append(struct.pack("<BBHI", kind, 0, 0, len(payload)) + payload)
    root = rng.randrange(n) if rng.random() < 0.95 else rng.choice(INTERESTING_U32)
    return b"CGRF" + struct.pack("<HHII", 2, 0, n, root & 0xFFFFFFFF) + b"".join(nodes)


def mutate(rng: random.Random, data: bytes, other: bytes) -> bytes:
    """One to four corruptions of the kinds real inputs carry."""
    buf = bytearray(data)
    for _ in range(rng.choice([1, 1, 1, 2, 2, 3, 4])):
        op = rng.randrange(9)
        pos = rng.randrange(len(buf)) if buf else 0
        if op == 0 and buf:
            buf[pos] = rng.randrange(256)
        elif op == 1 and buf:
            buf[pos] ^= 1 << rng.randrange(8)
        elif op == 2 and len(buf) >= 4:
            pos = min(pos, len(buf) - 4)
            buf[pos : pos + 4] = _u32(rng.choice(INTERESTING_U32))
        elif op == 3:
            del buf[pos:]
        elif op == 4:
            buf[pos:pos] = rng.randbytes(rng.randrange(1, 9))
        elif op == 5:
            del buf[pos : pos + rng.randrange(1, 9)]
        elif op == 6 and len(buf) >= 16:  # header fields: node count, root
            field = rng.choice([8, 12])
            buf[field : field + 4] = _u32(rng.choice(INTERESTING_U32))
        elif op == 7 and other:  # splice the tail of another buffer
            cut = rng.randrange(len(other))
            buf[pos:] = other[cut:]
        else:
            buf += rng.randbytes(rng.randrange(1, 17))
    return bytes(buf)


def random_limits(rng: random.Random) -> Limits | None:
    if rng.random() < 0.85:
        return None
    return Limits(
        max_buffer_size=rng.randrange(0, 600),
        max_node_count=rng.randrange(0, 40),
        max_payload_size=rng.randrange(0, 200),
        max_sequence_len=rng.randrange(0, 10),
        max_decoded_nodes=rng.choice([None, rng.randrange(0, 50)]),
    )


def make_case(rng: random.Random, seeds: list[bytes]) -> tuple[bytes, Limits | None, str]:
    r = rng.random()
    if r < 0.15:
        return encode(random_value(rng)), random_limits(rng), "generated value"
    if r < 0.35:
        return random_graph(rng), random_limits(rng), "generated graph"
    if r < 0.40:
        return b"CGRF\x02\x00\x00\x00" + rng.randbytes(rng.randrange(64)), None, "noise"
    return mutate(rng, rng.choice(seeds), rng.choice(seeds)), random_limits(rng), "mutated"


# --------------------------------------------------------------------- running


def _outcome(fn: Callable[..., Value], data: bytes, limits: Limits | None) -> tuple[Any, ...]:
    try:
        value = fn(data, limits)
    except AbiError as exc:
        return ("error", type(exc).__name__, str(exc))
    # any other exception propagates: that is the failure this suite looks for
    return ("ok", py_encode(value))


def run_fuzz(seed: int, cases: int, tally: Tally, *, python_every: int = 1) -> None:
    """``cases`` seeded cases; raises on the first escape, slow case or disagreement."""
    rng = random.Random(seed)
    seeds = [encode(random_value(rng, 40)) for _ in range(64)]
    slowest = 0.0
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for i in range(cases):
        data, limits, origin = make_case(rng, seeds)
        traced = i % TRACE_EVERY == 0
        if traced:
            tracemalloc.start()
        t0 = time.perf_counter()
        try:
            got = _outcome(decode, data, limits)
        except Exception as exc:  # pragma: no cover - the failure being hunted
            raise AssertionError(
                f"case {i} (seed {seed}, {origin}): {type(exc).__name__} escaped decode "
                f"of {data.hex()} with {limits}: {exc}"
            ) from exc
        elapsed = time.perf_counter() - t0
        if traced:
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            tally.peak("peak_traced_bytes", peak)
            assert peak < CASE_BYTES, f"case {i}: {peak} bytes traced decoding {data.hex()}"
        slowest = max(slowest, elapsed)
        assert elapsed < CASE_SECONDS, f"case {i} took {elapsed:.2f} s: {data.hex()}"
        if i % python_every == 0:
            want = _outcome(py_decode, data, limits)
            assert got == want, f"case {i}: C {got[:2]} vs Python {want[:2]} on {data.hex()}"
        tally.add(f"{origin}: {got[1] if got[0] == 'error' else 'decoded'}")
    tally.peak("slowest_case_ms", round(slowest * 1000, 3))
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    tally.peak("max_rss_growth_mb", round(grown / 1024, 1))
    assert grown < 256 * 1024, f"peak RSS grew by {grown // 1024} MB over the run"


class TestFuzzDecode:
    """Only AbiError escapes decode; each case is fast and bounded; C agrees with Python."""

    def test_quick(self, tally: Tally) -> None:
        run_fuzz(seed=20261129, cases=quick_count(10_000, 100_000), tally=tally)

    @pytest.mark.slow
    def test_million(self, tally: Tally) -> None:
        run_fuzz(seed=1_000_003, cases=1_000_000, tally=tally, python_every=4)

    def test_generators_reach_valid_values(self) -> None:
        """The generators are not all noise: many cases decode, most kinds of error occur."""
        rng = random.Random(7)
        seeds = [encode(random_value(rng, 40)) for _ in range(64)]
        outcomes: set[str] = set()
        decoded = 0
        for _ in range(2000):
            data, limits, _ = make_case(rng, seeds)
            got = _outcome(decode, data, limits)
            if got[0] == "ok":
                decoded += 1
            else:
                outcomes.add(got[1])
        assert decoded > 200
        assert {"InvalidEncoding", "BufferTooSmall", "InvalidTag"} <= outcomes
