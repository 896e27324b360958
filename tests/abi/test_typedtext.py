"""Value text read as a declared type (``abi.typedtext``): tags from case names, numbers
of the declared width, records checked field by field, ``value`` read as packr reads
it, errors that name the path and the type; exact round trips of packr's Display."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from packr_replay.abi import (
    F32,
    F64,
    S64,
    U8,
    U64,
    Bool,
    List,
    Option,
    ParseError,
    Record,
    Result,
    String,
    Tuple,
    TypedParseError,
    Value,
    ValueType,
    Variant,
    encode,
    format_value,
    parse_typed,
    parse_value,
)
from packr_replay.abi.metadata import FunctionSig, PackageMetadata, ParamSig
from packr_replay.abi.metadata import TypeDesc as T
from packr_replay.abi.typedtext import export_signature, named_types, parse_arguments
from tests import golden_vectors

SEXPR = T.variant("sexpr", [
    ("sym", T.STRING), ("num", T.S64), ("float", T.F64), ("str", T.STRING),
    ("lst", T.list(T.VALUE)), ("bool", T.BOOL), ("nil", None), ("err", T.STRING),
])  # fmt: skip
REQUEST = T.variant("request", [
    ("get", T.STRING), ("put", T.tuple(T.STRING, T.STRING)), ("delete", T.STRING),
    ("count", None),
])  # fmt: skip
CONFIG = T.record("config", [("namespace", T.STRING), ("limit", T.option(T.U32))])


def sexpr(case: str, *payload: Value) -> Variant:
    return Variant("sexpr", case, [c for c, _ in SEXPR.cases].index(case), payload)


def failure(text: str, desc: T, **kw: object) -> TypedParseError:
    with pytest.raises(TypedParseError) as info:
        parse_typed(text, desc, **kw)  # type: ignore[arg-type]
    return info.value


class TestVariants:
    """Case names resolve to their declared tags, however the type is written."""

    def test_every_spelling(self) -> None:
        for text in ("sexpr::num(7)", "num(7)", "num(7s64)", "num( 7 )"):
            assert parse_typed(text, SEXPR) == sexpr("num", S64(7))
        assert parse_typed("nil", SEXPR) == sexpr("nil")
        assert parse_typed("::nil", SEXPR) == Variant("", "nil", 6)  # packr's unnamed variant

    def test_self_references_through_value(self) -> None:
        value = parse_typed('lst([sym("+"), num(1), sexpr::lst([]), ::num(2)])', SEXPR)
        assert value == sexpr("lst", List(ValueType.variant("sexpr"), [
            sexpr("sym", String("+")), sexpr("num", S64(1)),
            sexpr("lst", List(ValueType.variant("sexpr"), [])), Variant("", "num", 1, [S64(2)]),
        ]))  # fmt: skip

    def test_tuple_payload_as_one_tuple_or_as_its_items(self) -> None:
        two = parse_typed('put("k", "v")', REQUEST)
        assert two == Variant("request", "put", 1, [String("k"), String("v")])
        one = parse_typed('put(("k", "v"))', REQUEST)
        assert one == Variant("request", "put", 1, [Tuple(String("k"), String("v"))])

    @pytest.mark.parametrize(
        ("text", "path", "message"),
        [
            ("gett(1)", "", "variant request has no case 'gett' (its cases: get, put, delete, count)"),
            ("other::get(\"k\")", "", "expected variant request, got other::get"),
            ("count(1)", "count", "case count of request takes no payload"),
            ("get", "get", "case get of request takes a payload (string): get(...)"),
            ('put("a", "b", "c")', "put", "case put of request takes one value (tuple<string, string>), got 3"),
            ("get(1)", "get", "expected string, got 1"),
        ],
    )  # fmt: skip
    def test_errors(self, text: str, path: str, message: str) -> None:
        err = failure(text, REQUEST)
        assert (err.path, err.message) == (path, message)
        assert err.expected in ("request", "string")


class TestNumbers:
    """Numbers take their declared width; out of range is an error."""

    def test_widths(self) -> None:
        assert parse_typed("200", T.U8) == U8(200)
        assert parse_typed("5s32", T.U64) == U64(5)
        assert parse_typed("-3", T.S64) == S64(-3)
        assert parse_typed("2", T.F64) == F64(2.0)
        assert parse_typed("0.1", T.F32) == F32(0.1)
        assert parse_typed("1.5f64", T.F32) == F32(1.5)

    def test_float_words(self) -> None:
        assert math.isnan(parse_typed("NaN", T.F64).value)  # type: ignore[attr-defined]
        assert parse_typed("NaNf32", T.F32).bits == F32(float("nan")).bits  # type: ignore[attr-defined]
        assert parse_typed("-inff64", T.F64) == F64(float("-inf"))
        assert parse_typed("inf", T.F32) == F32(float("inf"))

    @pytest.mark.parametrize(
        ("text", "desc", "message"),
        [
            ("256", T.U8, "256 does not fit u8 (0 to 255)"),
            ("-1", T.U64, "-1 does not fit u64 (0 to 18446744073709551615)"),
            ("1.5", T.S64, "expected s64, got 1.5"),
            ("1f32", T.S64, "expected s64, got 1f32"),
            ("1s64", T.F64, "expected f64, got 1s64"),
            ('"1"', T.U8, 'expected u8, got "1"'),
        ],
    )
    def test_errors(self, text: str, desc: T, message: str) -> None:
        assert failure(text, desc, name="n").message == message
        assert failure(text, desc, name="n").path == "n"


class TestRecords:
    """Records are checked field by field and come out in declared order."""

    def test_order_and_name(self) -> None:
        want = Record("config", [("namespace", String("n")), ("limit", Option(ValueType.U32))])
        assert parse_typed('{limit: none, namespace: "n"}', CONFIG) == want
        assert parse_typed('config{namespace: "n", limit: none<u32>}', CONFIG) == want
        assert parse_typed('{namespace: "n", limit: some(3)}', CONFIG).fields[1][1] == Option(  # type: ignore[attr-defined]
            ValueType.U32, __import__("packr_replay.abi", fromlist=["U32"]).U32(3)
        )

    @pytest.mark.parametrize(
        ("text", "path", "message"),
        [
            ('{namespace: "n"}', "cfg", "record config is missing field(s) limit (option<u32>)"),
            ('{namespace: "n", limit: none, extra: 1}', "cfg.extra",
             "record config has no field 'extra' (its fields: namespace, limit)"),
            ('{namespace: "n", namespace: "m", limit: none}', "cfg.namespace",
             "field 'namespace' is given twice"),
            ('point{namespace: "n", limit: none}', "cfg", "expected record config, got record point"),
            ('{namespace: 1, limit: none}', "cfg.namespace", "expected string, got 1"),
            ('{namespace: "n", limit: some("x")}', "cfg.limit.some", 'expected u32, got "x"'),
            ('{namespace: "n", limit: none<string>}', "cfg.limit",
             "expected u32, the text says string"),
        ],
    )  # fmt: skip
    def test_errors(self, text: str, path: str, message: str) -> None:
        err = failure(text, CONFIG, name="cfg")
        assert (err.path, err.message) == (path, message)


class TestContainers:
    """Lists, options, results and tuples need no annotation where the type is declared."""

    def test_unannotated(self) -> None:
        assert parse_typed("[]", T.list(T.U8)) == List(ValueType.U8, [])
        assert parse_typed("[1, 2]", T.list(T.U8)) == List(ValueType.U8, [U8(1), U8(2)])
        assert parse_typed("ok(1)", T.result(T.U8, T.STRING)) == Result(
            ValueType.U8, ValueType.STRING, U8(1)
        )
        assert parse_typed('err("no")', T.result(T.U8, T.STRING)).is_err  # type: ignore[attr-defined]
        assert parse_typed("(1, true)", T.tuple(T.U8, T.BOOL)) == Tuple(U8(1), Bool(True))
        assert parse_typed("()", T.UNIT) == Tuple()

    def test_arity(self) -> None:
        err = failure("(1, 2, 3)", T.tuple(T.U8, T.U8), name="t")
        assert err.message == "expected tuple<u8, u8> (2 items), got 3"


class TestArguments:
    """An export's parameters: one is the value, several a tuple named by parameter."""

    SIG = FunctionSig("", "go", (ParamSig("count", T.U8), ParamSig("label", T.STRING)))

    def test_several_parameters(self) -> None:
        assert parse_arguments('(3, "x")', self.SIG) == Tuple(U8(3), String("x"))
        with pytest.raises(TypedParseError) as info:
            parse_arguments("(3, 4)", self.SIG)
        assert (info.value.path, info.value.message) == ("label", "expected string, got 4")
        with pytest.raises(TypedParseError, match=r"2 arguments\), got 1"):
            parse_arguments("(3)", self.SIG)

    def test_one_and_no_parameters(self) -> None:
        one = FunctionSig("", "f", (ParamSig("n", T.S64),))
        assert parse_arguments("5", one) == S64(5)
        assert parse_arguments("()", FunctionSig("", "g")) == Tuple()

    def test_export_signature_by_wasm_name(self) -> None:
        meta = PackageMetadata.build(
            exports=[FunctionSig("math", "double", (ParamSig("n", T.S64),))]
        )
        assert export_signature(meta, "math.double") is meta.exports[0]
        assert export_signature(meta, "double") is meta.exports[0]  # bare exports too (spec §6.2)
        assert export_signature(meta, "triple") is None

    def test_named_types_come_from_every_signature(self) -> None:
        meta = PackageMetadata.build(
            imports=[FunctionSig("h", "look", (ParamSig("x", T.STRING),), (T.option(SEXPR),))],
            exports=[FunctionSig("", "run", (ParamSig("v", T.VALUE),))],
        )
        assert named_types(meta) == {"sexpr": SEXPR}
        run = meta.exports[0]
        assert parse_arguments("sexpr::num(1)", run, meta) == sexpr("num", S64(1))


