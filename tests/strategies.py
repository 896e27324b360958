"""Hypothesis strategies for packr values and types, shared by the test suites."""

from __future__ import annotations

import struct

from hypothesis import strategies as st

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
    List,
    Option,
    Record,
    Result,
    String,
    Tuple,
    Value,
    ValueType,
    Variant,
)

names = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), max_size=8
)  # any UTF-8 name, empty included

primitive_types = st.sampled_from(
    [ValueType.BOOL, ValueType.U8, ValueType.U16, ValueType.U32, ValueType.U64, ValueType.S8,
     ValueType.S16, ValueType.S32, ValueType.S64, ValueType.F32, ValueType.F64, ValueType.CHAR,
     ValueType.STRING, ValueType.FLAGS]
)  # fmt: skip

value_types: st.SearchStrategy[ValueType] = st.recursive(
    primitive_types | names.map(ValueType.record) | names.map(ValueType.variant),
    lambda inner: st.one_of(
        inner.map(ValueType.list),
        inner.map(ValueType.option),
        st.tuples(inner, inner).map(lambda p: ValueType.result(*p)),
        st.lists(inner, max_size=3).map(lambda ts: ValueType.tuple(*ts)),
    ),
    max_leaves=6,
)

f32_bits = st.integers(0, 2**32 - 1).map(F32.from_bits)
f64_bits = st.integers(0, 2**64 - 1).map(F64.from_bits)

scalars: st.SearchStrategy[Value] = st.one_of(
    st.booleans().map(Bool),
    st.integers(0, 2**8 - 1).map(U8),
    st.integers(0, 2**16 - 1).map(U16),
    st.integers(0, 2**32 - 1).map(U32),
    st.integers(0, 2**64 - 1).map(U64),
    st.integers(-(2**7), 2**7 - 1).map(S8),
    st.integers(-(2**15), 2**15 - 1).map(S16),
    st.integers(-(2**31), 2**31 - 1).map(S32),
    st.integers(-(2**63), 2**63 - 1).map(S64),
    f32_bits,
    f64_bits,
    st.characters(blacklist_categories=("Cs",)).map(Char),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20).map(String),
    st.integers(0, 2**64 - 1).map(Flags),
)

_ELEM = {
    ValueType.BOOL: st.booleans().map(Bool),
    ValueType.U8: st.integers(0, 255).map(U8),
    ValueType.S32: st.integers(-(2**31), 2**31 - 1).map(S32),
    ValueType.F64: f64_bits,
    ValueType.CHAR: st.characters(blacklist_categories=("Cs",)).map(Char),
    ValueType.U64: st.integers(0, 2**64 - 1).map(U64),
}

arrays: st.SearchStrategy[Value] = st.sampled_from(sorted(_ELEM, key=str)).flatmap(
    lambda t: st.lists(_ELEM[t], max_size=12).map(lambda items: List(t, items))
)


def _compound(inner: st.SearchStrategy[Value]) -> st.SearchStrategy[Value]:
    non_fixed = value_types.filter(lambda t: t.fixed_width is None)
    return st.one_of(
        st.tuples(non_fixed, st.lists(inner, max_size=4)).map(lambda p: List(p[0], p[1])),
        st.tuples(value_types, st.none() | inner).map(lambda p: Option(p[0], p[1])),
        st.tuples(value_types, value_types, inner, st.booleans()).map(
            lambda p: Result(p[0], p[1], p[2], is_err=p[3])
        ),
        st.tuples(names, st.lists(st.tuples(names, inner), max_size=4)).map(
            lambda p: Record(p[0], p[1])
        ),
        st.tuples(names, names, st.integers(0, 2**32 - 1), st.lists(inner, max_size=3)).map(
            lambda p: Variant(p[0], p[1], p[2], p[3])
        ),
        st.lists(inner, max_size=4).map(lambda items: Tuple(*items)),
    )


#: Any value: every kind, nested and wide, heterogeneous lists, NaN payloads, odd names.
values: st.SearchStrategy[Value] = st.recursive(scalars | arrays, _compound, max_leaves=30)


def has_nan(v: Value) -> bool:
    """Whether a value holds a NaN somewhere (such values are unequal to themselves)."""
    stack = [v]
    while stack:
        x = stack.pop()
        if isinstance(x, F32):
            if (x.bits & 0x7F800000) == 0x7F800000 and x.bits & 0x7FFFFF:
                return True
        elif isinstance(x, F64):
            if struct.unpack("<d", struct.pack("<Q", x.bits))[0] != x.value or x.value != x.value:
                return True
        elif isinstance(x, (List, Tuple)):
            stack.extend(x.items)
        elif isinstance(x, Record):
            stack.extend(f for _, f in x.fields)
        elif isinstance(x, Variant):
            stack.extend(x.payload)
        elif isinstance(x, (Option, Result)) and x.value is not None:
            stack.append(x.value)
    return False
