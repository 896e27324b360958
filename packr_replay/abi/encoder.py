"""CGRF v2 encoder, byte-identical with packr's.

Nodes are emitted depth-first post-order (children left to right, then the parent), so
the root is the last node; nothing is ever shared. Lists whose declared element type is
fixed-width become one Array node. The walk uses an explicit stack: depth is bounded
only by memory.
"""

from __future__ import annotations

import struct
from functools import lru_cache

from ..errors import InvalidEncoding
from . import _accel
from .types import FIXED_WIDTH, Kind, ValueType
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

__all__ = ["encode", "encode_type", "py_encode"]

_MISMATCH = (
    "List with primitive elem_type contains non-matching items; fix the elem_type or the items"
)

_HEADER = struct.Struct("<4sHHII")
_NODE = struct.Struct("<BBHI")  # kind, node flags, reserved, payload_len
_U32 = struct.Struct("<I").pack

# One struct per fixed-size primitive: the node header and payload in a single pack.
_NODE_U16 = struct.Struct("<BBHIH").pack
_NODE_S16 = struct.Struct("<BBHIh").pack
_NODE_U32 = struct.Struct("<BBHII").pack
_NODE_S32 = struct.Struct("<BBHIi").pack
_NODE_U64 = struct.Struct("<BBHIQ").pack
_NODE_S64 = struct.Struct("<BBHIq").pack
_NODE_STR = struct.Struct("<BBHII").pack  # header + the string's u32 length

_BOOL_NODES = (
    _NODE.pack(Kind.BOOL, 0, 0, 1) + b"\x00",
    _NODE.pack(Kind.BOOL, 0, 0, 1) + b"\x01",
)
_U8_NODES = tuple(_NODE.pack(Kind.U8, 0, 0, 1) + bytes([i]) for i in range(256))
_S8_NODES = tuple(_NODE.pack(Kind.S8, 0, 0, 1) + bytes([i & 0xFF]) for i in range(-128, 128))


def _leaf(v: Value) -> bytes | None:
    """The node bytes of a value without children, or None for a compound value."""
    cls = type(v)
    if cls is S64:
        return _NODE_S64(Kind.S64, 0, 0, 8, v.value)  # type: ignore[attr-defined]
    if cls is String:
        data = _utf8(v.value)  # type: ignore[attr-defined]
        return _NODE_STR(Kind.STRING, 0, 0, len(data) + 4, len(data)) + data
    if cls is U8:
        return _U8_NODES[v.value]  # type: ignore[attr-defined]
    if cls is Bool:
        return _BOOL_NODES[v.value]  # type: ignore[attr-defined]
    if cls is U32:
        return _NODE_U32(Kind.U32, 0, 0, 4, v.value)  # type: ignore[attr-defined]
    if cls is S32:
        return _NODE_S32(Kind.S32, 0, 0, 4, v.value)  # type: ignore[attr-defined]
    if cls is U64:
        return _NODE_U64(Kind.U64, 0, 0, 8, v.value)  # type: ignore[attr-defined]
    if cls is F64:
        return _NODE_U64(Kind.F64, 0, 0, 8, v.bits)  # type: ignore[attr-defined]
    if cls is F32:
        return _NODE_U32(Kind.F32, 0, 0, 4, v.bits)  # type: ignore[attr-defined]
    if cls is Char:
        return _NODE_U32(Kind.CHAR, 0, 0, 4, ord(v.value))  # type: ignore[attr-defined]
    if cls is U16:
        return _NODE_U16(Kind.U16, 0, 0, 2, v.value)  # type: ignore[attr-defined]
    if cls is S16:
        return _NODE_S16(Kind.S16, 0, 0, 2, v.value)  # type: ignore[attr-defined]
    if cls is S8:
        return _S8_NODES[v.value + 128]  # type: ignore[attr-defined]
    if cls is Flags:
        return _NODE_U64(Kind.FLAGS, 0, 0, 8, v.value)  # type: ignore[attr-defined]
    if cls is List:
        return _array_node(v)  # type: ignore[arg-type]
    return None


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidEncoding(f"String contains a lone surrogate at index {exc.start}") from None


# ------------------------------------------------------------------ arrays

_ELEM_CLASS: dict[int, type[Value]] = {
    Kind.BOOL: Bool,
    Kind.U8: U8,
    Kind.S8: S8,
    Kind.U16: U16,
    Kind.S16: S16,
    Kind.U32: U32,
    Kind.S32: S32,
    Kind.F32: F32,
    Kind.CHAR: Char,
    Kind.U64: U64,
    Kind.S64: S64,
    Kind.F64: F64,
    Kind.FLAGS: Flags,
}
_ELEM_FORMAT: dict[int, str] = {
    Kind.BOOL: "B",
    Kind.U8: "B",
    Kind.S8: "b",
    Kind.U16: "H",
    Kind.S16: "h",
    Kind.U32: "I",
    Kind.S32: "i",
    Kind.F32: "I",
    Kind.CHAR: "I",
    Kind.U64: "Q",
    Kind.S64: "q",
    Kind.F64: "Q",
    Kind.FLAGS: "Q",
}