class TestValuePositions:
    """``value`` is packr's text, exactly, apart from what the package declares."""

    @pytest.mark.parametrize("case", golden_vectors.cases("text"))
    def test_packr_semantics_on_every_text_vector(self, case: dict[str, object]) -> None:
        text = str(case["input"])
        scope = [T.variant("unrelated", [("a", None)])]  # not empty: the full typed path
        try:
            expected = parse_value(text)
        except ParseError:
            with pytest.raises(ParseError):
                parse_typed(text, T.VALUE, scope)
            return
        except RecursionError:  # pragma: no cover - no vector nests that deep
            return
        got = parse_typed(text, T.VALUE, scope)
        assert format_value(got) == format_value(expected)
        assert encode(got) == encode(expected) if case.get("hex") else True

    def test_declared_names_inside_value(self) -> None:
        got = parse_typed('(sexpr::num(1), [sexpr::nil], {a: sexpr::sym("x")})', T.VALUE, [SEXPR])
        assert got.items[0].tag == 1  # type: ignore[attr-defined]
        assert got.items[1].elem_type == ValueType.variant("sexpr")  # type: ignore[attr-defined]
        assert got.items[2].fields[0][1].tag == 0  # type: ignore[attr-defined]
        assert parse_typed("[]<sexpr>", T.VALUE, [SEXPR]) == List(ValueType.variant("sexpr"), [])

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("[1, 2]", "number '1' missing type suffix (e.g. u32, s64, f32) (this part is "
                       "declared value, so numbers carry their type)"),
            ("some(1s32)", "some needs its type here (declared value): some<T>(x)"),
            ("num(1)", "unexpected identifier 'num' (expected { or ::; no variant declared "
                       "here has a case 'num')"),
        ],
    )  # fmt: skip
    def test_errors(self, text: str, message: str) -> None:
        err = failure(text, T.VALUE, types=[SEXPR], name="v")
        assert (err.path, err.message, err.expected) == ("v", message, "value")


