"""Plain Python <-> Value conversion, dataclass records and TaggedUnion variants."""

from __future__ import annotations

import dataclasses
import enum
import math
import sys
from typing import Any, Optional

import pytest
from hypothesis import HealthCheck, given, settings
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
    UNIT,
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
    decode,
    encode,
    infer_type,
)
from packr_replay.abi.convert import (
    Err,
    Ok,
    Tagged,
    TaggedUnion,
    case,
    char,
    f32,
    f64,
    flags,
    from_python,
    from_value,
    packr_name,
    s8,
    s16,
    s32,
    s64,
    to_python,
    to_value,
    u8,
    u16,
    u32,
    u64,
    value_type_of,
)
from packr_replay.errors import ConversionError

VT = ValueType

# ----------------------------------------------------------- test types


@dataclasses.dataclass
class Point:
    x: s32
    y: s32


@dataclasses.dataclass(frozen=True)
class Person:
    __packr_name__ = "person-info"

    name: str
    age: u8
    tags: list[str]
    nick: str | None = None
    home: Point | None = None
    greeting: str = dataclasses.field(default="hi", metadata={"packr_name": "greeting-text"})


@dataclasses.dataclass
class Node:
    value: s64
    next: Node | None = None


@dataclasses.dataclass
class Everything:
    b: bool
    i8: s8
    i16: s16
    i32: s32
    i64: s64
    w8: u8
    w16: u16
    w32: u32
    w64: u64
    h: f32
    d: f64
    c: char
    f: flags
    raw: bytes
    pair: tuple[u8, str]
    many: tuple[s64, ...]
    mapping: dict[str, u16]
    result: Ok[u32] | Err[str]
    dynamic: Value


class Shape(TaggedUnion):
    circle = case(f64)
    rect = case(f64, f64)
    point = case()
    at = case(Point)


class Renamed(TaggedUnion):
    __packr_name__ = "expr"

    sym = case(str, name="Sym")
    num = case(s64, name="Num")
    lst = case(list[str], name="Lst", tag=4)


class Color(enum.Enum):
    RED = "r"
    GREEN = "g"
    BLUE = "b"


# ---------------------------------------------------------------- helpers


def fails(match: str) -> Any:
    return pytest.raises(ConversionError, match=match)


INT_TYPES = [
    (VT.U8, U8),
    (VT.U16, U16),
    (VT.U32, U32),
    (VT.U64, U64),
    (VT.S8, S8),
    (VT.S16, S16),
    (VT.S32, S32),
    (VT.S64, S64),
    (VT.FLAGS, Flags),
]


class TestIntegers:
    """Integers are range-checked for the declared width."""

    @pytest.mark.parametrize(("vtype", "cls"), INT_TYPES, ids=str)
    def test_bounds(self, vtype: ValueType, cls: Any) -> None:
        for n in (cls.MIN, cls.MAX):
            v = from_python(n, vtype)
            assert type(v) is cls
            assert v.value == n
        with fails(rf"^\$: {cls.MAX + 1} is out of range for {vtype}"):
            from_python(cls.MAX + 1, vtype)
        with fails("out of range"):
            from_python(cls.MIN - 1, vtype)

    @pytest.mark.parametrize(("vtype", "cls"), INT_TYPES, ids=str)
    def test_bool_is_not_an_int(self, vtype: ValueType, cls: Any) -> None:
        with fails("got bool"):
            from_python(True, vtype)

    def test_index_protocol(self) -> None:
        class Color(enum.IntEnum):
            RED = 3

        assert from_python(Color.RED, VT.U8) == U8(3)

    def test_not_an_int(self) -> None:
        with fails("expected an int for u32, got str"):
            from_python("5", VT.U32)
        with fails("expected an int"):
            from_python(5.0, VT.S64)

    @given(st.data())
    def test_roundtrip(self, data: st.DataObject) -> None:
        vtype, cls = data.draw(st.sampled_from(INT_TYPES))
        n = data.draw(st.integers(cls.MIN, cls.MAX))
        v = from_python(n, vtype)
        assert infer_type(v) == vtype
        assert to_python(decode(encode(v))) == n