def _array_node(lst: List) -> bytes | None:
    """The Array node for a list with a fixed-width elem_type; None for a List node."""
    tag = lst.elem_type.tag
    width = FIXED_WIDTH.get(tag)
    if width is None:
        return None
    items = lst.items
    cls = _ELEM_CLASS[tag]
    for item in items:
        if type(item) is not cls:
            raise InvalidEncoding(_MISMATCH)
    n = len(items)
    if tag == Kind.U8 or tag == Kind.S8 or tag == Kind.BOOL:
        if tag == Kind.S8:
            data = bytes([i.value & 0xFF for i in items])  # type: ignore[attr-defined]
        else:
            data = bytes([i.value for i in items])  # type: ignore[attr-defined]
    elif tag == Kind.F32 or tag == Kind.F64:
        data = struct.pack(f"<{n}{_ELEM_FORMAT[tag]}", *[i.bits for i in items])  # type: ignore[attr-defined]
    elif tag == Kind.CHAR:
        data = struct.pack(f"<{n}I", *[ord(i.value) for i in items])  # type: ignore[attr-defined]
    else:
        data = struct.pack(f"<{n}{_ELEM_FORMAT[tag]}", *[i.value for i in items])  # type: ignore[attr-defined]
    return _NODE.pack(Kind.ARRAY, 0, 0, 5 + len(data)) + bytes((tag,)) + _U32(n) + data


# ------------------------------------------------------------------- types


@lru_cache(maxsize=4096)
def encode_type(t: ValueType) -> bytes:
    """The TYPE(...) bytes of a type: pre-order tags, names length-prefixed."""
    out = bytearray()
    stack = [t]
    pop, push = stack.pop, stack.append
    while stack:
        cur = pop()
        tag = cur.tag
        out.append(tag)
        if tag == Kind.RECORD or tag == Kind.VARIANT:
            name = _utf8(cur.name or "")
            out += _U32(len(name))
            out += name
        elif tag == Kind.TUPLE:
            out += _U32(len(cur.args))
            for arg in reversed(cur.args):
                push(arg)
        elif cur.args:  # list, option, result
            for arg in reversed(cur.args):
                push(arg)
    return bytes(out)


# ------------------------------------------------------------------ values


_COMPOUNDS = frozenset((Tuple, List, Record, Variant, Option, Result))


def _children(v: Value) -> tuple[Value, ...]:
    """A compound's children (:func:`~.values.children`); anything else that is not a
    leaf is no packr value (a subclass, say), which the encoder refuses."""
    if type(v) not in _COMPOUNDS:
        raise TypeError(f"not a packr value: {type(v).__name__}")
    return children(v)


def _parent_payload(v: Value, kids: list[int]) -> bytes:
    cls = type(v)
    idx = struct.pack(f"<{len(kids)}I", *kids)
    if cls is Tuple:
        return _U32(len(kids)) + idx
    if cls is List:
        return encode_type(v.elem_type) + _U32(len(kids)) + idx  # type: ignore[attr-defined]
    if cls is Record:
        parts = [_name(v.type_name), _U32(len(kids))]  # type: ignore[attr-defined]
        parts.extend(_name(name) for name, _ in v.fields)  # type: ignore[attr-defined]
        parts.append(idx)
        return b"".join(parts)
    if cls is Variant:
        return b"".join(
            (
                _name(v.type_name),  # type: ignore[attr-defined]
                _name(v.case_name),  # type: ignore[attr-defined]
                _U32(v.tag),  # type: ignore[attr-defined]
                _U32(len(kids)),
                idx,
            )
        )
    if cls is Option:
        present = b"\x01" if kids else b"\x00"
        return encode_type(v.inner_type) + present + idx  # type: ignore[attr-defined]
    # Result: TYPE(ok) TYPE(err) u32 tag, u8 has_payload (always 1), u32 child
    return (
        encode_type(v.ok_type)  # type: ignore[attr-defined]
        + encode_type(v.err_type)  # type: ignore[attr-defined]
        + (b"\x01\x00\x00\x00\x01" if v.is_err else b"\x00\x00\x00\x00\x01")  # type: ignore[attr-defined]
        + idx
    )


def _name(text: str) -> bytes:
    data = _utf8(text)
    return _U32(len(data)) + data


def py_encode(value: Value) -> bytes:
    """Encode a value as CGRF v2 bytes, exactly as packr's ``encode`` does.

    The pure-Python encoder; ``encode`` is this or the C accelerator in front of it.

    Raises ``InvalidEncoding`` for a list whose fixed-width ``elem_type`` does not match
    every item (packr's only encode error) and for strings holding lone surrogates.
    """
    if not isinstance(value, Value):
        raw = getattr(value, "data", None)
        if isinstance(raw, bytes) and hasattr(value, "value"):  # an EncodedValue
            return raw
        raise TypeError(f"encode() takes a Value, got {type(value).__name__}")
    leaf = _leaf(value)
    if leaf is not None:
        return _HEADER.pack(b"CGRF", 2, 0, 1, 0) + leaf

    nodes: list[bytes] = []
    append = nodes.append
    # Frames: [value, children, next child position, child node indices].
    frames: list[list] = [[value, _children(value), 0, []]]  # type: ignore[type-arg]
    while frames:
        frame = frames[-1]
        kids: tuple[Value, ...] = frame[1]
        pos: int = frame[2]
        idxs: list[int] = frame[3]
        n = len(kids)
        descended = False
        while pos < n:
            child = kids[pos]
            pos += 1
            leaf = _leaf(child)
            if leaf is None:
                frame[2] = pos
                frames.append([child, _children(child), 0, []])
                descended = True
                break
            idxs.append(len(nodes))
            append(leaf)
        if descended:
            continue
        frames.pop()
        v = frame[0]
        payload = _parent_payload(v, idxs)
        if frames:
            frames[-1][3].append(len(nodes))
        append(_NODE.pack(v.KIND, 0, 0, len(payload)) + payload)
    count = len(nodes)
    return _HEADER.pack(b"CGRF", 2, 0, count, count - 1) + b"".join(nodes)



# ``encode`` has the Python function's signature; when the C accelerator is usable it is
# bound to the C function, which defers to ``py_encode`` for everything it does not
# handle itself.
encode = py_encode
if _accel.speedups is not None:
    encode = _accel.select(__name__, encode=py_encode)["encode"]
