"""Pass 1 of typed value text (:mod:`.typedtext`): the syntax tree of a value.

The grammar is packr's text format (spec §1.6), loosened where a declared type can fill
in what the text leaves out: bare case names (``num(1)``), numbers without a suffix,
``some(x)`` / ``none`` / ``ok(x)`` / ``err(x)`` without type annotations, ``[]``
without one, and the float words ``NaN``, ``inf`` and ``-inf``. Nothing here knows a
type; pass 2 decides what each node means. The scan uses an explicit stack, so nesting
depth is not limited by Python's recursion limit.

A node is a list ``[kind, start, end, names, a, b, c, d]``: ``start``/``end`` are its
character span, ``names`` says whether its subtree holds a named or identifier-led
construct (when it does not, packr's own parser reads the span exactly).
"""

from __future__ import annotations

from typing import Any

from .parse import (
    _DIGIT_START,
    _IDENT,
    _NUMBER,
    _NUMBER_SUFFIXES,
    _char,
    _error,
    _parse_type,
    _skip_ws,
    _string,
)
from .types import ValueType
from .values import Flags

__all__ = [
    "BOOL",
    "CHAR",
    "END",
    "FLAGS",
    "KIND",
    "LIST",
    "NAMED",
    "NAMES",
    "NUM",
    "RECORD",
    "START",
    "STR",
    "TUPLE",
    "WORD",
    "A",
    "B",
    "C",
    "D",
    "parse_syntax",
]  # fmt: skip

#: Node kinds.
STR, CHAR, NUM, BOOL, FLAGS, TUPLE, LIST, RECORD, NAMED, WORD = range(10)
#: Positions in a node.
KIND, START, END, NAMES, A, B, C, D = range(8)
# STR/CHAR/BOOL/FLAGS: a = the Python value. NUM: a = literal, b = suffix or None.
# WORD (NaN/inf/-inf): a = word, b = suffix or None.
# TUPLE: a = items. LIST: a = items, b = annotation (ValueType) or None.
# RECORD: a = type name ("" when anonymous), b = field names, c = field values.
# NAMED: a = type name (None: bare word, "": ``::case``), b = case, c = payload items or
#   None when no parentheses, d = type annotation list (``some<T>``, ``ok<O, E>``) or None.

_FLOATWORDS = ("NaN", "-inf", "inf")
_INT_SUFFIXES = {"u8", "u16", "u32", "u64", "s8", "s16", "s32", "s64"}

# Open compounds while scanning: [kind, start, extra, items, field names].
_O_TUPLE, _O_LIST, _O_PAYLOAD, _O_RECORD = range(4)


def _node(kind: int, start: int, end: int, names: bool, *fields: Any) -> list[Any]:
    return [kind, start, end, names, *fields, *([None] * (4 - len(fields)))]


def _float_word(text: str, pos: int) -> tuple[str, str | None, int] | None:
    """``NaN``/``inf``/``-inf`` with an optional ``f32``/``f64`` suffix at ``pos``."""
    for word in _FLOATWORDS:
        if text.startswith(word, pos):
            end = pos + len(word)
            suffix = None
            for s in ("f32", "f64"):
                if text.startswith(s, end):
                    suffix, end = s, end + 3
                    break
            if end < len(text) and (text[end].isalnum() or text[end] in "_-"):
                return None  # an identifier that starts like one (``info``, ``NaNa``)
            return word, suffix, end
    return None


def _named_type(vt: ValueType | None) -> bool:
    """Whether a type names a record (packr's reading of every name): a declared variant
    of that name may be meant."""
    stack = [] if vt is None else [vt]
    while stack:
        t = stack.pop()
        if t.name:
            return True
        stack.extend(t.args)
    return False


def _annotation(text: str, pos: int, count: int) -> tuple[list[ValueType], int]:
    """``<T>`` or ``<T, U>`` after ``some``/``none``/``ok``/``err``/``[]``."""
    types = []
    pos += 1  # '<'
    for i in range(count):
        vt, pos = _parse_type(text, _skip_ws(text, pos))
        types.append(vt)
        pos = _skip_ws(text, pos)
        want = "," if i < count - 1 else ">"
        if pos >= len(text) or text[pos] != want:
            got = "EOF" if pos >= len(text) else f"'{text[pos]}'"
            raise _error(text, pos, f"expected '{want}', got {got}")
        pos += 1
    return types, pos


