"""packr's schema-checked codec and type-space validation (``abi.schema``).

The first class ports packr 0.7.0's ``tests/schema_validation.rs`` one for one (its
interfaces written as TypeDescs, since the Pact parser is deliberately left out).
"""

from __future__ import annotations

import struct

import pytest

from packr_replay.abi import (
    S32,
    S64,
    U8,
    UNIT,
    Bool,
    Flags,
    List,
    Option,
    Record,
    Result,
    String,
    Tuple,
    ValueType,
    Variant,
    encode,
)
from packr_replay.abi.metadata import TypeDesc as TD
from packr_replay.abi.schema import (
    decode_with_schema,
    encode_with_schema,
    validate_value_in_type_space,
)
from packr_replay.errors import SchemaError, TypeValidationError

# variant node { leaf(s64), list(list<node>) }
NODE = TD.variant("node", [("leaf", TD.S64), ("list", TD.list(TD.ref("node")))])
CONFIG = TD.record("config", [("name", TD.STRING), ("enabled", TD.BOOL)])
LEAF = Variant("node", "leaf", 0, [S64(7)])


def buffer(root: int, *nodes: tuple[int, bytes]) -> bytes:
    out = b"CGRF" + struct.pack("<HHII", 2, 0, len(nodes), root)
    for kind, payload in nodes:
        out += struct.pack("<BBHI", kind, 0, 0, len(payload)) + payload
    return out


def name(text: str) -> bytes:
    return struct.pack("<I", len(text)) + text.encode()


class TestPackrSchemaValidation:
    """packr's schema_validation.rs: the graph is checked against a declared type."""

    def test_validate_graph_against_schema(self) -> None:
        value = Variant("node", "list", 1, [List(ValueType.variant("node"), [LEAF])])
        assert decode_with_schema(encode(value), TD.ref("node"), [NODE]) == value

    def test_reject_variant_tag_out_of_range(self) -> None:
        bad = buffer(0, (0x08, name("node") + name("bad") + struct.pack("<II", 99, 0)))
        with pytest.raises(SchemaError) as info:
            decode_with_schema(bad, TD.ref("node"), [NODE])
        assert info.value.kind == "VariantTagOutOfRange"
        assert (info.value.node, info.value.tag, info.value.max) == (0, 99, 2)
        assert str(info.value) == "Variant tag out of range at node 0: tag 99, max 2"

    def test_reject_tuple_arity_mismatch(self) -> None:
        bad = buffer(0, (0x0B, struct.pack("<II", 1, 1)), (0x02, struct.pack("<i", 1)))
        with pytest.raises(SchemaError) as info:
            decode_with_schema(bad, TD.tuple(TD.S32, TD.S32))
        assert info.value.kind == "TypeMismatch"
        assert str(info.value) == "Type mismatch at node 0: expected tuple(2), got tuple(1)"

    def test_reject_wrong_node_kind(self) -> None:
        with pytest.raises(SchemaError) as info:
            decode_with_schema(encode(Bool(True)), TD.STRING)
        assert str(info.value) == "Type mismatch at node 0: expected String, got Bool"

    def test_decode_with_schema_roundtrip(self) -> None:
        value = Variant("node", "leaf", 0, [S64(42)])
        assert decode_with_schema(encode(value), TD.ref("node"), [NODE]) == value

    def test_decode_with_schema_rejects_mismatch(self) -> None:
        with pytest.raises(SchemaError) as info:
            decode_with_schema(encode(String("bad")), TD.ref("node"), [NODE])
        assert info.value.kind == "TypeMismatch"
        assert (info.value.expected, info.value.actual) == ("Variant", "String")

    def test_validate_flags_mask(self) -> None:
        assert decode_with_schema(
            encode(Flags(0b101)), TD.ref("mode"), {"mode": TD.FLAGS}
        ) == Flags(0b101)

    def test_encode_with_schema_rejects_record_field_order(self) -> None:
        value = Record("config", [("enabled", Bool(True)), ("name", String("x"))])
        with pytest.raises(SchemaError) as info:
            encode_with_schema(value, TD.ref("config"), [CONFIG])
        assert info.value.kind == "TypeMismatch"
        assert str(info.value) == "Type mismatch at node 0: expected field name, got field enabled"


