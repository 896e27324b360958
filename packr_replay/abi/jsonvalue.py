"""The typed JSON form of a value: everything CGRF carries, in plain JSON.

packr's text format loses variant tags, NaN payloads and the record/variant distinction
of type names; this form keeps them, so a value written by ``--json`` reads back into
``--calls`` byte for byte. It is the structured form of packr's golden vectors
(``tests/vectors/README.md``): one single-key object per value::

    {"bool": true}  {"u8": 7} … {"s64": -1}  {"flags": 5}  {"char": 65}  {"string": "hi"}
    {"f32": "7fc00000"}  {"f64": "3ff8000000000000"}     IEEE bits, big-endian hex
    {"list": {"elem_type": T, "items": [V, …]}}
    {"option": {"inner_type": T, "value": V | null}}
    {"result": {"ok_type": T, "err_type": T, "ok": V}}   (or "err": V)
    {"record": {"type_name": "point", "fields": [["x", V], …]}}
    {"variant": {"type_name": "sexpr", "case_name": "num", "tag": 1, "payload": [V, …]}}
    {"tuple": [V, …]}

and types ``T`` as a primitive name (``"u8"``), ``{"list": T}``, ``{"option": T}``,
``{"result": [T, T]}``, ``{"tuple": [T, …]}``, ``{"record": name}`` or
``{"variant": name}``. Both directions are iterative; :func:`value_to_json` stops at
``max_depth`` JSON levels (Python's ``json`` recurses) with :class:`TooDeep`.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConversionError
from .types import Kind, ValueType
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
    children,
)

__all__ = [
    "MAX_JSON_DEPTH",
    "TooDeep",
    "type_from_json",
    "type_to_json",
    "value_from_json",
    "value_to_json",
]

#: JSON nesting levels :func:`value_to_json` writes at most (each value level takes 1-3).
MAX_JSON_DEPTH = 400

_INT_CLASSES: dict[str, type[Value]] = {
    "u8": U8, "u16": U16, "u32": U32, "u64": U64,
    "s8": S8, "s16": S16, "s32": S32, "s64": S64, "flags": Flags,
}  # fmt: skip
_INT_NAMES = {cls: name for name, cls in _INT_CLASSES.items()}
_PRIM_TYPES: dict[str, ValueType] = {
    "bool": ValueType.BOOL, "u8": ValueType.U8, "u16": ValueType.U16, "u32": ValueType.U32,
    "u64": ValueType.U64, "s8": ValueType.S8, "s16": ValueType.S16, "s32": ValueType.S32,
    "s64": ValueType.S64, "f32": ValueType.F32, "f64": ValueType.F64, "char": ValueType.CHAR,
    "string": ValueType.STRING, "flags": ValueType.FLAGS,
}  # fmt: skip
_PRIM_NAMES = {vt.tag: name for name, vt in _PRIM_TYPES.items()}


class TooDeep(ConversionError):
    """The value nests deeper than the JSON form is written for (use the text form)."""


# ------------------------------------------------------------------ types


def type_to_json(vt: ValueType) -> Any:
    """A ValueType as JSON (iterative)."""
    out: list[Any] = []
    work: list[tuple[ValueType, bool]] = [(vt, False)]
    while work:
        t, done = work.pop()
        name = _PRIM_NAMES.get(t.tag)
        if name is not None:
            out.append(name)
        elif t.tag == Kind.RECORD:
            out.append({"record": t.name})
        elif t.tag == Kind.VARIANT:
            out.append({"variant": t.name})
        elif not done:
            work.append((t, True))
            work.extend((a, False) for a in reversed(t.args))
        else:
            n = len(t.args)
            args = out[len(out) - n :] if n else []
            if n:
                del out[len(out) - n :]
            if t.tag == Kind.LIST:
                out.append({"list": args[0]})
            elif t.tag == Kind.OPTION:
                out.append({"option": args[0]})
            elif t.tag == Kind.RESULT:
                out.append({"result": args})
            else:
                out.append({"tuple": args})
    return out[0]


def _one_key(obj: Any, path: str, what: str) -> tuple[str, Any]:
    if not isinstance(obj, dict) or len(obj) != 1:
        raise ConversionError(
            f"{path or '(root)'}: expected a {what} (a one-key JSON object), got {_show(obj)}"
        )
    ((key, arg),) = obj.items()
    return key, arg


def _show(obj: Any) -> str:
    import json

    try:
        text = json.dumps(obj)
    except (TypeError, ValueError, RecursionError):
        text = type(obj).__name__
    return text if len(text) <= 60 else text[:57] + "..."


def type_from_json(obj: Any, path: str = "") -> ValueType:
    """A ValueType from its JSON form (iterative)."""
    out: list[ValueType] = []
    work: list[tuple[Any, str, bool]] = [(obj, path, False)]
    while work:
        j, where, done = work.pop()
        if isinstance(j, str):
            prim = _PRIM_TYPES.get(j)
            if prim is None:
                raise ConversionError(f"{where or '(root)'}: unknown type name {j!r}")
            out.append(prim)
            continue
        key, arg = _one_key(j, where, "type")
        if key in ("record", "variant"):
            if not isinstance(arg, str):
                raise ConversionError(f"{where or '(root)'}: a {key} type is its name (a string)")
            out.append(ValueType.record(arg) if key == "record" else ValueType.variant(arg))
            continue
        if key in ("list", "option"):
            kids = [arg]
        elif key in ("result", "tuple"):
            if not isinstance(arg, list) or (key == "result" and len(arg) != 2):
                raise ConversionError(f"{where or '(root)'}: a {key} type takes a list of types")
            kids = arg
        else:
            raise ConversionError(f"{where or '(root)'}: unknown type {key!r}")
        if not done:
            work.append((j, where, True))
            work.extend((k, f"{where}.{key}", False) for k in reversed(kids))
            continue
        n = len(kids)
        args = out[len(out) - n :] if n else []
        if n:
            del out[len(out) - n :]
        if key == "list":
            out.append(ValueType.list(args[0]))
        elif key == "option":
            out.append(ValueType.option(args[0]))
        elif key == "result":
            out.append(ValueType.result(args[0], args[1]))
        else:
            out.append(ValueType.tuple(*args))
    return out[0]


# ------------------------------------------------------------------ values


def _leaf(v: Value) -> Any:
    cls = type(v)
    name = _INT_NAMES.get(cls)
    if name is not None:
        return {name: v.value}  # type: ignore[attr-defined]
    if cls is Bool:
        return {"bool": v.value}  # type: ignore[attr-defined]
    if cls is F32:
        return {"f32": f"{v.bits:08x}"}  # type: ignore[attr-defined]
    if cls is F64:
        return {"f64": f"{v.bits:016x}"}  # type: ignore[attr-defined]
    if cls is Char:
        return {"char": ord(v.value)}  # type: ignore[attr-defined]
    if cls is String:
        return {"string": v.value}  # type: ignore[attr-defined]
    return None


def _compound(v: Value, kids: list[Any]) -> Any:
    if isinstance(v, List):
        return {"list": {"elem_type": type_to_json(v.elem_type), "items": kids}}
    if isinstance(v, Tuple):
        return {"tuple": kids}
    if isinstance(v, Record):
        fields = [[name, k] for (name, _), k in zip(v.fields, kids, strict=True)]
        return {"record": {"type_name": v.type_name, "fields": fields}}
    if isinstance(v, Variant):
        variant = {"type_name": v.type_name, "case_name": v.case_name, "tag": v.tag}
        return {"variant": {**variant, "payload": kids}}
    if isinstance(v, Option):
        inner = type_to_json(v.inner_type)
        return {"option": {"inner_type": inner, "value": kids[0] if kids else None}}
    assert isinstance(v, Result)
    types = {"ok_type": type_to_json(v.ok_type), "err_type": type_to_json(v.err_type)}
    return {"result": {**types, "err" if v.is_err else "ok": kids[0]}}


# JSON levels a compound adds around its children.
_LEVELS = {List: 3, Tuple: 2, Record: 4, Variant: 3, Option: 2, Result: 2}


def value_to_json(value: Value, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``value`` in the typed JSON form; :class:`TooDeep` past ``max_depth`` JSON levels."""
    leaf = _leaf(value)
    if leaf is not None:
        return leaf
    out: list[Any] = []
    work: list[tuple[Value, int, bool]] = [(value, 1, False)]
    while work:
        v, depth, done = work.pop()
        leaf = _leaf(v)
        if leaf is not None:
            out.append(leaf)
            continue
        kids = children(v)
        if not done:
            inner = depth + _LEVELS[type(v)]
            if inner > max_depth:
                raise TooDeep(f"the value nests deeper than {max_depth} JSON levels")
            work.append((v, depth, True))
            work.extend((k, inner, False) for k in reversed(kids))
            continue
        n = len(kids)
        built = out[len(out) - n :] if n else []
        if n:
            del out[len(out) - n :]
        out.append(_compound(v, built))
    return out[0]


