"""An indented, multi-line rendering of a value, for people reading one value whole.

``str(value)`` is packr's one-line Display; a record of lists of records is unreadable
that way. :func:`pretty_value` breaks a compound value over lines only when its
one-line form does not fit the width, like Python's ``pprint``, and writes nothing but
packr's text syntax and whitespace, so its output still parses with ``parse_value``::

    report{
      greeting: "Hello, Ada",
      time: 1795958634203240870u64,
      tags: ["a", "b"]
    }

It is iterative (an explicit stack, no recursion) and checks each node's fit with a
bounded ``format_value(limit=...)``, so the cost is linear in the size of the output
for values of any depth. Indentation stops growing after :data:`MAX_INDENT_LEVELS`
levels so a value nested a million deep does not print a quadratic amount of spaces.
"""

from __future__ import annotations

from collections.abc import Iterator

from .encoded import EncodedValue, as_value
from .text import format_value
from .types import format_type
from .values import List, Option, Record, Result, Tuple, Value, Variant

__all__ = ["MAX_INDENT_LEVELS", "iter_pretty_lines", "pretty_value"]

#: Nesting levels that get their own indentation; deeper levels share the last one.
MAX_INDENT_LEVELS = 32

# A work item: a literal line, or (value, depth, prefix, suffix) to render as lines.
_Item = str | tuple[Value, int, str, str]


def _children(value: Value) -> tuple[str, list[tuple[str, Value]], str] | None:
    """``(head, [(prefix, child)], close)`` for a non-empty compound, else ``None``."""
    cls = type(value)
    if cls is Tuple and value.items:  # type: ignore[attr-defined]
        return "(", [("", v) for v in value.items], ")"  # type: ignore[attr-defined]
    if cls is List and value.items:  # type: ignore[attr-defined]
        return "[", [("", v) for v in value.items], "]"  # type: ignore[attr-defined]
    if cls is Record and value.fields:  # type: ignore[attr-defined]
        fields = value.fields  # type: ignore[attr-defined]
        return value.type_name + "{", [(f"{n}: ", v) for n, v in fields], "}"  # type: ignore[attr-defined]
    if cls is Variant and value.payload:  # type: ignore[attr-defined]
        head = f"{value.type_name}::{value.case_name}("  # type: ignore[attr-defined]
        return head, [("", v) for v in value.payload], ")"  # type: ignore[attr-defined]
    if cls is Option and value.value is not None:  # type: ignore[attr-defined]
        return f"some<{format_type(value.inner_type)}>(", [("", value.value)], ")"  # type: ignore[attr-defined]
    if cls is Result:
        arm = "err" if value.is_err else "ok"  # type: ignore[attr-defined]
        types = f"{format_type(value.ok_type)}, {format_type(value.err_type)}"  # type: ignore[attr-defined]
        return f"{arm}<{types}>(", [("", value.value)], ")"  # type: ignore[attr-defined]
    return None


def iter_pretty_lines(
    value: Value | EncodedValue, *, width: int = 80, indent: int = 2
) -> Iterator[str]:
    """The lines of :func:`pretty_value`, without newlines, produced one at a time."""
    if width < 1 or indent < 0:
        raise ValueError("width must be >= 1 and indent >= 0")
    stack: list[_Item] = [(as_value(value), 0, "", "")]
    while stack:
        item = stack.pop()
        if type(item) is str:
            yield item
            continue
        assert isinstance(item, tuple)
        node, depth, prefix, suffix = item
        pad = " " * (indent * min(depth, MAX_INDENT_LEVELS))
        parts = _children(node)
        if parts is None:
            yield pad + prefix + format_value(node) + suffix
            continue
        room = max(width - len(pad) - len(prefix) - len(suffix), 1)
        flat = format_value(node, limit=room)
        if len(flat) <= room:  # complete (a cut one is longer than ``room``)
            yield pad + prefix + flat + suffix
            continue
        head, kids, close = parts
        yield pad + prefix + head
        stack.append(pad + close + suffix)
        last = len(kids) - 1
        for i in range(last, -1, -1):
            child_prefix, child = kids[i]
            stack.append((child, depth + 1, child_prefix, "," if i < last else ""))


def pretty_value(value: Value | EncodedValue, *, width: int = 80, indent: int = 2) -> str:
    """``value`` as indented packr text, breaking compounds that do not fit ``width``.

    The result parses back with ``parse_value`` to what ``str(value)`` parses to.
    """
    return "\n".join(iter_pretty_lines(value, width=width, indent=indent))