class TestDecodeWithSchema:
    """The graph rules: kinds, positions, tags, shared nodes, packr's quirks."""

    def test_inlined_types_and_their_self_references(self) -> None:
        value = Variant("node", "list", 1, [List(ValueType.variant("node"), [LEAF, LEAF])])
        assert decode_with_schema(encode(value), NODE) == value

    def test_undefined_and_self_outside(self) -> None:
        with pytest.raises(SchemaError, match="Undefined type: nowhere"):
            decode_with_schema(encode(S64(1)), TD.ref("nowhere"))
        with pytest.raises(SchemaError, match="Self reference used outside"):
            decode_with_schema(encode(S64(1)), TD.ref("self"))

    def test_bad_bytes_are_invalid_encoding(self) -> None:
        with pytest.raises(SchemaError) as info:
            decode_with_schema(b"XXXX", TD.S64)
        assert info.value.kind == "InvalidEncoding"
        assert str(info.value) == "Invalid encoding: Invalid encoding: Invalid magic"

    def test_records_by_position_not_name(self) -> None:
        swapped = Record("config", [("x", String("a")), ("y", Bool(True))])
        assert decode_with_schema(encode(swapped), CONFIG) == swapped
        with pytest.raises(SchemaError, match=r"expected record\(2\), got record\(1\)"):
            decode_with_schema(encode(Record("config", [("name", String("a"))])), CONFIG)

    def test_variant_payload_rules(self) -> None:
        enum = TD.enum("e", ["a", "b"])
        assert decode_with_schema(encode(Variant("e", "b", 1)), enum) == Variant("e", "b", 1)
        with pytest.raises(SchemaError, match="Variant payload mismatch at node 1 tag 1"):
            decode_with_schema(encode(Variant("e", "b", 1, [S64(1)])), enum)
        with pytest.raises(SchemaError, match="Variant payload mismatch at node 0 tag 0"):
            decode_with_schema(encode(Variant("node", "leaf", 0)), NODE)

    def test_unit_has_no_node(self) -> None:
        # packr gives Type::Unit no node: a unit-typed ok arm must carry no payload,
        # and CGRF results always carry one.
        ok_unit = Result(ValueType.UNIT, ValueType.STRING, UNIT)
        with pytest.raises(SchemaError, match="Variant payload mismatch"):
            decode_with_schema(encode(ok_unit), TD.result(TD.UNIT, TD.STRING))
        assert decode_with_schema(encode(ok_unit), TD.result(TD.tuple(), TD.STRING)) == ok_unit
        with pytest.raises(SchemaError, match="expected Unit, got Tuple"):
            decode_with_schema(encode(UNIT), TD.UNIT)

    def test_result_arms(self) -> None:
        err = Result(ValueType.S64, ValueType.STRING, String("no"), is_err=True)
        assert decode_with_schema(encode(err), TD.result(TD.S64, TD.STRING)) == err
        with pytest.raises(SchemaError, match="expected S64, got String"):
            decode_with_schema(encode(err), TD.result(TD.STRING, TD.S64))

    def test_arrays_are_checked_by_width(self) -> None:
        data = encode(List(ValueType.U8, [U8(1), U8(2)]))
        assert decode_with_schema(data, TD.list(TD.S8)) == List(ValueType.U8, [U8(1), U8(2)])
        with pytest.raises(SchemaError, match="Truncated node payload"):
            decode_with_schema(data, TD.list(TD.U16))
        with pytest.raises(SchemaError, match="expected List, got Array"):
            decode_with_schema(data, TD.list(TD.STRING))
        wide = encode(List(ValueType.S32, [S32(1)]))
        with pytest.raises(SchemaError, match="Trailing payload bytes at node 0"):
            decode_with_schema(wide, TD.list(TD.U8))

    def test_value_is_the_escape_hatch(self) -> None:
        assert decode_with_schema(encode(S64(1)), TD.VALUE) == S64(1)
        v = Tuple(S64(1), String("x"))
        assert decode_with_schema(encode(v), TD.tuple(TD.VALUE, TD.STRING)) == v

    def test_a_shared_node_is_one_type(self) -> None:
        # node 0 is an s64 that both tuple items point at
        shared = buffer(1, (0x03, struct.pack("<q", 5)), (0x0B, struct.pack("<III", 2, 0, 0)))
        assert decode_with_schema(shared, TD.tuple(TD.S64, TD.S64)) == Tuple(S64(5), S64(5))
        with pytest.raises(SchemaError, match="Type mismatch at node 0: expected s64, got value"):
            decode_with_schema(shared, TD.tuple(TD.S64, TD.VALUE))

    def test_deep_values(self) -> None:
        value = LEAF
        for _ in range(20_000):
            value = Variant("node", "list", 1, [List(ValueType.variant("node"), [value])])
        assert decode_with_schema(encode(value), NODE) == value
        validate_value_in_type_space(value, NODE)
        assert encode_with_schema(value, NODE) == encode(value)