class TestScalars:
    """bool, floats, char, string."""

    def test_bool(self) -> None:
        assert from_python(True, VT.BOOL) == Bool(True)
        with fails("expected a bool"):
            from_python(1, VT.BOOL)

    def test_floats(self) -> None:
        assert from_python(1.5, VT.F64) == F64(1.5)
        assert from_python(2, VT.F32) == F32(2.0)
        assert from_python(0.1, VT.F32).bits == F32(0.1).bits
        assert math.isinf(from_python(1e300, VT.F32).value)
        with fails("too large for f64"):
            from_python(10**400, VT.F64)
        with fails("expected a float"):
            from_python("1.0", VT.F64)
        with fails("expected a float"):
            from_python(True, VT.F32)

    def test_char(self) -> None:
        assert from_python("é", VT.CHAR) == Char("é")
        with fails("one-character"):
            from_python("ab", VT.CHAR)
        with fails("surrogate"):
            from_python("\ud800", VT.CHAR)

    def test_string(self) -> None:
        assert from_python("héllo", VT.STRING) == String("héllo")
        with fails(r"^\$\[1\]: lone surrogate"):
            from_python(["ok", "\udc00"], VT.list(VT.STRING))
        with fails("expected a str"):
            from_python(b"x", VT.STRING)


class TestInference:
    """Without a declared type the obvious one is inferred."""

    @pytest.mark.parametrize(
        ("obj", "expected"),
        [
            (True, Bool(True)),
            (-5, S64(-5)),
            (2.5, F64(2.5)),
            ("hi", String("hi")),
            (b"\x01\x02", List(VT.U8, [U8(1), U8(2)])),
            (bytearray(b"\x07"), List(VT.U8, [U8(7)])),
            ([1, 2], List(VT.S64, [S64(1), S64(2)])),
            ((1, "a"), Tuple(S64(1), String("a"))),
            ((), UNIT),
            (
                [[1], [2, 3]],
                List(VT.list(VT.S64), [List(VT.S64, [S64(1)]), List(VT.S64, [S64(2), S64(3)])]),
            ),
            ({3, 1}, List(VT.S64, [S64(1), S64(3)])),
            (Point(1, 2), Record("Point", [("x", S32(1)), ("y", S32(2))])),
            (Color.GREEN, Variant("Color", "GREEN", 1)),
            (Tagged("leaf", (7,)), Variant("", "leaf", 0, [S64(7)])),
            (S32(4), S32(4)),
        ],
        ids=repr,
    )
    def test_infers(self, obj: Any, expected: Value) -> None:
        assert from_python(obj) == expected

    @pytest.mark.parametrize(
        ("obj", "message"),
        [
            (None, "None has no packr type"),
            ([], "empty list"),
            ([1, "a"], r"^\$\[1\]: list items differ in type: s64 and string"),
            ({"a": 1}, "could be a record or a map"),
            (Ok(1), "needs both arm types"),
            (2**63, "does not fit s64"),
            (object(), "no packr type for object"),
            ([[1], ["x"]], r"\$\[1\]: list items differ"),
        ],
        ids=lambda v: "object()" if type(v) is object else repr(v),  # no address: xdist
    )
    def test_refuses(self, obj: Any, message: str) -> None:
        with fails(message):
            from_python(obj)

    def test_to_value_is_from_python(self) -> None:
        assert to_value is from_python


