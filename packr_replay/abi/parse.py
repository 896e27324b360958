"""packr's value-literal parser (``parse_value`` / ``parse_type``), quirks included.

It accepts exactly what packr's ``parse_value`` accepts, with the same results, error
messages and (UTF-8 byte) error positions: every parsed variant gets tag 0, a named type
always becomes ``Record(name)``, a non-empty list takes its element type from its first
item. An explicit stack makes a million-deep literal an ordinary input.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from ..errors import ParseError
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
)

__all__ = ["parse_type", "parse_value"]

_pack_f, _unpack_f = struct.Struct("<f").pack, struct.Struct("<f").unpack
_pack_I, _unpack_I = struct.Struct("<I").pack, struct.Struct("<I").unpack


# ===================================================================== parsing

_WS = re.compile(r"[ \t\n\f\r]*")  # Rust's is_ascii_whitespace: no vertical tab
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_NUMBER = re.compile(r"-?[0-9]*(?:\.[0-9]*)?")
_DIGITS = re.compile(r"[0-9]*")
_HEX = re.compile(r"[0-9A-Fa-f]*")
_STRING_RUN = re.compile(r'[^"\\]*')
_IDENT_CONTINUE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_DIGIT_START = frozenset("-0123456789")

_STRING_UNESCAPE = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"'}
_CHAR_UNESCAPE = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", "'": "'"}

_PRIMITIVE_TYPES = {
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

_EMPTY_INT = "cannot parse integer from empty string"
_INVALID_DIGIT = "invalid digit found in string"
_TOO_LARGE = "number too large to fit in target type"
_TOO_SMALL = "number too small to fit in target type"
_INVALID_FLOAT = "invalid float literal"


class _Fail(Exception):
    """A number parser's message; the caller adds the position."""


def _parse_int(text: str, lo: int, hi: int) -> int:
    """Rust's ``str::parse`` for an integer type spanning ``lo..=hi``, errors included.

    Rust reads digit by digit, so whichever comes first wins: an invalid character or
    an accumulated value out of range.
    """
    if not text:
        raise _Fail(_EMPTY_INT)
    digits, negative = text, False
    if text[0] == "-":
        if len(text) == 1:
            raise _Fail(_INVALID_DIGIT)
        if lo < 0:
            digits, negative = text[1:], True
    run = _DIGITS.match(digits).end()  # type: ignore[union-attr]
    significant = digits[:run].lstrip("0")
    # More than 20 significant digits overflows every width; int() would also refuse
    # very long decimal strings.
    if not significant:
        magnitude = 0
    elif len(significant) <= 20:
        magnitude = int(significant)
    else:
        magnitude = 1 << 65
    if negative:
        if -magnitude < lo:
            raise _Fail(_TOO_SMALL)
    elif magnitude > hi:
        raise _Fail(_TOO_LARGE)
    if run != len(digits):
        raise _Fail(_INVALID_DIGIT)
    return -magnitude if negative else magnitude


def _parse_f64(text: str) -> F64:
    try:
        return F64(float(text))  # correctly rounded, like Rust's parser
    except ValueError:
        raise _Fail(_INVALID_FLOAT) from None


_INF = float("inf")
_F32_MAX = float.fromhex("0x1.fffffep127")
_F32_OVERFLOW = float.fromhex("0x1.ffffffp127")  # F32_MAX + half an ulp: from here on, inf


def _f32_neighbour(x: float, up: bool) -> float:
    bits = _unpack_I(_pack_f(x))[0]
    return float(_unpack_f(_pack_I(bits + 1 if up else bits - 1))[0])


def _parse_f32(text: str) -> F32:
    """Round the decimal ``text`` straight to f32 (no double rounding); overflow is inf.

    The double nearest the decimal rounds to the right single unless it sits exactly on
    a midpoint between two singles; only then is the exact decimal consulted.
    """
    try:
        d = abs(float(text))
    except ValueError:
        raise _Fail(_INVALID_FLOAT) from None
    magnitude = text.lstrip("-")
    if d >= _F32_OVERFLOW:
        r = _F32_MAX if d == _F32_OVERFLOW and Decimal(magnitude) < Decimal(d) else _INF
    else:
        r = float(_unpack_f(_pack_f(d))[0])  # round-half-even
        if r != d and not (r == _F32_MAX and r < d):
            other = _f32_neighbour(r, up=r < d)
            mid = (r + other) / 2
            if d == mid:
                exact = Decimal(magnitude)
                if exact != Decimal(mid):
                    r = max(r, other) if exact > Decimal(mid) else min(r, other)
    return F32(-r if text.startswith("-") else r)


