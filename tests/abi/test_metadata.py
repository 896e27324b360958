"""Package metadata (spec §6.2): guest form, both hash forms, tag dispatch, hashing."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from packr_replay.abi import (
    S64,
    U8,
    U32,
    U64,
    Bool,
    List,
    Option,
    Record,
    String,
    Tuple,
    Value,
    ValueType,
    Variant,
    decode,
    encode,
)
from packr_replay.abi.hashing import (
    HASH_S32,
    HASH_S64,
    HASH_SELF_REF,
    HASH_STRING,
    HASH_U8,
    from_u64s,
    hash_function,
    hash_interface,
    hash_list,
    hash_option,
    hash_record,
    hash_tuple,
    hash_variant,
    to_hex,
)
from packr_replay.abi.metadata import (
    TAGS,
    FunctionSig,
    InterfaceHash,
    PackageMetadata,
    ParamSig,
    TypeDesc,
    TypeParam,
    compute_interface_hashes,
    hash_type,
    wasm_export_candidates,
    wasm_export_name,
    wasm_import_name,
)
from packr_replay.errors import MetadataError

TD = TypeDesc
RECORD_ANON = ValueType.record("")
VARIANT_ANON = ValueType.variant("")

# host_actor_fixedbase.wasm's declarations (spec §9.5).
LOG = FunctionSig("theater:simple/runtime", "log", [ParamSig("msg", TD.STRING)])
DOUBLE = FunctionSig("math", "double", [ParamSig("n", TD.S64)], [TD.S64])
PROCESS = FunctionSig("", "process", [ParamSig("input", TD.VALUE)], [TD.VALUE])
HOST_ACTOR = PackageMetadata.build([LOG, DOUBLE], [PROCESS])


def invalid(match: str) -> Any:
    return pytest.raises(MetadataError, match=match)


def tagged(tag: int, *payload: Value, case: str = "x", type_name: str = "type-desc") -> Variant:
    return Variant(type_name, case, tag, payload)


def metadata_with(**fields: Value) -> Record:
    return Record("package-metadata", list(fields.items()))


def one_export(type_desc: Value) -> Record:
    """Guest-form metadata exporting ``f(p: <type_desc>)``."""
    sig = Record(
        "function-sig",
        [
            ("interface", String("")),
            ("name", String("f")),
            (
                "params",
                List(
                    RECORD_ANON, [Record("param-sig", [("name", String("p")), ("type", type_desc)])]
                ),
            ),
            ("results", List(VARIANT_ANON, [])),
        ],
    )
    return metadata_with(exports=List(RECORD_ANON, [sig]))


def param_type(type_desc: Value) -> TypeDesc:
    return PackageMetadata.from_value(one_export(type_desc)).exports[0].params[0].type


class TestVerifiedHashes:
    """The three hashes embedded in host_actor_fixedbase.wasm (spec §6.3)."""

    @pytest.mark.parametrize(
        ("name", "prefix", "suffix"),
        [
            ("math", "045d329d", "5352ff364"),
            ("theater:simple/runtime", "1dd3d02d", "6d54249e54"),
            ("", "00602831", "79ee548e"),
        ],
    )
    def test_interface_hash(self, name: str, prefix: str, suffix: str) -> None:
        hashes = {h.name: h.hex for h in HOST_ACTOR.import_hashes + HOST_ACTOR.export_hashes}
        assert hashes[name].startswith(prefix)
        assert hashes[name].endswith(suffix)

    def test_blob_size_matches_the_real_guest(self) -> None:
        # host_actor's __pack_types blob is 1585 bytes; ours encodes the same shape.
        assert len(HOST_ACTOR.to_bytes()) == 1585

    def test_hashes_are_sorted_by_interface(self) -> None:
        assert [h.name for h in HOST_ACTOR.import_hashes] == ["math", "theater:simple/runtime"]


class TestHostHashType:
    """packr's host-side ``hash_type``: refs resolve against typedefs, else hash their path."""

    def test_unresolved_ref_is_sha256_of_ref_path(self) -> None:
        assert hash_type(TD.ref("my:pkg/types.point")) == hashlib.sha256(
            b"ref:my:pkg/types.point"
        ).digest()
        # The guest rule (pack_types!) for the same desc is the self-reference constant.
        assert TD.ref("my:pkg/types.point").type_hash() == HASH_SELF_REF

    def test_self_value_and_unit(self) -> None:
        assert hash_type(TD.ref("self")) == HASH_SELF_REF
        assert hash_type(TD.VALUE) == HASH_SELF_REF
        assert hash_type(TD.UNIT) == hash_tuple([])

    def test_resolved_ref_hashes_structurally(self) -> None:
        point = TD.record("point", [("y", TD.S32), ("x", TD.S32)])
        assert hash_type(TD.option(TD.ref("point")), [point]) == hash_option(point.type_hash())
        assert hash_type(TD.ref("p"), {"p": TD.list(TD.U8)}) == hash_list(HASH_U8)

    def test_recursion_is_self_ref_as_on_the_guest(self) -> None:
        tree = TD.variant("Tree", [("Leaf", TD.S64), ("Node", TD.list(TD.ref("Tree")))])
        assert hash_type(tree) == tree.type_hash()
        assert hash_type(TD.ref("Tree"), [tree]) == tree.type_hash()
        # A cycle through typedefs (a -> b -> a) ends at the inner a.
        a = TD.record("a", [("b", TD.option(TD.ref("b")))])
        b = TD.record("b", [("a", TD.ref("a"))])
        inner_a = hash_record([("b", hash_option(HASH_SELF_REF))])
        assert hash_type(TD.ref("a"), [a, b]) == hash_record(
            [("b", hash_option(hash_record([("a", HASH_SELF_REF)])))]
        )
        assert hash_type(TD.ref("b"), [a, b]) == hash_record([("a", inner_a)])

    def test_agree_with_the_guest_rule_when_fully_resolved(self) -> None:
        sig = FunctionSig("kv", "get", [ParamSig("k", TD.STRING)], [TD.option(TD.list(TD.U8))])
        assert sig.host_hash() == sig.type_hash()
        named = FunctionSig("kv", "put", [ParamSig("e", TD.ref("entry"))], [])
        assert named.host_hash() != named.type_hash()

    def test_bad_type_defs(self) -> None:
        with pytest.raises(TypeError, match="named record or variant"):
            hash_type(TD.S32, [TD.S32])

    def test_deep(self) -> None:
        desc = TD.U8
        expected = HASH_U8
        for _ in range(50_000):
            desc = TD.list(desc)
            expected = hash_list(expected)
        assert hash_type(desc) == expected


