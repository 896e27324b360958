"""Redaction: replace recorded values with placeholders of the same type.

A bug report should not carry the secrets a host handed the guest (tokens, user names,
file contents). Replacing a value with *anything* would break the guest on replay: a
packr guest checks every reply against its declared type and panics on a mismatch. So
:func:`redact_value` keeps the shape -- the same kinds, declared types, record field
names, variant cases and tags, option presence, result arm, list and tuple lengths --
and replaces only the data: strings become ``"<redacted>"``, numbers zero, booleans
false, chars ``'*'``.

:func:`redactor` turns that into the storage layer's ``bundle(redact=...)`` hook for
the imports whose ``interface.function`` matches a pattern. Values the guest derives
from a redacted reply (later calls, export results) are not rewritten; a replay of the
bundle serves the placeholders, says so, and diverges where they mattered.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable

from ..abi import (
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
    AbiError,
    Bool,
    Char,
    EncodedValue,
    Flags,
    List,
    Option,
    Record,
    Result,
    String,
    Tuple,
    Value,
    Variant,
    as_value,
    encode,
)
from ..abi.values import children
from ..storage.model import Event, EventKind

__all__ = ["PLACEHOLDER", "matches_any", "redact_value", "redactor"]

#: What every string becomes.
PLACEHOLDER = "<redacted>"

_LEAVES: dict[type[Value], Value] = {
    Bool: Bool(False),
    U8: U8(0),
    U16: U16(0),
    U32: U32(0),
    U64: U64(0),
    S8: S8(0),
    S16: S16(0),
    S32: S32(0),
    S64: S64(0),
    Flags: Flags(0),
    F32: F32(0.0),
    F64: F64(0.0),
    Char: Char("*"),
    String: String(PLACEHOLDER),
}

# A frame: a compound value whose children are being redacted, and their results.
_Frame = tuple[Value, list[Value]]


def _rebuild(value: Value, kids: list[Value]) -> Value:
    cls = type(value)
    if cls is List:
        return List(value.elem_type, kids)  # type: ignore[attr-defined]
    if cls is Tuple:
        return Tuple.from_items(kids)
    if cls is Record:
        names = [n for n, _ in value.fields]  # type: ignore[attr-defined]
        return Record(value.type_name, list(zip(names, kids, strict=True)))  # type: ignore[attr-defined]
    if cls is Variant:
        return Variant(value.type_name, value.case_name, value.tag, kids)  # type: ignore[attr-defined]
    if cls is Option:
        return Option(value.inner_type, kids[0] if kids else None)  # type: ignore[attr-defined]
    assert cls is Result
    return Result(value.ok_type, value.err_type, kids[0], is_err=value.is_err)  # type: ignore[attr-defined]


def redact_value(value: Value | EncodedValue) -> Value:
    """A placeholder with the same type as ``value`` (see the module docstring).

    Iterative: values nested arbitrarily deep are fine.
    """
    root = as_value(value)
    leaf = _LEAVES.get(type(root))
    if leaf is not None:
        return leaf
    # Each frame collects its children's placeholders; a finished frame hands its
    # rebuilt value to its parent.
    stack: list[tuple[_Frame, tuple[Value, ...]]] = [((root, []), children(root))]
    while True:
        (node, done), kids = stack[-1]
        if len(done) < len(kids):
            child = kids[len(done)]
            leaf = _LEAVES.get(type(child))
            if leaf is not None:
                done.append(leaf)
            else:
                stack.append(((child, []), children(child)))
            continue
        built = _rebuild(node, done)
        stack.pop()
        if not stack:
            return built
        stack[-1][0][1].append(built)


def matches_any(name: str, patterns: Iterable[str]) -> bool:
    """Does ``interface.function`` match one of the patterns (exact or shell-style glob)?"""
    return any(name == p or fnmatch.fnmatchcase(name, p) for p in patterns)


def _redacted_bytes(data: bytes | None) -> bytes | None:
    if data is None:
        return None
    try:
        return encode(redact_value(EncodedValue(data)))
    except AbiError:
        return encode(String(PLACEHOLDER))  # not valid CGRF: no type to keep


def redactor(
    patterns: Iterable[str],
) -> Callable[[Event], tuple[bytes | None, bytes | None] | None]:
    """The ``bundle(redact=...)`` hook that redacts the inputs and outputs of the
    imports matching ``patterns`` (``interface.function``, globs allowed)."""
    wanted = tuple(patterns)

    def redact(event: Event) -> tuple[bytes | None, bytes | None] | None:
        if event.kind != EventKind.IMPORT or not matches_any(event.name, wanted):
            return None
        return _redacted_bytes(event.input), _redacted_bytes(event.output)

    return redact
