"""The C accelerator (``packr_replay.abi._speedups``) against the pure-Python codec.

The contract: for every input, ``encode``/``decode`` through the accelerator give what
``py_encode``/``py_decode`` give, value for value and error for error (type, message,
BufferTooSmall numbers). The C path handles the valid, ordinary case and defers the
rest to Python, so the tests check both halves: ``try_encode``/``try_decode`` (the C path
alone, ``None`` when it defers) must never accept what Python rejects and must build
exactly what Python builds; the public functions must match Python on everything.
"""

from __future__ import annotations

import gc
import os
import pickle
import struct
import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from packr_replay import abi
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
    _accel,
)
from packr_replay.abi import decoder as decoder_module
from packr_replay.abi.decoder import py_decode, py_decode_prefix
from packr_replay.abi.encoder import py_encode
from packr_replay.abi.types import Kind
from packr_replay.abi.values import _U8_CACHE
from tests.golden_vectors import cases, value_from_json

sp: Any = _accel.speedups
pytestmark = pytest.mark.skipif(sp is None, reason=f"no C accelerator: {_accel.UNAVAILABLE_REASON}")

# ------------------------------------------------------------------ comparing


def assert_same(a: Value, b: Value) -> None:
    """Structural identity, stricter than ``==``: exact classes, float bits (NaN too),
    the Python types of every attribute, declared types, names, tags."""
    stack: list[tuple[Any, Any]] = [(a, b)]
    while stack:
        x, y = stack.pop()
        assert type(x) is type(y), (x, y)
        if isinstance(x, ValueType):
            assert (x, hash(x), str(x)) == (y, hash(y), str(y))
            continue
        if x is None or isinstance(x, (str, int, bool)):
            assert x == y, (x, y)
            continue
        if isinstance(x, tuple):
            assert len(x) == len(y)
            stack.extend(zip(x, y, strict=True))
            continue
        assert isinstance(x, Value), x
        for slot in _slots(type(x)):
            stack.append((getattr(x, slot), getattr(y, slot)))


def _slots(cls: type) -> list[str]:
    return [s for klass in cls.__mro__ for s in getattr(klass, "__slots__", ())]