_NUMBER_SUFFIXES: tuple[tuple[str, Callable[[str], Value]], ...] = (
    ("u8", lambda s: U8(_parse_int(s, U8.MIN, U8.MAX))),
    ("u16", lambda s: U16(_parse_int(s, U16.MIN, U16.MAX))),
    ("u32", lambda s: U32(_parse_int(s, U32.MIN, U32.MAX))),
    ("u64", lambda s: U64(_parse_int(s, U64.MIN, U64.MAX))),
    ("s8", lambda s: S8(_parse_int(s, S8.MIN, S8.MAX))),
    ("s16", lambda s: S16(_parse_int(s, S16.MIN, S16.MAX))),
    ("s32", lambda s: S32(_parse_int(s, S32.MIN, S32.MAX))),
    ("s64", lambda s: S64(_parse_int(s, S64.MIN, S64.MAX))),
    ("f32", _parse_f32),
    ("f64", _parse_f64),
)

# Parser frames: a compound value or type waiting for its next child.
_F_TUPLE, _F_LIST, _F_PAYLOAD, _F_RECORD, _F_SOME, _F_RESULT = range(6)
_T_LIST, _T_OPTION, _T_RESULT_OK, _T_RESULT_ERR, _T_TUPLE = range(5)

_WS_CHARS = frozenset(" \t\n\f\r")
_ws_end = _WS.match


def _error(text: str, pos: int, message: str) -> ParseError:
    """A ParseError at character index ``pos``, reported as packr's UTF-8 byte offset."""
    offset = pos if text.isascii() else len(text[:pos].encode("utf-8", "surrogatepass"))
    return ParseError(message, offset)


def _skip_ws(text: str, pos: int) -> int:
    if pos < len(text) and text[pos] in _WS_CHARS:
        return _ws_end(text, pos).end()  # type: ignore[union-attr]
    return pos


def _expect(text: str, pos: int, ch: str) -> int:
    if pos >= len(text):
        raise _error(text, pos, f"expected '{ch}', got EOF")
    if text[pos] != ch:
        raise _error(text, pos, f"expected '{ch}', got '{text[pos]}'")
    return pos + 1


def _ident(text: str, pos: int) -> tuple[str, int]:
    m = _IDENT.match(text, pos)
    if m is None:
        raise _error(text, pos, "expected identifier")
    return m.group(), m.end()


# The parser builds only well-formed parts, so it creates compound values without the
# public constructors' argument checks: on a million-deep input those checks would be
# most of the work.
_new = object.__new__


def _new_tuple(items: list[Value]) -> Tuple:
    t: Tuple = _new(Tuple)
    t.items = tuple(items)
    return t


def _new_list(elem_type: ValueType, items: list[Value]) -> List:
    lst: List = _new(List)
    lst.elem_type = elem_type
    lst.items = tuple(items)
    return lst


def _new_variant(type_name: str, case_name: str, payload: list[Value]) -> Variant:
    v: Variant = _new(Variant)
    v.type_name, v.case_name, v.tag, v.payload = type_name, case_name, 0, tuple(payload)
    return v


def _new_record(type_name: str, fields: list[tuple[str, Value]]) -> Record:
    r: Record = _new(Record)
    r.type_name, r.fields = type_name, tuple(fields)
    return r


# Kind members looked up once: Enum attribute access is slow in the deep loops.
_K_LIST, _K_OPTION, _K_RESULT = Kind.LIST, Kind.OPTION, Kind.RESULT


def _elem_type(first: Value) -> ValueType:
    """``infer_type`` of a list's first item (a nested list is the hot case)."""
    if type(first) is List:
        return ValueType(_K_LIST, None, (first.elem_type,))
    return first.infer_type()


