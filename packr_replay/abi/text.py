"""packr's text format: the ``Display`` form of values (this module) and the
value-literal parser (:mod:`.parse`, re-exported here).

``format_value`` writes exactly what packr's ``format!("{}", value)`` writes, floats in
Rust's ``{}`` form (:mod:`.floats`). The text form is lossy by design (spec §1.6): it
drops variant tags and turns named types into records, which is why traces store CGRF
bytes and never this text. Formatting uses an explicit stack, so a value nested a
million levels deep is an ordinary value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from ..errors import AbiError
from .decoder import decode
from .floats import format_f32, format_f64
from .limits import Limits
from .parse import parse_type, parse_value
from .types import Kind, ValueType, format_type
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

__all__ = ["format_value", "parse_type", "parse_value", "preview_bytes"]


# ================================================================ value display

_STRING_ESCAPES = str.maketrans({'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"})
_CHAR_ESCAPES = {"\n": "'\\n'", "\r": "'\\r'", "\t": "'\\t'", "\\": "'\\\\'", "'": "'\\''"}


def _fmt_char(v: Any) -> str:
    c: str = v.value
    return _CHAR_ESCAPES.get(c) or "'" + c + "'"


def _fmt_flags(v: Any) -> str:
    return f"flags(0x{v.value:x})"


def _int_formatter(suffix: str) -> Callable[[Any], str]:
    def fmt(v: Any) -> str:
        return f"{v.value}{suffix}"

    return fmt


_SIMPLE: dict[type[Value], Callable[[Any], str]] = {
    Bool: lambda v: "true" if v.value else "false",
    U8: _int_formatter("u8"),
    U16: _int_formatter("u16"),
    U32: _int_formatter("u32"),
    U64: _int_formatter("u64"),
    S8: _int_formatter("s8"),
    S16: _int_formatter("s16"),
    S32: _int_formatter("s32"),
    S64: _int_formatter("s64"),
    F32: format_f32,
    F64: format_f64,
    Char: _fmt_char,
    Flags: _fmt_flags,
}


def _push_items(stack: list[Any], items: tuple[Value, ...]) -> None:
    """Queue ``a, b, c`` (separators included) so that ``a`` is popped first."""
    if len(items) == 1:
        stack.append(items[0])
        return
    seq: list[Any] = [", "] * (2 * len(items) - 1)
    seq[::2] = items
    seq.reverse()
    stack.extend(seq)


def _pieces(value: Value, cap: int | None) -> Iterator[str]:
    """The Display text of ``value`` in order, as pieces.

    With a ``cap`` (a repr's budget), strings are cut after ``cap`` characters and types
    are expanded lazily too, so that no part of a huge value is rendered whole.
    """
    stack: list[Any] = [value]
    pop, push = stack.pop, stack.append
    simple = _SIMPLE
    while stack:
        item = pop()
        cls = type(item)
        if cls is str:
            yield item
            continue
        fmt = simple.get(cls)
        if fmt is not None:
            yield fmt(item)
        elif cls is String:
            text: str = item.value
            if cap is not None and len(text) > cap:
                text = text[: cap + 1]
            yield '"' + text.translate(_STRING_ESCAPES) + '"'
        elif cls is Tuple:
            if item.items:
                yield "("
                push(")")
                _push_items(stack, item.items)
            else:
                yield "()"
        elif cls is List:
            if item.items:
                yield "["
                push("]")
                _push_items(stack, item.items)
            else:
                yield "[]<"
                push(">")
                push(item.elem_type)
        elif cls is Option:
            yield "none<" if item.value is None else "some<"
            if item.value is not None:
                push(")")
                push(item.value)
                push(">(")
            else:
                push(">")
            push(item.inner_type)
        elif cls is Result:
            yield "err<" if item.is_err else "ok<"
            push(")")
            push(item.value)
            push(">(")
            push(item.err_type)
            push(", ")
            push(item.ok_type)
        elif cls is Record:
            fields = item.fields
            yield item.type_name + "{"
            push("}")
            for i in range(len(fields) - 1, -1, -1):
                name, field_value = fields[i]
                push(field_value)
                push(f", {name}: " if i else f"{name}: ")
        elif cls is Variant:
            yield item.type_name + "::" + item.case_name
            if item.payload:
                yield "("
                push(")")
                _push_items(stack, item.payload)
        elif cls is ValueType:
            if cap is None or item.is_primitive or not item.args:
                yield format_type(item)
            else:  # one level of format_type, the rest left on the stack
                yield _TYPE_HEADS[item.tag]
                push(">")
                args = item.args
                for i in range(len(args) - 1, -1, -1):
                    push(args[i])
                    if i:
                        push(", ")
        else:
            raise TypeError(f"not a packr value: {cls.__name__}")


_TYPE_HEADS = {Kind.LIST: "list<", Kind.OPTION: "option<", Kind.RESULT: "result<",
               Kind.TUPLE: "tuple<"}


def format_value(value: Value, limit: int | None = None) -> str:
    """packr's ``Display`` of ``value``, exactly (spec §1.5).

    With ``limit``, stop once the text passes ``limit`` characters and end it with
    ``...``; the rest of the value is never rendered, so ``repr`` of a huge value is
    cheap.
    """
    if limit is None:
        return "".join(_pieces(value, None))
    out: list[str] = []
    size = 0
    for piece in _pieces(value, limit):
        out.append(piece)
        size += len(piece)
        if size > limit:
            return "".join(out)[:limit] + "..."
    return "".join(out)


def preview_bytes(data: bytes, limit: int, limits: Limits | None = None) -> str:
    """Encoded bytes as packr text cut at ``limit`` characters, for reports and lists;
    bytes that are not valid CGRF read ``<N bytes, not valid CGRF: reason>``."""
    try:
        return format_value(decode(data, limits), limit=limit)
    except AbiError as exc:
        return f"<{len(data)} bytes, not valid CGRF: {exc}>"
