"""The typed JSON form of values (``abi.jsonvalue``): packr's vector JSON, both ways,
exact (tags, float bits, record vs variant type names), iterative, precise errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from packr_replay.abi import (
    F64,
    S64,
    List,
    String,
    Tuple,
    Value,
    ValueType,
    Variant,
    encode,
    value_from_json,
    value_to_json,
)
from packr_replay.abi.jsonvalue import TooDeep, type_from_json, type_to_json
from packr_replay.errors import ConversionError
from tests import golden_vectors


class TestVectors:
    """Every public encode vector: the same JSON as packr's generator wrote, and back."""

    @pytest.mark.parametrize(
        "case",
        [p for p in golden_vectors.cases("encode", ok=True) if p.values[0].get("value")],
    )
    def test_both_ways(self, case: dict[str, Any]) -> None:
        value = golden_vectors.value_from_json(case["value"])
        try:
            written = value_to_json(value)
        except TooDeep:
            return
        assert written == case["value"]
        back = value_from_json(json.loads(json.dumps(written)))
        assert encode(back) == encode(value)


class TestExactness:
    """What packr's text drops survives here."""

    def test_tags_bits_and_type_names(self) -> None:
        values: list[Value] = [
            Variant("t", "c", 3, [S64(1)]),
            F64.from_bits(0xFFF8_0000_0000_0001),
            List(ValueType.variant("v"), []),
            List(ValueType.record("v"), []),
        ]
        for v in values:
            assert encode(value_from_json(value_to_json(v))) == encode(v)
        assert value_to_json(values[1]) == {"f64": "fff8000000000001"}

    def test_types(self) -> None:
        vt = ValueType.result(ValueType.list(ValueType.variant("v")), ValueType.tuple())
        assert type_to_json(vt) == {"result": [{"list": {"variant": "v"}}, {"tuple": []}]}
        assert type_from_json(type_to_json(vt)) == vt


class TestErrors:
    """Bad JSON values are ConversionErrors naming the path."""

    @pytest.mark.parametrize(
        ("obj", "message"),
        [
            ({"s64": "1"}, "(root): s64 takes a JSON integer, got \"1\""),
            ({"u8": 256}, "(root): u8:"),
            ({"tuple": [{"bool": 1}]}, ".0: bool takes true or false, got 1"),
            ({"f64": "7ff8"}, "(root): f64 takes 16 hex digits, got '7ff8'"),
            ({"list": {"items": []}}, "(root): list needs 'elem_type'"),
            ({"list": {"elem_type": "u9", "items": []}}, ".elem_type: unknown type name 'u9'"),
            ({"record": {"type_name": "r", "fields": [["a", {"nope": 1}]]}}, ".a: unknown value kind 'nope'"),
            ({"variant": {"type_name": "v", "case_name": "c", "tag": -1}}, "a variant tag is a u32"),
            ({"result": {"ok_type": "u8", "err_type": "u8"}}, "exactly one of \"ok\" and \"err\""),
            ([1], "(root): expected a value (a one-key JSON object), got [1]"),
        ],
    )  # fmt: skip
    def test_messages(self, obj: Any, message: str) -> None:
        with pytest.raises(ConversionError) as info:
            value_from_json(obj)
        assert message in str(info.value)


class TestDepth:
    """Both directions are iterative; writing stops where json itself would recurse."""

    def test_deep_values(self) -> None:
        value: Value = String("leaf")
        obj: Any = {"string": "leaf"}
        for _ in range(100_000):
            value = Tuple(value)
            obj = {"tuple": [obj]}
        assert encode(value_from_json(obj)) == encode(value)
        with pytest.raises(TooDeep):
            value_to_json(value)
        assert value_to_json(value, max_depth=10**6)["tuple"][0]["tuple"]