def _parse_type(text: str, pos: int) -> tuple[ValueType, int]:
    """packr's ``parse_value_type`` from ``pos``, with an explicit stack."""
    n = len(text)
    stack: list[list[Any]] = []
    while True:
        # ---- the start of a type: a finished type in ``t``, or a new frame
        pos = _skip_ws(text, pos)
        m = _IDENT.match(text, pos)
        word = m.group() if m is not None else ""
        end = pos + len(word)
        t: ValueType
        prim = _PRIMITIVE_TYPES.get(word)
        if prim is not None and not (end < n and text[end] == "<"):
            pos = end
            t = prim
        elif text.startswith("list<", pos):
            pos += 5
            stack.append([_T_LIST])
            continue
        elif text.startswith("option<", pos):
            pos += 7
            stack.append([_T_OPTION])
            continue
        elif text.startswith("result<", pos):
            pos += 7
            stack.append([_T_RESULT_OK])
            continue
        elif text.startswith("tuple<", pos):
            pos = _skip_ws(text, pos + 6)
            if not (pos < n and text[pos] == ">"):
                stack.append([_T_TUPLE, []])
                continue
            pos += 1
            t = ValueType.UNIT
        elif m is None:
            raise _error(text, pos, "expected identifier")
        else:
            pos = end
            t = ValueType.record(word)
        # ---- hand the finished type to the frames waiting for it
        while True:
            if not stack:
                return t, pos
            frame = stack[-1]
            kind = frame[0]
            pos = _skip_ws(text, pos)
            if kind == _T_TUPLE:
                frame[1].append(t)
                if pos >= n:
                    raise _error(text, pos, "expected '>', got EOF")
                c = text[pos]
                if c == ",":
                    pos += 1
                    break
                if c != ">":
                    raise _error(text, pos, f"expected ',' or '>', got '{c}'")
                pos += 1
                stack.pop()
                t = ValueType.tuple(*frame[1])
            elif kind == _T_RESULT_OK:
                pos = _expect(text, pos, ",")
                frame[0] = _T_RESULT_ERR
                frame.append(t)
                break
            else:
                pos = _expect(text, pos, ">")
                stack.pop()
                if kind == _T_LIST:
                    t = ValueType(_K_LIST, None, (t,))
                elif kind == _T_OPTION:
                    t = ValueType(_K_OPTION, None, (t,))
                else:
                    t = ValueType(_K_RESULT, None, (frame[1], t))


def _parse_value(text: str, pos: int) -> tuple[Value, int]:
    """packr's ``parse_value`` from ``pos``, with explicit stacks of open compounds.

    An open compound is one entry in each of ``kinds``, ``starts`` and ``extras``; the
    children it has so far sit at ``pending[start:]`` (record fields as name, value).
    Nothing is allocated per level beyond the values themselves, which keeps a
    million-deep parse clear of the cyclic garbage collector's attention.
    """
    n = len(text)
    ws_chars = _WS_CHARS
    kinds: list[int] = []
    starts: list[int] = []
    extras: list[Any] = []
    pending: list[Any] = []
    while True:
        # ---- the start of a value: a finished value in ``v``, or a newly opened compound
        if pos < n and text[pos] in ws_chars:
            pos = _ws_end(text, pos).end()  # type: ignore[union-attr]
        if pos >= n:
            raise _error(text, pos, "unexpected EOF")
        c = text[pos]
        v: Value
        if c == "(":
            pos += 1
            if pos < n and text[pos] in ws_chars:
                pos = _ws_end(text, pos).end()  # type: ignore[union-attr]
            if not (pos < n and text[pos] == ")"):
                kinds.append(_F_TUPLE)
                starts.append(len(pending))
                extras.append(None)
                continue
            pos += 1
            v = _new_tuple([])
        elif c == "[":
            pos = _skip_ws(text, pos + 1)
            if not (pos < n and text[pos] == "]"):
                kinds.append(_F_LIST)
                starts.append(len(pending))
                extras.append(None)
                continue
            pos = _skip_ws(text, pos + 1)
            if not (pos < n and text[pos] == "<"):
                raise _error(text, pos, "empty list requires type annotation: []<TYPE>")
            elem_type, pos = _parse_type(text, pos + 1)
            pos = _expect(text, pos, ">")
            v = _new_list(elem_type, [])
        elif c == '"':
            v, pos = _string(text, pos + 1)
        elif c == "'":
            v, pos = _char(text, pos + 1)
        elif c in _DIGIT_START:
            v, pos = _number(text, pos)
        else:
            if c == "{":
                started, pos = _record_body(text, pos + 1, "")
            else:
                started, pos = _keyword_or_named(text, pos)
            if type(started) is not _Open:
                v = started  # type: ignore[assignment]
            else:
                kinds.append(started.kind)
                starts.append(len(pending))
                extras.append(started.extra)
                if started.kind == _F_RECORD:
                    pending.append(started.field)
                continue
        # ---- hand the finished value to the compounds waiting for it
        while True:
            if not kinds:
                return v, pos
            kind = kinds[-1]
            if pos < n and text[pos] in ws_chars:
                pos = _ws_end(text, pos).end()  # type: ignore[union-attr]
            if kind <= _F_PAYLOAD:  # a comma-separated list up to its closer
                pending.append(v)
                closer = "]" if kind == _F_LIST else ")"
                if pos >= n:
                    raise _error(text, pos, f"expected '{closer}', got EOF")
                c = text[pos]
                if c == ",":
                    pos += 1
                    if pos < n and text[pos] in ws_chars:
                        pos = _ws_end(text, pos).end()  # type: ignore[union-attr]
                elif c != closer:
                    raise _error(text, pos, f"expected ',' or '{closer}', got '{c}'")
                if not (pos < n and text[pos] == closer):
                    break
                pos += 1
                kinds.pop()
                start = starts.pop()
                extra = extras.pop()
                items = pending[start:]
                del pending[start:]
                if kind == _F_TUPLE:
                    v = _new_tuple(items)
                elif kind == _F_LIST:
                    v = _new_list(_elem_type(items[0]), items)
                else:
                    v = _new_variant(extra[0], extra[1], items)
            elif kind == _F_RECORD:
                pending.append(v)
                if pos >= n:
                    raise _error(text, pos, "expected '}', got EOF")
                c = text[pos]
                if c == ",":
                    pos = _skip_ws(text, pos + 1)
                elif c != "}":
                    raise _error(text, pos, f"expected ',' or '}}', got '{c}'")
                if not (pos < n and text[pos] == "}"):
                    field, pos = _field_name(text, pos)
                    pending.append(field)
                    break
                pos += 1
                kinds.pop()
                start = starts.pop()
                flat = pending[start:]
                del pending[start:]
                v = _new_record(extras.pop(), list(zip(flat[::2], flat[1::2], strict=True)))
            else:  # some<T>( or ok<O, E>( / err<O, E>(
                pos = _expect(text, pos, ")")
                kinds.pop()
                starts.pop()
                extra = extras.pop()
                if kind == _F_SOME:
                    v = Option(extra, v)
                else:
                    v = Result(extra[0], extra[1], v, is_err=extra[2])