class TestEncodeWithSchema:
    """The value rules: names in order, tags, arity; packr has no rule for results."""

    def test_valid(self) -> None:
        value = Record("config", [("name", String("x")), ("enabled", Bool(False))])
        assert encode_with_schema(value, CONFIG) == encode(value)
        tree = Variant("node", "list", 1, [List(ValueType.variant("node"), [LEAF])])
        assert encode_with_schema(tree, TD.ref("node"), [NODE]) == encode(tree)

    def test_results_are_refused_as_in_packr(self) -> None:
        ok = Result(ValueType.S64, ValueType.STRING, S64(1))
        with pytest.raises(SchemaError, match="expected result<s64, string>"):
            encode_with_schema(ok, TD.result(TD.S64, TD.STRING))

    def test_mismatches(self) -> None:
        with pytest.raises(SchemaError, match=r"expected tuple\(2\), got tuple\(1\)"):
            encode_with_schema(Tuple(S64(1)), TD.tuple(TD.S64, TD.S64))
        with pytest.raises(SchemaError, match="Variant tag out of range at node 0: tag 5, max 2"):
            encode_with_schema(Variant("node", "x", 5), NODE)
        with pytest.raises(SchemaError, match="expected s64, got 1s32"):
            encode_with_schema(Option(ValueType.S32, S32(1)), TD.option(TD.S64))


class TestTypeSpace:
    """validate_value_in_type_space: membership by names, with the path to the fault."""

    def test_recursive_value(self) -> None:
        tree = Variant("node", "list", 1, [List(ValueType.variant("node"), [LEAF, LEAF])])
        validate_value_in_type_space(tree, TD.ref("node"), [NODE])
        validate_value_in_type_space(tree, NODE)

    def test_records_by_name_any_order(self) -> None:
        validate_value_in_type_space(
            Record("config", [("enabled", Bool(True)), ("name", String("x"))]), CONFIG
        )
        with pytest.raises(TypeValidationError) as info:
            validate_value_in_type_space(Record("c", [("name", String("x"))]), CONFIG)
        assert str(info.value) == "record 'config' missing field 'enabled'"
        with pytest.raises(TypeValidationError, match="has unexpected field 'extra'"):
            validate_value_in_type_space(
                Record("c", [("name", String("x")), ("enabled", Bool(True)), ("extra", UNIT)]),
                CONFIG,
            )

    def test_nested_context(self) -> None:
        tree = Variant(
            "node",
            "list",
            1,
            [List(ValueType.variant("node"), [LEAF, Variant("n", "leaf", 0, [String("x")])])],
        )
        with pytest.raises(TypeValidationError) as info:
            validate_value_in_type_space(tree, NODE)
        assert info.value.kind == "TypeMismatch"
        assert info.value.context == ("case 'list'", "list[1]", "case 'leaf'")
        assert (
            str(info.value)
            == "in case 'list': in list[1]: in case 'leaf': expected s64, got string"
        )

    def test_cases_by_name_and_arity(self) -> None:
        with pytest.raises(TypeValidationError, match="variant 'node' has no case 'twig'"):
            validate_value_in_type_space(Variant("node", "twig", 0), NODE)
        with pytest.raises(TypeValidationError, match="in case 'leaf': expected 1 elements, got 2"):
            validate_value_in_type_space(Variant("node", "leaf", 0, [S64(1), S64(2)]), NODE)
        with pytest.raises(
            TypeValidationError, match="in enum case 'a': expected 0 elements, got 1"
        ):
            validate_value_in_type_space(Variant("e", "a", 0, [S64(1)]), TD.enum("e", ["a"]))

    def test_unit_results_tuples_refs(self) -> None:
        validate_value_in_type_space(UNIT, TD.UNIT)
        with pytest.raises(TypeValidationError, match="expected unit, got tuple<1>"):
            validate_value_in_type_space(Tuple(S64(1)), TD.UNIT)
        err = Result(ValueType.S64, ValueType.STRING, S64(1), is_err=True)
        with pytest.raises(TypeValidationError, match="in result::err: expected string, got s64"):
            validate_value_in_type_space(err, TD.result(TD.S64, TD.STRING))
        with pytest.raises(TypeValidationError, match="expected 2 elements, got 1"):
            validate_value_in_type_space(Tuple(S64(1)), TD.tuple(TD.S64, TD.S64))
        with pytest.raises(TypeValidationError, match=r"unresolved type reference 'pkg\.thing'"):
            validate_value_in_type_space(S64(1), TD.ref("pkg.thing"))
        validate_value_in_type_space(S64(1), TD.ref("pkg.thing"), {"thing": TD.S64})
        with pytest.raises(TypeValidationError, match="expected record 'config', got s64"):
            validate_value_in_type_space(S64(1), CONFIG)