class TestTypeHashing:
    """TypeDesc hashes follow the guest: sorted fields/cases, value as SELF_REF."""

    def test_primitives_and_value(self) -> None:
        assert TD.S64.type_hash() == HASH_S64
        assert TD.VALUE.type_hash() == HASH_SELF_REF
        assert TD.ref("T").type_hash() == HASH_SELF_REF
        assert TD.UNIT.type_hash() == hash_tuple([])

    def test_record_fields_are_sorted(self) -> None:
        yx = TD.record("point", [("y", TD.S32), ("x", TD.S32)])
        assert yx.type_hash() == hash_record([("x", HASH_S32), ("y", HASH_S32)])
        assert yx.type_hash() == TD.record("vec2", [("x", TD.S32), ("y", TD.S32)]).type_hash()

    def test_variant_cases_are_sorted(self) -> None:
        v = TD.variant("sexpr", [("sym", TD.STRING), ("lst", TD.list(TD.VALUE)), ("num", TD.S64)])
        expected = hash_variant(
            [("lst", hash_list(HASH_SELF_REF)), ("num", HASH_S64), ("sym", HASH_STRING)]
        )
        assert v.type_hash() == expected
        # The golden vector variant_sexpr_recursive.
        assert to_hex(expected).startswith("43b90cc1")

    def test_enum(self) -> None:
        assert TD.enum("e", ["b", "a"]).type_hash() == hash_variant([("a", None), ("b", None)])

    def test_function_and_interface(self) -> None:
        inc = FunctionSig("math", "inc", [ParamSig("n", TD.S32)], [TD.S32])
        add = FunctionSig("math", "add", [ParamSig("a", TD.S32), ParamSig("b", TD.S32)], [TD.S32])
        assert inc.type_hash() == hash_function([HASH_S32], [HASH_S32])
        (h,) = compute_interface_hashes([inc, add])
        expected = hash_interface("math", [], [("add", add.type_hash()), ("inc", inc.type_hash())])
        assert h == InterfaceHash("math", expected)
        assert compute_interface_hashes([add, inc]) == compute_interface_hashes([inc, add])
        # The golden vector interface_inc_only.
        (only,) = compute_interface_hashes([inc])
        assert only.hex.startswith("6451c5d5")

    def test_param_names_do_not_matter(self) -> None:
        a = FunctionSig("i", "f", [ParamSig("x", TD.U8)])
        b = FunctionSig("i", "f", [ParamSig("y", TD.U8)])
        assert compute_interface_hashes([a]) == compute_interface_hashes([b])

    def test_deep_type_is_iterative(self) -> None:
        t = TD.U8
        for _ in range(50_000):
            t = TD.list(t)
        expected = HASH_U8
        for _ in range(50_000):
            expected = hash_list(expected)
        assert t.type_hash() == expected


