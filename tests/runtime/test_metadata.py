"""Package metadata through the runtime (``type_metadata``, spec §6) and
``interface_from_impl`` (packr's InterfaceImpl: declaration, hash, registration)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from packr_replay.abi import (
    S32,
    S64,
    Bool,
    Record,
    Result,
    String,
    Tuple,
    Value,
    ValueType,
    Variant,
    encode,
)
from packr_replay.abi.convert import Err, Ok, TaggedUnion, case, s32, s64, u8
from packr_replay.abi.metadata import FunctionSig, PackageMetadata, ParamSig, TypeDesc
from packr_replay.errors import GuestError, MetadataError, TypedParseError
from packr_replay.runtime import (
    Ctx,
    DemoHost,
    HostErr,
    InterfaceImpl,
    Module,
    Runtime,
    interface_from_impl,
    type_desc_of,
)
from packr_replay.runtime.demo import example_guest

from . import guests

Load = Callable[[str], Module]

HOST_ACTOR = PackageMetadata.build(
    imports=[
        FunctionSig("theater:simple/runtime", "log", (ParamSig("msg", TypeDesc.STRING),)),
        FunctionSig("math", "double", (ParamSig("n", TypeDesc.S64),), (TypeDesc.S64,)),
    ],
    exports=[FunctionSig("", "process", (ParamSig("input", TypeDesc.VALUE),), (TypeDesc.VALUE,))],
)
BLOB = HOST_ACTOR.to_bytes()

# Hashes embedded in packr's host_actor_fixedbase.wasm (spec §6.3, verified there).
MATH_HASH = "045d329df239a4083f01ad53ef75b1b271563fa76147e7a0e3013a75352ff364"
PROCESS_HASH = "00602831491e5f0b9d3d1cbd1dfa10fb1280cdd8395a692c002758ae79ee548e"
LOG_HASH_PREFIX, LOG_HASH_SUFFIX = "1dd3d02d", "6d54249e54"


class TestTypes:
    """Module.types() (static) and Instance.types() (calls __pack_types)."""

    def test_no_pack_types_is_not_found(self, echo: Module) -> None:
        with pytest.raises(MetadataError) as info:
            echo.types()
        assert info.value.kind == "NotFound"
        with pytest.raises(MetadataError) as info:
            echo.instantiate().types()
        assert info.value.kind == "NotFound"
        assert "__pack_types" in str(info.value)

    def test_cgrf_segment_without_export_is_not_found(self, load: Load) -> None:
        module = load(guests.with_metadata(BLOB, export_types=False))
        with pytest.raises(MetadataError) as info:
            module.types()
        assert info.value.kind == "NotFound"

    def test_static_and_instance_agree(self, load: Load) -> None:
        module = load(guests.with_metadata(BLOB))
        static = module.types()
        dynamic = module.instantiate().types()
        assert static == dynamic == HOST_ACTOR
        # the segment continues with rodata; the blob is cut by prefix decoding
        assert module.metadata_bytes() == BLOB

    def test_fixed_base_metadata(self, load: Load) -> None:
        module = load(guests.fixed_base_guest(metadata=BLOB))
        inst = module.instantiate(
            lambda b: b.interface("math").func_typed("double", lambda ctx, v: v)
        )
        assert module.types() == inst.types() == HOST_ACTOR
        meta = inst.types()
        assert [str(f) for f in meta.imports] == [
            "theater:simple/runtime.log(msg: string)",
            "math.double(n: s64) -> s64",
        ]
        assert [str(f) for f in meta.exports] == ["process(input: value) -> value"]
        hashes = {h.name: h.hex for h in meta.import_hashes + meta.export_hashes}
        assert hashes["math"] == MATH_HASH
        assert hashes[""] == PROCESS_HASH

    @pytest.mark.parametrize(
        ("body", "kind"),
        [
            ("(i32.const 1)", "CallFailed"),
            ("unreachable", "CallFailed"),
            (
                "(i32.store (local.get 0) (i32.const 0)) (i32.store (local.get 1) (i32.const 8)) (i32.const 0)",
                "DecodeFailed",
            ),
            (
                "(i32.store (local.get 0) (i32.const -8)) (i32.store (local.get 1) (i32.const 64)) (i32.const 0)",
                "DecodeFailed",
            ),
        ],
        ids=["status", "trap", "garbage", "out-of-bounds"],
    )
    def test_bad_pack_types(self, load: Load, body: str, kind: str) -> None:
        wat = f"""
        (module
          (memory (export "memory") 1)
          (func (export "__pack_types") (param i32 i32) (result i32) {body}))"""
        with pytest.raises(MetadataError) as info:
            load(wat).instantiate().types()
        assert info.value.kind == kind

    def test_not_a_record(self, load: Load) -> None:
        module = load(guests.with_metadata(encode(String("not metadata"))))
        with pytest.raises(MetadataError) as info:
            module.instantiate().types()
        assert info.value.kind == "InvalidStructure"
        with pytest.raises(MetadataError):
            module.types()


# -------------------------------------------------------------- interface_from_impl


@dataclass
class Point:
    x: s32
    y: s32


@dataclass
class Tree:
    label: str
    children: list[Tree] = field(default_factory=list)


class Shape(TaggedUnion):
    circle = case(float)
    rect = case(float, float)
    dot = case()


def _double(ctx: Ctx, n: s64) -> s64:
    return n * 2


def _log(ctx: Ctx, msg: str) -> None:
    pass


def _process(ctx: Ctx, input: Value) -> Value:
    return input


class TestInterfaceHash:
    """The hash of a declared interface equals what guests embed (spec §6.3)."""

    def test_math_matches_guest(self) -> None:
        iface = interface_from_impl("math", {"double": _double})
        assert iface.hash().hex() == MATH_HASH
        assert iface.signatures() == (
            FunctionSig("math", "double", (ParamSig("n", TypeDesc.S64),), (TypeDesc.S64,)),
        )

    def test_unit_return_has_no_results(self) -> None:
        iface = interface_from_impl("theater:simple/runtime", {"log": _log})
        assert iface.signatures()[0].results == ()
        text = iface.hash().hex()
        assert text.startswith(LOG_HASH_PREFIX)
        assert text.endswith(LOG_HASH_SUFFIX)

    def test_value_params_and_results(self) -> None:
        iface = interface_from_impl("", {"process": _process})
        assert iface.hash().hex() == PROCESS_HASH

    def test_declaration_order_does_not_matter(self) -> None:
        a = interface_from_impl("t", {"double": _double, "log": _log})
        b = interface_from_impl("t", {"log": _log, "double": _double})
        assert a.hash() == b.hash()

    def test_signature_change_changes_hash(self) -> None:
        def double32(ctx: Ctx, n: s32) -> s32:
            return n

        a = interface_from_impl("t", {"double": _double})
        b = interface_from_impl("t", {"double": double32})
        c = interface_from_impl("u", {"double": _double})
        d = interface_from_impl("t", {"twice": _double})
        assert len({a.hash(), b.hash(), c.hash(), d.hash()}) == 4

    def test_function_hash_ignores_names(self) -> None:
        def other(ctx: Ctx, m: s64) -> s64:
            return m

        iface = interface_from_impl("t", {"double": _double, "other": other})
        assert iface.function_hash("double") == iface.function_hash("other")
        assert iface.function_hash("missing") is None

    def test_hash_subset(self) -> None:
        full = interface_from_impl("t", {"double": _double, "log": _log})
        only = interface_from_impl("t", {"double": _double})
        assert full.hash_subset(["double"]) == only.hash()
        assert full.hash_subset(["nope"]) is None
        assert full.hash_subset(["log", "double"]) == full.hash()

    def test_matches_guest_metadata(self) -> None:
        math = interface_from_impl("math", {"double": _double})
        assert math.matches(HOST_ACTOR) is True
        wrong = interface_from_impl("math", {"double": _process})
        assert wrong.matches(HOST_ACTOR) is False
        assert interface_from_impl("kv", {"get": _log}).matches(HOST_ACTOR) is None

    def test_empty_interface(self) -> None:
        assert InterfaceImpl("x").hash() != InterfaceImpl("y").hash()


class TestTypeDescs:
    """Python annotations become structural type descriptors."""

    def test_primitives_and_containers(self) -> None:
        assert type_desc_of(s64) == TypeDesc.S64
        assert type_desc_of(str) == TypeDesc.STRING
        assert type_desc_of(bytes) == TypeDesc.list(TypeDesc.U8)
        assert type_desc_of(list[u8]) == TypeDesc.list(TypeDesc.U8)
        assert type_desc_of(str | None) == TypeDesc.option(TypeDesc.STRING)
        assert type_desc_of(Ok[s64] | Err[str]) == TypeDesc.result(TypeDesc.S64, TypeDesc.STRING)
        assert type_desc_of(tuple[str, bool]) == TypeDesc.tuple(TypeDesc.STRING, TypeDesc.BOOL)
        assert type_desc_of(tuple[s32, ...]) == TypeDesc.list(TypeDesc.S32)
        assert type_desc_of(dict[str, s64]) == TypeDesc.list(
            TypeDesc.tuple(TypeDesc.STRING, TypeDesc.S64)
        )
        assert type_desc_of(None) == TypeDesc.UNIT
        assert type_desc_of(Value) == TypeDesc.VALUE
        assert type_desc_of(ValueType.list(ValueType.F64)) == TypeDesc.list(TypeDesc.F64)
        assert type_desc_of(ValueType.record("point")) == TypeDesc.ref("point")

    def test_dataclass_is_inlined(self) -> None:
        assert type_desc_of(Point) == TypeDesc.record(
            "Point", [("x", TypeDesc.S32), ("y", TypeDesc.S32)]
        )

    def test_recursive_dataclass(self) -> None:
        assert type_desc_of(Tree) == TypeDesc.record(
            "Tree", [("label", TypeDesc.STRING), ("children", TypeDesc.list(TypeDesc.ref("Tree")))]
        )

    def test_tagged_union(self) -> None:
        assert type_desc_of(Shape) == TypeDesc.variant(
            "Shape",
            [
                ("circle", TypeDesc.F64),
                ("rect", TypeDesc.tuple(TypeDesc.F64, TypeDesc.F64)),
                ("dot", None),
            ],
        )

    def test_bare_int_rejected(self) -> None:
        with pytest.raises(TypeError, match="width"):
            type_desc_of(int)


class TestInterfaceRegistration:
    """An InterfaceImpl is a provider: its functions run as typed imports."""

    def test_register_and_call(self, load: Load) -> None:
        iface = interface_from_impl("math", {"double": _double})
        inst = load(guests.fixed_base_guest()).instantiate(iface)
        assert inst.call_with_value("process", S64(21)) == S64(42)

    def test_object_with_methods_and_renames(self, load: Load) -> None:
        class Store:
            def __init__(self) -> None:
                self.data: dict[str, str] = {}

            def get(self, ctx: Ctx, key: str) -> str | None:
                return self.data.get(key)

            def set_value(self, ctx: Ctx, key: str, value: str) -> bool:
                self.data[key] = value
                return True

            async def delete(self, ctx: Ctx, key: str) -> bool:
                return self.data.pop(key, None) is not None

            def _private(self) -> None:
                raise AssertionError

        store = Store()
        iface = interface_from_impl("kv", store, names={"set_value": "set"})
        assert sorted(iface.functions) == ["delete", "get", "set"]
        assert iface.functions["delete"].is_async
        sigs = {s.name: str(s) for s in iface.signatures()}
        assert sigs["set"] == "kv.set(key: string, value: string) -> bool"
        assert sigs["get"] == "kv.get(key: string) -> option<string>"

        wat = guests.typed_guest(("kv", "get"), ("kv", "set"), ("kv", "delete"))
        inst = load(wat).instantiate(iface)
        assert inst.call_with_value("set", Tuple(String("a"), String("1"))) == Bool(True)
        assert store.data == {"a": "1"}
        assert inst.call_with_value("get", String("a")).value == String("1")
        assert inst.call_with_value("delete", String("a")).value is True
        assert inst.call_with_value("get", String("a")).value is None

    def test_unknown_rename(self) -> None:
        with pytest.raises(KeyError, match="nope"):
            interface_from_impl("t", {"double": _double}, names={"nope": "x"})

    def test_explicit_types(self, load: Load) -> None:
        iface = InterfaceImpl("test")
        iface.func("double", lambda ctx, n: n * 2, params=[ValueType.S64], returns=TypeDesc.S64)
        assert iface.hash().hex() != ""
        assert iface.signatures()[0].params == (ParamSig("n", TypeDesc.S64),)
        inst = load(guests.typed_guest(("test", "double"))).instantiate(iface)
        assert inst.call_with_value("double", S64(4)) == S64(8)

    def test_explicit_params_count_checked(self) -> None:
        with pytest.raises(TypeError, match="params= lists 2 types"):
            InterfaceImpl("t").func("f", lambda ctx, n: n, params=[s64, s64])

    def test_declared_twice(self) -> None:
        iface = InterfaceImpl("t")
        iface.func("f", _double)
        with pytest.raises(ValueError, match="declared twice"):
            iface.func("f", _double)

    def test_func_result(self, load: Load) -> None:
        iface = InterfaceImpl("test")

        @iface.func_result("check", ok=s64, err=str)
        def check(ctx: Ctx, n: s64) -> s64:
            if n < 0:
                raise HostErr("negative")
            return n

        assert iface.signatures()[0].results == (TypeDesc.result(TypeDesc.S64, TypeDesc.STRING),)
        inst = load(guests.typed_guest(("test", "check"))).instantiate(iface)
        assert inst.call_with_value("check", S64(-1)) == Result(
            ValueType.S64, ValueType.STRING, String("negative"), is_err=True
        )

    def test_ok_err_annotation(self, load: Load) -> None:
        def check(ctx: Ctx, n: s64) -> Ok[s64] | Err[str]:
            return Ok(n) if n >= 0 else Err("negative")

        iface = interface_from_impl("test", {"check": check})
        inst = load(guests.typed_guest(("test", "check"))).instantiate(iface)
        assert inst.call_with_value("check", S64(3)) == Result(
            ValueType.S64, ValueType.STRING, S64(3)
        )

    def test_dataclass_param(self, load: Load) -> None:
        def norm(ctx: Ctx, p: Point) -> s32:
            return abs(p.x) + abs(p.y)

        iface = interface_from_impl("geo", {"norm": norm})
        assert iface.signatures()[0].params[0].type == type_desc_of(Point)
        inst = load(guests.typed_guest(("geo", "norm"))).instantiate(iface)
        # s64 fields do not convert to s32: a TypeConversion error, status -1
        with pytest.raises(GuestError):
            inst.call_with_value("norm", Record("Point", [("x", S64(1)), ("y", S64(2))]))
        good = Record("Point", [("x", S32(-3)), ("y", S32(4))])
        assert inst.call_with_value("norm", good) == S32(7)


class TestCallText:
    """Instance.call_text: value text typed by the export's declared parameters."""

    def test_declared_types(self) -> None:
        runtime = Runtime()
        kv = runtime.load_module(example_guest("kv_actor")).instantiate(DemoHost())
        assert str(kv.call_text("init", '{namespace: "n"}')) == "()"
        assert str(kv.call_text("handle", 'put("k", "v")')) == "response::ok"  # tag 1, not 0
        assert str(kv.call_text("handle", "get(\"k\")")) == 'response::value(some<string>("v"))'
        bench = runtime.load_module(example_guest("bench")).instantiate(DemoHost())
        assert bench.call_text("calls", "4") == S64(10)  # an s64 parameter: 4 is 4s64

    def test_errors_name_the_parameter(self) -> None:
        sexpr = Runtime().load_module(example_guest("sexpr")).instantiate(DemoHost())
        with pytest.raises(TypedParseError) as info:
            sexpr.call_text("eval", 'lst([num("one")])')
        assert (info.value.path, info.value.expected) == ("expr.lst[0].num", "s64")

    def test_without_metadata_the_text_is_packrs(self, load: Load) -> None:
        inst = load(guests.ECHO).instantiate()
        assert inst.call_text("echo", "e::c(1s32)") == Variant("e", "c", 0, [S32(1)])