def parse_syntax(text: str) -> list[Any]:
    """Pass 1: the syntax tree of a value (packr's grammar, loosened where a declared type
    can fill in: bare case names, unsuffixed numbers, unannotated some/none/ok/err/[])."""
    n = len(text)
    stack: list[list[Any]] = []  # [kind, start, extra, items, field names]
    pos = 0
    while True:
        pos = _skip_ws(text, pos)
        if pos >= n:
            raise _error(text, pos, "unexpected EOF")
        start = pos
        c = text[pos]
        node: list[Any] | None = None
        if c == "(":
            pos = _skip_ws(text, pos + 1)
            if pos < n and text[pos] == ")":
                node = _node(TUPLE, start, pos + 1, False, [])
                pos += 1
            else:
                stack.append([_O_TUPLE, start, None, [], None])
                continue
        elif c == "[":
            pos = _skip_ws(text, pos + 1)
            if pos < n and text[pos] == "]":
                pos += 1
                annot = None
                after = _skip_ws(text, pos)
                if after < n and text[after] == "<":
                    (annot,), pos = _annotation(text, after, 1)
                node = _node(LIST, start, pos, _named_type(annot), [], annot)
            else:
                stack.append([_O_LIST, start, None, [], None])
                continue
        elif c == '"':
            s, pos = _string(text, pos + 1)
            node = _node(STR, start, pos, False, s.value)
        elif c == "'":
            ch, pos = _char(text, pos + 1)
            node = _node(CHAR, start, pos, False, ch.value)
        elif c in _DIGIT_START and _float_word(text, pos) is None:
            m = _NUMBER.match(text, pos)
            assert m is not None
            literal, end = m.group(), m.end()
            if not literal.strip("-."):
                raise _error(text, end, f"expected a number, got '{literal}'")
            suffix = None
            for sfx, _ in _NUMBER_SUFFIXES:
                if text.startswith(sfx, end) and not (
                    end + len(sfx) < n and text[end + len(sfx)].isalnum()
                ):
                    suffix, end = sfx, end + len(sfx)
                    break
            if end < n and (text[end].isalnum() or text[end] == "_"):
                raise _error(text, end, f"bad number suffix after '{literal}'")
            node, pos = _node(NUM, start, end, False, literal, suffix), end
        elif c == "{":
            pos = _skip_ws(text, pos + 1)
            if pos < n and text[pos] == "}":
                node, pos = _node(RECORD, start, pos + 1, True, "", [], []), pos + 1
            else:
                field, pos = _field(text, pos)
                stack.append([_O_RECORD, start, "", [], [field]])
                continue
        else:
            word = _float_word(text, pos)
            if word is not None:
                node = _node(WORD, start, word[2], False, word[0], word[1])
                pos = word[2]
            elif text.startswith("flags(0x", pos):
                bits, end = _flags_literal(text, pos)
                node, pos = _node(FLAGS, start, end, False, bits), end
            else:
                node, pos = _word(text, pos, stack)
                if node is None:
                    continue
        # ---- hand the finished node to the open compounds waiting for it
        while True:
            if not stack:
                pos = _skip_ws(text, pos)
                if pos < n:
                    raise _error(text, pos, f"trailing input: '{text[pos:]}'")
                return node
            frame = stack[-1]
            kind = frame[0]
            pos = _skip_ws(text, pos)
            frame[3].append(node)
            closer = "}" if kind == _O_RECORD else "]" if kind == _O_LIST else ")"
            if pos >= n:
                raise _error(text, pos, f"expected '{closer}', got EOF")
            c = text[pos]
            if c == ",":
                pos = _skip_ws(text, pos + 1)
            elif c != closer:
                raise _error(text, pos, f"expected ',' or '{closer}', got '{c}'")
            if not (pos < n and text[pos] == closer):
                if kind == _O_RECORD:
                    field, pos = _field(text, pos)
                    frame[4].append(field)
                break
            pos += 1
            stack.pop()
            items = frame[3]
            names = any(item[NAMES] for item in items)
            if kind == _O_TUPLE:
                node = _node(TUPLE, frame[1], pos, names, items)
            elif kind == _O_LIST:
                node = _node(LIST, frame[1], pos, names, items, None)
            elif kind == _O_RECORD:
                node = _node(RECORD, frame[1], pos, True, frame[2], frame[4], items)
            else:
                type_name, case, annot = frame[2]
                node = _node(NAMED, frame[1], pos, True, type_name, case, items, annot)