class TestCompound:
    """Lists, options, results, tuples and records from a declared type."""

    def test_list(self) -> None:
        assert from_python([1, 2], VT.list(VT.U16)) == List(VT.U16, [U16(1), U16(2)])
        assert from_python(range(3), VT.list(VT.U8)) == List(VT.U8, [U8(0), U8(1), U8(2)])
        assert from_python([], VT.list(VT.STRING)) == List(VT.STRING, [])
        with fails("expected a list for list<u8>, got str"):
            from_python("abc", VT.list(VT.U8))
        with fails("expected a list"):
            from_python(5, VT.list(VT.U8))

    def test_bytes(self) -> None:
        v = from_python(b"\x00\xff", VT.list(VT.U8))
        assert v == List(VT.U8, [U8(0), U8(255)])
        assert v.to_bytes() == b"\x00\xff"
        with fails("bytes convert to list<u8>"):
            from_python(b"x", VT.list(VT.S8))

    def test_nested_error_path(self) -> None:
        t = VT.list(VT.tuple(VT.STRING, VT.option(VT.U8)))
        with fails(r"^\$\[1\]\[1\]: 256 is out of range for u8"):
            from_python([("a", None), ("b", 256)], t)

    def test_option(self) -> None:
        assert from_python(None, VT.option(VT.U8)) == Option(VT.U8, None)
        assert from_python(5, VT.option(VT.U8)) == Option(VT.U8, U8(5))
        assert from_python(None, VT.option(VT.option(VT.U8))) == Option(VT.option(VT.U8))

    def test_result(self) -> None:
        t = VT.result(VT.U32, VT.STRING)
        assert from_python(Ok(1), t) == Result(VT.U32, VT.STRING, U32(1))
        assert from_python(Err("no"), t) == Result(VT.U32, VT.STRING, String("no"), is_err=True)
        assert from_python(("ok", 2), t) == Result(VT.U32, VT.STRING, U32(2))
        assert from_python(("err", "x"), t).is_err
        with fails(r"^\$\.err: expected a str"):
            from_python(Err(5), t)
        with fails("expected Ok"):
            from_python(5, t)

    def test_tuple(self) -> None:
        t = VT.tuple(VT.U8, VT.STRING)
        assert from_python((1, "a"), t) == Tuple(U8(1), String("a"))
        assert from_python([1, "a"], t) == Tuple(U8(1), String("a"))
        assert from_python(None, VT.UNIT) == UNIT
        assert from_python((), VT.UNIT) == UNIT
        with fails("expected 2 items"):
            from_python((1,), t)
        with fails("expected a tuple"):
            from_python(None, t)

    def test_map_is_a_sorted_list_of_pairs(self) -> None:
        t = VT.list(VT.tuple(VT.STRING, VT.U8))
        v = from_python({"b": 2, "a": 1}, t)
        assert v == List(
            VT.tuple(VT.STRING, VT.U8), [Tuple(String("a"), U8(1)), Tuple(String("b"), U8(2))]
        )
        with fails("a dict converts to list<tuple<K, V>>"):
            from_python({"a": 1}, VT.list(VT.U8))
        with fails("cannot order the keys"):
            from_python({1: 1, "a": 2}, VT.list(VT.tuple(VT.STRING, VT.U8)))

    def test_set_is_sorted(self) -> None:
        assert from_python({3, 1, 2}, VT.list(VT.U8)) == List(VT.U8, [U8(1), U8(2), U8(3)])

    def test_record_from_mapping(self) -> None:
        v = from_python({"greeting": "hi", "count": 0}, VT.record("actor-state"))
        assert v == Record("actor-state", [("greeting", String("hi")), ("count", S64(0))])
        with fails("record field names are str"):
            from_python({1: 2}, VT.record("r"))
        with fails("expected a dataclass or dict for record 'r'"):
            from_python([1], VT.record("r"))

    def test_record_name_must_match(self) -> None:
        with fails("record 'Point', not 'point'"):
            from_python(Point(1, 2), VT.record("point"))

    def test_variant_forms(self) -> None:
        t = VT.variant("expr")
        assert from_python(Tagged("sym", ("x",), tag=0), t) == Variant(
            "expr", "sym", 0, [String("x")]
        )
        assert from_python(Renamed.num(3), t) == Variant("expr", "Num", 1, [S64(3)])
        with fails("variant 'Shape', not 'expr'"):
            from_python(Shape.point(), t)
        with fails("a Tagged is variant 'other', not 'expr'"):
            from_python(Tagged("c", type_name="other"), t)
        with fails("bad Tagged case/tag"):
            from_python(Tagged("c", tag=-1), t)
        with fails("expected a TaggedUnion, Enum or Tagged"):
            from_python("sym", t)

    def test_values_pass_through_where_declared(self) -> None:
        assert from_python(U8(1), VT.U8) == U8(1)
        lst = List(VT.STRING, [String("a"), S64(1)])  # heterogeneous lists are legal
        assert from_python(lst, VT.list(VT.STRING)) is lst
        # `string` is packr's static type of a dynamic Value: anything goes there.
        assert from_python(Tuple(S64(1)), VT.STRING) == Tuple(S64(1))
        with fails("a s64 Value where u8 is declared"):
            from_python(S64(1), VT.U8)
        with fails(r"\$\[0\]: a u8 Value where s64 is declared"):
            from_python([U8(1)], VT.list(VT.S64))

    def test_rejects_a_non_valuetype(self) -> None:
        with pytest.raises(TypeError, match="ValueType"):
            from_python(1, "u8")  # type: ignore[arg-type]


