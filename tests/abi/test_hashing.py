"""Interface hashing (spec §6.3) against packr's golden hash vectors and unit tests."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from packr_replay.abi import ValueType
from packr_replay.abi.hashing import (
    HASH_BOOL,
    HASH_S32,
    HASH_S64,
    HASH_SELF_REF,
    HASH_STRING,
    HASH_U8,
    PRIMITIVE_HASHES,
    from_u64s,
    hash_function,
    hash_interface,
    hash_list,
    hash_option,
    hash_record,
    hash_ref,
    hash_result,
    hash_tuple,
    hash_value_type,
    hash_variant,
    to_hex,
    to_u64s,
)
from tests.golden_vectors import cases


def evaluate(expr: dict[str, Any]) -> bytes:
    """The hash of a vector's ``expr`` tree, built only from the low-level functions."""
    ((key, arg),) = expr.items()
    if key == "prim":
        return PRIMITIVE_HASHES[arg]
    if key == "list":
        return hash_list(evaluate(arg))
    if key == "option":
        return hash_option(evaluate(arg))
    if key == "result":
        return hash_result(evaluate(arg[0]), evaluate(arg[1]))
    if key == "tuple":
        return hash_tuple([evaluate(e) for e in arg])
    if key == "record":
        return hash_record([(name, evaluate(e)) for name, e in arg])
    if key == "variant":
        return hash_variant([(name, None if e is None else evaluate(e)) for name, e in arg])
    if key == "function":
        return hash_function(
            [evaluate(e) for e in arg["params"]], [evaluate(e) for e in arg["results"]]
        )
    if key == "interface":
        return hash_interface(
            arg["name"],
            [(name, evaluate(e)) for name, e in arg["types"]],
            [(name, evaluate(e)) for name, e in arg["funcs"]],
        )
    raise AssertionError(f"unknown hash expr {key!r}")


class TestVectors:
    """Every golden hash vector reproduces byte for byte."""

    @pytest.mark.parametrize("case", cases("hash"))
    def test_hex(self, case: dict[str, Any]) -> None:
        assert to_hex(evaluate(case["expr"])) == case["hex"]

    @pytest.mark.parametrize("case", cases("hash"))
    def test_u64s(self, case: dict[str, Any]) -> None:
        digest = evaluate(case["expr"])
        assert list(to_u64s(digest)) == case["u64s"]
        assert from_u64s(*case["u64s"]) == bytes.fromhex(case["hex"])


class TestPrimitives:
    """Primitive hashes are constants: zero except byte 1; SELF_REF is ff ff."""

    def test_layout(self) -> None:
        ids = {name: h[1] for name, h in PRIMITIVE_HASHES.items() if name != "self-ref"}
        assert list(ids.values()) == list(range(1, 15))
        for name, h in PRIMITIVE_HASHES.items():
            assert len(h) == 32
            assert h[2:] == bytes(30), name
        assert HASH_SELF_REF[:2] == b"\xff\xff"

    def test_unique(self) -> None:
        assert len(set(PRIMITIVE_HASHES.values())) == len(PRIMITIVE_HASHES) == 15


class TestPackrUnitTests:
    """The properties packr's own hash.rs tests check."""

    def test_list_hashes_differ(self) -> None:
        assert hash_list(HASH_S32) != hash_list(HASH_S64)
        assert hash_list(HASH_S32) != HASH_S32

    def test_record_is_structural(self) -> None:
        fields = [("x", HASH_S32), ("y", HASH_S32)]
        assert hash_record(fields) == hash_record(list(fields))

    def test_record_includes_field_names(self) -> None:
        xy = hash_record([("x", HASH_S32), ("y", HASH_S32)])
        assert xy != hash_record([("a", HASH_S32), ("b", HASH_S32)])

    def test_tuple_differs_from_record(self) -> None:
        assert hash_tuple([HASH_S32, HASH_S32]) != hash_record([("x", HASH_S32), ("y", HASH_S32)])

    def test_function_ignores_its_name(self) -> None:
        assert hash_function([HASH_S32, HASH_S32], [HASH_S32]) == hash_function(
            [HASH_S32, HASH_S32], [HASH_S32]
        )
        assert hash_function([HASH_S32], []) != hash_function([], [HASH_S32])

    def test_interface_includes_binding_names(self) -> None:
        f = hash_function([HASH_S32], [HASH_S32])
        assert hash_interface("math", [], [("add", f)]) != hash_interface("math", [], [("inc", f)])

    def test_u64_roundtrip(self) -> None:
        h = hash_list(HASH_S32)
        assert from_u64s(*to_u64s(h)) == h