class _Open:
    """A compound whose opening was just read: its frame kind and what it needs later."""

    __slots__ = ("extra", "field", "kind")

    def __init__(self, kind: int, extra: Any = None, field: str = "") -> None:
        self.kind = kind
        self.extra = extra
        self.field = field


def _field_name(text: str, pos: int) -> tuple[str, int]:
    """``name ws* ':' ws*`` before a record field's value."""
    name, pos = _ident(text, pos)
    pos = _expect(text, _skip_ws(text, pos), ":")
    return name, _skip_ws(text, pos)


def _record_body(text: str, pos: int, type_name: str) -> tuple[Value | _Open, int]:
    """After ``{``: an empty record, or an open one waiting for its first field's value."""
    pos = _skip_ws(text, pos)
    if pos < len(text) and text[pos] == "}":
        return _new_record(type_name, []), pos + 1
    name, pos = _field_name(text, pos)
    return _Open(_F_RECORD, type_name, name), pos


def _payload(text: str, pos: int, type_name: str, case_name: str) -> tuple[Value | _Open, int]:
    """A variant's optional ``(payload)``: a payload-less variant, or an open one."""
    pos = _skip_ws(text, pos)
    if not (pos < len(text) and text[pos] == "("):
        return _new_variant(type_name, case_name, []), pos
    pos = _skip_ws(text, pos + 1)
    if pos < len(text) and text[pos] == ")":
        return _new_variant(type_name, case_name, []), pos + 1
    return _Open(_F_PAYLOAD, (type_name, case_name)), pos


def _ident_continues(text: str, pos: int) -> bool:
    return pos < len(text) and text[pos] in _IDENT_CONTINUE