class TestToPython:
    """The untyped rendering of every kind."""

    def test_scalars(self) -> None:
        assert to_python(Bool(False)) is False
        assert to_python(U64(2**64 - 1)) == 2**64 - 1
        assert to_python(S8(-128)) == -128
        assert to_python(Flags(0b1011)) == 0b1011
        assert to_python(F32(1.5)) == 1.5
        assert math.isnan(to_python(F64(math.nan)))
        assert to_python(Char("x")) == "x"
        assert to_python(String("s")) == "s"

    def test_compounds(self) -> None:
        assert to_python(List(VT.U8, [U8(1), U8(2)])) == [1, 2]
        assert to_python(List(VT.STRING, [String("a"), Tuple(S64(1))])) == ["a", (1,)]
        assert to_python(UNIT) == ()
        assert to_python(Option(VT.U8)) is None
        assert to_python(Option(VT.U8, U8(4))) == 4
        assert to_python(Result(VT.U8, VT.STRING, U8(1))) == Ok(1)
        assert to_python(Result(VT.U8, VT.STRING, String("e"), is_err=True)) == Err("e")

    def test_record_keeps_order_and_first_duplicate(self) -> None:
        rec = Record("r", [("b", S64(1)), ("a", S64(2)), ("b", S64(3))])
        out = to_python(rec)
        assert out == {"b": 1, "a": 2}
        assert list(out) == ["b", "a"]

    def test_variant(self) -> None:
        v = Variant("expr", "cons", 6, [Tuple(S64(1), Variant("expr", "nil", 5))])
        assert to_python(v) == Tagged("cons", ((1, Tagged("nil", (), 5, "expr")),), 6, "expr")

    def test_tagged_roundtrip_is_exact(self) -> None:
        v = Variant("t", "c", 9, [S64(1), String("x")])
        assert from_python(to_python(v), VT.variant("t")) == v

    def test_value_method(self) -> None:
        assert Tuple(S64(1), String("a")).to_python() == (1, "a")

    def test_rejects_non_values(self) -> None:
        with pytest.raises(TypeError, match="takes a Value"):
            to_python(5)  # type: ignore[arg-type]


