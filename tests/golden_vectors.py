"""Loading packr's golden vectors (``tests/vectors``) and their structured JSON.

The JSON form is described in the vectors' README: one-key objects per value kind,
float bit patterns as big-endian hex, types as names or one-key objects.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

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
)

# The project's own copy (provenance in its README); PACKR_VECTORS points elsewhere, e.g.
# at a folder that also holds the held-back ``*.hidden.json`` parts.
VECTORS_DIR = Path(os.environ.get("PACKR_VECTORS", Path(__file__).resolve().parent / "vectors"))


class MissingVectors(RuntimeError):
    """No golden vectors where they should be: a run without them proves nothing."""


@cache
def load(name: str) -> list[dict[str, Any]]:
    """Cases of ``<name>_vectors.public.json`` (and any ``*.hidden.json`` beside it).

    Raises :class:`MissingVectors` rather than returning nothing, so a missing or
    misdirected folder fails collection instead of silently skipping parametrised tests.
    """
    cases: list[dict[str, Any]] = []
    for path in sorted(VECTORS_DIR.glob(f"{name}_vectors*.json")):
        cases.extend(json.loads(path.read_text()))
    if not cases:
        raise MissingVectors(
            f"no {name} vectors in {VECTORS_DIR} (expected {name}_vectors.public.json; "
            "PACKR_VECTORS overrides the folder)"
        )
    return cases


def cases(name: str, **where: Any) -> list[Any]:
    """pytest params (id = case name) for the cases matching ``where``."""
    import pytest

    selected = [c for c in load(name) if all(c.get(k) == v for k, v in where.items())]
    if not selected:
        raise MissingVectors(f"no {name} vectors match {where} in {VECTORS_DIR}")
    return [pytest.param(c, id=c["name"]) for c in selected]


_PRIM_TYPES = {
    "bool": ValueType.BOOL,
    "u8": ValueType.U8,
    "u16": ValueType.U16,
    "u32": ValueType.U32,
    "u64": ValueType.U64,
    "s8": ValueType.S8,
    "s16": ValueType.S16,
    "s32": ValueType.S32,
    "s64": ValueType.S64,
    "f32": ValueType.F32,
    "f64": ValueType.F64,
    "char": ValueType.CHAR,
    "string": ValueType.STRING,
    "flags": ValueType.FLAGS,
}


def type_from_json(j: Any) -> ValueType:
    if isinstance(j, str):
        return _PRIM_TYPES[j]
    ((key, arg),) = j.items()
    if key == "list":
        return ValueType.list(type_from_json(arg))
    if key == "option":
        return ValueType.option(type_from_json(arg))
    if key == "result":
        return ValueType.result(type_from_json(arg[0]), type_from_json(arg[1]))
    if key == "tuple":
        return ValueType.tuple(*(type_from_json(a) for a in arg))
    if key == "record":
        return ValueType.record(arg)
    if key == "variant":
        return ValueType.variant(arg)
    raise ValueError(f"unknown type json {j!r}")


_INTS = {"u8": U8, "u16": U16, "u32": U32, "u64": U64, "s8": S8, "s16": S16, "s32": S32,
         "s64": S64, "flags": Flags}


def _children(j: dict[str, Any]) -> list[Any]:
    ((key, arg),) = j.items()
    if key == "list":
        return list(arg["items"])
    if key == "option":
        return [] if arg["value"] is None else [arg["value"]]
    if key == "result":
        return [arg["ok"] if "ok" in arg else arg["err"]]
    if key == "record":
        return [v for _, v in arg["fields"]]
    if key == "variant":
        return list(arg["payload"])
    if key == "tuple":
        return list(arg)
    return []


def _build(j: dict[str, Any], kids: list[Value]) -> Value:
    ((key, arg),) = j.items()
    if key == "bool":
        return Bool(arg)
    if key in _INTS:
        return _INTS[key](arg)
    if key == "f32":
        return F32.from_bits(int(arg, 16))
    if key == "f64":
        return F64.from_bits(int(arg, 16))
    if key == "char":
        return Char(arg)
    if key == "string":
        return String(arg)
    if key == "list":
        return List(type_from_json(arg["elem_type"]), kids)
    if key == "option":
        return Option(type_from_json(arg["inner_type"]), kids[0] if kids else None)
    if key == "result":
        return Result(type_from_json(arg["ok_type"]), type_from_json(arg["err_type"]), kids[0],
                      is_err="err" in arg)
    if key == "record":
        return Record(arg["type_name"], [(n, v) for (n, _), v in zip(arg["fields"], kids, strict=True)])
    if key == "variant":
        return Variant(arg["type_name"], arg["case_name"], arg["tag"], kids)
    if key == "tuple":
        return Tuple(*kids)
    raise ValueError(f"unknown value json key {key!r}")


def value_from_json(j: dict[str, Any]) -> Value:
    """Build a Value from the vectors' structured JSON, iteratively."""
    out: list[Value] = []
    stack: list[tuple[dict[str, Any], bool]] = [(j, False)]
    while stack:
        node, expanded = stack.pop()
        kids = _children(node)
        if expanded or not kids:
            n = len(kids)
            built = out[len(out) - n:] if n else []
            if n:
                del out[len(out) - n:]
            out.append(_build(node, built))
        else:
            stack.append((node, True))
            stack.extend((k, False) for k in reversed(kids))
    return out[0]
