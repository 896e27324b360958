"""Checking values against declared types: packr's schema-checked codec.

packr 0.7.0 has two validators with different rules, and both are ported here:

* :func:`decode_with_schema` / :func:`encode_with_schema` (packr's ``parser::validation``,
  behind ``Runtime::decode_arg`` and ``Runtime::encode_result_with_schema``). Decoding
  checks the **graph**: node kinds, record fields by position, variants by tag; a node
  shared by several parents must be read as one type everywhere. Encoding checks the
  value first: record field names in declared order, variants by tag. Errors are
  :class:`~packr_replay.errors.SchemaError` with packr's kinds and texts.
* :func:`validate_value_in_type_space` (packr's ``metadata`` module): membership of a
  value in a type, records matched by field **name** in any order, variants by **case
  name**, ``unit`` as the empty tuple. Errors are
  :class:`~packr_replay.errors.TypeValidationError`, with the path to the offending part.

Types are :class:`~.metadata.TypeDesc` (records and variants inlined, named or not; a
``ref`` names a type in ``types`` or an enclosing named type; ``value`` accepts
anything; ``unit`` is packr's ``Type::Unit``). ``types`` plays the part of packr's
``TypeDef`` list. packr's quirks are kept, because a port that is stricter or looser
than packr is a different program:

* ``decode``/``encode_with_schema``: ``unit`` is never a valid value (packr gives
  ``Type::Unit`` no node), so a ``result`` or variant case whose declared payload is
  ``unit`` must carry no payload, and CGRF results always carry one;
  ``encode_with_schema`` has no rule for ``result`` values at all; a ``list<T>`` of a
  fixed-width ``T`` accepts an Array of any element type of the same width.
* ``flags`` carries no flag names here, so the mask is not checked against a count.

All three walk iteratively (values and types nest arbitrarily deep). One deviation:
:func:`decode_with_schema` decodes (all three of packr's decoder phases) before it checks
the graph, so a buffer that fails both decoding and the schema reports the decoding error,
where packr reports the schema error first.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

from ..errors import AbiError, SchemaError, TypeValidationError
from .decoder import _read_type, decode
from .encoder import encode
from .limits import Limits
from .metadata import TypeDefs, TypeDesc, type_defs
from .types import Kind
from .values import (
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
    Variant,
)

__all__ = ["decode_with_schema", "encode_with_schema", "validate_value_in_type_space"]

_PRIM_KIND: dict[str, int] = {
    "bool": Kind.BOOL, "u8": Kind.U8, "u16": Kind.U16, "u32": Kind.U32, "u64": Kind.U64,
    "s8": Kind.S8, "s16": Kind.S16, "s32": Kind.S32, "s64": Kind.S64, "f32": Kind.F32,
    "f64": Kind.F64, "char": Kind.CHAR, "string": Kind.STRING, "flags": Kind.FLAGS,
}  # fmt: skip
_PRIM_CLASS: dict[str, type[Value]] = {
    "bool": Bool, "u8": U8, "u16": U16, "u32": U32, "u64": U64, "s8": S8, "s16": S16,
    "s32": S32, "s64": S64, "f32": F32, "f64": F64, "char": Char, "string": String,
    "flags": Flags,
}  # fmt: skip
# packr's element widths for a list<T> read from an Array node (flags is a named type in
# packr, not a Type, so it has none).
_WIDTH: dict[str, int] = {
    "bool": 1, "u8": 1, "s8": 1, "u16": 2, "s16": 2, "u32": 4, "s32": 4, "f32": 4,
    "char": 4, "u64": 8, "s64": 8, "f64": 8,
}  # fmt: skip
# Rust's Debug names of the node kinds (what packr's TypeMismatch texts carry).
_KIND_NAME: dict[int, str] = {k: k.name.title() for k in Kind}
_KIND_NAME[Kind.S32] = "S32"
_KIND_NAME[Kind.S64] = "S64"
_KIND_NAME[Kind.F32] = "F32"
_KIND_NAME[Kind.F64] = "F64"
_KIND_NAME[Kind.U8] = "U8"
_KIND_NAME[Kind.U16] = "U16"
_KIND_NAME[Kind.U32] = "U32"
_KIND_NAME[Kind.U64] = "U64"
_KIND_NAME[Kind.S8] = "S8"
_KIND_NAME[Kind.S16] = "S16"

_u32 = struct.Struct("<I").unpack_from


def _scope(root: TypeDesc, types: TypeDefs) -> dict[str, TypeDesc]:
    """Named types a ``ref`` may resolve to: ``types``, then every named record and
    variant inlined in ``root`` or in them (how a guest's inlined type refers to itself)."""
    defs = type_defs(types)
    found: dict[str, TypeDesc] = {}
    stack = [root, *defs.values()]
    seen: set[int] = set()
    while stack:
        d = stack.pop()
        if id(d) in seen:
            continue
        seen.add(id(d))
        if d.kind in ("record", "variant") and d.name and d.name not in found:
            found[d.name] = d
        stack.extend(d.args)
        stack.extend(t for _, t in d.fields)
        stack.extend(t for _, t in d.cases if t is not None)
    found.update(defs)
    return found


def _has_payload(case: TypeDesc | None) -> bool:
    return case is not None and case.kind != "unit"


def _short(value: Value) -> str:
    text = str(value)
    return text if len(text) <= 200 else text[:197] + "..."


# ------------------------------------------------------------- schema (parser) rules


def _resolve(
    d: TypeDesc, self_name: str | None, scope: dict[str, TypeDesc]
) -> tuple[TypeDesc, str | None]:
    """Follow ``ref``\\ s to a definition; returns it and the self name inside it."""
    while d.kind == "ref":
        if d.name == "self":
            if self_name is None:
                raise SchemaError("SelfRefOutsideType")
            name = self_name
        else:
            name = d.name
        target = scope.get(name)
        if target is None:
            raise SchemaError("UndefinedType", name=name)
        d, self_name = target, name
    if d.kind in ("record", "variant") and d.name:
        self_name = d.name
    return d, self_name


def _type_key(d: TypeDesc, self_name: str | None) -> Any:
    if d.kind == "ref" and d.name == "self":
        return ("self", self_name)
    return d


class _Graph:
    """The nodes of a buffer that decoded cleanly: kind and payload span of each."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        count = _u32(data, 8)[0]
        self.root = _u32(data, 12)[0]
        self.kinds: list[int] = []
        self.spans: list[tuple[int, int]] = []
        pos = 16
        for _ in range(count):
            length = _u32(data, pos + 4)[0]
            self.kinds.append(data[pos])
            self.spans.append((pos + 8, pos + 8 + length))
            pos += 8 + length

    def children(self, index: int) -> tuple[Any, list[int]]:
        """What validation reads from a node's payload: ``(extra, child indices)``.

        ``extra``: the tag of a variant, ``(tag, has_payload)`` of a result, the element
        type and count of an array, the presence of an option."""
        data = self.data
        kind = self.kinds[index]
        start, end = self.spans[index]
        pos = start
        if kind == Kind.LIST:
            _, pos = _read_type(data, pos, start, end)
            n = _u32(data, pos)[0]
            return None, list(struct.unpack_from(f"<{n}I", data, pos + 4))
        if kind == Kind.ARRAY:
            elem, pos = _read_type(data, pos, start, end)
            n = _u32(data, pos)[0]
            return (elem, n, end - pos - 4), []
        if kind == Kind.TUPLE:
            n = _u32(data, pos)[0]
            return None, list(struct.unpack_from(f"<{n}I", data, pos + 4))
        if kind == Kind.OPTION:
            _, pos = _read_type(data, pos, start, end)
            if data[pos] == 1:
                return True, [_u32(data, pos + 1)[0]]
            return False, []
        if kind == Kind.RESULT:
            _, pos = _read_type(data, pos, start, end)
            _, pos = _read_type(data, pos, start, end)
            tag = _u32(data, pos)[0]
            if data[pos + 4] == 1:
                return (tag, True), [_u32(data, pos + 5)[0]]
            return (tag, False), []
        if kind == Kind.RECORD:
            pos += 4 + _u32(data, pos)[0]
            n = _u32(data, pos)[0]
            pos += 4
            for _ in range(n):
                pos += 4 + _u32(data, pos)[0]
            return None, list(struct.unpack_from(f"<{n}I", data, pos))
        if kind == Kind.VARIANT:
            pos += 4 + _u32(data, pos)[0]
            pos += 4 + _u32(data, pos)[0]
            tag, n = struct.unpack_from("<II", data, pos)
            return tag, list(struct.unpack_from(f"<{n}I", data, pos + 8))
        return None, []


def _mismatch(node: int, expected: int | str, actual: int | str) -> SchemaError:
    exp = expected if isinstance(expected, str) else _KIND_NAME[expected]
    act = actual if isinstance(actual, str) else _KIND_NAME[actual]
    return SchemaError("TypeMismatch", node=node, expected=exp, actual=act)


def _validate_graph(graph: _Graph, root: TypeDesc, scope: dict[str, TypeDesc]) -> None:
    """packr's ``validate_graph_against_type``, with an explicit stack."""
    assigned: dict[int, Any] = {}
    stack: list[tuple[int, TypeDesc, str | None]] = [(graph.root, root, None)]
    while stack:
        index, ty, self_name = stack.pop()
        key = _type_key(ty, self_name)
        existing = assigned.get(index)
        if existing is not None:
            if existing != key:
                raise SchemaError(
                    "TypeMismatch", node=index, expected=_key_text(existing), actual=_key_text(key)
                )
            continue
        assigned[index] = key
        kind = graph.kinds[index]
        d, self_name = _resolve(ty, self_name, scope)
        k = d.kind
        if k == "value":
            continue
        if k == "unit":
            raise _mismatch(index, "Unit", kind)
        prim = _PRIM_KIND.get(k)
        if prim is not None:
            if kind != prim:
                raise _mismatch(index, prim, kind)
            continue
        if k == "list":
            inner = d.args[0]
            if kind == Kind.ARRAY:
                width = _WIDTH.get(inner.kind)
                if width is None:
                    raise _mismatch(index, Kind.LIST, kind)
                (_, count, have) = graph.children(index)[0]
                want = count * width
                if want > have:
                    raise SchemaError("InvalidEncoding", message="Truncated node payload")
                if want < have:
                    raise SchemaError(
                        "InvalidEncoding", message=f"Trailing payload bytes at node {index}"
                    )
                continue
            if kind != Kind.LIST:
                raise _mismatch(index, Kind.LIST, kind)
            _, kids = graph.children(index)
            stack.extend((c, inner, self_name) for c in reversed(kids))
        elif k == "option":
            if kind != Kind.OPTION:
                raise _mismatch(index, Kind.OPTION, kind)
            _, kids = graph.children(index)
            stack.extend((c, d.args[0], self_name) for c in kids)
        elif k == "result":
            if kind != Kind.RESULT:
                raise _mismatch(index, Kind.RESULT, kind)
            (tag, _), kids = graph.children(index)
            if tag > 1:
                raise SchemaError("VariantTagOutOfRange", node=index, tag=tag, max=2)
            arm = d.args[tag]
            if _has_payload(arm) != bool(kids):
                raise SchemaError("VariantPayloadMismatch", node=index, tag=tag)
            stack.extend((c, arm, self_name) for c in kids)
        elif k == "tuple":
            if kind != Kind.TUPLE:
                raise _mismatch(index, Kind.TUPLE, kind)
            _, kids = graph.children(index)
            if len(kids) != len(d.args):
                raise _mismatch(index, f"tuple({len(d.args)})", f"tuple({len(kids)})")
            stack.extend(
                (c, t, self_name) for c, t in reversed(list(zip(kids, d.args, strict=True)))
            )
        elif k == "record":
            if kind != Kind.RECORD:
                raise _mismatch(index, Kind.RECORD, kind)
            _, kids = graph.children(index)
            if len(kids) != len(d.fields):
                raise _mismatch(index, f"record({len(d.fields)})", f"record({len(kids)})")
            stack.extend(
                (c, t, self_name) for c, (_, t) in reversed(list(zip(kids, d.fields, strict=True)))
            )
        else:  # variant (an enum is a variant whose cases carry nothing)
            if kind != Kind.VARIANT:
                raise _mismatch(index, Kind.VARIANT, kind)
            tag, kids = graph.children(index)
            if tag >= len(d.cases):
                raise SchemaError("VariantTagOutOfRange", node=index, tag=tag, max=len(d.cases))
            payload = d.cases[tag][1]
            if not _has_payload(payload):
                if kids:
                    raise SchemaError("VariantPayloadMismatch", node=index, tag=tag)
            elif not kids:
                raise SchemaError("VariantPayloadMismatch", node=index, tag=tag)
            else:
                assert payload is not None
                stack.append((kids[0], payload, self_name))


def _key_text(key: Any) -> str:
    if isinstance(key, tuple):
        return f"self({key[1] or '?'})"
    if key.kind == "ref":
        return f"ref({key.name})"
    return str(key)


def decode_with_schema(
    data: bytes | bytearray | memoryview,
    type: TypeDesc,
    types: TypeDefs = (),
    limits: Limits | None = None,
) -> Value:
    """Decode ``data`` and check its graph against ``type`` (packr's ``decode_with_schema``).

    Raises :class:`~packr_replay.errors.SchemaError`: kind ``InvalidEncoding`` for bytes
    the decoder refuses (``.message`` is the decoder's text), ``TypeMismatch`` (with the
    node index), ``VariantTagOutOfRange``, ``VariantPayloadMismatch``,
    ``UndefinedType``, ``SelfRefOutsideType``.
    """
    data = bytes(data)
    try:
        value = decode(data, limits)
    except AbiError as exc:
        raise SchemaError("InvalidEncoding", message=str(exc)) from exc
    _validate_graph(_Graph(data), type, _scope(type, types))
    return value


def encode_with_schema(value: Value, type: TypeDesc, types: TypeDefs = ()) -> bytes:
    """Check ``value`` against ``type``, then encode it (packr's ``encode_with_schema``).

    Value-level rules: records need their declared fields in declared order, variants
    dispatch on the tag and check the first payload value, a tuple needs its arity.
    Raises :class:`~packr_replay.errors.SchemaError` (``node`` is always 0, as in packr).
    """
    scope = _scope(type, types)
    stack: list[tuple[Value, TypeDesc, str | None]] = [(value, type, None)]
    while stack:
        v, ty, self_name = stack.pop()
        d, self_name = _resolve(ty, self_name, scope)
        k = d.kind
        cls = v.__class__
        if k == "value":
            continue
        if k == "unit":
            raise SchemaError("TypeMismatch", node=0, expected="Unit", actual=_short(v))
        prim = _PRIM_CLASS.get(k)
        if prim is not None:
            if cls is not prim:
                raise SchemaError("TypeMismatch", node=0, expected=str(d), actual=_short(v))
            continue
        if k == "list" and cls is List:
            stack.extend((x, d.args[0], self_name) for x in reversed(v.items))  # type: ignore[attr-defined]
        elif k == "option" and cls is Option:
            if v.value is not None:  # type: ignore[attr-defined]
                stack.append((v.value, d.args[0], self_name))  # type: ignore[attr-defined]
        elif k == "tuple" and cls is Tuple:
            items = v.items  # type: ignore[attr-defined]
            if len(items) != len(d.args):
                raise SchemaError(
                    "TypeMismatch", node=0, expected=f"tuple({len(d.args)})",
                    actual=f"tuple({len(items)})",
                )  # fmt: skip
            stack.extend(
                (x, t, self_name) for x, t in reversed(list(zip(items, d.args, strict=True)))
            )
        elif k == "record":
            if cls is not Record:
                raise SchemaError(
                    "TypeMismatch", node=0, expected=f"record({len(d.fields)})", actual=_short(v)
                )
            fields = v.fields  # type: ignore[attr-defined]
            if len(fields) != len(d.fields):
                raise SchemaError(
                    "TypeMismatch", node=0, expected=f"record({len(d.fields)})",
                    actual=f"record({len(fields)})",
                )  # fmt: skip
            checks = []
            for (want, t), (got, x) in zip(d.fields, fields, strict=True):
                if want != got:
                    raise SchemaError(
                        "TypeMismatch", node=0, expected=f"field {want}", actual=f"field {got}"
                    )
                checks.append((x, t, self_name))
            stack.extend(reversed(checks))
        elif k == "variant":
            if cls is not Variant:
                raise SchemaError(
                    "TypeMismatch", node=0, expected=f"variant({len(d.cases)})", actual=_short(v)
                )
            tag = v.tag  # type: ignore[attr-defined]
            payload = v.payload  # type: ignore[attr-defined]
            if tag >= len(d.cases):
                raise SchemaError("VariantTagOutOfRange", node=0, tag=tag, max=len(d.cases))
            case_type = d.cases[tag][1]
            if not _has_payload(case_type):
                if payload:
                    raise SchemaError("VariantPayloadMismatch", node=0, tag=tag)
            elif not payload:
                raise SchemaError("VariantPayloadMismatch", node=0, tag=tag)
            else:
                assert case_type is not None
                stack.append((payload[0], case_type, self_name))
        else:  # packr has no rule for this pair (results included)
            raise SchemaError("TypeMismatch", node=0, expected=str(d), actual=_short(v))
    try:
        return encode(value)
    except AbiError as exc:
        raise SchemaError("InvalidEncoding", message=str(exc)) from exc


# --------------------------------------------------------- type-space (metadata) rules


def _value_name(v: Value) -> str:
    """packr's ``value_type_name``."""
    cls = v.__class__
    if cls is Record:
        return f"record '{v.type_name}'"  # type: ignore[attr-defined]
    if cls is Variant:
        return f"variant '{v.type_name}' (case '{v.case_name}')"  # type: ignore[attr-defined]
    if cls is Tuple:
        return f"tuple<{len(v.items)}>"  # type: ignore[attr-defined]
    for name, prim in _PRIM_CLASS.items():
        if cls is prim:
            return name
    return {List: "list", Option: "option", Result: "result"}.get(cls, cls.__name__.lower())


_Context = tuple[Any, str] | None  # a linked list of packr's "in <context>" steps


def _contexts(ctx: _Context) -> Iterator[str]:
    out = []
    while ctx is not None:
        ctx, step = ctx
        out.append(step)
    return reversed(out)


def _fail(ctx: _Context, kind: str, **fields: Any) -> TypeValidationError:
    return TypeValidationError(kind, context=tuple(_contexts(ctx)), **fields)


def validate_value_in_type_space(
    value: Value, expected: TypeDesc, type_defs: TypeDefs = ()
) -> None:
    """Raise :class:`~packr_replay.errors.TypeValidationError` unless ``value`` is a
    valid inhabitant of ``expected`` (packr's ``validate_value_in_type_space``).

    ``value`` is the escape hatch; ``unit`` is the empty tuple; records match fields by
    name (``MissingField``, ``ExtraField``); variants by case name (``UnknownCase``), a
    case payload being one value (``WrongArity``); a ``ref`` resolves by the last segment
    of its path in ``type_defs`` or an enclosing named type (``UnresolvedRef``).
    """
    scope = _scope(expected, type_defs)
    stack: list[tuple[Value, TypeDesc, _Context]] = [(value, expected, None)]
    while stack:
        v, d, ctx = stack.pop()
        while d.kind == "ref":
            target = scope.get(d.name.rsplit(".", 1)[-1])
            if target is None:
                raise _fail(ctx, "UnresolvedRef", path=d.name)
            d = target
        k = d.kind
        cls = v.__class__
        if k == "value":
            continue
        if k == "unit":
            if cls is not Tuple or v.items:  # type: ignore[attr-defined]
                raise _fail(ctx, "TypeMismatch", expected="unit", got=_value_name(v))
            continue
        prim = _PRIM_CLASS.get(k)
        if prim is not None:
            if cls is not prim:
                raise _fail(ctx, "TypeMismatch", expected=k, got=_value_name(v))
            continue
        if k == "list":
            if cls is not List:
                raise _fail(ctx, "TypeMismatch", expected="list", got=_value_name(v))
            items = v.items  # type: ignore[attr-defined]
            stack.extend(
                (x, d.args[0], (ctx, f"list[{i}]")) for i, x in reversed(list(enumerate(items)))
            )
        elif k == "option":
            if cls is not Option:
                raise _fail(ctx, "TypeMismatch", expected="option", got=_value_name(v))
            if v.value is not None:  # type: ignore[attr-defined]
                stack.append((v.value, d.args[0], (ctx, "option::some")))  # type: ignore[attr-defined]
        elif k == "result":
            if cls is not Result:
                raise _fail(ctx, "TypeMismatch", expected="result", got=_value_name(v))
            err = v.is_err  # type: ignore[attr-defined]
            step = "result::err" if err else "result::ok"
            stack.append((v.value, d.args[1 if err else 0], (ctx, step)))  # type: ignore[attr-defined]
        elif k == "tuple":
            if cls is not Tuple:
                raise _fail(ctx, "TypeMismatch", expected="tuple", got=_value_name(v))
            items = v.items  # type: ignore[attr-defined]
            if len(items) != len(d.args):
                raise _fail(ctx, "WrongArity", expected=len(d.args), got=len(items))
            stack.extend(
                (x, t, (ctx, f"tuple.{i}"))
                for i, (x, t) in reversed(list(enumerate(zip(items, d.args, strict=True))))
            )
        elif k == "record":
            if cls is not Record:
                raise _fail(ctx, "TypeMismatch", expected=f"record '{d.name}'", got=_value_name(v))
            fields = v.fields  # type: ignore[attr-defined]
            have = {n for n, _ in fields}
            declared = dict(d.fields)
            for name, _ in d.fields:
                if name not in have:
                    raise _fail(ctx, "MissingField", record=d.name, field=name)
            for name, _ in fields:
                if name not in declared:
                    raise _fail(ctx, "ExtraField", record=d.name, field=name)
            stack.extend((x, declared[n], (ctx, f"field '{n}'")) for n, x in reversed(fields))
        else:
            _check_variant(v, d, ctx, stack)


def _check_variant(
    v: Value, d: TypeDesc, ctx: _Context, stack: list[tuple[Value, TypeDesc, _Context]]
) -> None:
    enum = all(t is None for _, t in d.cases)
    what = "enum" if enum else "variant"
    if v.__class__ is not Variant:
        raise _fail(ctx, "TypeMismatch", expected=f"{what} '{d.name}'", got=_value_name(v))
    case_name = v.case_name
    payload = v.payload
    found = [t for n, t in d.cases if n == case_name]
    if not found:
        raise _fail(ctx, "UnknownCase", variant=d.name, case=case_name)
    if enum:
        if payload:
            raise _fail(
                (ctx, f"enum case '{case_name}'"), "WrongArity", expected=0, got=len(payload)
            )
        return
    case_type = found[0]
    inner = (ctx, f"case '{case_name}'")
    if not _has_payload(case_type):
        if payload:
            raise _fail(inner, "WrongArity", expected=0, got=len(payload))
        return
    if len(payload) != 1:
        raise _fail(inner, "WrongArity", expected=1, got=len(payload))
    assert case_type is not None
    stack.append((payload[0], case_type, inner))