class TestDataclasses:
    """Dataclasses are records, like packr's #[derive(GraphValue)] structs."""

    def test_to_value(self) -> None:
        v = to_value(Point(1, 2))
        assert v == Record("Point", [("x", S32(1)), ("y", S32(2))])
        assert encode(v) == bytes.fromhex(
            "43475246020000000300000002000000020000000400000001000000020000000400000002"
            "000000090000001f00000005000000706f696e7402000000010000007801000000790000000001000000"
        ).replace(b"point", b"Point")

    def test_names_options_and_renames(self) -> None:
        p = Person("ann", 30, ["a"], home=Point(0, 1))
        v = to_value(p)
        assert isinstance(v, Record)
        assert v.type_name == "person-info"
        assert v.field_names == ("name", "age", "tags", "nick", "home", "greeting-text")
        assert v["age"] == U8(30)
        assert v["nick"] == Option(VT.STRING, None)
        assert v["home"] == Option(
            VT.record("Point"), Record("Point", [("x", S32(0)), ("y", S32(1))])
        )
        assert from_value(v, Person) == p
        assert packr_name(Person) == "person-info"

    def test_every_annotation_kind(self) -> None:
        obj = Everything(
            b=True, i8=-1, i16=-2, i32=-3, i64=-4, w8=1, w16=2, w32=3, w64=2**64 - 1,
            h=0.5, d=0.25, c="λ", f=0b101, raw=b"\x00\x01", pair=(1, "x"), many=(1, 2),
            mapping={"b": 2, "a": 1}, result=Err("bad"), dynamic=Tuple(S64(1)),
        )  # fmt: skip
        v = to_value(obj)
        back = from_value(decode(encode(v)), Everything)
        assert back == obj
        assert v["mapping"] == List(
            VT.tuple(VT.STRING, VT.U16), [Tuple(String("a"), U16(1)), Tuple(String("b"), U16(2))]
        )
        assert v["result"] == Result(VT.U32, VT.STRING, String("bad"), is_err=True)
        assert v["dynamic"] == Tuple(S64(1))

    def test_recursive(self) -> None:
        chain = Node(1, Node(2, Node(3)))
        v = to_value(chain)
        assert v["next"] == Option(VT.record("Node"), to_value(Node(2, Node(3))))
        assert from_value(v, Node) == chain

    def test_error_paths(self) -> None:
        with fails(r"^\$\.age: 300 is out of range for u8"):
            to_value(Person("a", 300, []))
        with fails(r"^\$\.home\.y: expected an int for s32, got str"):
            to_value(Person("a", 1, [], home=Point(1, "2")))  # type: ignore[arg-type]
        with fails(r"^\$\.tags\[1\]: expected a str"):
            to_value(Person("a", 1, ["x", 2]))  # type: ignore[list-item]

    def test_plain_int_needs_a_width(self) -> None:
        @dataclasses.dataclass
        class Loose:
            n: int

        with fails("Loose.n: int has no width"):
            to_value(Loose(1))

    def test_from_value_checks_fields(self) -> None:
        with fails("record Point has 2 fields, the value has 1"):
            from_value(Record("Point", [("x", S32(1))]), Point)
        with fails("missing field 'y' of record Point"):
            from_value(Record("Point", [("x", S32(1)), ("z", S32(1))]), Point)
        with fails(r"^\$\.y: expected s32, got s64"):
            from_value(Record("Point", [("x", S32(1)), ("y", S64(1))]), Point)
        with fails("expected record Point, got string"):
            from_value(String("p"), Point)

    def test_fields_match_by_name(self) -> None:
        # packr looks fields up by name, so order on the wire does not matter.
        v = Record("Point", [("y", S32(2)), ("x", S32(1))])
        assert from_value(v, Point) == Point(1, 2)

    def test_non_init_fields(self) -> None:
        @dataclasses.dataclass
        class Counted:
            n: u8
            total: u8 = dataclasses.field(init=False, default=0)

        obj = Counted(1)
        obj.total = 9
        assert from_value(to_value(obj), Counted).total == 9


