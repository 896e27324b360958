"""The segment codec's C accelerator (``packr_replay.storage._speedups``) against Python.

The contract: ``pack_chain`` gives exactly ``py_pack_chain``'s bytes, head and count, or
the same exception; ``decode_segment`` yields exactly ``py_decode_segment``'s records,
and on a damaged segment the same records up to the fault and then the same error.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterable
from hashlib import sha256
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from packr_replay.errors import IntegrityError
from packr_replay.storage import _accel, chain, codec
from packr_replay.storage.chain import py_pack_chain
from packr_replay.storage.codec import py_decode_segment
from packr_replay.storage.model import EventKind, Outcome

needs_c = pytest.mark.skipif(
    not _accel.ACCELERATED, reason=f"C accelerator unavailable: {_accel.UNAVAILABLE_REASON}"
)

HEAD = sha256(b"genesis").digest()


def outcome(fn: Callable[[], Any]) -> tuple[str, Any]:
    """What calling ``fn`` gives: its result, or the exception's type and message."""
    try:
        return ("ok", fn())
    except Exception as exc:  # the contract covers every exception the same way
        return ("raised", (type(exc), str(exc)))


def drain(records: Iterable[Any]) -> tuple[list[Any], tuple[type, str] | None]:
    """Every record yielded, then the error that ended the iteration (if any)."""
    got: list[Any] = []
    try:
        for record in records:
            got.append(record)
    except Exception as exc:
        return got, (type(exc), str(exc))
    return got, None


def row(
    call: Any = 1,
    kind: Any = "import",
    interface: Any = "host",
    function: Any = "now",
    input: Any = b"\x01",
    output: Any = b"\x02\x03",
    status: Any = 0,
    outcome_: Any = "ok",
    error_kind: Any = None,
    error: Any = None,
    duration_ns: Any = 1500,
    depth: Any = 0,
) -> tuple[Any, ...]:
    return (call, kind, interface, function, input, output, status, outcome_,
            error_kind, error, duration_ns, depth)  # fmt: skip


# Plain rows the C packer takes, and odd ones it must hand to Python (or refuse alike).
ints = st.one_of(
    st.integers(-(2**63), 2**64 - 1),
    st.sampled_from([0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, -1, -32, -33]),
)
odd_ints = st.one_of(st.booleans(), st.integers(2**64, 2**70), st.integers(-(2**70), -(2**63) - 1))
texts = st.one_of(st.text(max_size=40), st.sampled_from(["", "a" * 31, "a" * 32, "é" * 200]))
blobs = st.one_of(st.none(), st.binary(max_size=300), st.just(b"x" * 70_000))
odd_blobs = st.one_of(st.builds(bytearray, st.binary(max_size=8)),
                      st.builds(memoryview, st.binary(max_size=8)), st.just("text"))
kinds = st.one_of(st.sampled_from(["import", "export", "return"]),
                  st.sampled_from(list(EventKind)), st.just("bogus"))
outcomes = st.one_of(st.sampled_from([str(o) for o in Outcome]),
                     st.sampled_from(list(Outcome)), st.just("nope"))