def _flags_literal(text: str, pos: int) -> tuple[int, int]:
    """A ``flags(0x…)`` literal at ``pos``: its bits and where it ends."""
    start = pos + 8
    end = start
    while end < len(text) and text[end] in "0123456789abcdefABCDEF":
        end += 1
    if end == start:
        raise _error(text, end, "invalid flags hex: cannot parse integer from empty string")
    bits = int(text[start:end], 16)
    if bits > Flags.MAX:
        raise _error(text, end, "invalid flags hex: number too large to fit in target type")
    if end >= len(text) or text[end] != ")":
        got = "EOF" if end >= len(text) else f"'{text[end]}'"
        raise _error(text, end, f"expected ')', got {got}")
    return bits, end + 1


def _field(text: str, pos: int) -> tuple[str, int]:
    m = _IDENT.match(text, pos)
    if m is None:
        raise _error(text, pos, "expected a field name")
    pos = _skip_ws(text, m.end())
    if pos >= len(text) or text[pos] != ":":
        got = "EOF" if pos >= len(text) else f"'{text[pos]}'"
        raise _error(text, pos, f"expected ':', got {got}")
    return m.group(), _skip_ws(text, pos + 1)


def _word(text: str, pos: int, stack: list[list[Any]]) -> tuple[list[Any] | None, int]:
    """An identifier-led value: true/false, some/none/ok/err, ``T{``, ``T::case``,
    ``::case`` or a bare case name. Returns a finished node, or ``None`` after opening
    a compound on ``stack``."""
    n = len(text)
    start = pos
    if text.startswith("::", pos):
        type_name: str | None = ""
        m = _IDENT.match(text, pos + 2)
        if m is None:
            raise _error(text, pos + 2, "expected identifier")
        case, pos = m.group(), m.end()
    else:
        m = _IDENT.match(text, pos)
        if m is None:
            raise _error(text, pos, "expected identifier")
        word, pos = m.group(), m.end()
        if word in ("true", "false"):
            return _node(BOOL, start, pos, False, word == "true"), pos
        after = _skip_ws(text, pos)
        if after < n and text[after] == "{":
            inner = _skip_ws(text, after + 1)
            if inner < n and text[inner] == "}":
                return _node(RECORD, start, inner + 1, True, word, [], []), inner + 1
            field, inner = _field(text, inner)
            stack.append([_O_RECORD, start, word, [], [field]])
            return None, inner
        if text.startswith("::", after):
            m = _IDENT.match(text, after + 2)
            if m is None:
                raise _error(text, after + 2, "expected identifier")
            type_name, case, pos = word, m.group(), m.end()
        else:
            type_name, case = None, word
    annot = None
    if type_name is None and case in ("some", "none", "ok", "err") and pos < n and text[pos] == "<":
        annot, pos = _annotation(text, pos, 2 if case in ("ok", "err") else 1)
    after = _skip_ws(text, pos)
    if after < n and text[after] == "(":
        inner = _skip_ws(text, after + 1)
        if inner < n and text[inner] == ")":
            return _node(NAMED, start, inner + 1, True, type_name, case, [], annot), inner + 1
        stack.append([_O_PAYLOAD, start, (type_name, case, annot), [], None])
        return None, inner
    return _node(NAMED, start, pos, True, type_name, case, None, annot), pos