class TestGuestForm:
    """``to_value`` writes exactly the guest's ``pack_types!`` shape."""

    def test_top_level(self) -> None:
        v = HOST_ACTOR.to_value()
        assert v.type_name == "package-metadata"
        assert v.field_names == ("imports", "exports", "import-hashes", "export-hashes")
        for _, lst in v.fields:
            assert isinstance(lst, List)
            assert lst.elem_type == RECORD_ANON

    def test_function_sig(self) -> None:
        sig = HOST_ACTOR.to_value()["imports"][1]
        assert isinstance(sig, Record)
        assert sig.type_name == "function-sig"
        assert sig.field_names == ("interface", "name", "params", "results")
        param = sig["params"][0]
        assert param == Record(
            "param-sig", [("name", String("n")), ("type", Variant("type-desc", "s64", 8))]
        )
        assert sig["results"] == List(VARIANT_ANON, [Variant("type-desc", "s64", 8)])

    def test_hash_is_four_u64s(self) -> None:
        h = HOST_ACTOR.to_value()["import-hashes"][0]
        assert isinstance(h, Record)
        assert h.type_name == "interface-hash"
        words = h["hash"]
        assert isinstance(words, Tuple)
        assert all(type(w) is U64 for w in words)
        assert from_u64s(*(w.value for w in words)) == HOST_ACTOR.import_hashes[0].hash  # type: ignore[attr-defined]

    def test_type_desc_values(self) -> None:
        t = TD.variant(
            "shape",
            [("circle", TD.F64), ("none", None), ("r", TD.result(TD.U8, TD.tuple(TD.CHAR)))],
        )
        v = t.to_value()
        assert (v.type_name, v.case_name, v.tag) == ("type-desc", "variant", 18)
        (desc,) = v.payload
        assert isinstance(desc, Record)
        assert desc.type_name == "variant-desc"
        cases = desc["cases"]
        assert isinstance(cases, List)
        assert cases.elem_type == RECORD_ANON
        assert cases[1] == Record(
            "case-desc", [("name", String("none")), ("payload", Option(VARIANT_ANON, None))]
        )
        result = cases[2]["payload"].value  # type: ignore[index, union-attr]
        assert result.case_name == "result"
        assert result.payload[0].type_name == "result-desc"
        assert result.payload[0]["err"].payload[0] == List(
            VARIANT_ANON, [Variant("type-desc", "char", 11)]
        )

    def test_record_and_ref(self) -> None:
        rec = TD.record("point", [("x", TD.S32)]).to_value()
        assert rec.tag == 17
        assert rec.payload[0] == Record(
            "record-desc",
            [
                ("name", String("point")),
                (
                    "fields",
                    List(
                        RECORD_ANON,
                        [
                            Record(
                                "field-desc",
                                [("name", String("x")), ("type", Variant("type-desc", "s32", 7))],
                            )
                        ],
                    ),
                ),
            ],
        )
        ref = TD.ref("T").to_value()
        assert (ref.tag, ref.payload) == (18, (Record("TypeRef", [("name", String("T"))]),))

    def test_type_params_only_when_present(self) -> None:
        with_params = PackageMetadata.build(type_params=[TypeParam("s", "serializable")])
        v = with_params.to_value()
        assert v.field_names[-1] == "type-params"
        assert v["type-params"][0] == Record(  # type: ignore[index]
            "type-param", [("name", String("s")), ("constraint", String("serializable"))]
        )
        assert "type-params" not in HOST_ACTOR.to_value().field_names

    @pytest.mark.parametrize("kind", sorted(TAGS))
    def test_tags(self, kind: str) -> None:
        samples = {
            "list": TD.list(TD.U8),
            "option": TD.option(TD.U8),
            "result": TD.result(TD.U8, TD.U8),
            "record": TD.record("r", []),
            "variant": TD.variant("v", []),
            "ref": TD.ref("r"),
            "tuple": TD.tuple(),
        }
        desc = samples[kind] if kind in samples else TypeDesc(kind)
        assert desc.to_value().tag == TAGS[kind] == desc.tag