class TestTaggedUnion:
    """TaggedUnion classes are variants, like packr's derived enums."""

    def test_tags_and_payloads(self) -> None:
        assert to_value(Shape.circle(1.5)) == Variant("Shape", "circle", 0, [F64(1.5)])
        assert to_value(Shape.rect(1, 2)) == Variant("Shape", "rect", 1, [F64(1.0), F64(2.0)])
        assert to_value(Shape.point()) == Variant("Shape", "point", 2)
        assert to_value(Shape.at(Point(1, 2))) == Variant("Shape", "at", 3, [to_value(Point(1, 2))])

    def test_names_and_explicit_tags(self) -> None:
        v = to_value(Renamed.lst(["a"]))
        assert (v.type_name, v.case_name, v.tag) == ("expr", "Lst", 4)
        assert value_type_of(Renamed) == VT.variant("expr")

    def test_roundtrip(self) -> None:
        for obj in (Shape.circle(2.0), Shape.rect(1.0, 2.0), Shape.point(), Shape.at(Point(3, 4))):
            assert from_value(decode(encode(to_value(obj))), Shape) == obj

    def test_dispatch_is_on_the_tag(self) -> None:
        assert from_value(
            Variant("whatever", "nonsense", 1, [F64(1), F64(2)]), Shape
        ) == Shape.rect(1.0, 2.0)
        with fails("Shape has no case with tag 9"):
            from_value(Variant("Shape", "circle", 9), Shape)
        with fails(r"Shape.circle takes 1 payload value\(s\), got 0"):
            from_value(Variant("Shape", "circle", 0), Shape)
        with fails("expected variant Shape, got s64"):
            from_value(S64(1), Shape)

    def test_instances(self) -> None:
        c = Shape.circle(1.0)
        assert (c.case, c.tag, c.payload) == ("circle", 0, (1.0,))
        assert c == Shape.circle(1.0)
        assert c != Shape.circle(2.0)
        assert hash(c) == hash(Shape.circle(1.0))
        assert repr(Shape.rect(1.0, 2.0)) == "Shape.rect(1.0, 2.0)"
        match c:
            case Shape(case="circle", payload=(r,)):
                assert r == 1.0
            case _:
                pytest.fail("no match")
        with pytest.raises(TypeError, match="takes 2 payload"):
            Shape.rect(1.0)

    def test_bad_declarations(self) -> None:
        with pytest.raises(TypeError, match="reserved"):

            class Bad(TaggedUnion):
                tag = case()

        with pytest.raises(TypeError, match="two cases have tag 0"):

            class Clash(TaggedUnion):
                a = case()
                b = case(tag=0)

        with pytest.raises(ValueError, match="u32"):
            case(tag=-1)

    def test_payload_errors(self) -> None:
        with fails(r"^\$\.circle\[0\]: expected a float"):
            to_value(Shape.circle("big"))

    def test_enum(self) -> None:
        assert to_value(Color.BLUE) == Variant("Color", "BLUE", 2)
        assert from_value(Variant("Color", "x", 1), Color) is Color.GREEN
        assert value_type_of(Color) == VT.variant("Color")
        with fails("Color has no case with tag 3"):
            from_value(Variant("Color", "x", 3), Color)
        with fails("takes no payload"):
            from_value(Variant("Color", "RED", 0, [S64(1)]), Color)


class TestValueTypeOf:
    """Python annotations map to packr ValueTypes."""

    @pytest.mark.parametrize(
        ("annotation", "expected"),
        [
            (bool, "bool"),
            (float, "f64"),
            (str, "string"),
            (bytes, "list<u8>"),
            (None, "tuple<>"),
            (type(None), "tuple<>"),
            (u8, "u8"),
            (s64, "s64"),
            (f32, "f32"),
            (char, "char"),
            (flags, "flags"),
            (list[s64], "list<s64>"),
            (set[u16], "list<u16>"),
            (frozenset[str], "list<string>"),
            (tuple[s8, str], "tuple<s8, string>"),
            (tuple[()], "tuple<>"),
            (tuple[u32, ...], "list<u32>"),
            (dict[str, s32], "list<tuple<string, s32>>"),
            (Optional[u8], "option<u8>"),  # noqa: UP045 - typing.Optional must work too
            (u8 | None, "option<u8>"),
            (Ok[s64] | Err[str], "result<s64, string>"),
            (Ok[s64] | Err[str] | None, "option<result<s64, string>>"),
            (Optional[list[Point]], "option<list<Point>>"),  # noqa: UP045
            (Point, "Point"),
            (Shape, "Shape"),
            (Value, "string"),
            (U16, "u16"),
            (VT.list(VT.U8), "list<u8>"),
        ],
        ids=repr,
    )
    def test_maps(self, annotation: Any, expected: str) -> None:
        assert str(value_type_of(annotation)) == expected

    def test_named_kinds(self) -> None:
        assert value_type_of(Point) == VT.record("Point")
        assert value_type_of(Shape) == VT.variant("Shape")

    @pytest.mark.parametrize(
        ("annotation", "message"),
        [
            (int, "int has no width"),
            (list, "needs its item types"),
            (u8 | str, "no untagged unions"),
            (Ok[u8] | str, "Ok\\[A\\] \\| Err\\[B\\]"),
            (Ok | Err, "needs its value type"),
            (complex, "no packr type"),
            (Any, "no packr type"),
        ],
        ids=repr,
    )
    def test_refuses(self, annotation: Any, message: str) -> None:
        with fails(message):
            value_type_of(annotation)