class TestErrors:
    """Errors are ParseErrors with a UTF-8 byte position, a path and a type."""

    def test_position_is_utf8_bytes(self) -> None:
        err = failure('{namespace: "é", limit: some("x")}', CONFIG)
        assert err.position == len('{namespace: "é", limit: some('.encode())
        assert isinstance(err, ParseError)
        assert str(err) == 'limit.some: expected u32, got "x" (at position 30)'

    def test_syntax_errors_keep_packrs_messages(self) -> None:
        with pytest.raises(ParseError, match="unterminated string"):
            parse_typed('sym("x', SEXPR)
        with pytest.raises(ParseError, match="trailing input"):
            parse_typed("nil nil", SEXPR)


class TestDepth:
    """Nesting depth is bounded by memory, not by the recursion limit."""

    def test_hundred_thousand_deep(self) -> None:
        n = 100_000
        value = parse_typed("lst([" * n + "num(1)" + "])" * n, SEXPR)
        depth = 0
        while value.case_name == "lst":  # type: ignore[attr-defined]
            value = value.payload[0].items[0]  # type: ignore[attr-defined]
            depth += 1
        assert depth == n


def _sexprs() -> st.SearchStrategy[Value]:
    leaves = st.one_of(
        st.text(max_size=5).map(lambda s: sexpr("sym", String(s))),
        st.integers(-(2**63), 2**63 - 1).map(lambda n: sexpr("num", S64(n))),
        # NaN prints as NaN whatever its sign and payload: exact NaNs need the JSON form
        st.floats(width=64, allow_nan=False).map(lambda x: sexpr("float", F64(x))),
        st.booleans().map(lambda b: sexpr("bool", Bool(b))),
        st.just(sexpr("nil")),
    )
    return st.recursive(
        leaves,
        lambda kids: st.lists(kids, max_size=4).map(
            lambda xs: sexpr("lst", List(ValueType.variant("sexpr"), xs))
        ),
        max_leaves=25,
    )


@settings(max_examples=60, deadline=None)
@given(_sexprs())
def test_display_reads_back_exactly(value: Value) -> None:
    """packr's Display of a value of the declared type parses back to the same bytes."""
    assert encode(parse_typed(format_value(value), SEXPR)) == encode(value)