def outcome(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[str, Any]:
    """("ok", result) or ("error", (type, str, args)) of one call."""
    try:
        return "ok", fn(*args, **kwargs)
    except Exception as exc:  # every error must match exactly, whatever it is
        return "error", (type(exc), str(exc), exc.args)


def assert_same_outcome(got: tuple[str, Any], want: tuple[str, Any]) -> None:
    assert got[0] == want[0], (got, want)
    if got[0] == "error":
        assert got[1] == want[1]
    elif isinstance(want[1], Value):
        assert_same(got[1], want[1])
    elif isinstance(want[1], tuple):  # decode_prefix: (value, consumed)
        assert_same(got[1][0], want[1][0])
        assert got[1][1] == want[1][1]
    else:
        assert got[1] == want[1]


def check_decode(data: Any, limits: Limits | None = None) -> tuple[str, Any]:
    """decode == py_decode (and the prefix pair); the C path alone accepts only what
    Python accepts and builds the same value."""
    want = outcome(py_decode, data, limits)
    assert_same_outcome(outcome(abi.decode, data, limits), want)
    alone = sp.try_decode(data, limits)
    if alone is not None:
        assert want[0] == "ok", f"C accepted what Python rejects: {want[1]}"
        assert_same(alone, want[1])
    assert_same_outcome(
        outcome(abi.decode_prefix, data, limits), outcome(py_decode_prefix, data, limits)
    )
    return want


def check_encode(value: Any) -> tuple[str, Any]:
    want = outcome(py_encode, value)
    assert_same_outcome(outcome(abi.encode, value), want)
    alone = sp.try_encode(value)
    if alone is not None:
        assert want == ("ok", alone)
    return want


# --------------------------------------------------------------- selection


class TestSelection:
    """The accelerator is chosen at import, and the environment can refuse it."""

    def test_active(self) -> None:
        assert abi.ACCELERATED
        assert abi.decode is sp.decode
        assert abi.encode is sp.encode
        assert abi.decode_prefix is sp.decode_prefix

    @pytest.mark.parametrize(("env", "expected"), [("1", "False"), ("", "True"), ("0", "True")])
    def test_pure_python_env(self, env: str, expected: str) -> None:
        code = (
            "from packr_replay import abi; from packr_replay.abi import decoder, encoder;"
            "print(abi.ACCELERATED, abi.decode is decoder.py_decode,"
            " abi.encode is encoder.py_encode)"
        )
        out = subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PACKR_REPLAY_PURE_PYTHON": env},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert out[0] == expected
        assert out[1] == out[2] == str(expected == "False")

    def test_stale_build_refused(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(_accel, "CONTRACT", _accel.CONTRACT + 1)
        module, why = _accel.load()
        assert module is None
        assert why is not None
        assert "stale" in why

    def test_pickles_name_the_public_functions(self) -> None:
        v = Record("p", [("x", S32(1))])
        data = pickle.dumps(v)
        assert b"_speedups" not in data
        assert_same(pickle.loads(data), v)
        assert abi.decode.__module__ == "packr_replay.abi.decoder"
        assert abi.encode.__module__ == "packr_replay.abi.encoder"

    def test_call_shapes_match_python(self) -> None:
        data = abi.encode(S64(5))
        assert_same(abi.decode(data=data), S64(5))
        assert_same(abi.decode(data, limits=Limits()), S64(5))
        assert abi.decode_prefix(data + b"junk", limits=None)[1] == len(data)
        for args, kwargs in [((), {}), ((data, None, 1), {}), ((data,), {"bogus": 1})]:
            assert_same_outcome(
                outcome(abi.decode, *args, **kwargs), outcome(py_decode, *args, **kwargs)
            )
        assert_same_outcome(outcome(abi.encode), outcome(py_encode))
        assert_same_outcome(outcome(abi.encode, value=S64(1)), outcome(py_encode, value=S64(1)))


# ------------------------------------------------------------ golden vectors


class TestVectors:
    """Every golden vector through both implementations, with identical results."""

    @pytest.mark.parametrize("case", cases("decode"))
    def test_decode(self, case: dict[str, Any]) -> None:
        data = bytes.fromhex(case["hex"])
        want = check_decode(data)
        assert (want[0] == "ok") == case["ok"]
        if case["ok"]:
            assert sp.try_decode(data) is not None, "a valid vector should not need Python"
        else:
            assert sp.try_decode(data) is None

    @pytest.mark.parametrize("case", cases("encode"))
    def test_encode(self, case: dict[str, Any]) -> None:
        if case.get("value") is None:
            pytest.skip("value omitted (too deep for JSON); covered by decode below")
        value = value_from_json(case["value"])
        want = check_encode(value)
        if case["ok"] and not case["name"].startswith("shared_"):
            assert want == ("ok", bytes.fromhex(case["hex"]))
            assert sp.try_encode(value) == want[1]
        elif not case["ok"]:
            assert want[0] == "error"
            assert sp.try_encode(value) is None

    @pytest.mark.parametrize("case", cases("encode"))
    def test_encode_hex_decodes_alike(self, case: dict[str, Any]) -> None:
        if case["hex"] is None:
            pytest.skip("no bytes")
        data = bytes.fromhex(case["hex"])
        want = check_decode(data)
        assert want[0] == "ok"
        assert_same_outcome(outcome(abi.encode, want[1]), outcome(py_encode, want[1]))
        if "reencode_hex" in case:
            assert abi.encode(want[1]).hex() == case["reencode_hex"]


# ---------------------------------------------------------------- strategies

PRIMS = [ValueType.BOOL, ValueType.U8, ValueType.U16, ValueType.U32, ValueType.U64,
         ValueType.S8, ValueType.S16, ValueType.S32, ValueType.S64, ValueType.F32,
         ValueType.F64, ValueType.CHAR, ValueType.STRING, ValueType.FLAGS]

names = st.text(max_size=6) | st.sampled_from(["", "point", "x", "é", "名前", "a" * 70])

value_types = st.recursive(
    st.sampled_from(PRIMS) | names.map(ValueType.record) | names.map(ValueType.variant),
    lambda inner: st.one_of(
        inner.map(ValueType.list),
        inner.map(ValueType.option),
        st.tuples(inner, inner).map(lambda p: ValueType.result(*p)),
        st.lists(inner, max_size=3).map(lambda ts: ValueType.tuple(*ts)),
    ),
    max_leaves=6,
)


def _ints(cls: type[Value]) -> st.SearchStrategy[Value]:
    lo, hi = cls.MIN, cls.MAX  # type: ignore[attr-defined]
    edges = st.sampled_from([lo, hi, 0, lo + 1, hi - 1] if lo < 0 else [lo, hi, 1, hi - 1])
    return (st.integers(lo, hi) | edges).map(cls)


_SCALARS: dict[int, st.SearchStrategy[Value]] = {
    Kind.BOOL: st.booleans().map(Bool),
    Kind.U8: st.integers(0, 255).map(_U8_CACHE.__getitem__),
    Kind.U16: _ints(U16),
    Kind.U32: _ints(U32),
    Kind.U64: _ints(U64),
    Kind.S8: _ints(S8),
    Kind.S16: _ints(S16),
    Kind.S32: _ints(S32),
    Kind.S64: _ints(S64),
    Kind.FLAGS: _ints(Flags),
    Kind.F32: (st.integers(0, 2**32 - 1) | st.sampled_from([0x7F800001, 0x80000000, 0x7FC00000]))
    .map(F32.from_bits),
    Kind.F64: st.integers(0, 2**64 - 1).map(F64.from_bits),
    Kind.CHAR: st.characters(exclude_categories=["Cs"]).map(Char),
}

arrays = st.sampled_from(sorted(_SCALARS)).flatmap(
    lambda tag: st.lists(_SCALARS[tag], max_size=8).map(
        lambda items, tag=tag: List(ValueType(tag), items)  # type: ignore[misc]
    )
)

leaves = st.one_of(*_SCALARS.values(), st.text(max_size=12).map(String), arrays)


def _compounds(children: st.SearchStrategy[Value]) -> st.SearchStrategy[Value]:
    kids = st.lists(children, max_size=4)
    not_fixed = value_types.filter(lambda t: t.fixed_width is None)
    return st.one_of(
        st.builds(List, not_fixed, kids),
        kids.map(lambda items: Tuple(*items)),
        st.builds(Record, names, st.lists(st.tuples(names, children), max_size=4)),
        st.builds(Variant, names, names, st.integers(0, 2**32 - 1) | st.just(0), kids),
        st.builds(Option, value_types, st.none() | children),
        st.builds(Result, value_types, value_types, children, is_err=st.booleans()),
    )


values = st.recursive(leaves, _compounds, max_leaves=24)


def _mutate(data: bytes, draw: Callable[..., Any]) -> bytes:
    """One small corruption of a valid buffer: the kind of damage real inputs carry."""
    buf = bytearray(data)
    op = draw(st.sampled_from(["byte", "u32", "cut", "insert", "delete", "append"]))
    pos = draw(st.integers(0, max(len(buf) - 1, 0)))
    if op == "byte" and buf:
        buf[pos] = draw(st.integers(0, 255))
    elif op == "u32" and len(buf) >= 4:
        pos = min(pos, len(buf) - 4)
        word = draw(st.sampled_from([0, 1, 2, 3, 0x7F, 0xFF, 0xFFFF, 0xFFFFFFFF, 0xD800,
                                     0x110000]) | st.integers(0, 2**32 - 1))
        buf[pos : pos + 4] = struct.pack("<I", word)
    elif op == "cut":
        del buf[pos:]
    elif op == "insert":
        buf[pos:pos] = draw(st.binary(min_size=1, max_size=4))
    elif op == "delete":
        del buf[pos : pos + draw(st.integers(1, 4))]
    else:
        buf += draw(st.binary(min_size=1, max_size=4))
    return bytes(buf)


def graph(nodes: list[tuple[int, bytes]], root: int) -> bytes:
    """A hand-built buffer: (kind, payload) nodes, any root."""
    out = [struct.pack("<4sHHII", b"CGRF", 2, 0, len(nodes), root)]
    for kind, payload in nodes:
        out.append(struct.pack("<BBHI", kind, 0, 0, len(payload)) + payload)
    return b"".join(out)


def _u32s(*xs: int) -> bytes:
    return struct.pack(f"<{len(xs)}I", *xs)


@st.composite
def graphs(draw: Callable[..., Any]) -> bytes:
    """Random node graphs: shared children, cycles, unreachable nodes, odd headers."""
    n = draw(st.integers(1, 7))
    idx = st.integers(0, n) | st.integers(0, n - 1)  # mostly in range
    nodes: list[tuple[int, bytes]] = []
    for _ in range(n):
        kind = draw(st.sampled_from([1, 2, 6, 7, 8, 9, 10, 11, 12, 18, 20, 21]))
        if kind == Kind.TUPLE:
            kids = draw(st.lists(idx, max_size=3))
            payload = _u32s(len(kids), *kids)
        elif kind == Kind.LIST:
            kids = draw(st.lists(idx, max_size=3))
            elem = draw(st.sampled_from([b"\x06", b"\x0b\x00\x00\x00\x00", b"\x09\x01\x00\x00\x00r",
                                         b"\x0c", b"\x07\x06"]))
            payload = elem + _u32s(len(kids), *kids)
        elif kind == Kind.VARIANT:
            kids = draw(st.lists(idx, max_size=2))
            payload = _u32s(1) + b"v" + _u32s(1) + b"c" + _u32s(draw(st.integers(0, 9)), len(kids), *kids)
        elif kind == Kind.RECORD:
            kids = draw(st.lists(idx, max_size=2))
            payload = _u32s(1) + b"r" + _u32s(len(kids)) + b"".join(_u32s(1) + b"f" for _ in kids) + _u32s(*kids)
        elif kind == Kind.OPTION:
            present = draw(st.sampled_from([0, 1, 2]))
            payload = b"\x0e" + bytes([present]) + (_u32s(draw(idx)) if present == 1 else b"")
        elif kind == Kind.RESULT:
            payload = b"\x0b\x00\x00\x00\x00\x06" + _u32s(draw(st.integers(0, 2))) + b"\x01" + _u32s(draw(idx))
        elif kind == Kind.ARRAY:
            payload = b"\x12" + _u32s(2, 0x41, draw(st.sampled_from([0x42, 0xD800])))
        elif kind == Kind.STRING:
            payload = _u32s(2) + draw(st.sampled_from([b"hi", b"\xff\xfe"]))
        elif kind == Kind.BOOL:
            payload = bytes([draw(st.integers(0, 2))])
        elif kind == Kind.CHAR:
            payload = _u32s(draw(st.sampled_from([0x41, 0xD800])))
        else:
            payload = draw(st.binary(min_size=1, max_size=5))
        nodes.append((kind, payload))
    return graph(nodes, draw(st.integers(0, n - 1)))


HYPO = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class TestDifferential:
    """Generated inputs: both implementations agree on every one."""

    @HYPO
    @given(values)
    def test_values_roundtrip(self, value: Value) -> None:
        want = check_encode(value)
        assert want[0] == "ok"
        assert sp.try_encode(value) == want[1]
        check_decode(want[1])
        assert sp.try_decode(want[1]) is not None

    @HYPO
    @given(values, st.data())
    def test_mutated_buffers(self, value: Value, data: st.DataObject) -> None:
        buf = py_encode(value)
        for _ in range(data.draw(st.integers(1, 3))):
            buf = _mutate(buf, data.draw)
        check_decode(buf)

    @HYPO
    @given(graphs())
    def test_graphs(self, buf: bytes) -> None:
        check_decode(buf)

    @HYPO
    @given(
        values,
        st.builds(
            Limits,
            max_buffer_size=st.integers(0, 400),
            max_node_count=st.integers(0, 40),
            max_payload_size=st.integers(0, 100),
            max_sequence_len=st.integers(0, 6),
            max_decoded_nodes=st.none() | st.integers(0, 40),
        ),
    )
    def test_limits(self, value: Value, limits: Limits) -> None:
        check_decode(py_encode(value), limits)

    @HYPO
    @given(values)
    def test_other_buffer_types(self, value: Value) -> None:
        data = py_encode(value)
        for alt in (bytearray(data), memoryview(data)):
            check_decode(alt)

    @HYPO
    @given(st.binary(max_size=64))
    def test_noise(self, data: bytes) -> None:
        check_decode(b"CGRF\x02\x00\x00\x00" + data)


# ---------------------------------------------------------- irregular objects


def _bare(cls: type[Value], **slots: Any) -> Value:
    """A value built around the constructors' checks (as a careless caller might)."""
    obj = object.__new__(cls)
    for name, v in slots.items():
        object.__setattr__(obj, name, v)
    return obj


class _MyS64(S64):
    __slots__ = ()


IRREGULAR: list[tuple[str, Any]] = [
    ("subclass", _MyS64(5)),
    ("subclass inside", Tuple(S64(1), _MyS64(2))),
    ("unset slot", _bare(S64)),
    ("unset items", _bare(Tuple)),
    ("u8 out of range", _bare(U8, value=300)),
    ("u8 negative", _bare(U8, value=-1)),
    ("s8 wraps in python", List(ValueType.S8, [_bare(S8, value=300)])),
    ("bool as int", _bare(Bool, value=1)),
    ("float in int", _bare(S64, value=1.5)),
    ("bool in int", _bare(S32, value=True)),
    ("huge int", _bare(U64, value=2**64)),
    ("f32 bits too big", _bare(F32, bits=2**32)),
    ("surrogate string", _bare(String, value="a\ud800b")),
    ("surrogate char", _bare(Char, value="\udc00")),
    ("bytes char", _bare(Char, value=b"a")),
    ("long char", _bare(Char, value="ab")),
    ("surrogate field name", Record("r", [("\ud800", S64(1))])),
    ("surrogate record name", _bare(Record, type_name="\ud800", fields=())),
    ("mismatched array", List(ValueType.U8, [U16(1)])),
    ("mismatched nested array", Tuple(List(ValueType.F32, [F64(1.0)]))),
    ("list fields", _bare(Record, type_name="r", fields=[("x", S64(1))])),
    ("list pair", _bare(Record, type_name="r", fields=(["x", S64(1)],))),
    ("three-tuple pair", _bare(Record, type_name="r", fields=(("x", S64(1), 2),))),
    ("list items", _bare(Tuple, items=[S64(1)])),
    ("variant tag too big", _bare(Variant, type_name="", case_name="", tag=2**32, payload=())),
    ("variant tag bool", _bare(Variant, type_name="", case_name="", tag=True, payload=())),
    ("result is_err int", _bare(Result, ok_type=ValueType.U8, err_type=ValueType.U8,
                                value=U8(1), is_err=1)),
    ("option holds int", _bare(Option, inner_type=ValueType.U8, value=5)),
    ("elem type not a type", _bare(List, elem_type="u8", items=())),
    ("odd type tag", List(ValueType.list(_bare(ValueType, tag=0x30, name=None, args=(), _hash=0)), [])),
    ("tag past a byte", Option(_bare(ValueType, tag=2**32 + 1, name=None, args=(), _hash=0), None)),
    ("negative tag", Option(_bare(ValueType, tag=-1, name=None, args=(), _hash=0), None)),
    ("array tag as type", Option(_bare(ValueType, tag=Kind.ARRAY, name=None, args=(), _hash=0), None)),
    ("elem tag past a byte", List(_bare(ValueType, tag=2**32 + 12, name=None, args=(), _hash=0), [])),
    ("type with None args", List(_bare(ValueType, tag=Kind.TUPLE, name=None, args=None, _hash=0), [])),
    ("surrogate type name", List(ValueType.record("\ud800"), [])),
    ("not a value", 5),
    ("plain tuple", (S64(1),)),
    ("none", None),
]


class TestIrregular:
    """Objects the C encoder does not recognise go to Python, which decides."""

    @pytest.mark.parametrize(("label", "value"), IRREGULAR, ids=[c[0] for c in IRREGULAR])
    def test_encode(self, label: str, value: Any) -> None:
        check_encode(value)
        assert sp.try_encode(value) is None

    def test_encoded_value(self) -> None:
        ev = abi.EncodedValue.of(S64(3))
        assert abi.encode(ev) == py_encode(ev) == ev.data

    def test_int_enum_tags_and_nameless_types(self) -> None:
        t = _bare(ValueType, tag=Kind.RECORD, name=None, args=(), _hash=0)
        v = List(ValueType.list(t), [List(t, [])])
        assert sp.try_encode(v) == py_encode(v)

    def test_not_bytes(self) -> None:
        for data in ("CGRF", 3, None, [1, 2], b"x" * 2):
            check_decode(data)

    def test_unusual_limits(self) -> None:
        data = py_encode(Tuple(S64(1), String("x")))

        class MyLimits(Limits):
            __slots__ = ()

        for limits in (MyLimits(), Limits(max_buffer_size=-1), Limits(max_sequence_len=-1),
                       Limits(max_decoded_nodes=-5), Limits(max_node_count=10**30)):
            check_decode(data, limits)
        assert sp.try_decode(data, MyLimits()) is None
        assert sp.try_decode(data, Limits(max_node_count=10**30)) is not None


# ------------------------------------------------------------------ deep values


def _deep_tuple(depth: int) -> Value:
    v: Value = S64(7)
    for _ in range(depth):
        v = Tuple.from_items((v,))
    return v


def _depth(v: Value) -> int:
    n = 0
    while type(v) is Tuple:
        (v,) = v.items
        n += 1
    return n


class TestDeep:
    """No recursion in C either: a million levels in both directions."""

    def test_million_deep_value(self) -> None:
        v = _deep_tuple(1_000_000)
        data = sp.try_encode(v)
        assert data is not None
        assert len(data) == 16 + 16 + 16 * 1_000_000
        decoded = sp.try_decode(data)
        assert decoded is not None
        assert _depth(decoded) == 1_000_000
        assert abi.encode(decoded) == data

    def test_deep_value_matches_python(self) -> None:
        v = Option(ValueType.S64, _deep_tuple(50_000))
        data = check_encode(v)[1]
        check_decode(data)

    def test_deep_types(self) -> None:
        t = ValueType.S64
        for _ in range(30_000):
            t = ValueType.list(t)
        v = Option(t, None)
        data = check_encode(v)[1]
        assert sp.try_encode(v) == data
        check_decode(data)
        assert sp.try_decode(data) is not None

    def test_deep_variant_chain(self) -> None:
        v: Value = Variant("peano", "zero", 0)
        for _ in range(50_000):
            v = Variant("peano", "succ", 1, [v])
        data = sp.try_encode(v)
        assert data == py_encode(v)
        assert_same(sp.try_decode(data), py_decode(data))


# ------------------------------------------------------------------------ DAGs


def _diamonds(levels: int) -> bytes:
    """Each level's tuple holds the level below twice: 2**levels leaves when expanded."""
    nodes: list[tuple[int, bytes]] = [(Kind.S64, struct.pack("<q", 1))]
    for i in range(levels):
        nodes.append((Kind.TUPLE, _u32s(2, i, i)))
    return graph(nodes, levels)


class TestSharing:
    """Shared nodes decode like Python: one object, the expansion bound, cycles refused."""

    def test_shared_nodes_are_one_object(self) -> None:
        value = sp.try_decode(_diamonds(3))
        assert value is not None
        assert value.items[0] is value.items[1]
        assert_same(value, py_decode(_diamonds(3)))

    def test_expansion_bound(self) -> None:
        data = _diamonds(40)  # 41 nodes, 2**41 - 1 expanded
        check_decode(data)
        assert sp.try_decode(data) is None
        with pytest.raises(abi.InvalidEncoding, match="Decoded value exceeds 10000000 nodes"):
            abi.decode(data)
        small = _diamonds(10)  # 2047 expanded nodes
        for budget in (2046, 2047):
            check_decode(small, Limits(max_decoded_nodes=budget))
        assert sp.try_decode(small, Limits(max_decoded_nodes=2046)) is None
        assert sp.try_decode(small, Limits(max_decoded_nodes=2047)) is not None

    def test_cycles(self) -> None:
        data = graph([(Kind.TUPLE, _u32s(1, 1)), (Kind.TUPLE, _u32s(1, 0))], 0)
        check_decode(data)
        assert sp.try_decode(data) is None
        self_loop = graph([(Kind.OPTION, b"\x0c\x01" + _u32s(0))], 0)
        check_decode(self_loop)

    def test_unreachable_nodes_are_validated(self) -> None:
        good = graph([(Kind.STRING, _u32s(1) + b"\xff"), (Kind.BOOL, b"\x01")], 1)
        check_decode(good)
        assert sp.try_decode(good) is None  # invalid UTF-8 in an unreachable node
        # An unreachable Array with a bad char is fine: Array chars are checked on decode.
        ok = graph([(Kind.ARRAY, b"\x12" + _u32s(1, 0xD800)), (Kind.BOOL, b"\x01")], 1)
        assert_same(sp.try_decode(ok), py_decode(ok))

    def test_lenient_presence_and_result_tag(self) -> None:
        some2 = graph([(Kind.OPTION, b"\x0c\x02")], 0)
        err2 = graph([(Kind.U8, b"\x05"), (Kind.RESULT, b"\x0c\x06" + _u32s(2) + b"\x01" + _u32s(0))], 1)
        for data in (some2, err2):
            check_decode(data)
            assert sp.try_decode(data) is not None

    def test_shared_identity_like_python(self) -> None:
        # A leaf shared by two parents is one object in both implementations.
        data = graph([(Kind.STRING, _u32s(3) + b"abc"), (Kind.TUPLE, _u32s(2, 0, 0))], 1)
        for fn in (sp.try_decode, py_decode):
            v = fn(data)
            assert v.items[0] is v.items[1]


# ------------------------------------------------------------------ references


def _sample_buffers() -> list[bytes]:
    v = Record("r", [
        ("a", List(ValueType.U8, [U8(i % 256) for i in range(300)])),
        ("b", List(ValueType.STRING, [String(f"s{i}") for i in range(50)])),
        ("c", Option(ValueType.list(ValueType.record("x")), Variant("t", "c", 3, [F64(1.5), Char("é")]))),
        ("d", Result(ValueType.UNIT, ValueType.STRING, String("é" * 100), is_err=True)),
        ("e", List(ValueType.BOOL, [Bool(True), Bool(False)])),
        ("f", List(ValueType.CHAR, [Char("x")])),
    ])
    bad_late = graph([(Kind.U8, b"\x01"), (Kind.ARRAY, b"\x12" + _u32s(2, 0x41, 0xD800)),
                      (Kind.TUPLE, _u32s(2, 0, 1))], 2)
    return [py_encode(v), _diamonds(8), _diamonds(40), bad_late, py_encode(v)[:-1]]


class TestReferences:
    """No leaks: decoding and encoding in a loop keeps memory and refcounts flat."""

    def test_refcounts_of_shared_objects(self) -> None:
        watched = [_U8_CACHE[7], ValueType.U8, ValueType.STRING, decoder_module._TRUE,
                   decoder_module._FALSE, ValueType.UNIT]
        bufs = _sample_buffers()
        for data in bufs:  # warm the caches
            v = sp.try_decode(data)
            if v is not None:
                sp.try_encode(v)
            del v
        gc.collect()
        before = [sys.getrefcount(o) for o in watched]
        for _ in range(50):
            for data in bufs:
                v = sp.try_decode(data)
                if v is not None:
                    assert sp.try_encode(v) is not None
                del v
        gc.collect()
        assert [sys.getrefcount(o) for o in watched] == before

    def test_memory_is_flat(self) -> None:
        bufs = _sample_buffers()
        values = [py_decode(b) for b in bufs[:2]]

        def work() -> None:
            for _ in range(40):
                for data in bufs:
                    outcome(abi.decode, data)
                    sp.try_decode(data)
                for v in values:
                    sp.try_encode(v)
                outcome(abi.encode, List(ValueType.U8, [U16(1)]))

        work()  # warm caches and allocator pools
        gc.collect()
        tracemalloc.start()
        try:
            work()
            gc.collect()
            first, _ = tracemalloc.get_traced_memory()
            for _ in range(3):
                work()
            gc.collect()
            second, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert second - first < 64 * 1024


class TestCollector:
    """Large decodes pause the garbage collector and always leave it as they found it."""

    def _big(self, name: str = "config") -> bytes:
        return py_encode(List(ValueType.record(name), [Record(name, [("x", S64(i))]) for i in range(500)]))

    def test_restored_after_success_and_deferral(self) -> None:
        data = self._big()
        assert gc.isenabled()
        assert sp.try_decode(data) is not None
        assert gc.isenabled()
        assert sp.try_decode(data[:-1]) is None  # invalid: deferred after pausing
        assert gc.isenabled()
        with pytest.raises(abi.AbiError):
            abi.decode(data[:-1])
        assert gc.isenabled()

    def test_caller_disabled_stays_disabled(self) -> None:
        gc.disable()
        try:
            assert sp.try_decode(self._big()) is not None
            assert not gc.isenabled()
        finally:
            gc.enable()

    def test_runs_during_python_code(self) -> None:
        # A type the decoder has not seen makes it call the ValueType constructor
        # (Python code, other threads may run): the collector is on meanwhile.
        seen: list[bool] = []

        def profile(frame: Any, event: str, arg: Any) -> None:
            if event == "call" and frame.f_code is ValueType.__init__.__code__:
                seen.append(gc.isenabled())

        data = self._big("never-seen-before-" + str(os.getpid()))
        sys.setprofile(profile)
        try:
            value = sp.try_decode(data)
        finally:
            sys.setprofile(None)
        assert value is not None
        assert seen
        assert all(seen)
        assert gc.isenabled()


class TestSharedObjects:
    """The C decoder hands out the shared objects the Python decoder hands out."""

    def test_interned_values_and_types(self) -> None:
        v = sp.try_decode(py_encode(Tuple(U8(7), Bool(True), Bool(False), List(ValueType.U8, [U8(200)]),
                                          Option(ValueType.STRING, None), List(ValueType.UNIT, []))))
        u8, t, f, arr, opt, units = v.items
        assert u8 is _U8_CACHE[7]
        assert arr.items[0] is _U8_CACHE[200]
        assert t is decoder_module._TRUE
        assert f is decoder_module._FALSE
        assert arr.elem_type is ValueType.U8
        assert opt.inner_type is ValueType.STRING
        assert units.elem_type is ValueType.UNIT
        assert sp.try_decode(py_encode(Tuple())) is decoder_module._UNIT
        assert sp.try_decode(py_encode(Tuple()), Limits()) is decoder_module._UNIT

    def test_refuses_classes_without_slots(self) -> None:
        code = (
            "from packr_replay.abi import _accel, values\n"
            "from packr_replay.abi.types import Kind\n"
            "class Loose(values.Value):  # a __dict__ class: value is not a slot\n"
            "    KIND = Kind.S64\n"
            "    value = property(lambda self: self.__dict__['value'])\n"
            "classes = dict(values._CLASS_BY_KIND)\n"
            "classes[Kind.S64] = Loose\n"
            "values._CLASS_BY_KIND.clear(); values._CLASS_BY_KIND.update(classes)\n"
            "module, why = _accel.load()\n"
            "print(module is None, why)\n"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True).stdout
        assert out.startswith("True the C extension does not fit the value model")
        assert "Loose.value is not a plain __slots__ attribute" in out