class TestRoundTrip:
    """to_value -> encode -> decode -> from_value is the identity."""

    def test_host_actor(self) -> None:
        assert PackageMetadata.from_bytes(HOST_ACTOR.to_bytes()) == HOST_ACTOR

    def test_every_kind(self) -> None:
        everything = TD.record(
            "all",
            [
                *(
                    (name, TypeDesc(name))
                    for name in (
                        "bool",
                        "u8",
                        "u16",
                        "u32",
                        "u64",
                        "s8",
                        "s16",
                        "s32",
                        "s64",
                        "f32",
                        "f64",
                        "char",
                        "string",
                        "flags",
                        "value",
                        "unit",
                    )
                ),
                ("l", TD.list(TD.option(TD.STRING))),
                ("r", TD.result(TD.BOOL, TD.STRING)),
                ("t", TD.tuple(TD.U8, TD.tuple())),
                ("v", TD.variant("shape", [("a", None), ("b", TD.ref("T"))])),
                ("e", TD.enum("color", ["red", "green"])),
            ],
        )
        meta = PackageMetadata.build(
            [
                FunctionSig(
                    "pkg:a/b",
                    "f",
                    [ParamSig("x", everything), ParamSig("y", TD.U8)],
                    [everything, TD.S64],
                )
            ],
            [FunctionSig("", "g"), FunctionSig("iface", "h", results=[TD.UNIT])],
            [TypeParam("s"), TypeParam("t", "c")],
        )
        back = PackageMetadata.from_bytes(meta.to_bytes())
        assert back == meta
        assert back.export_hashes == compute_interface_hashes(back.exports)

    @settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.data())
    def test_random_types(self, data: st.DataObject) -> None:
        t = data.draw(type_descs())
        assert TypeDesc.from_value(decode(encode(t.to_value()))) == t
        assert TypeDesc.from_value(t.to_value()).type_hash() == t.type_hash()

    def test_deep_type_desc(self) -> None:
        t = TD.STRING
        for _ in range(20_000):
            t = TD.option(t)
        back = param_type(decode(encode(t.to_value())))
        depth = 0
        while back.kind == "option":
            (back,) = back.args
            depth += 1
        assert (depth, back) == (20_000, TD.STRING)

    def test_unknown_fields_are_ignored(self) -> None:
        v = HOST_ACTOR.to_value()
        extra = Record(v.type_name, [("version", U32(3)), *v.fields, ("future", Bool(True))])
        assert PackageMetadata.from_value(extra) == HOST_ACTOR

    def test_missing_lists_are_empty(self) -> None:
        assert PackageMetadata.from_value(Record("PackageMetadata", [])) == PackageMetadata()

    def test_prefix_tolerance(self) -> None:
        blob = HOST_ACTOR.to_bytes() + b"\x00rodata"
        assert PackageMetadata.from_bytes(blob, prefix=True) == HOST_ACTOR
        with pytest.raises(MetadataError, match="Trailing bytes") as info:
            PackageMetadata.from_bytes(blob)
        assert info.value.kind == "DecodeFailed"


def type_descs() -> st.SearchStrategy[TypeDesc]:
    names = st.text(max_size=6)
    leaves = st.sampled_from(
        [
            TypeDesc(k)
            for k in TAGS
            if k not in ("list", "option", "result", "record", "variant", "ref", "tuple")
        ]
    ) | names.map(TD.ref)

    def extend(children: st.SearchStrategy[TypeDesc]) -> st.SearchStrategy[TypeDesc]:
        return st.one_of(
            children.map(TD.list),
            children.map(TD.option),
            st.builds(TD.result, children, children),
            st.lists(children, max_size=3).map(lambda items: TD.tuple(*items)),
            st.builds(TD.record, names, st.lists(st.tuples(names, children), max_size=3)),
            st.builds(
                TD.variant, names, st.lists(st.tuples(names, st.none() | children), max_size=3)
            ),
        )

    return st.recursive(leaves, extend, max_leaves=12)