def maybe_odd(plain: st.SearchStrategy[Any], odd: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(plain, plain, plain, odd)


rows_strategy = st.builds(
    row,
    call=maybe_odd(ints, odd_ints),
    kind=kinds,
    interface=maybe_odd(texts, st.just(b"bytes")),
    function=texts,
    input=maybe_odd(blobs, odd_blobs),
    output=blobs,
    status=st.one_of(st.none(), ints),
    outcome_=outcomes,
    error_kind=st.one_of(st.none(), texts),
    error=st.one_of(st.none(), texts, st.just(3)),
    duration_ns=maybe_odd(ints, st.just(1.5)),
    depth=st.integers(0, 5),
)


@needs_c
def test_the_accelerated_functions_are_bound() -> None:
    assert chain.pack_chain is not py_pack_chain
    assert codec.decode_segment is not py_decode_segment
    assert chain.pack_chain.__module__ == chain.__name__


@needs_c
def test_pack_chain_hashes_each_record_after_the_previous_hash() -> None:
    rows = [row(call=i, input=bytes([i]) * i) for i in range(40)]
    data, head, count = chain.pack_chain(rows, 7, HEAD)
    assert (data, head, count) == py_pack_chain(rows, 7, HEAD)
    expected = HEAD
    for fields, digest in py_decode_segment(data, 7, 40):
        expected = sha256(expected + chain.pack_row(fields[0], fields[1:])).digest()
        assert digest == expected
    assert head == expected


@needs_c
@pytest.mark.parametrize("rows", [[], (), [row()], tuple([row()] * 3)])
def test_pack_chain_on_empty_and_tuple_batches(rows: Any) -> None:
    assert chain.pack_chain(rows, 0, HEAD) == py_pack_chain(rows, 0, HEAD)


@needs_c
@given(st.lists(rows_strategy, max_size=12), st.integers(0, 2**63 - 1))
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
def test_pack_chain_matches_python(rows: list[tuple[Any, ...]], first_seq: int) -> None:
    assert outcome(lambda: chain.pack_chain(rows, first_seq, HEAD)) == outcome(
        lambda: py_pack_chain(rows, first_seq, HEAD)
    )


@needs_c
@pytest.mark.parametrize(
    "make_args",
    [
        lambda: (iter([row()]), 0, HEAD),  # not a list or tuple
        lambda: ([row()], -1, HEAD),
        lambda: ([row()], 2**70, HEAD),
        lambda: ([row()], 0, HEAD[:31]),
        lambda: ([row()], 0, bytearray(HEAD)),
        lambda: ([row(), "not a row"], 0, HEAD),
        lambda: ([row()[:11]], 0, HEAD),
    ],
)
def test_pack_chain_unusual_calls_match_python(make_args: Callable[[], tuple[Any, ...]]) -> None:
    assert outcome(lambda: chain.pack_chain(*make_args())) == outcome(
        lambda: py_pack_chain(*make_args())
    )


@needs_c
def test_a_row_refused_mid_batch_raises_the_python_error() -> None:
    rows = [row(), row(kind="bogus"), row()]
    c = outcome(lambda: chain.pack_chain(rows, 0, HEAD))
    assert c[0] == "raised"
    assert c == outcome(lambda: py_pack_chain(rows, 0, HEAD))


@needs_c
@given(st.lists(rows_strategy, max_size=12), st.integers(0, 2**63 - 1))
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_pack_rows_then_hash_records_is_pack_chain(rows: list[tuple[Any, ...]], first_seq: int) -> None:
    """Packing now and chaining later (on the committer) gives pack_chain's bytes."""
    packed = outcome(lambda: chain.pack_rows(rows, first_seq))
    assert packed == outcome(lambda: chain.py_pack_rows(rows, first_seq))
    whole = outcome(lambda: py_pack_chain(rows, first_seq, HEAD))
    assert packed[0] == whole[0]
    if packed[0] != "ok":
        return
    data, lens, count = packed[1]
    c_buf, py_buf = bytearray(32) + data, bytearray(32) + data
    c_head = chain.hash_records(c_buf, lens, HEAD)
    assert c_head == chain.py_hash_records(py_buf, lens, HEAD)
    assert c_buf == py_buf
    assert (bytes(c_buf[32:]), c_head, count) == whole[1]


@needs_c
@pytest.mark.parametrize(
    "make_args",
    [
        lambda d, n: (bytearray(32) + d, n + b"\0", HEAD),  # lens not whole uint32s
        lambda d, n: (bytearray(32) + d[:-1], n, HEAD),  # buf cut short
        lambda d, n: (bytearray(32) + d + b"x", n, HEAD),  # bytes left over
        lambda d, n: (bytearray(31) + d, n, HEAD),  # no room for the head
        lambda d, n: (bytearray(32) + d, b"\xff\xff\xff\x7f" + n[4:], HEAD),  # a huge length
        lambda d, n: (bytearray(32) + d, b"\0\0\0\0" + n[4:], HEAD),  # a zero length
        lambda d, n: (bytes(32) + d, n, HEAD),  # not writable
        lambda d, n: (bytearray(32) + d, n, HEAD[:5]),  # a short head
    ],
)
def test_hash_records_refuses_what_does_not_add_up(make_args: Callable[..., tuple[Any, ...]]) -> None:
    data, lens, _ = chain.pack_rows([row(), row(input=b"xyz")], 0)
    args = make_args(data, lens)
    c = outcome(lambda: chain.hash_records(*args))
    assert c[0] == "raised"
    py = outcome(lambda: chain.py_hash_records(*make_args(data, lens)))
    assert py[0] == "raised"


def test_hash_records_of_nothing_is_the_head() -> None:
    buf = bytearray(32)
    assert chain.hash_records(buf, b"", HEAD) == HEAD == chain.py_hash_records(bytearray(32), b"", HEAD)
    assert buf == HEAD


def segment(n: int = 30) -> bytes:
    rows = [
        row(call=i, kind=["export", "import", "return"][i % 3], input=bytes(i), output=None if i % 4 else b"o",
            status=None if i % 5 == 0 else i, outcome_="ok" if i % 7 else "trap",
            error_kind=None if i % 7 else "Trap", error=None if i % 7 else "boom", depth=i % 2)
        for i in range(n)
    ]  # fmt: skip
    return py_pack_chain(rows, 100, HEAD)[0]


@needs_c
def test_decode_segment_matches_python_on_a_good_segment() -> None:
    data = segment()
    c = list(codec.decode_segment(data, 100, 30))
    assert c == list(py_decode_segment(data, 100, 30))
    assert len(c) == 30


@needs_c
@pytest.mark.parametrize(("first_seq", "count"), [(100, 29), (100, 31), (99, 30), (101, 30), (100, 0)])
def test_decode_segment_with_wrong_numbering_matches_python(first_seq: int, count: int) -> None:
    data = segment()
    assert drain(codec.decode_segment(data, first_seq, count)) == drain(
        py_decode_segment(data, first_seq, count)
    )


@needs_c
@given(st.data())
@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
def test_decode_segment_matches_python_on_damaged_segments(data: st.DataObject) -> None:
    good = segment(12)
    damage = data.draw(st.sampled_from(["flip", "cut", "append", "splice"]))
    raw = bytearray(good)
    if damage == "flip":
        for _ in range(data.draw(st.integers(1, 4))):
            at = data.draw(st.integers(0, len(raw) - 1))
            raw[at] = data.draw(st.integers(0, 255))
    elif damage == "cut":
        del raw[data.draw(st.integers(0, len(raw) - 1)) :]
    elif damage == "append":
        raw += data.draw(st.binary(min_size=1, max_size=40))
    else:
        at = data.draw(st.integers(0, len(raw)))
        raw[at:at] = data.draw(st.binary(min_size=1, max_size=10))
    blob = bytes(raw)
    assert drain(codec.decode_segment(blob, 100, 12)) == drain(py_decode_segment(blob, 100, 12))
    # Checked against the chain (what Trace.records does): the same records and error.
    assert drain(codec.decode_segment(blob, 100, 12, HEAD, 7)) == drain(
        py_decode_segment(blob, 100, 12, HEAD, 7)
    )


@needs_c
def test_decode_segment_checks_the_chain_like_python() -> None:
    data = segment()
    good = list(py_decode_segment(data, 100, 30))
    assert list(codec.decode_segment(data, 100, 30, HEAD, 7)) == good
    wrong = sha256(b"another head").digest()
    c, py = drain(codec.decode_segment(data, 100, 30, wrong, 7)), drain(py_decode_segment(data, 100, 30, wrong, 7))
    assert c == py == ([], (IntegrityError, "trace 7: event 100 does not match its hash: it was altered after recording"))
    for prev in (b"short", bytearray(HEAD), None):  # not 32 bytes: Python decides; None: no check
        assert drain(codec.decode_segment(data, 100, 30, prev)) == drain(py_decode_segment(data, 100, 30, prev))


def built(outcome: tuple[list[Any], Any]) -> tuple[list[Any], Any]:
    """A drain() result with LazyRecords built as the tuples they stand for."""
    return [tuple(r) for r in outcome[0]], outcome[1]


@needs_c
def test_lazy_records_stand_for_the_records() -> None:
    data = segment()
    assert codec.decode_segment_lazy is not None
    lazy = codec.decode_segment_lazy(data, 100, 30, HEAD, 7)
    eager = list(py_decode_segment(data, 100, 30, HEAD, 7))
    assert type(lazy) is list
    assert {type(r).__name__ for r in lazy} == {"LazyRecord"}
    assert [tuple(r) for r in lazy] == eager
    assert lazy == eager  # a LazyRecord compares as its (fields, digest)
    r = lazy[3]
    fields, digest = r
    assert (len(r), r[0], r[1], repr(r)) == (2, eager[3][0], eager[3][1], repr(eager[3]))
    assert (fields, digest) == eager[3]
    with pytest.raises(IndexError):
        r[2]
    with pytest.raises(TypeError):
        hash(r)


@needs_c
@given(st.data())
@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
def test_lazy_decoding_matches_on_damaged_segments(data: st.DataObject) -> None:
    """Whatever decode_segment makes of a damaged segment, checked against the chain,
    decode_segment_lazy makes the same (it hands every irregular one over)."""
    raw = bytearray(segment(12))
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        del raw[data.draw(st.integers(0, len(raw) - 1)) :]
    blob = bytes(raw)
    assert codec.decode_segment_lazy is not None
    assert built(drain(codec.decode_segment_lazy(blob, 100, 12, HEAD, 7))) == drain(
        py_decode_segment(blob, 100, 12, HEAD, 7)
    )


@needs_c
@pytest.mark.parametrize("bad", [b"\xed\xa0\x80", b"\xc0\xaf\x41", b"\xff\x41\x41", b"\xf4\x90\x80"],
                         ids=["surrogate", "overlong", "invalid", "over-max"])  # fmt: skip
def test_lazy_decoding_refuses_bad_utf8_as_decode_does(bad: bytes) -> None:
    """A chain-valid record whose name is not UTF-8 is decode_segment's to report."""
    data, lens, count = chain.py_pack_rows([row(interface="aaa"), row(interface="zzz")], 100)
    data = data.replace(b"\xa3aaa", b"\xa3" + bad[:3], 1)
    buf = bytearray(32) + data
    chain.py_hash_records(buf, lens, HEAD)
    blob = bytes(buf[32:])
    assert codec.decode_segment_lazy is not None
    lazy = drain(codec.decode_segment_lazy(blob, 100, count, HEAD, 7))
    assert built(lazy) == drain(py_decode_segment(blob, 100, count, HEAD, 7))
    assert lazy[1] is not None  # refused, not served


@needs_c
@given(st.lists(rows_strategy, max_size=8))
@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
def test_whatever_packs_decodes_alike(rows: list[tuple[Any, ...]]) -> None:
    try:
        data, _head, count = py_pack_chain(rows, 5, HEAD)
    except Exception:
        return
    assert drain(codec.decode_segment(data, 5, count)) == drain(py_decode_segment(data, 5, count))


def test_pure_python_is_forced_by_the_environment() -> None:
    code = (
        "from packr_replay.storage import _accel, chain, codec\n"
        "assert not _accel.ACCELERATED, _accel.UNAVAILABLE_REASON\n"
        "assert chain.pack_chain is chain.py_pack_chain\n"
        "assert codec.decode_segment is codec.py_decode_segment\n"
    )
    env = {**os.environ, "PACKR_REPLAY_PURE_PYTHON": "1"}
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