class TestFromValue:
    """Reading Values back as Python annotations."""

    def test_containers(self) -> None:
        v = from_python([1, 2], VT.list(VT.S64))
        assert from_value(v, list[s64]) == [1, 2]
        assert from_value(v, list[int]) == [1, 2]
        assert from_value(v, tuple[int, ...]) == (1, 2)
        assert from_value(v, set[int]) == {1, 2}
        assert from_value(Tuple(U8(1), String("a")), tuple[u8, str]) == (1, "a")
        assert from_value(List.from_bytes(b"ab"), bytes) == b"ab"
        assert from_value(List.from_bytes(b"ab"), bytearray) == bytearray(b"ab")

    def test_dicts(self) -> None:
        pairs = from_python({"a": 1}, value_type_of(dict[str, u8]))
        assert from_value(pairs, dict[str, u8]) == {"a": 1}
        assert from_value(Record("r", [("k", S64(5))]), dict[str, int]) == {"k": 5}
        with fails(r"^\$\[0\]: expected a \(key, value\) tuple"):
            from_value(List(VT.STRING, [String("x")]), dict[str, str])

    def test_option_and_result(self) -> None:
        assert from_value(Option(VT.U8), u8 | None) is None
        assert from_value(Option(VT.U8, U8(3)), Optional[u8]) == 3  # noqa: UP045
        r = Result(VT.S64, VT.STRING, S64(-1))
        assert from_value(r, Ok[s64] | Err[str]) == Ok(-1)
        err = Result(VT.S64, VT.STRING, String("no"), is_err=True)
        assert from_value(err, Ok[s64] | Err[str]) == Err("no")

    def test_legacy_variant_results(self) -> None:
        # HEAD pact guests send results as result::ok(v) / result::err(v) variants.
        assert from_value(Variant("result", "ok", 0, [S64(1)]), Ok[s64] | Err[str]) == Ok(1)
        assert from_value(Variant("result", "err", 1, [String("e")]), Ok[s64] | Err[str]) == Err(
            "e"
        )
        with fails("expected a result"):
            from_value(Variant("result", "other", 2, [S64(1)]), Ok[s64] | Err[str])

    def test_width_is_checked_when_declared(self) -> None:
        with fails("expected u8, got u16"):
            from_value(U16(1), u8)
        with fails("expected an integer, got string"):
            from_value(String("1"), int)
        with fails("expected an integer, got flags"):
            from_value(Flags(1), int)
        assert from_value(Flags(1), flags) == 1
        assert from_value(F32(0.5), float) == 0.5
        with fails("expected f32 or f64"):
            from_value(S64(1), float)

    def test_dynamic(self) -> None:
        t = Tuple(S64(1))
        assert from_value(t, Value) is t
        assert from_value(t, Tuple) is t
        with fails("expected a List Value, got tuple<s64>"):
            from_value(t, List)
        assert from_value(t, Any) == (1,)
        assert from_value(t, None) is None  # like a `-> ()` import: the reply is ignored

    def test_error_path(self) -> None:
        v = from_python([[1, 2], [3]], VT.list(VT.list(VT.S64)))
        with fails(r"^\$\[0\]\[0\]: expected string, got s64"):
            from_value(v, list[list[str]])

    def test_unsupported(self) -> None:
        with fails("cannot read a Value as"):
            from_value(S64(1), complex)
        with pytest.raises(TypeError, match="takes a Value"):
            from_value(1, int)  # type: ignore[arg-type]