class TestTagDispatch:
    """Type-descs are read by tag, whatever the case or type names say."""

    @pytest.mark.parametrize("tag", range(14))
    def test_primitive_tags(self, tag: int) -> None:
        names = [
            "bool",
            "u8",
            "u16",
            "u32",
            "u64",
            "s8",
            "s16",
            "s32",
            "s64",
            "f32",
            "f64",
            "char",
            "string",
            "flags",
        ]
        assert param_type(tagged(tag, case=f"tag{tag}", type_name="Type")) == TypeDesc(names[tag])

    def test_case_names_are_ignored(self) -> None:
        assert param_type(tagged(8, case="string")) == TD.S64

    def test_packr_hand_built_signature(self) -> None:
        # packr's type_metadata test: tag 8 = s64 param, tag 12 = string result.
        sig = Record(
            "FunctionSignature",
            [
                ("interface", String("test")),
                ("name", String("f")),
                (
                    "params",
                    List(
                        ValueType.record("ParamSignature"),
                        [Record("ParamSignature", [("name", String("x")), ("type", tagged(8))])],
                    ),
                ),
                ("results", List(ValueType.variant("Type"), [tagged(12)])),
            ],
        )
        meta = PackageMetadata.from_value(
            Record("PackageMetadata", [("imports", List(RECORD_ANON, [sig]))])
        )
        assert meta.imports == (FunctionSig("test", "f", [ParamSig("x", TD.S64)], [TD.STRING]),)

    def test_list_of_s64(self) -> None:
        assert param_type(tagged(14, tagged(8))) == TD.list(TD.S64)

    def test_value_and_unit(self) -> None:
        assert param_type(tagged(20)) == TD.VALUE
        assert param_type(tagged(21, case="tag21")) == TD.UNIT

    def test_tag_18_with_and_without_cases(self) -> None:
        variant_desc = Record(
            "variant-desc",
            [
                ("name", String("v")),
                (
                    "cases",
                    List(
                        RECORD_ANON,
                        [
                            Record(
                                "case-desc",
                                [
                                    ("name", String("a")),
                                    ("payload", Option(VARIANT_ANON, tagged(1))),
                                ],
                            )
                        ],
                    ),
                ),
            ],
        )
        assert param_type(tagged(18, variant_desc)) == TD.variant("v", [("a", TD.U8)])
        host_ref = tagged(
            18, Record("TypeRef", [("name", String("point"))]), case="tag18", type_name="Type"
        )
        assert param_type(host_ref) == TD.ref("point")

    def test_case_payload_forms(self) -> None:
        def case_desc(*payload: tuple[str, Value]) -> Variant:
            case = Record("case-desc", [("name", String("c")), *payload])
            return tagged(
                18,
                Record(
                    "variant-desc", [("name", String("v")), ("cases", List(RECORD_ANON, [case]))]
                ),
            )

        assert param_type(case_desc()) == TD.variant("v", [("c", None)])
        assert param_type(case_desc(("payload", tagged(2)))) == TD.variant("v", [("c", TD.U16)])
        with invalid(r"cases\[0\]\.payload: expected option of type-desc, got string"):
            param_type(case_desc(("payload", String("u16"))))

    def test_unknown_tag(self) -> None:
        with invalid(r"exports\[0\]\.params\[0\]\.type: unknown type tag: 22"):
            param_type(tagged(22))


class TestHashForms:
    """Both hash encodings are read; anything else is refused."""

    def hashes(self, form: Value) -> tuple[InterfaceHash, ...]:
        item = Record("InterfaceHash", [("name", String("math")), ("hash", form)])
        return PackageMetadata.from_value(
            metadata_with(**{"import-hashes": List(RECORD_ANON, [item])})
        ).import_hashes

    def test_both_forms_agree(self) -> None:
        digest = HOST_ACTOR.import_hashes[0].hash
        words = Tuple(*(U64(w) for w in HOST_ACTOR.import_hashes[0].u64s))
        as_bytes = List.from_bytes(digest)
        assert self.hashes(words) == self.hashes(as_bytes) == (InterfaceHash("math", digest),)

    @pytest.mark.parametrize(
        "form",
        [
            Tuple(U64(1), U64(2), U64(3)),
            Tuple(U64(1), U64(2), U64(3), U32(4)),
            List.from_bytes(bytes(31)),
            List(ValueType.STRING, [String("x")] * 32),
            String("045d329d"),
        ],
        ids=repr,
    )
    def test_bad_forms(self, form: Value) -> None:
        with invalid(
            r"import-hashes\[0\]\.hash: expected \(u64, u64, u64, u64\) or 32 u8s"
        ) as info:
            self.hashes(form)
        assert info.value.kind == "InvalidStructure"


