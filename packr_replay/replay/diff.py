"""Structural differences between two values, with paths into them.

``diff_values(a, b)`` walks both values side by side (iteratively: values may nest a
million levels) and reports where they part: ``.fields.count: 5s64 → 6s64``,
``[3]: inserted "x"``, ``.payload[0]: case num → sym``. It follows packr's equality:
declared types, variant tags and record field order all count, and NaN differs from
itself (reported as such, so a NaN-carrying value is never silently "equal").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ..abi import (
    F32,
    F64,
    EncodedValue,
    List,
    Option,
    Record,
    Result,
    Tuple,
    Value,
    Variant,
    as_value,
)
from ..abi.text import format_value
from ..abi.values import count_nodes

__all__ = ["MAX_DIFF_NODES", "Change", "Difference", "diff_values"]

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_PREVIEW = 80


class Change(StrEnum):
    VALUE = "value"  # same kind, different content
    KIND = "kind"  # different value kinds (s64 vs string, ...)
    TYPE = "type"  # same kind, different declared type (list elem_type, option inner, ...)
    NAME = "name"  # record/variant type name or field name
    CASE = "case"  # variant case name or tag
    INSERTED = "inserted"  # present only in b
    REMOVED = "removed"  # present only in a
    STOPPED = "stopped"  # the comparison stopped here: the values are too large to walk


@dataclass(frozen=True, slots=True)
class Difference:
    """One place where two values differ. ``a``/``b`` are previews (packr text)."""

    path: str
    change: Change
    a: str | None
    b: str | None

    def __str__(self) -> str:
        where = self.path or "(root)"
        if self.change is Change.INSERTED:
            return f"{where}: inserted {self.b}"
        if self.change is Change.REMOVED:
            return f"{where}: removed {self.a}"
        if self.change is Change.STOPPED:
            return f"{where}: {self.a}"
        detail = "" if self.change is Change.VALUE else f" ({self.change})"
        return f"{where}: {self.a} → {self.b}{detail}"


def _preview(v: Value) -> str:
    return format_value(v, limit=_PREVIEW)


# A path is built as a linked list of segments and rendered only when a difference is
# reported: extending a string at every level would be quadratic in the depth.
_Path = tuple[Any, str] | None


def _render(path: _Path) -> str:
    parts: list[str] = []
    while path is not None:
        path, segment = path
        parts.append(segment)
    return "".join(reversed(parts))


def _field_path(path: _Path, index: int, name: str, names: tuple[str, ...]) -> _Path:
    if _IDENT.match(name) and names.count(name) == 1:
        return (path, f".{name}")
    return (path, f".fields[{index}]")


def _float_same(x: Value, y: Value) -> bool:
    return bool(x.value == y.value)  # type: ignore[attr-defined]  # IEEE: NaN != NaN, -0.0 == 0.0


MAX_DIFF_NODES = 1_000_000
"""Nodes a comparison walks at most: a value of a few hundred bytes can share subtrees
that expand to millions of nodes (a DAG), and its diff must not take minutes."""


class _Budget:
    __slots__ = ("left",)

    def __init__(self, nodes: int) -> None:
        self.left = nodes

    def equal(self, x: Value, y: Value) -> bool | None:
        """``x == y`` if both fit what is left (and spend it), else ``None``."""
        need = max(count_nodes(x, self.left), count_nodes(y, self.left))
        if need > self.left:
            return None
        self.left -= need
        return x == y


def diff_values(
    a: Value | EncodedValue,
    b: Value | EncodedValue,
    *,
    limit: int = 100,
    max_nodes: int = MAX_DIFF_NODES,
) -> list[Difference]:
    """Where ``a`` and ``b`` differ (empty when they are equal under packr's rules).

    Stops after ``limit`` differences so a diff of two huge values stays small, and
    after walking ``max_nodes`` nodes, with a last :attr:`Change.STOPPED` difference
    saying so (shared subtrees are walked each time they appear).
    Sequences of equal length are compared item by item; of different lengths, the
    common prefix and suffix are matched and the middle reported as removed/inserted.
    """
    out: list[Difference] = []
    budget = _Budget(max_nodes)
    stack: list[tuple[_Path, Value, Value]] = [(None, as_value(a), as_value(b))]
    while stack and len(out) < limit:
        budget.left -= 1
        if budget.left < 0:
            _stopped(out, stack[-1][0], max_nodes)
            break
        path, x, y = stack.pop()
        cx, cy = type(x), type(y)
        if cx is not cy:
            out.append(Difference(_render(path), Change.KIND, _preview(x), _preview(y)))
            continue
        if cx is List or cx is Tuple:
            if cx is List and x.elem_type != y.elem_type:  # type: ignore[attr-defined]
                out.append(
                    Difference(_render(path), Change.TYPE, f"list<{x.elem_type}>", f"list<{y.elem_type}>")  # type: ignore[attr-defined]
                )
            if not _diff_sequences(path, "", x.items, y.items, stack, out, budget):  # type: ignore[attr-defined]
                _stopped(out, path, max_nodes)
                break
        elif cx is Record:
            if x.type_name != y.type_name:  # type: ignore[attr-defined]
                out.append(Difference(_render(path), Change.NAME, x.type_name, y.type_name))  # type: ignore[attr-defined]
            xf, yf = x.fields, y.fields  # type: ignore[attr-defined]
            xn = tuple(n for n, _ in xf)
            yn = tuple(n for n, _ in yf)
            if xn != yn:
                out.append(Difference(_render(path), Change.NAME, "{" + ", ".join(xn) + "}", "{" + ", ".join(yn) + "}"))
                continue
            for i in range(len(xf) - 1, -1, -1):
                stack.append((_field_path(path, i, xn[i], xn), xf[i][1], yf[i][1]))
        elif cx is Variant:
            if x.type_name != y.type_name:  # type: ignore[attr-defined]
                out.append(Difference(_render(path), Change.NAME, x.type_name, y.type_name))  # type: ignore[attr-defined]
            if x.case_name != y.case_name:  # type: ignore[attr-defined]
                out.append(Difference(_render(path), Change.CASE, _preview(x), _preview(y)))
                continue
            if x.tag != y.tag:  # type: ignore[attr-defined]  # same case name, other tag: not printed by Display
                out.append(
                    Difference(
                        _render(path),
                        Change.CASE,
                        f"{x.case_name} (tag {x.tag})",  # type: ignore[attr-defined]
                        f"{y.case_name} (tag {y.tag})",  # type: ignore[attr-defined]
                    )
                )
                continue
            if not _diff_sequences(path, ".payload", x.payload, y.payload, stack, out, budget):  # type: ignore[attr-defined]
                _stopped(out, path, max_nodes)
                break
        elif cx is Option:
            if x.inner_type != y.inner_type:  # type: ignore[attr-defined]
                out.append(Difference(_render(path), Change.TYPE, f"option<{x.inner_type}>", f"option<{y.inner_type}>"))  # type: ignore[attr-defined]
            xv, yv = x.value, y.value  # type: ignore[attr-defined]
            if xv is None and yv is None:
                continue
            if xv is None or yv is None:
                out.append(Difference(_render(path), Change.VALUE, _preview(x), _preview(y)))
                continue
            stack.append(((path, ".some"), xv, yv))
        elif cx is Result:
            if x.ok_type != y.ok_type or x.err_type != y.err_type:  # type: ignore[attr-defined]
                out.append(
                    Difference(
                        _render(path),
                        Change.TYPE,
                        f"result<{x.ok_type}, {x.err_type}>",  # type: ignore[attr-defined]
                        f"result<{y.ok_type}, {y.err_type}>",  # type: ignore[attr-defined]
                    )
                )
            if x.is_err != y.is_err:  # type: ignore[attr-defined]
                out.append(Difference(_render(path), Change.CASE, _preview(x), _preview(y)))
                continue
            arm = ".err" if x.is_err else ".ok"  # type: ignore[attr-defined]
            stack.append(((path, arm), x.value, y.value))  # type: ignore[attr-defined]
        elif cx is F32 or cx is F64:
            if not _float_same(x, y):
                out.append(Difference(_render(path), Change.VALUE, _preview(x), _preview(y)))
        elif x.value != y.value:  # type: ignore[attr-defined]
            out.append(Difference(_render(path), Change.VALUE, _preview(x), _preview(y)))
    return out


def _stopped(out: list[Difference], path: _Path, max_nodes: int) -> None:
    out.append(
        Difference(
            _render(path),
            Change.STOPPED,
            f"the comparison stopped after {max_nodes:,} nodes: the values are larger "
            "written out (shared subtrees count each time they appear)",
            None,
        )
    )


def _diff_sequences(
    path: _Path,
    prefix: str,
    xs: tuple[Value, ...],
    ys: tuple[Value, ...],
    stack: list[tuple[_Path, Value, Value]],
    out: list[Difference],
    budget: _Budget,
) -> bool:
    """Queue or report the items' differences; ``False`` when the budget ran out."""
    base = (path, prefix) if prefix else path
    if len(xs) == len(ys):
        for i in range(len(xs) - 1, -1, -1):
            stack.append(((base, f"[{i}]"), xs[i], ys[i]))
        return True
    # Different lengths: match the common prefix and suffix (by equality), report the
    # middle as removed/inserted, and compare pairs left over position by position.
    lo = 0
    n = min(len(xs), len(ys))
    while lo < n:
        same = budget.equal(xs[lo], ys[lo])
        if same is None:
            return False
        if not same:
            break
        lo += 1
    hx, hy = len(xs), len(ys)
    while hx > lo and hy > lo:
        same = budget.equal(xs[hx - 1], ys[hy - 1])
        if same is None:
            return False
        if not same:
            break
        hx -= 1
        hy -= 1
    paired = min(hx, hy) - lo
    for i in range(lo, lo + paired):
        stack.append(((base, f"[{i}]"), xs[i], ys[i]))
    for i in range(lo + paired, hx):
        out.append(Difference(_render((base, f"[{i}]")), Change.REMOVED, _preview(xs[i]), None))
    for i in range(lo + paired, hy):
        out.append(Difference(_render((base, f"[{i}]")), Change.INSERTED, None, _preview(ys[i])))
    return True
