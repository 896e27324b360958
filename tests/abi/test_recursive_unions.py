"""Self-referential TaggedUnions, byte-identical with packr's ``#[derive(GraphValue)]``.

The expected bytes come from packr-abi v0.7.0 itself (``tests/vectors/derive_vectors.json``,
provenance in that folder's README): recursive enums, a union inside a tuple, a list of
tuples and an option.
"""

from __future__ import annotations

import sys
from typing import Any, Optional

import pytest

from packr_replay.abi import S64, List, String, Tuple, ValueType, Variant, decode, encode
from packr_replay.abi.convert import TaggedUnion, case, from_value, s64, to_value, value_type_of
from packr_replay.abi.metadata import TypeDesc
from packr_replay.errors import ConversionError
from packr_replay.runtime import type_desc_of
from tests import golden_vectors


class Tree(TaggedUnion):
    """``enum Tree { Leaf(i64), Node(Vec<Tree>) }``"""

    leaf = case(s64, name="Leaf")
    node = case(list["Tree"], name="Node")


class Expr(TaggedUnion):
    """``enum Expr { Num(i64), Add(Box<Expr>, Box<Expr>), Neg(Box<Expr>) }``"""

    num = case(s64, name="Num")
    add = case("Expr", "Expr", name="Add")
    neg = case("Expr", name="Neg")


class Sexp(TaggedUnion):
    """The union inside a tuple, a list of tuples and an option."""

    atom = case(str, name="Atom")
    pair = case(tuple["Sexp", "Sexp"], name="Pair")
    many = case(list[tuple[str, "Sexp"]], name="Many")
    maybe = case(Optional["Sexp"], name="Maybe")  # typing.Optional: a ForwardRef inside
    nil = case(name="Nil")


PYTHON: dict[str, Any] = {
    "tree_leaf": Tree.leaf(42),
    "tree_nested": Tree.node([Tree.leaf(1), Tree.node([Tree.leaf(2), Tree.leaf(3)]), Tree.leaf(4)]),
    "tree_empty_node": Tree.node([]),
    "expr_add": Expr.add(Expr.num(1), Expr.neg(Expr.num(2))),
    "sexp_pair": Sexp.pair((Sexp.atom("a"), Sexp.nil())),
    "sexp_many": Sexp.many([("k", Sexp.atom("v")), ("n", Sexp.nil())]),
    "sexp_maybe": Sexp.maybe(Sexp.nil()),
    "sexp_maybe_none": Sexp.maybe(None),
}
CASES = golden_vectors.load("derive")


def test_every_vector_has_a_python_counterpart() -> None:
    assert sorted(c["name"] for c in CASES) == sorted(PYTHON)


class TestDerivedRecursiveEnums:
    """packr's derive: a case may hold its own union, directly, in a list, tuple or option."""

    @pytest.mark.parametrize("vector", CASES, ids=lambda c: c["name"])
    def test_bytes_identical_to_packr_derive(self, vector: dict[str, Any]) -> None:
        obj = PYTHON[vector["name"]]
        value = to_value(obj)
        assert encode(value).hex() == vector["hex"]
        assert str(value) == vector["text"]

    @pytest.mark.parametrize("vector", CASES, ids=lambda c: c["name"])
    def test_packr_bytes_read_back_as_the_union(self, vector: dict[str, Any]) -> None:
        obj = PYTHON[vector["name"]]
        assert from_value(decode(bytes.fromhex(vector["hex"])), type(obj)) == obj

    def test_recursive_enum_nested_value(self) -> None:
        """packr's ``recursive_enum_nested``: Node([Leaf(1), Node([...]), Leaf(4)])."""
        value = to_value(PYTHON["tree_nested"])
        leaf = Variant("Tree", "Leaf", 0, [S64(1)])
        assert value.payload[0].elem_type == ValueType.variant("Tree")  # type: ignore[attr-defined]
        assert value.payload[0].items[0] == leaf  # type: ignore[attr-defined]
        assert value == Variant(
            "Tree",
            "Node",
            1,
            [
                List(
                    ValueType.variant("Tree"),
                    [
                        leaf,
                        to_value(Tree.node([Tree.leaf(2), Tree.leaf(3)])),
                        Variant("Tree", "Leaf", 0, [S64(4)]),
                    ],
                )
            ],
        )

    def test_box_is_transparent(self) -> None:
        """``Add(Box<Expr>, Box<Expr>)``: two payload values, each the Expr itself."""
        value = to_value(Expr.add(Expr.num(1), Expr.num(2)))
        assert [p.case_name for p in value.payload] == ["Num", "Num"]  # type: ignore[attr-defined]

    def test_union_inside_a_tuple(self) -> None:
        value = to_value(Sexp.pair((Sexp.atom("a"), Sexp.nil())))
        (pair,) = value.payload  # type: ignore[attr-defined]
        assert pair == Tuple(Variant("Sexp", "Atom", 0, [String("a")]), Variant("Sexp", "Nil", 4))

    def test_deep_recursion_is_iterative(self) -> None:
        depth = 5 * sys.getrecursionlimit()
        obj = Expr.num(0)
        for _ in range(depth):
            obj = Expr.neg(obj)
        back = from_value(decode(encode(to_value(obj))), Expr)
        for _ in range(depth):
            assert back.case == "Neg"
            (back,) = back.payload
        assert back == Expr.num(0)


class TestForwardReferences:
    """How names in payload types resolve, and what an unresolvable one says."""

    def test_value_types(self) -> None:
        assert value_type_of(Tree) == ValueType.variant("Tree")
        assert to_value(Tree.node([])).payload[0].elem_type == ValueType.variant("Tree")  # type: ignore[attr-defined]

    def test_a_union_defined_in_a_function_can_name_itself(self) -> None:
        class Chain(TaggedUnion):
            end = case()
            link = case(s64, "Chain | None")

        obj = Chain.link(1, Chain.link(2, None))
        assert from_value(decode(encode(to_value(obj))), Chain) == obj

    def test_a_later_module_level_class(self) -> None:
        assert to_value(Forest.trees([Tree.leaf(1)])).payload[0].items[0] == to_value(  # type: ignore[attr-defined]
            Tree.leaf(1)
        )

    def test_unknown_name_is_a_conversion_error(self) -> None:
        class Broken(TaggedUnion):
            bad = case("Nowhere")

        with pytest.raises(ConversionError, match=r"Broken\.bad: cannot resolve the payload types"):
            to_value(Broken.bad(1))

    def test_interface_type_desc_inlines_and_refers_back(self) -> None:
        desc = type_desc_of(Tree)
        assert desc == TypeDesc.variant(
            "Tree", [("Leaf", TypeDesc.S64), ("Node", TypeDesc.list(TypeDesc.ref("Tree")))]
        )
        expr = type_desc_of(Expr)
        assert expr.cases[1] == ("Add", TypeDesc.tuple(TypeDesc.ref("Expr"), TypeDesc.ref("Expr")))


class Forest(TaggedUnion):
    """Refers to a class defined above and is itself defined after the tests that use it."""

    trees = case(list["Tree"])