class TestBadStructure:
    """Malformed metadata fails with InvalidStructure and the path to the problem."""

    @pytest.mark.parametrize(
        ("value", "message"),
        [
            (S64(1), "invalid metadata structure: expected record at top level"),
            (metadata_with(imports=String("x")), r"imports: expected list of imports, got string"),
            (
                metadata_with(exports=List(RECORD_ANON, [String("f")])),
                r"exports\[0\]: expected record for function signature",
            ),
            (
                metadata_with(exports=List(RECORD_ANON, [Record("", [("name", String("f"))])])),
                r"exports\[0\]: missing field 'params'",
            ),
            (
                one_export(String("s64")),
                r"params\[0\]\.type: expected variant for type, got string",
            ),
            (one_export(tagged(14)), r"type: list type is missing its payload"),
            (
                one_export(tagged(16, String("ok"))),
                r"type\.result: expected record for result payload",
            ),
            (
                one_export(tagged(16, Record("result-desc", [("ok", tagged(0))]))),
                r"type\.result: missing field 'err'",
            ),
            (
                one_export(tagged(17, Record("record-desc", [("name", U8(1))]))),
                r"type\.record\.name: expected string, got u8",
            ),
            (one_export(tagged(19, Tuple())), r"type\.tuple: expected list of types, got tuple"),
            (
                one_export(tagged(14, tagged(15, tagged(99)))),
                r"type\.list\.option: unknown type tag: 99",
            ),
            (
                metadata_with(**{"type-params": List(RECORD_ANON, [Record("", [])])}),
                r"type-params\[0\]: missing field 'name'",
            ),
        ],
        ids=lambda x: x if isinstance(x, str) else None,
    )
    def test_errors(self, value: Value, message: str) -> None:
        with invalid(message) as info:
            PackageMetadata.from_value(value)
        assert info.value.kind == "InvalidStructure"

    def test_deep_error_is_readable(self) -> None:
        bad: Value = tagged(99)
        for _ in range(5_000):
            bad = tagged(15, bad)
        with invalid(r"more\)\.\.\..*unknown type tag: 99") as info:
            param_type(bad)
        assert len(str(info.value)) < 400

    def test_garbage_bytes(self) -> None:
        with pytest.raises(MetadataError, match=r'InvalidEncoding\("Invalid magic"\)') as info:
            PackageMetadata.from_bytes(b"nope")
        assert info.value.kind == "DecodeFailed"

    def test_constructor_checks(self) -> None:
        with pytest.raises(ValueError, match="unknown type-desc kind"):
            TypeDesc("int")
        with pytest.raises(ValueError, match="takes 1 type argument"):
            TypeDesc("list")
        with pytest.raises(ValueError, match="not a primitive"):
            TD.primitive("list")
        with pytest.raises(ValueError, match="32 bytes"):
            InterfaceHash("x", bytes(8))


class TestNamesAndDisplay:
    """Wasm names, display text and ValueTypes of descriptors."""

    def test_wasm_names(self) -> None:
        init = FunctionSig("theater:simple/actor", "init")
        assert wasm_export_name(init) == "theater:simple/actor.init"
        assert wasm_export_name(PROCESS) == "process"
        assert wasm_export_candidates(DOUBLE) == ("math.double", "double")
        assert wasm_export_candidates(PROCESS) == ("process",)
        assert wasm_import_name(LOG) == ("theater:simple/runtime", "log")

    def test_display(self) -> None:
        assert str(DOUBLE) == "math.double(n: s64) -> s64"
        assert str(LOG) == "theater:simple/runtime.log(msg: string)"
        assert str(FunctionSig("", "f", results=[TD.U8, TD.STRING])) == "f() -> (u8, string)"
        t = TD.result(
            TD.list(TD.record("", [("x", TD.U8)])),
            TD.tuple(TD.variant("", [("a", None), ("b", TD.S8)])),
        )
        assert str(t) == "result<list<record{x: u8}>, tuple<variant{a, b(s8)}>>"
        assert str(TD.record("point", [])) == "point"

    def test_value_types(self) -> None:
        t = TD.tuple(
            TD.list(TD.U8),
            TD.option(TD.record("p", [])),
            TD.result(TD.VALUE, TD.UNIT),
            TD.variant("v", []),
            TD.ref("r"),
        )
        assert str(t.to_value_type()) == "tuple<list<u8>, option<p>, result<string, tuple<>>, v, r>"
        assert t.to_value_type().args[3] == ValueType.variant("v")
        assert t.to_value_type().args[4] == ValueType.record("r")

    def test_interface_hash_views(self) -> None:
        h = HOST_ACTOR.import_hashes[0]
        assert h.hex == to_hex(h.hash)
        assert from_u64s(*h.u64s) == h.hash