def _int(arg: Any, where: str, key: str) -> int:
    if type(arg) is not int:
        raise ConversionError(f"{where or '(root)'}: {key} takes a JSON integer, got {_show(arg)}")
    return arg


def _str(arg: Any, where: str, what: str) -> str:
    if not isinstance(arg, str):
        raise ConversionError(f"{where or '(root)'}: {what} must be a string, got {_show(arg)}")
    return arg


def _list(arg: Any, where: str, what: str) -> list[Any]:
    if not isinstance(arg, list):
        raise ConversionError(f"{where or '(root)'}: {what} must be a list, got {_show(arg)}")
    return arg


def _bits(arg: Any, where: str, key: str, width: int) -> int:
    text = _str(arg, where, f"{key} (IEEE bits in hex)")
    try:
        bits = int(text, 16)
    except ValueError:
        bits = -1
    if len(text) != width // 4 or bits < 0:
        raise ConversionError(
            f"{where or '(root)'}: {key} takes {width // 4} hex digits, got {text!r}"
        )
    return bits


def _parts(key: str, arg: Any, where: str) -> tuple[list[tuple[Any, str]], Any]:
    """A compound's children (JSON, path) and what its builder needs."""
    if key not in ("tuple", "list", "option", "result", "record", "variant"):
        raise ConversionError(f"{where or '(root)'}: unknown value kind {key!r}")
    if key == "tuple":
        items = _list(arg, where, "a tuple")
        return [(x, f"{where}.{i}") for i, x in enumerate(items)], None
    if not isinstance(arg, dict):
        raise ConversionError(f"{where or '(root)'}: {key} takes an object, got {_show(arg)}")
    try:
        if key == "list":
            items = _list(arg["items"], where, "list items")
            return [(x, f"{where}[{i}]") for i, x in enumerate(items)], type_from_json(
                arg["elem_type"], f"{where}.elem_type"
            )
        if key == "option":
            inner = type_from_json(arg["inner_type"], f"{where}.inner_type")
            value = arg["value"]
            return ([] if value is None else [(value, f"{where}.some")]), inner
        if key == "result":
            ok_t = type_from_json(arg["ok_type"], f"{where}.ok_type")
            err_t = type_from_json(arg["err_type"], f"{where}.err_type")
            if ("ok" in arg) == ("err" in arg):
                raise ConversionError(
                    f'{where or "(root)"}: a result has exactly one of "ok" and "err"'
                )
            arm = "err" if "err" in arg else "ok"
            return [(arg[arm], f"{where}.{arm}")], (ok_t, err_t, arm == "err")
        if key == "record":
            name = _str(arg["type_name"], where, "type_name")
            fields = _list(arg["fields"], where, "record fields")
            names = []
            for f in fields:
                if not isinstance(f, list) or len(f) != 2 or not isinstance(f[0], str):
                    raise ConversionError(
                        f"{where or '(root)'}: a record field is [name, value], got {_show(f)}"
                    )
                names.append(f[0])
            return [(f[1], f"{where}.{f[0]}") for f in fields], (name, names)
        if key == "variant":
            name = _str(arg["type_name"], where, "type_name")
            case = _str(arg["case_name"], where, "case_name")
            tag = _int(arg["tag"], where, "tag")
            if not 0 <= tag <= 0xFFFF_FFFF:
                raise ConversionError(f"{where or '(root)'}: a variant tag is a u32, got {tag}")
            payload = _list(arg.get("payload", []), where, "variant payload")
            return [(x, f"{where}.{case}") for x in payload], (name, case, tag)
    except KeyError as exc:
        raise ConversionError(f"{where or '(root)'}: {key} needs {exc.args[0]!r}") from None
    raise ConversionError(f"{where or '(root)'}: unknown value kind {key!r}")


