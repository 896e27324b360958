"""Package metadata (spec §6.2): what a guest's ``__pack_types`` blob declares.

A guest embeds a CGRF ``package-metadata`` record listing the functions it imports and
exports, their parameter and result types (``type-desc`` variants) and one structural
hash per interface (§6.3). :meth:`PackageMetadata.from_value` reads both producers'
forms (guest: hashes as four u64s, host: 32-byte ``list<u8>``; case names differ, so
type-descs dispatch on the **tag**); :meth:`PackageMetadata.to_value` writes the guest
form byte-compatible with packr's ``pack_types!``.

Reading is strict about shape (wrong kinds and missing required fields raise
``MetadataError("InvalidStructure", ...)`` naming the path) but ignores unknown fields
and tolerates what real producers omit: absent top-level lists, an absent
``constraint`` or case ``payload``. All walks over type-descs are iterative.

Metadata is a declaration, not the truth: :func:`wasm_export_candidates` lists the
names to try, and a runtime should cross-check the module's real imports and exports.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from ..errors import AbiError, MetadataError
from .decoder import decode, decode_prefix
from .encoder import encode
from .hashing import (
    HASH_SELF_REF,
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
    hash_variant,
    to_hex,
    to_u64s,
)
from .types import PRIMITIVE_TYPES, Kind, ValueType
from .values import U8, U64, List, Option, Record, String, Tuple, Value, Variant

__all__ = [
    "TAGS",
    "FunctionSig",
    "InterfaceHash",
    "PackageMetadata",
    "ParamSig",
    "TypeDesc",
    "TypeParam",
    "compute_interface_hashes",
    "hash_type",
    "wasm_export_candidates",
    "wasm_export_name",
    "wasm_import_name",
]

_PRIMITIVES = (
    "bool", "u8", "u16", "u32", "u64", "s8", "s16", "s32", "s64",
    "f32", "f64", "char", "string", "flags",
)  # fmt: skip

#: ``type-desc`` variant tag of each kind. ``ref`` shares tag 18 with ``variant``: its
#: payload record has no ``cases`` field.
TAGS: dict[str, int] = {
    **{name: tag for tag, name in enumerate(_PRIMITIVES)},
    "list": 14,
    "option": 15,
    "result": 16,
    "record": 17,
    "variant": 18,
    "ref": 18,
    "tuple": 19,
    "value": 20,
    "unit": 21,
}
_R = TypeVar("_R")
_PRIM_BY_TAG: dict[int, str] = dict(enumerate(_PRIMITIVES))
_ARITY = {"list": 1, "option": 1, "result": 2}
_EMPTY_RECORD = ValueType.record("")
_EMPTY_VARIANT = ValueType.variant("")


# ----------------------------------------------------------------- TypeDesc


@dataclass(frozen=True, slots=True)
class TypeDesc:
    """A metadata type descriptor: structural, with records and variants inlined.

    ``kind`` is a primitive name, ``list``/``option``/``result``/``tuple`` (element
    types in ``args``), ``record`` (``name`` and ``fields``), ``variant`` (``name`` and
    ``cases``; ``None`` marks a case without payload), ``ref`` (a named or generic
    reference, ``name`` only), ``value`` (packr's dynamic "any") or ``unit`` (written
    by packr's host encoder only). Build with the constants and constructors:
    ``TypeDesc.S64``, ``TypeDesc.list(TypeDesc.U8)``,
    ``TypeDesc.record("point", [("x", TypeDesc.S32)])``.
    """

    kind: str
    args: tuple[TypeDesc, ...] = ()
    name: str = ""
    fields: tuple[tuple[str, TypeDesc], ...] = ()
    cases: tuple[tuple[str, TypeDesc | None], ...] = ()

    BOOL: ClassVar[TypeDesc]
    U8: ClassVar[TypeDesc]
    U16: ClassVar[TypeDesc]
    U32: ClassVar[TypeDesc]
    U64: ClassVar[TypeDesc]
    S8: ClassVar[TypeDesc]
    S16: ClassVar[TypeDesc]
    S32: ClassVar[TypeDesc]
    S64: ClassVar[TypeDesc]
    F32: ClassVar[TypeDesc]
    F64: ClassVar[TypeDesc]
    CHAR: ClassVar[TypeDesc]
    STRING: ClassVar[TypeDesc]
    FLAGS: ClassVar[TypeDesc]
    VALUE: ClassVar[TypeDesc]
    UNIT: ClassVar[TypeDesc]

    def __post_init__(self) -> None:
        if self.kind not in TAGS:
            raise ValueError(f"unknown type-desc kind {self.kind!r}")
        want = _ARITY.get(self.kind, 0)
        if self.kind != "tuple" and len(self.args) != want:
            raise ValueError(f"a {self.kind} type-desc takes {want} type argument(s)")
        for a in self.args:
            if not isinstance(a, TypeDesc):
                raise TypeError(f"type-desc arguments are TypeDescs, got {type(a).__name__}")

    # ------------------------------------------------------------ constructors

    @staticmethod
    def primitive(name: str) -> TypeDesc:
        """``bool`` ... ``flags`` by name."""
        if name not in _PRIMITIVES:
            raise ValueError(f"not a primitive type name: {name!r}")
        return _PRIM_DESCS[name]

    @staticmethod
    def list(elem: TypeDesc) -> TypeDesc:
        return TypeDesc("list", (elem,))

    @staticmethod
    def option(inner: TypeDesc) -> TypeDesc:
        return TypeDesc("option", (inner,))

    @staticmethod
    def result(ok: TypeDesc, err: TypeDesc) -> TypeDesc:
        return TypeDesc("result", (ok, err))

    @staticmethod
    def tuple(*items: TypeDesc) -> TypeDesc:
        return TypeDesc("tuple", items)

    @staticmethod
    def record(name: str, fields: Iterable[builtins.tuple[str, TypeDesc]]) -> TypeDesc:
        return TypeDesc("record", name=name, fields=builtins.tuple(fields))

    @staticmethod
    def variant(name: str, cases: Iterable[builtins.tuple[str, TypeDesc | None]]) -> TypeDesc:
        return TypeDesc("variant", name=name, cases=builtins.tuple(cases))

    @staticmethod
    def enum(name: str, cases: Iterable[str]) -> TypeDesc:
        """An enum is a variant whose cases carry no payload."""
        return TypeDesc("variant", name=name, cases=builtins.tuple((c, None) for c in cases))

    @staticmethod
    def ref(name: str) -> TypeDesc:
        return TypeDesc("ref", name=name)

    # -------------------------------------------------------------- accessors

    @property
    def tag(self) -> int:
        """The ``type-desc`` variant tag on the wire."""
        return TAGS[self.kind]

    @property
    def is_primitive(self) -> bool:
        return self.kind in _PRIM_DESCS

    # ------------------------------------------------------------- conversions

    def type_hash(self) -> bytes:
        """The §6.3 hash, computed as guests do: fields and cases sorted by name,
        ``value`` and ``ref`` as ``HASH_SELF_REF``, ``unit`` as the empty tuple.

        This is the guest rule; :func:`hash_type` is packr's host-side rule, which
        differs for a ``ref`` that resolves to nothing (see :mod:`.hashing`)."""
        return _fold(self, _hash_node)

    def to_value(self) -> Variant:
        """The guest's ``type-desc`` variant (type name ``type-desc``)."""
        return _fold(self, _desc_to_value)

    @staticmethod
    def from_value(value: Value) -> TypeDesc:
        """Read a ``type-desc`` variant, dispatching on its tag."""
        return _parse_type(value, (None, "type"))

    def to_value_type(self) -> ValueType:
        """The ``ValueType`` values of this type carry: records and variants keep only
        their name, ``value`` is ``string`` (packr's type of a dynamic value), ``unit``
        is ``tuple<>`` and a ``ref`` is taken to be a record."""
        return _fold(self, _desc_to_value_type)

    def __str__(self) -> str:
        return _fold(self, _desc_to_text)


_PRIM_DESCS: dict[str, TypeDesc] = {name: TypeDesc(name) for name in _PRIMITIVES}
for _name, _desc in _PRIM_DESCS.items():
    setattr(TypeDesc, _name.upper(), _desc)
TypeDesc.VALUE = TypeDesc("value")
TypeDesc.UNIT = TypeDesc("unit")
del _name, _desc


def _children(d: TypeDesc) -> list[TypeDesc]:
    if d.kind == "record":
        return [t for _, t in d.fields]
    if d.kind == "variant":
        return [t for _, t in d.cases if t is not None]
    return list(d.args)


def _fold(root: TypeDesc, combine: Callable[[TypeDesc, list[_R]], _R]) -> _R:
    """Post-order over a type-desc tree with an explicit stack; ``combine`` gets a
    node and the results of its children (fields' and present cases' types in order)."""
    out: list[_R] = []
    stack: list[tuple[TypeDesc, bool]] = [(root, False)]
    while stack:
        d, expanded = stack.pop()
        kids = _children(d)
        if not kids:
            out.append(combine(d, []))
        elif expanded:
            n = len(kids)
            results = out[len(out) - n :]
            del out[len(out) - n :]
            out.append(combine(d, results))
        else:
            stack.append((d, True))
            stack.extend((k, False) for k in reversed(kids))
    return out[0]


def _with_cases(d: TypeDesc, kids: list[Any]) -> list[Any]:
    """Pair each case with its child result (or None) in declaration order."""
    it = iter(kids)
    return [(name, None if t is None else next(it)) for name, t in d.cases]


def _hash_node(d: TypeDesc, kids: list[bytes]) -> bytes:
    k = d.kind
    if k in PRIMITIVE_HASHES:
        return PRIMITIVE_HASHES[k]
    if k == "list":
        return hash_list(kids[0])
    if k == "option":
        return hash_option(kids[0])
    if k == "result":
        return hash_result(kids[0], kids[1])
    if k == "tuple":
        return hash_tuple(kids)
    if k == "unit":
        return hash_tuple([])
    if k == "record":
        fields = [(name, h) for (name, _), h in zip(d.fields, kids, strict=True)]
        return hash_record(sorted(fields, key=_by_name))
    if k == "variant":
        return hash_variant(sorted(_with_cases(d, kids), key=_by_name))
    return HASH_SELF_REF  # value, ref


#: Named types a ``ref`` may resolve to: a mapping of names to TypeDescs, or named
#: record/variant TypeDescs (their ``name`` is the key).
TypeDefs = Mapping[str, "TypeDesc"] | Iterable["TypeDesc"]


def type_defs(types: TypeDefs) -> dict[str, TypeDesc]:
    """``types`` as a name -> TypeDesc mapping."""
    if isinstance(types, Mapping):
        return dict(types)
    out: dict[str, TypeDesc] = {}
    for d in types:
        if not isinstance(d, TypeDesc) or d.kind not in ("record", "variant") or not d.name:
            raise TypeError(f"a type definition is a named record or variant TypeDesc, got {d!r}")
        out[d.name] = d
    return out


_POP_NAME = object()  # a marker on hash_type's stack: leave the innermost named type


def hash_type(desc: TypeDesc, types: TypeDefs = ()) -> bytes:
    """packr's host-side ``hash_type`` / ``hash_type_in``, iteratively.

    Like the guest rule (:meth:`TypeDesc.type_hash`) except for names: a ``ref`` to a
    type in ``types`` is hashed structurally (as if inlined); a ``ref`` to ``self`` or
    to a named record or variant being hashed further up is recursion
    (``HASH_SELF_REF``); any other ``ref`` hashes as ``SHA-256("ref:" + name)``
    (:func:`~.hashing.hash_ref`). ``value`` is ``HASH_SELF_REF``, ``unit`` the empty
    tuple.
    """
    defs = type_defs(types)
    out: list[bytes] = []
    names: list[str] = []
    stack: list[tuple[Any, bool]] = [(desc, False)]
    while stack:
        d, expanded = stack.pop()
        if d is _POP_NAME:
            names.pop()
            continue
        if d.kind == "ref":
            name = d.name
            if name == "self" or name in names:
                out.append(HASH_SELF_REF)
            elif name in defs:
                names.append(name)
                stack.append((_POP_NAME, False))
                stack.append((defs[name], False))
            else:
                out.append(hash_ref(name))
            continue
        kids = _children(d)
        named = d.kind in ("record", "variant") and bool(d.name)
        if not kids:
            out.append(_hash_node(d, []))
        elif expanded:
            n = len(kids)
            results = out[len(out) - n :]
            del out[len(out) - n :]
            out.append(_hash_node(d, results))
            if named:
                names.pop()
        else:
            if named:
                names.append(d.name)
            stack.append((d, True))
            stack.extend((k, False) for k in reversed(kids))
    return out[0]


def _by_name(pair: tuple[str, Any]) -> str:
    # Python orders str by code point, which is UTF-8 byte order, as Rust's sort.
    return pair[0]


def _tagged(case: str, tag: int, payload: Sequence[Value] = ()) -> Variant:
    return Variant("type-desc", case, tag, payload)


def _desc_to_value(d: TypeDesc, kids: list[Variant]) -> Variant:
    k = d.kind
    if k == "list" or k == "option":
        return _tagged(k, d.tag, kids)
    if k == "result":
        return _tagged(k, 16, [Record("result-desc", [("ok", kids[0]), ("err", kids[1])])])
    if k == "tuple":
        return _tagged(k, 19, [List(_EMPTY_VARIANT, kids)])
    if k == "record":
        fields = [
            Record("field-desc", [("name", String(name)), ("type", t)])
            for (name, _), t in zip(d.fields, kids, strict=True)
        ]
        desc = Record(
            "record-desc", [("name", String(d.name)), ("fields", List(_EMPTY_RECORD, fields))]
        )
        return _tagged(k, 17, [desc])
    if k == "variant":
        cases = [
            Record("case-desc", [("name", String(name)), ("payload", Option(_EMPTY_VARIANT, t))])
            for name, t in _with_cases(d, kids)
        ]
        desc = Record(
            "variant-desc", [("name", String(d.name)), ("cases", List(_EMPTY_RECORD, cases))]
        )
        return _tagged(k, 18, [desc])
    if k == "ref":
        return _tagged(k, 18, [Record("TypeRef", [("name", String(d.name))])])
    return _tagged(k, d.tag)  # primitives, value, unit


def _desc_to_value_type(d: TypeDesc, kids: list[ValueType]) -> ValueType:
    k = d.kind
    if k in _PRIM_DESCS:
        return PRIMITIVE_TYPES[_VT_TAGS[k]]
    if k == "list":
        return ValueType.list(kids[0])
    if k == "option":
        return ValueType.option(kids[0])
    if k == "result":
        return ValueType.result(kids[0], kids[1])
    if k == "tuple":
        return ValueType.tuple(*kids)
    if k == "unit":
        return ValueType.UNIT
    if k == "value":
        return ValueType.STRING
    if k == "variant":
        return ValueType.variant(d.name)
    return ValueType.record(d.name)  # record, ref


_VT_TAGS: dict[str, int] = {
    "bool": Kind.BOOL, "u8": Kind.U8, "u16": Kind.U16, "u32": Kind.U32, "u64": Kind.U64,
    "s8": Kind.S8, "s16": Kind.S16, "s32": Kind.S32, "s64": Kind.S64, "f32": Kind.F32,
    "f64": Kind.F64, "char": Kind.CHAR, "string": Kind.STRING, "flags": Kind.FLAGS,
}  # fmt: skip


def _desc_to_text(d: TypeDesc, kids: list[str]) -> str:
    k = d.kind
    if k == "list" or k == "option":
        return f"{k}<{kids[0]}>"
    if k == "result":
        return f"result<{kids[0]}, {kids[1]}>"
    if k == "tuple":
        return f"tuple<{', '.join(kids)}>"
    if k == "record":
        if d.name:
            return d.name
        inner = ", ".join(f"{n}: {t}" for (n, _), t in zip(d.fields, kids, strict=True))
        return f"record{{{inner}}}"
    if k == "variant":
        if d.name:
            return d.name
        inner = ", ".join(n if t is None else f"{n}({t})" for n, t in _with_cases(d, kids))
        return f"variant{{{inner}}}"
    if k == "ref":
        return d.name
    return k


# ------------------------------------------------------------- signatures


@dataclass(frozen=True, slots=True)
class ParamSig:
    """A named parameter; names are documentation only (hashes ignore them)."""

    name: str
    type: TypeDesc


@dataclass(frozen=True, slots=True)
class FunctionSig:
    """One imported or exported function. Bare exports have interface ``""``."""

    interface: str
    name: str
    params: tuple[ParamSig, ...] = ()
    results: tuple[TypeDesc, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", tuple(self.params))
        object.__setattr__(self, "results", tuple(self.results))

    def type_hash(self) -> bytes:
        """The function hash: parameter and result types in order, no names (guest rule)."""
        return hash_function(
            [p.type.type_hash() for p in self.params], [r.type_hash() for r in self.results]
        )

    def host_hash(self, types: TypeDefs = ()) -> bytes:
        """The function hash by packr's host-side rule (``hash_function_from_sig_in``):
        references resolve against ``types``; see :func:`hash_type`."""
        return hash_function(
            [hash_type(p.type, types) for p in self.params],
            [hash_type(r, types) for r in self.results],
        )

    def __str__(self) -> str:
        params = ", ".join(f"{p.name}: {p.type}" for p in self.params)
        head = f"{self.interface}.{self.name}" if self.interface else self.name
        if not self.results:
            return f"{head}({params})"
        if len(self.results) == 1:
            return f"{head}({params}) -> {self.results[0]}"
        return f"{head}({params}) -> ({', '.join(map(str, self.results))})"


@dataclass(frozen=True, slots=True)
class InterfaceHash:
    """An interface's declared 32-byte hash."""

    name: str
    hash: bytes

    def __post_init__(self) -> None:
        if len(self.hash) != 32:
            raise ValueError(f"an interface hash is 32 bytes, got {len(self.hash)}")
        object.__setattr__(self, "hash", bytes(self.hash))

    @property
    def hex(self) -> str:
        return to_hex(self.hash)

    @property
    def u64s(self) -> tuple[int, int, int, int]:
        return to_u64s(self.hash)


@dataclass(frozen=True, slots=True)
class TypeParam:
    """An interface-level generic parameter (packr HEAD); ``""`` means no constraint."""

    name: str
    constraint: str = ""


def compute_interface_hashes(funcs: Iterable[FunctionSig]) -> tuple[InterfaceHash, ...]:
    """One hash per interface, as guests compute them: functions bound by name in
    name order, no type bindings, interfaces sorted by name."""
    by_interface: dict[str, list[FunctionSig]] = {}
    for sig in funcs:
        by_interface.setdefault(sig.interface, []).append(sig)
    hashes = []
    for name in sorted(by_interface):
        bindings = sorted(((f.name, f.type_hash()) for f in by_interface[name]), key=_by_name)
        hashes.append(InterfaceHash(name, hash_interface(name, [], bindings)))
    return tuple(hashes)


def wasm_export_name(sig: FunctionSig) -> str:
    """The wasm export a declared export should have: ``name`` for bare exports,
    ``interface.name`` for qualified ones (``theater:simple/actor.init``)."""
    return f"{sig.interface}.{sig.name}" if sig.interface else sig.name


def wasm_export_candidates(sig: FunctionSig) -> tuple[str, ...]:
    """Export names to try, in order: guests sometimes declare an interface but export
    the bare name (packr's math-real exports ``double`` for ``math.double``)."""
    qualified = wasm_export_name(sig)
    return (qualified,) if qualified == sig.name else (qualified, sig.name)


def wasm_import_name(sig: FunctionSig) -> tuple[str, str]:
    """The ``(module, field)`` of a declared import: the interface and the name."""
    return sig.interface, sig.name


# --------------------------------------------------------- PackageMetadata


@dataclass(frozen=True, slots=True)
class PackageMetadata:
    """A package's declared imports, exports, interface hashes and type parameters.

    The hashes are what the guest *declared*; compare them with
    :func:`compute_interface_hashes` of the signatures to detect stale metadata.
    """

    imports: tuple[FunctionSig, ...] = ()
    exports: tuple[FunctionSig, ...] = ()
    import_hashes: tuple[InterfaceHash, ...] = ()
    export_hashes: tuple[InterfaceHash, ...] = ()
    type_params: tuple[TypeParam, ...] = ()

    def __post_init__(self) -> None:
        for name in ("imports", "exports", "import_hashes", "export_hashes", "type_params"):
            object.__setattr__(self, name, tuple(getattr(self, name)))

    @classmethod
    def build(
        cls,
        imports: Iterable[FunctionSig] = (),
        exports: Iterable[FunctionSig] = (),
        type_params: Iterable[TypeParam] = (),
    ) -> PackageMetadata:
        """Metadata for these signatures with the hashes a guest would embed."""
        imports, exports = tuple(imports), tuple(exports)
        return cls(
            imports,
            exports,
            compute_interface_hashes(imports),
            compute_interface_hashes(exports),
            tuple(type_params),
        )

    # ------------------------------------------------------------- reading

    @classmethod
    def from_bytes(
        cls, data: bytes | bytearray | memoryview, *, prefix: bool = False
    ) -> PackageMetadata:
        """Decode a ``__pack_types`` blob. ``prefix=True`` allows trailing bytes, for
        metadata found at the start of a data segment that continues with rodata."""
        try:
            value = decode_prefix(data)[0] if prefix else decode(data)
        except AbiError as exc:
            raise MetadataError("DecodeFailed", f"failed to decode metadata: {exc.debug}") from exc
        return cls.from_value(value)

    @classmethod
    def from_value(cls, value: Value) -> PackageMetadata:
        """Read a decoded ``package-metadata`` record (guest or host form)."""
        if not isinstance(value, Record):
            raise _invalid(None, "expected record at top level")
        return cls(
            imports=_read_list(value, "imports", _read_func),
            exports=_read_list(value, "exports", _read_func),
            import_hashes=_read_list(value, "import-hashes", _read_hash),
            export_hashes=_read_list(value, "export-hashes", _read_hash),
            type_params=_read_list(value, "type-params", _read_type_param),
        )

    # ------------------------------------------------------------- writing

    def to_value(self) -> Record:
        """The guest form: record ``package-metadata`` with ``List<Record("")>`` items,
        hashes as ``(u64, u64, u64, u64)``, ``type-params`` only when non-empty."""
        fields: list[tuple[str, Value]] = [
            ("imports", List(_EMPTY_RECORD, [_func_value(f) for f in self.imports])),
            ("exports", List(_EMPTY_RECORD, [_func_value(f) for f in self.exports])),
            ("import-hashes", List(_EMPTY_RECORD, [_hash_value(h) for h in self.import_hashes])),
            ("export-hashes", List(_EMPTY_RECORD, [_hash_value(h) for h in self.export_hashes])),
        ]
        if self.type_params:
            params = [
                Record(
                    "type-param", [("name", String(p.name)), ("constraint", String(p.constraint))]
                )
                for p in self.type_params
            ]
            fields.append(("type-params", List(_EMPTY_RECORD, params)))
        return Record("package-metadata", fields)

    def to_bytes(self) -> bytes:
        """CGRF bytes of :meth:`to_value`, ready to embed as a guest's metadata blob."""
        return encode(self.to_value())


def _func_value(sig: FunctionSig) -> Record:
    params = [
        Record("param-sig", [("name", String(p.name)), ("type", p.type.to_value())])
        for p in sig.params
    ]
    return Record(
        "function-sig",
        [
            ("interface", String(sig.interface)),
            ("name", String(sig.name)),
            ("params", List(_EMPTY_RECORD, params)),
            ("results", List(_EMPTY_VARIANT, [r.to_value() for r in sig.results])),
        ],
    )


def _hash_value(h: InterfaceHash) -> Record:
    words = Tuple(*(U64(w) for w in h.u64s))
    return Record("interface-hash", [("name", String(h.name)), ("hash", words)])


# ----------------------------------------------------------------- reading

# Paths are linked (parent, segment) pairs, rendered only for an error message, so
# deep type-descs cost O(1) per level.
_Path = tuple[Any, str] | None


def _at(path: _Path, *segments: str) -> _Path:
    for seg in segments:
        path = (path, seg)
    return path


def _invalid(path: _Path, message: str) -> MetadataError:
    where = _render(path)
    return MetadataError(
        "InvalidStructure",
        f"invalid metadata structure: {where + ': ' if where else ''}{message}",
    )


def _render(path: _Path, keep: int = 12) -> str:
    parts: list[str] = []
    while path is not None:
        path, seg = path
        parts.append(seg if seg.startswith("[") else f".{seg}")
    parts.reverse()
    if len(parts) > 2 * keep:  # hostile nesting: keep the message readable
        parts = [*parts[:keep], f"...({len(parts) - 2 * keep} more)...", *parts[-keep:]]
    return "".join(parts).lstrip(".")


def _describe(v: Value) -> str:
    return f"{type(v).__name__.lower()}"


def _field(rec: Record, name: str, path: _Path) -> Value:
    """A required field (the first of that name, as packr's decoder reads it)."""
    v = rec.get(name)
    if v is None:
        raise _invalid(path, f"missing field {name!r}")
    return v


def _string(rec: Record, name: str, path: _Path, default: str | None = None) -> str:
    v = rec.get(name)
    if v is None:
        if default is None:
            raise _invalid(path, f"missing field {name!r}")
        return default
    if not isinstance(v, String):
        raise _invalid(_at(path, name), f"expected string, got {_describe(v)}")
    return v.value


def _record(v: Value, path: _Path, what: str) -> Record:
    if not isinstance(v, Record):
        raise _invalid(path, f"expected record for {what}, got {_describe(v)}")
    return v


def _items(v: Value | None, path: _Path, what: str) -> tuple[Value, ...]:
    if v is None:
        return ()
    if not isinstance(v, List):
        raise _invalid(path, f"expected list of {what}, got {_describe(v)}")
    return v.items


def _read_list(rec: Record, name: str, read: Callable[[Value, _Path], Any]) -> tuple[Any, ...]:
    path = (None, name)
    items = _items(rec.get(name), path, name)
    return tuple(read(item, (path, f"[{i}]")) for i, item in enumerate(items))


def _read_func(v: Value, path: _Path) -> FunctionSig:
    rec = _record(v, path, "function signature")
    params = []
    for i, p in enumerate(_items(_field(rec, "params", path), _at(path, "params"), "parameters")):
        ppath = _at(path, "params", f"[{i}]")
        prec = _record(p, ppath, "parameter")
        ptype = _field(prec, "type", ppath)
        params.append(
            ParamSig(_string(prec, "name", ppath), _parse_type(ptype, _at(ppath, "type")))
        )
    results = [
        _parse_type(r, _at(path, "results", f"[{i}]"))
        for i, r in enumerate(_items(_field(rec, "results", path), _at(path, "results"), "types"))
    ]
    return FunctionSig(
        _string(rec, "interface", path), _string(rec, "name", path), tuple(params), tuple(results)
    )


def _read_hash(v: Value, path: _Path) -> InterfaceHash:
    rec = _record(v, path, "interface hash")
    h = _field(rec, "hash", path)
    hpath = _at(path, "hash")
    if isinstance(h, Tuple) and len(h.items) == 4 and all(type(w) is U64 for w in h.items):
        digest = from_u64s(*(w.value for w in h.items))  # type: ignore[attr-defined]
    elif isinstance(h, List) and len(h.items) == 32 and all(type(b) is U8 for b in h.items):
        digest = bytes(b.value for b in h.items)  # type: ignore[attr-defined]
    else:
        raise _invalid(hpath, f"expected (u64, u64, u64, u64) or 32 u8s, got {_describe(h)}")
    return InterfaceHash(_string(rec, "name", path), digest)


def _read_type_param(v: Value, path: _Path) -> TypeParam:
    rec = _record(v, path, "type parameter")
    return TypeParam(_string(rec, "name", path), _string(rec, "constraint", path, default=""))


class _Pending:
    """A compound type-desc waiting for its children (``(value, path)`` pairs)."""

    __slots__ = ("children", "count", "make")

    def __init__(
        self, make: Callable[[list[TypeDesc]], TypeDesc], children: list[tuple[Value, _Path]]
    ) -> None:
        self.make = make
        self.children = children
        self.count = len(children)


def _parse_type(root: Value, root_path: _Path) -> TypeDesc:
    """Read a type-desc variant by tag, iteratively (metadata nesting is unbounded)."""
    out: list[TypeDesc] = []
    stack: list[_Pending | tuple[Value, _Path]] = [(root, root_path)]
    while stack:
        item = stack.pop()
        if isinstance(item, _Pending):
            n = item.count
            kids = out[len(out) - n :] if n else []
            if n:
                del out[len(out) - n :]
            out.append(item.make(kids))
            continue
        expanded = _expand_type(*item)
        if isinstance(expanded, _Pending):
            stack.append(expanded)
            stack.extend(reversed(expanded.children))
            expanded.children = []
        else:
            out.append(expanded)
    return out[0]


def _expand_type(v: Value, path: _Path) -> TypeDesc | _Pending:
    if not isinstance(v, Variant):
        raise _invalid(path, f"expected variant for type, got {_describe(v)}")
    tag = v.tag
    prim = _PRIM_BY_TAG.get(tag)
    if prim is not None:
        return _PRIM_DESCS[prim]
    if tag == 20:
        return TypeDesc.VALUE
    if tag == 21:
        return TypeDesc.UNIT
    if not 14 <= tag <= 19:
        raise _invalid(path, f"unknown type tag: {tag}")
    kind = {14: "list", 15: "option", 16: "result", 17: "record", 18: "variant", 19: "tuple"}[tag]
    if not v.payload:
        raise _invalid(path, f"{kind} type is missing its payload")
    payload = v.payload[0]
    ppath = _at(path, kind)
    if tag == 14 or tag == 15:
        return _Pending(lambda k: TypeDesc(kind, (k[0],)), [(payload, ppath)])
    if tag == 19:
        items = _items(payload, ppath, "types")
        children = [(t, _at(ppath, f"[{i}]")) for i, t in enumerate(items)]
        return _Pending(lambda k: TypeDesc("tuple", tuple(k)), children)
    rec = _record(payload, ppath, f"{kind} payload")
    if tag == 16:
        ok, err = _field(rec, "ok", ppath), _field(rec, "err", ppath)
        arms = [(ok, _at(ppath, "ok")), (err, _at(ppath, "err"))]
        return _Pending(lambda k: TypeDesc.result(k[0], k[1]), arms)
    name = _string(rec, "name", ppath)
    if tag == 17:
        names: list[str] = []
        children = []
        for i, f in enumerate(_items(_field(rec, "fields", ppath), _at(ppath, "fields"), "fields")):
            fpath = _at(ppath, "fields", f"[{i}]")
            frec = _record(f, fpath, "field")
            names.append(_string(frec, "name", fpath))
            ftype = _field(frec, "type", fpath)
            children.append((ftype, _at(fpath, "type")))
        return _Pending(lambda k: TypeDesc.record(name, zip(names, k, strict=True)), children)
    cases_value = rec.get("cases")
    if cases_value is None:  # packr HEAD's generic ref / the host's Type::Ref
        return TypeDesc.ref(name)
    case_names: list[str] = []
    present: list[bool] = []
    children = []
    for i, c in enumerate(_items(cases_value, _at(ppath, "cases"), "cases")):
        cpath = _at(ppath, "cases", f"[{i}]")
        crec = _record(c, cpath, "case")
        case_names.append(_string(crec, "name", cpath))
        payload_type = _case_payload(crec.get("payload"), _at(cpath, "payload"))
        present.append(payload_type is not None)
        if payload_type is not None:
            children.append((payload_type, _at(cpath, "payload")))

    def make_variant(k: list[TypeDesc]) -> TypeDesc:
        it = iter(k)
        return TypeDesc.variant(
            name, [(n, next(it) if p else None) for n, p in zip(case_names, present, strict=True)]
        )

    return _Pending(make_variant, children)


def _case_payload(v: Value | None, path: _Path) -> Value | None:
    """A case payload: ``option<type-desc>`` in packr's form; a bare type-desc is
    accepted too."""
    if v is None or isinstance(v, Variant):
        return v
    if isinstance(v, Option):
        return v.value
    raise _invalid(path, f"expected option of type-desc, got {_describe(v)}")