def _keyword_or_named(text: str, pos: int) -> tuple[Value | _Open, int]:
    """Keywords (``true``, ``none<T>``, ``some<T>(``, ...), records and variants."""
    if text.startswith("true", pos) and not _ident_continues(text, pos + 4):
        return Bool(True), pos + 4
    if text.startswith("false", pos) and not _ident_continues(text, pos + 5):
        return Bool(False), pos + 5
    if text.startswith("none<", pos):
        inner, pos = _parse_type(text, pos + 5)
        return Option(inner), _expect(text, _skip_ws(text, pos), ">")
    if text.startswith("some<", pos):
        inner, pos = _parse_type(text, pos + 5)
        pos = _expect(text, _skip_ws(text, pos), ">")
        return _Open(_F_SOME, inner), _expect(text, pos, "(")
    for head, is_err in (("ok<", False), ("err<", True)):
        if text.startswith(head, pos):
            ok_type, pos = _parse_type(text, pos + len(head))
            pos = _expect(text, _skip_ws(text, pos), ",")
            err_type, pos = _parse_type(text, pos)
            pos = _expect(text, _skip_ws(text, pos), ">")
            return _Open(_F_RESULT, (ok_type, err_type, is_err)), _expect(text, pos, "(")
    if text.startswith("flags(0x", pos):
        start = pos + 8
        pos = _HEX.match(text, start).end()  # type: ignore[union-attr]
        digits = text[start:pos]
        if not digits:
            raise _error(text, pos, "invalid flags hex: " + _EMPTY_INT)
        bits = int(digits, 16)
        if bits > Flags.MAX:
            raise _error(text, pos, "invalid flags hex: " + _TOO_LARGE)
        return Flags(bits), _expect(text, pos, ")")
    if text.startswith("::", pos):
        case_name, pos = _ident(text, pos + 2)
        return _payload(text, pos, "", case_name)
    name, pos = _ident(text, pos)
    pos = _skip_ws(text, pos)
    if pos < len(text) and text[pos] == "{":
        return _record_body(text, pos + 1, name)
    if text.startswith("::", pos):
        case_name, pos = _ident(text, pos + 2)
        return _payload(text, pos, name, case_name)
    raise _error(text, pos, f"unexpected identifier '{name}' (expected {{ or ::)")


def _number(text: str, pos: int) -> tuple[Value, int]:
    """``-? digits* (. digits*)?`` and a suffix that no letter or digit follows."""
    m = _NUMBER.match(text, pos)
    assert m is not None  # the pattern matches the empty string
    literal, end = m.group(), m.end()
    for suffix, make in _NUMBER_SUFFIXES:
        if text.startswith(suffix, end):
            after = end + len(suffix)
            if after < len(text) and text[after] in _ALNUM:
                continue  # "u80" is not "u8"
            try:
                return make(literal), after
            except _Fail as exc:
                raise _error(text, after, str(exc)) from None
    raise _error(text, end, f"number '{literal}' missing type suffix (e.g. u32, s64, f32)")


def _string(text: str, pos: int) -> tuple[String, int]:
    """After the opening quote; only ``\\n \\r \\t \\\\ \\"`` are escapes."""
    n = len(text)
    parts: list[str] = []
    while True:
        end = _STRING_RUN.match(text, pos).end()  # type: ignore[union-attr]
        parts.append(text[pos:end])
        if end >= n:
            raise _error(text, end, "unterminated string")
        pos = end + 1
        if text[end] == '"':
            s: String = _new(String)
            s.value = "".join(parts)
            return s, pos
        if pos >= n:
            raise _error(text, pos, "unterminated escape")
        unescaped = _STRING_UNESCAPE.get(text[pos])
        if unescaped is None:
            raise _error(text, pos, f"unknown escape '\\{text[pos]}'")
        parts.append(unescaped)
        pos += 1


def _char(text: str, pos: int) -> tuple[Char, int]:
    """After the opening quote: one raw character (even ``'``) or one escape, then ``'``."""
    if pos >= len(text):
        raise _error(text, pos, "unterminated char")
    c = text[pos]
    pos += 1
    if c == "\\":
        if pos >= len(text):
            raise _error(text, pos, "unterminated char escape")
        unescaped = _CHAR_UNESCAPE.get(text[pos])
        if unescaped is None:
            raise _error(text, pos, f"unknown char escape '\\{text[pos]}'")
        c = unescaped
        pos += 1
    return Char(c), _expect(text, pos, "'")


def _checked_input(text: str) -> str:
    """Refuse text that is not valid UTF-8 (lone surrogates): packr reads a Rust ``&str``."""
    if not isinstance(text, str):
        raise TypeError(f"expected str, got {type(text).__name__}")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise _error(
                text, exc.start, f"invalid UTF-8: lone surrogate U+{ord(text[exc.start]):04X}"
            ) from None
    return text


def _finish(text: str, pos: int) -> None:
    pos = _skip_ws(text, pos)
    if pos < len(text):
        raise _error(text, pos, f"trailing input: '{text[pos:]}'")


def parse_value(text: str) -> Value:
    """Parse packr's value-literal text (spec §1.6) exactly as packr does.

    Raises :class:`~packr_replay.errors.ParseError` with packr's message and UTF-8 byte
    position.
    """
    value, pos = _parse_value(_checked_input(text), 0)
    _finish(text, pos)
    return value


def parse_type(text: str) -> ValueType:
    """Parse one type (``list<u8>``, ``result<u32, string>``, ``point``) and nothing else.

    A bare name always becomes a record type, as in packr's parser.
    """
    vtype, pos = _parse_type(_checked_input(text), 0)
    _finish(text, pos)
    return vtype