def _build(key: str, extra: Any, kids: list[Value]) -> Value:
    if key == "tuple":
        return Tuple.from_items(kids)
    if key == "list":
        return List(extra, kids)
    if key == "option":
        return Option(extra, kids[0] if kids else None)
    if key == "result":
        ok_t, err_t, is_err = extra
        return Result(ok_t, err_t, kids[0], is_err=is_err)
    if key == "record":
        name, names = extra
        return Record(name, list(zip(names, kids, strict=True)))
    name, case, tag = extra
    return Variant(name, case, tag, kids)


def _leaf_from(key: str, arg: Any, where: str) -> Value | None:
    cls = _INT_CLASSES.get(key)
    try:
        if cls is not None:
            return cls(_int(arg, where, key))  # type: ignore[call-arg]
        if key == "bool":
            if type(arg) is not bool:
                raise ConversionError(
                    f"{where or '(root)'}: bool takes true or false, got {_show(arg)}"
                )
            return Bool(arg)
        if key == "f32":
            return F32.from_bits(_bits(arg, where, key, 32))
        if key == "f64":
            return F64.from_bits(_bits(arg, where, key, 64))
        if key == "char":
            return Char(chr(_int(arg, where, key)))
        if key == "string":
            return String(_str(arg, where, "string"))
    except (OverflowError, ValueError) as exc:
        raise ConversionError(f"{where or '(root)'}: {key}: {exc}") from None
    return None


def value_from_json(obj: Any, path: str = "") -> Value:
    """A Value from its typed JSON form (iterative); errors name the path."""
    out: list[Value] = []
    work: list[Any] = [(obj, path)]
    while work:
        item = work.pop()
        if len(item) == 4:  # a compound whose children are built
            _, key, extra, count = item
            kids = out[len(out) - count :] if count else []
            if count:
                del out[len(out) - count :]
            out.append(_build(key, extra, kids))
            continue
        j, where = item
        key, arg = _one_key(j, where, "value")
        leaf = _leaf_from(key, arg, where)
        if leaf is not None:
            out.append(leaf)
            continue
        parts, extra = _parts(key, arg, where)
        work.append((None, key, extra, len(parts)))
        work.extend(reversed(parts))
    return out[0]