class TestDepth:
    """Every direction is iterative: depth is bounded by memory, not the C stack."""

    @pytest.mark.parametrize("levels", [100_000, pytest.param(1_000_000, marks=pytest.mark.slow)])
    def test_to_python_a_million_deep(self, levels: int) -> None:
        """100 times the recursion limit in CI, a million with ``--slow``."""
        v: Value = List(VT.S64, [S64(7)])
        for _ in range(levels):
            v = Tuple(v)
        out = to_python(v)
        depth = 0
        while isinstance(out, tuple):
            (out,) = out
            depth += 1
        assert depth == levels
        assert out == [7]

    def test_python_to_value_and_back(self) -> None:
        depth = 100_000
        assert depth > 50 * sys.getrecursionlimit()
        obj: Any = [1]
        for _ in range(depth):
            obj = (obj,)
        v = from_python(obj)
        assert isinstance(v, Tuple)
        back = from_value(v, Any)
        n = 0
        while isinstance(back, tuple):
            (back,) = back
            n += 1
        assert (n, back) == (depth, [1])

    def test_deep_dataclass_chain(self) -> None:
        chain = None
        for i in range(20_000):
            chain = Node(i, chain)
        v = to_value(chain)
        back = from_value(v, Node)
        count = 0
        while back is not None:
            count += 1
            back = back.next
        assert count == 20_000

    def test_deep_error_path_is_elided(self) -> None:
        obj: Any = [1, "x"]
        for _ in range(10_000):
            obj = (obj,)
        with pytest.raises(ConversionError) as info:
            from_python(obj)
        message = str(info.value)
        assert "more)..." in message
        assert len(message) < 300


# ------------------------------------------------------------- round trips


def typed_data(max_leaves: int = 20) -> st.SearchStrategy[tuple[ValueType, Any]]:
    """(ValueType, plain Python object of that type) pairs."""
    ints = [(VT.U8, U8), (VT.U64, U64), (VT.S16, S16), (VT.S64, S64), (VT.FLAGS, Flags)]
    leaves = st.one_of(
        st.just((VT.BOOL, st.booleans())),
        st.sampled_from(ints).map(lambda tc: (tc[0], st.integers(tc[1].MIN, tc[1].MAX))),
        st.just((VT.F64, st.floats(allow_nan=False))),
        st.just((VT.F32, st.floats(allow_nan=False, width=32))),
        st.just((VT.CHAR, st.characters(exclude_categories=["Cs"]))),
        st.just((VT.STRING, st.text())),
    )

    def extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.one_of(
            children.map(lambda c: (VT.list(c[0]), st.lists(c[1], max_size=4))),
            children.map(lambda c: (VT.option(c[0]), st.none() | c[1])),
            st.tuples(children, children).map(
                lambda p: (
                    VT.result(p[0][0], p[1][0]),
                    st.builds(Ok, p[0][1]) | st.builds(Err, p[1][1]),
                )
            ),
            st.lists(children, max_size=3).map(
                lambda cs: (VT.tuple(*(c[0] for c in cs)), st.tuples(*(c[1] for c in cs)))
            ),
        )

    return st.recursive(leaves, extend, max_leaves=max_leaves).flatmap(
        lambda ts: st.tuples(st.just(ts[0]), ts[1])
    )


# Nested draws are slow on a loaded machine; correctness, not speed, is under test.
roundtrip_settings = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


class TestRoundTrips:
    """Python -> Value -> CGRF -> Value -> Python gives the object back."""

    @roundtrip_settings
    @given(typed_data())
    def test_typed_roundtrip(self, pair: tuple[ValueType, Any]) -> None:
        vtype, obj = pair
        v = from_python(obj, vtype)
        assert infer_type(v) == vtype
        again = decode(encode(v))
        assert again == v
        assert to_python(again) == obj

    @roundtrip_settings
    @given(typed_data())
    def test_inference_is_stable(self, pair: tuple[ValueType, Any]) -> None:
        # Converting a Value's Python rendering back to the Value's own type is lossless.
        vtype, obj = pair
        v = from_python(obj, vtype)
        assert from_python(to_python(v), vtype) == v