class TestOrder:
    """The low-level builders hash in the order given; canonical order is the caller's."""

    def test_record_not_sorted(self) -> None:
        assert hash_record([("y", HASH_S32), ("x", HASH_S32)]) != hash_record(
            [("x", HASH_S32), ("y", HASH_S32)]
        )

    def test_variant_not_sorted(self) -> None:
        assert hash_variant([("b", None), ("a", HASH_U8)]) != hash_variant(
            [("a", HASH_U8), ("b", None)]
        )

    def test_interface_not_sorted(self) -> None:
        f, g = hash_function([], []), hash_function([HASH_BOOL], [])
        assert hash_interface("i", [], [("b", f), ("a", g)]) != hash_interface(
            "i", [], [("a", g), ("b", f)]
        )

    def test_type_bindings_are_hashed(self) -> None:
        assert hash_interface("i", [("t", HASH_U8)], []) != hash_interface("i", [], [])

    def test_stream_layout(self) -> None:
        # 0x14, count, then per field: u32 name length, UTF-8 name, 32-byte child.
        name = "名前".encode()
        stream = b"\x14" + (1).to_bytes(4, "little") + len(name).to_bytes(4, "little")
        stream += name + HASH_STRING
        assert hash_record([("名前", HASH_STRING)]) == hashlib.sha256(stream).digest()

    def test_variant_payload_marker(self) -> None:
        stream = b"\x15" + (1).to_bytes(4, "little") + (1).to_bytes(4, "little") + b"a" + b"\x00"
        assert hash_variant([("a", None)]) == hashlib.sha256(stream).digest()


class TestValueTypeHash:
    """``hash_value_type`` hashes structural ValueTypes, iteratively."""

    def test_matches_builders(self) -> None:
        t = ValueType.result(
            ValueType.list(ValueType.option(ValueType.S32)),
            ValueType.tuple(ValueType.STRING, ValueType.UNIT),
        )
        expected = hash_result(
            hash_list(hash_option(HASH_S32)), hash_tuple([HASH_STRING, hash_tuple([])])
        )
        assert hash_value_type(t) == expected

    def test_unresolved_named_type_hashes_as_sha256_of_ref_path(self) -> None:
        """packr's host-side ``hash_type``: an unresolved ``Type::Ref`` is
        ``sha256("ref:" + path)`` (guests would embed HASH_SELF_REF)."""
        point = hashlib.sha256(b"ref:point").digest()
        assert hash_ref("point") == point
        assert hash_value_type(ValueType.record("point")) == point
        assert hash_value_type(ValueType.list(ValueType.variant("expr"))) == hash_list(
            hashlib.sha256(b"ref:expr").digest()
        )
        assert hash_ref("名") == hashlib.sha256("ref:名".encode()).digest()

    def test_resolver_may_leave_a_name_unresolved(self) -> None:
        def resolve(t: ValueType) -> bytes | None:
            return HASH_S32 if t.name == "known" else None

        t = ValueType.tuple(ValueType.record("known"), ValueType.record("other"))
        assert hash_value_type(t, resolve) == hash_tuple([HASH_S32, hash_ref("other")])

    def test_resolver(self) -> None:
        point = hash_record([("x", HASH_S32), ("y", HASH_S32)])
        seen: list[ValueType] = []

        def resolve(t: ValueType) -> bytes:
            seen.append(t)
            return point

        assert hash_value_type(ValueType.option(ValueType.record("p")), resolve) == hash_option(
            point
        )
        assert seen == [ValueType.record("p")]

    def test_deep_nesting(self) -> None:
        depth = 100_000
        t = ValueType.U8
        for _ in range(depth):
            t = ValueType.list(t)
        expected = HASH_U8
        for _ in range(depth):
            expected = hash_list(expected)
        assert hash_value_type(t) == expected


class TestConversions:
    """u64 words, hex, and input checking."""

    @given(st.binary(min_size=32, max_size=32))
    def test_u64s_roundtrip(self, digest: bytes) -> None:
        words = to_u64s(digest)
        assert all(0 <= w < 2**64 for w in words)
        assert from_u64s(*words) == digest
        assert words[0] == int.from_bytes(digest[:8], "little")

    @given(st.binary(min_size=32, max_size=32))
    def test_hex(self, digest: bytes) -> None:
        assert to_hex(digest) == digest.hex()

    def test_bad_lengths(self) -> None:
        with pytest.raises(ValueError, match="32 bytes"):
            to_u64s(bytes(31))
        with pytest.raises(ValueError, match="32 bytes"):
            hash_list(bytes(33))

    def test_word_out_of_range(self) -> None:
        with pytest.raises(ValueError, match="u64"):
            from_u64s(2**64, 0, 0, 0)
