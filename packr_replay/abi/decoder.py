"""CGRF v2 decoder with packr's exact validation order and error texts.

Three phases, as in packr:

A. the container: magic, version, node count, root, every node header and payload;
B. ``validate_basic`` over every node, reachable or not;
C. the decode proper from the root, with cycle detection.

Differences, all on inputs where packr aborts the process instead of returning an
error: phase C is iterative (no stack overflow on deep chains), counts are never
pre-allocated (a count of 0xFFFFFFFF runs out of bytes and reports ``BufferTooSmall``),
and the expanded size of a value built from shared subtrees is bounded by
``Limits.max_decoded_nodes``. Shared nodes decode to one immutable object referenced
from every parent, which is indistinguishable from packr's copies.
"""

from __future__ import annotations

import struct
from typing import Any

from ..errors import BufferTooSmall, InvalidEncoding, InvalidTag
from . import _accel
from .limits import DEFAULT_LIMITS, Limits
from .types import FIXED_WIDTH, PRIMITIVE_TYPES, Kind, ValueType
from .values import (
    _U8_CACHE,
    F32,
    F64,
    S8,
    S16,
    S32,
    S64,
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

__all__ = ["decode", "decode_prefix", "py_decode", "py_decode_prefix"]

_u16 = struct.Struct("<H").unpack_from
_u32 = struct.Struct("<I").unpack_from
_node_header = struct.Struct("<BBHI").unpack_from
_header = struct.Struct("<4sHHII").unpack_from

_VALID_KINDS = frozenset(int(k) for k in Kind)
_PRIM_KINDS = frozenset(PRIMITIVE_TYPES)  # node kinds without children (besides Array)
_COMPOUND_KINDS = frozenset(
    {Kind.LIST, Kind.VARIANT, Kind.RECORD, Kind.OPTION, Kind.TUPLE, Kind.RESULT}
)

_new = object.__new__
_TRUE = Bool(True)
_FALSE = Bool(False)

_SCALAR_FMT: dict[int, tuple[int, str, type[Value]]] = {
    Kind.U16: (2, "<H", U16),
    Kind.S16: (2, "<h", S16),
    Kind.U32: (4, "<I", U32),
    Kind.S32: (4, "<i", S32),
    Kind.U64: (8, "<Q", U64),
    Kind.S64: (8, "<q", S64),
    Kind.FLAGS: (8, "<Q", Flags),
}
_ARRAY_FMT: dict[int, str] = {
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
_INT_CLASS: dict[int, type[Value]] = {
    Kind.S8: S8,
    Kind.U16: U16,
    Kind.S16: S16,
    Kind.U32: U32,
    Kind.S32: S32,
    Kind.U64: U64,
    Kind.S64: S64,
    Kind.FLAGS: Flags,
}


def _int_value(cls: type[Value], v: int) -> Value:
    obj = _new(cls)
    obj.value = v  # type: ignore[attr-defined]
    return obj


def _float_value(cls: type[Value], bits: int) -> Value:
    obj = _new(cls)
    obj.bits = bits  # type: ignore[attr-defined]
    return obj


def _str_value(cls: type[Value], s: str) -> Value:
    obj = _new(cls)
    obj.value = s  # type: ignore[attr-defined]
    return obj


def py_decode(data: bytes | bytearray | memoryview, limits: Limits | None = None) -> Value:
    """Decode CGRF v2 bytes to a value, rejecting exactly what packr rejects.

    The pure-Python decoder; ``decode`` is this or the C accelerator in front of it.
    """
    # (only under the default limits: no small single node can exceed those)
    if limits is None and type(data) is bytes and 24 <= len(data) <= 4096 and data[:16] == _ONE_NODE:
        value = _decode_leaf(data)
        if value is not None:
            return value
    return _Decoder(data, limits or DEFAULT_LIMITS, prefix=False).run()


_ONE_NODE = b"CGRF\x02\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00"  # v2, 1 node, root 0
_UNIT = Tuple()


def _decode_leaf(data: bytes) -> Value | None:
    """Fast path for the commonest import argument: one valid primitive node.

    Returns None for anything unusual; the full decoder then produces packr's exact
    result or error.
    """
    kind = data[16]
    plen = len(data) - 24
    if _u32(data, 20)[0] != plen:
        return None
    if kind in _SCALAR_FMT:
        width, fmt, cls = _SCALAR_FMT[kind]
        if plen == width:
            return _int_value(cls, struct.unpack_from(fmt, data, 24)[0])
    elif kind == Kind.STRING:
        if plen >= 4 and _u32(data, 24)[0] == plen - 4:
            try:
                return _str_value(String, data[28:].decode("utf-8"))
            except UnicodeDecodeError:
                return None
    elif kind == Kind.U8 or kind == Kind.BOOL:
        if plen == 1:
            b = data[24]
            if kind == Kind.U8:
                return _U8_CACHE[b]
            if b <= 1:
                return _TRUE if b else _FALSE
    elif kind == Kind.TUPLE:
        if plen == 4 and data[24:28] == b"\x00\x00\x00\x00":
            return _UNIT
    elif kind == Kind.F64 or kind == Kind.F32:
        width = 8 if kind == Kind.F64 else 4
        if plen == width:
            return _float_value(F64 if width == 8 else F32, int.from_bytes(data[24:], "little"))
    return None


def py_decode_prefix(
    data: bytes | bytearray | memoryview, limits: Limits | None = None
) -> tuple[Value, int]:
    """Decode a value followed by arbitrary bytes; return it and the bytes it used.

    packr HEAD's ``decode_prefix``: used to read ``__pack_types`` metadata out of a data
    segment that continues with other static data.
    """
    dec = _Decoder(data, limits or DEFAULT_LIMITS, prefix=True)
    return dec.run(), dec.consumed


class _Decoder:
    __slots__ = (
        "consumed",
        "data",
        "ends",
        "kinds",
        "leaves",
        "limits",
        "prefix",
        "root",
        "starts",
    )

    def __init__(
        self, data: bytes | bytearray | memoryview, limits: Limits, *, prefix: bool
    ) -> None:
        self.data = data if type(data) is bytes else bytes(data)
        self.limits = limits
        self.prefix = prefix
        self.consumed = 0

    def run(self) -> Value:
        self._container()
        self._validate()
        return self._decode()

    # ------------------------------------------------------------- phase A

    def _container(self) -> None:
        data, limits = self.data, self.limits
        size = len(data)
        if size > limits.max_buffer_size:
            raise InvalidEncoding("Buffer too large")
        if size >= 16:
            magic, version, _flags, count, root = _header(data, 0)
            if magic != b"CGRF":
                raise InvalidEncoding("Invalid magic")
            if version != 2:
                raise InvalidEncoding("Unsupported version")
            if count > limits.max_node_count:
                raise InvalidEncoding("Node count exceeds limit")
        else:
            # Short buffer: replay packr's field-by-field reads for the exact error.
            if size < 4:
                raise BufferTooSmall(4, size)
            if data[:4] != b"CGRF":
                raise InvalidEncoding("Invalid magic")
            if size < 6:
                raise BufferTooSmall(6, size)
            if _u16(data, 4)[0] != 2:
                raise InvalidEncoding("Unsupported version")
            if size < 8:
                raise BufferTooSmall(8, size)
            if size < 12:
                raise BufferTooSmall(12, size)
            if _u32(data, 8)[0] > limits.max_node_count:
                raise InvalidEncoding("Node count exceeds limit")
            raise BufferTooSmall(16, size)

        max_payload = limits.max_payload_size
        kinds: list[int] = []
        starts: list[int] = []
        ends: list[int] = []
        pos = 16
        for _ in range(count):
            if pos + 8 <= size:
                kind, _nflags, _reserved, plen = _node_header(data, pos)
                if kind not in _VALID_KINDS:
                    raise InvalidTag(kind)
            else:
                if pos + 1 > size:
                    raise BufferTooSmall(pos + 1, size)
                kind = data[pos]
                if kind not in _VALID_KINDS:
                    raise InvalidTag(kind)
                for need in (pos + 2, pos + 4, pos + 8):
                    if need > size:
                        raise BufferTooSmall(need, size)
                raise AssertionError("unreachable")  # pragma: no cover
            if plen > max_payload:
                raise InvalidEncoding("Payload too large")
            start = pos + 8
            end = start + plen
            if end > size:
                raise BufferTooSmall(end, size)
            kinds.append(kind)
            starts.append(start)
            ends.append(end)
            pos = end
        if root >= count:
            raise InvalidEncoding("Root index out of range")
        if pos != size and not self.prefix:
            raise InvalidEncoding("Trailing bytes")
        self.consumed = pos
        self.kinds, self.starts, self.ends, self.root = kinds, starts, ends, root

    # ------------------------------------------------------------- phase B

    def _validate(self) -> None:
        """packr's ``validate_basic``; leaf values are built here to avoid a re-read."""
        data, kinds, starts, ends = self.data, self.kinds, self.starts, self.ends
        node_count = len(kinds)
        max_seq = self.limits.max_sequence_len
        leaves: dict[int, Value] = {}
        for i in range(node_count):
            kind = kinds[i]
            start = starts[i]
            plen = ends[i] - start
            if kind in _COMPOUND_KINDS:
                if kind != Kind.TUPLE:
                    continue  # List/Option/Record/Variant/Result: checked during decode
                if plen < 4:
                    raise BufferTooSmall(4, plen)
                n = _u32(data, start)[0]
                if n > max_seq:
                    raise InvalidEncoding(f"Sequence too large at node {i}")
                avail = (plen - 4) // 4
                children = struct.unpack_from(f"<{min(n, avail)}I", data, start + 4)
                for child in children:
                    if child >= node_count:
                        raise InvalidEncoding(f"Child index out of range at node {i}")
                if n > avail:
                    raise BufferTooSmall(4 + 4 * avail + 4, plen)
                used = 4 + 4 * n
            elif kind == Kind.STRING:
                if plen < 4:
                    raise BufferTooSmall(4, plen)
                slen = _u32(data, start)[0]
                if 4 + slen > plen:
                    raise BufferTooSmall(4 + slen, plen)
                try:
                    text = data[start + 4 : start + 4 + slen].decode("utf-8")
                except UnicodeDecodeError:
                    raise InvalidEncoding(f"Invalid UTF-8 string at node {i}") from None
                leaves[i] = _str_value(String, text)
                used = 4 + slen
            elif kind == Kind.ARRAY:
                elem, pos = _read_type(data, start, start, ends[i])
                width = FIXED_WIDTH.get(elem.tag)
                if width is None:
                    raise InvalidEncoding(f"Non-primitive element type in Array at node {i}")
                rel = pos - start
                if rel + 4 > plen:
                    raise BufferTooSmall(rel + 4, plen)
                n = _u32(data, pos)[0]
                if n > max_seq:
                    raise InvalidEncoding(f"Sequence too large at node {i}")
                used = rel + 4 + n * width
                if used > plen:
                    raise BufferTooSmall(used, plen)
            elif kind == Kind.BOOL:
                if plen < 1:
                    raise BufferTooSmall(1, plen)
                b = data[start]
                if b > 1:
                    raise InvalidEncoding(f"Invalid bool payload at node {i}")
                leaves[i] = _TRUE if b == 1 else _FALSE
                used = 1
            elif kind == Kind.U8:
                if plen < 1:
                    raise BufferTooSmall(1, plen)
                leaves[i] = _U8_CACHE[data[start]]
                used = 1
            elif kind == Kind.CHAR:
                if plen < 4:
                    raise BufferTooSmall(4, plen)
                code = _u32(data, start)[0]
                if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                    raise InvalidEncoding(f"Invalid char scalar at node {i}")
                leaves[i] = _str_value(Char, chr(code))
                used = 4
            elif kind == Kind.F32 or kind == Kind.F64:
                width = 4 if kind == Kind.F32 else 8
                if plen < width:
                    raise BufferTooSmall(width, plen)
                bits = int.from_bytes(data[start : start + width], "little")
                leaves[i] = _float_value(F32 if kind == Kind.F32 else F64, bits)
                used = width
            else:  # S8, U16, S16, U32, S32, U64, S64, Flags
                cls: type[Value]
                if kind == Kind.S8:
                    width, fmt, cls = 1, "<b", S8
                else:
                    width, fmt, cls = _SCALAR_FMT[kind]
                if plen < width:
                    raise BufferTooSmall(width, plen)
                leaves[i] = _int_value(cls, struct.unpack_from(fmt, data, start)[0])
                used = width
            if used != plen:
                raise InvalidEncoding(f"Trailing payload bytes at node {i}")
        self.leaves = leaves

    # ------------------------------------------------------------- phase C

    def _decode(self) -> Value:
        data, kinds, starts, ends = self.data, self.kinds, self.starts, self.ends
        leaves = self.leaves
        node_count = len(kinds)
        budget = self.limits.decoded_node_budget
        memo: dict[int, Value] = {}
        sizes: dict[int, int] = {}
        visiting: set[int] = set()
        total = 0

        # A frame is [node, kind, cursor, end, children left, values, header, total at entry].
        frames: list[list] = []  # type: ignore[type-arg]
        result: Value | None = None
        child = self.root
        while True:
            # ---- resolve `child` (an index just read) to a value, or enter it
            value = memo.get(child)
            if value is not None:
                total += sizes[child]
            else:
                if child in visiting:
                    raise InvalidEncoding("Cycle detected in graph buffer")
                if child >= node_count:
                    raise InvalidEncoding(f"Node index {child} out of range")
                kind = kinds[child]
                value = leaves.get(child)
                if value is None and kind == Kind.ARRAY:
                    value = _decode_array(data, starts[child], ends[child])
                if value is not None:
                    memo[child] = value
                    sizes[child] = 1
                    total += 1
                else:
                    frames.append(_enter(data, child, kind, starts[child], ends[child], total))
                    visiting.add(child)
                    total += 1
            if total > budget:
                raise InvalidEncoding(
                    f"Decoded value exceeds {budget} nodes (shared subtrees expand beyond "
                    "the limit)"
                )
            if value is not None:
                if not frames:
                    result = value
                    break
                frames[-1][5].append(value)

            # ---- advance the innermost frame: read its next child or finish it
            while frames:
                frame = frames[-1]
                if frame[4] > 0:
                    cursor, end = frame[2], frame[3]
                    if cursor + 4 > end:
                        start = starts[frame[0]]
                        raise BufferTooSmall(cursor + 4 - start, end - start)
                    child = _u32(data, cursor)[0]
                    frame[2] = cursor + 4
                    frame[4] -= 1
                    break
                node = frame[0]
                if frame[2] != frame[3]:
                    raise InvalidEncoding(f"Trailing payload bytes at node {node}")
                frames.pop()
                value = _build(frame)
                visiting.discard(node)
                memo[node] = value
                sizes[node] = total - frame[7]
                if not frames:
                    result = value
                    break
                frames[-1][5].append(value)
            else:
                break
            if result is not None:
                break
        assert result is not None
        return result


def _enter(data: bytes, node: int, kind: int, start: int, end: int, total: int) -> list:  # type: ignore[type-arg]
    """Parse a compound node's header (everything before its child indices)."""
    pos = start
    header: object = None
    if kind == Kind.TUPLE:
        count = _u32(data, pos)[0]  # validated in phase B
        pos += 4
    elif kind == Kind.LIST:
        elem, pos = _read_type(data, pos, start, end)
        if elem.tag in FIXED_WIDTH:
            raise InvalidEncoding("List node with primitive elem_type; expected Array node")
        count, pos = _read_u32(data, pos, start, end)
        header = elem
    elif kind == Kind.RECORD:
        type_name, pos = _read_name(data, pos, start, end, "type name")
        count, pos = _read_u32(data, pos, start, end)
        names: list[str] = []
        for _ in range(count):
            name, pos = _read_name(data, pos, start, end, "field name")
            names.append(name)
        header = (type_name, names)
    elif kind == Kind.VARIANT:
        type_name, pos = _read_name(data, pos, start, end, "type name")
        case_name, pos = _read_name(data, pos, start, end, "case name")
        tag, pos = _read_u32(data, pos, start, end)
        count, pos = _read_u32(data, pos, start, end)
        header = (type_name, case_name, tag)
    elif kind == Kind.OPTION:
        inner, pos = _read_type(data, pos, start, end)
        if pos + 1 > end:
            raise BufferTooSmall(pos + 1 - start, end - start)
        count = 1 if data[pos] == 1 else 0  # any presence byte but 1 means None
        pos += 1
        header = inner
    else:  # RESULT
        ok, pos = _read_type(data, pos, start, end)
        err, pos = _read_type(data, pos, start, end)
        tag, pos = _read_u32(data, pos, start, end)
        if pos + 1 > end:
            raise BufferTooSmall(pos + 1 - start, end - start)
        if data[pos] != 1:
            raise InvalidEncoding("Result must have payload")
        pos += 1
        count = 1
        header = (ok, err, tag != 0)
    return [node, kind, pos, end, count, [], header, total]


def _build(frame: list) -> Value:  # type: ignore[type-arg]
    kind, values, header = frame[1], frame[5], frame[6]
    obj: Any
    if kind == Kind.TUPLE:
        obj = _new(Tuple)
        obj.items = tuple(values)
    elif kind == Kind.LIST:
        obj = _new(List)
        obj.elem_type = header
        obj.items = tuple(values)
    elif kind == Kind.RECORD:
        obj = _new(Record)
        obj.type_name = header[0]
        obj.fields = tuple(zip(header[1], values, strict=True))
    elif kind == Kind.VARIANT:
        obj = _new(Variant)
        obj.type_name, obj.case_name, obj.tag = header
        obj.payload = tuple(values)
    elif kind == Kind.OPTION:
        obj = _new(Option)
        obj.inner_type = header
        obj.value = values[0] if values else None
    else:
        obj = _new(Result)
        obj.ok_type, obj.err_type, obj.is_err = header
        obj.value = values[0]
    return obj  # type: ignore[no-any-return]


def _decode_array(data: bytes, start: int, end: int) -> Value:
    """An Array node (already validated in phase B) as a List value."""
    elem, pos = _read_type(data, start, start, end)
    tag = elem.tag
    count = _u32(data, pos)[0]
    pos += 4
    if tag == Kind.U8:
        items: tuple[Value, ...] = tuple(map(_U8_CACHE.__getitem__, data[pos : pos + count]))
    elif tag == Kind.BOOL:
        items = tuple(_TRUE if b else _FALSE for b in data[pos : pos + count])
    else:
        raw = struct.unpack_from(f"<{count}{_ARRAY_FMT[tag]}", data, pos)
        cls: type[Value]
        if tag == Kind.F32 or tag == Kind.F64:
            cls = F32 if tag == Kind.F32 else F64
            items = tuple([_float_value(cls, bits) for bits in raw])
        elif tag == Kind.CHAR:
            for code in raw:
                if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                    raise InvalidEncoding("Invalid char in array")
            items = tuple([_str_value(Char, chr(code)) for code in raw])
        else:
            cls = _INT_CLASS[tag]
            items = tuple([_int_value(cls, v) for v in raw])
    obj = _new(List)
    obj.elem_type = elem
    obj.items = items
    return obj


# --------------------------------------------------------------- payload reads


def _read_u32(data: bytes, pos: int, start: int, end: int) -> tuple[int, int]:
    if pos + 4 > end:
        raise BufferTooSmall(pos + 4 - start, end - start)
    return _u32(data, pos)[0], pos + 4


def _read_name(data: bytes, pos: int, start: int, end: int, what: str) -> tuple[str, int]:
    n, pos = _read_u32(data, pos, start, end)
    if pos + n > end:
        raise BufferTooSmall(pos + n - start, end - start)
    try:
        return data[pos : pos + n].decode("utf-8"), pos + n
    except UnicodeDecodeError:
        raise InvalidEncoding(f"Invalid UTF-8 in {what}") from None


def _read_type(data: bytes, pos: int, start: int, end: int) -> tuple[ValueType, int]:
    """Decode one TYPE(...) starting at ``pos``; iterative, so nesting depth is free."""
    if pos < end:
        prim = PRIMITIVE_TYPES.get(data[pos])
        if prim is not None:
            return prim, pos + 1
    # Pending compound types: [tag, children needed, children so far].
    pending: list[list] = []  # type: ignore[type-arg]
    while True:
        if pos + 1 > end:
            raise BufferTooSmall(pos + 1 - start, end - start)
        tag = data[pos]
        pos += 1
        done: ValueType | None = PRIMITIVE_TYPES.get(tag)
        if done is None:
            if tag == Kind.LIST or tag == Kind.OPTION:
                pending.append([tag, 1, []])
                continue
            if tag == Kind.RESULT:
                pending.append([tag, 2, []])
                continue
            if tag == Kind.RECORD or tag == Kind.VARIANT:
                name, pos = _read_name(data, pos, start, end, "type name")
                done = ValueType(tag, name)
            elif tag == Kind.TUPLE:
                n, pos = _read_u32(data, pos, start, end)
                if n:
                    pending.append([tag, n, []])
                    continue
                done = ValueType.UNIT
            else:
                raise InvalidTag(tag)
        # Fold the finished type into its parents for as long as they complete.
        while pending:
            top = pending[-1]
            top[2].append(done)
            if len(top[2]) < top[1]:
                break
            pending.pop()
            done = ValueType(top[0], None, tuple(top[2]))
        else:
            return done, pos


# ------------------------------------------------------------ implementation

# ``decode`` has the Python function's signature; when the C accelerator is usable it
# is bound to the C function, which defers to ``py_decode`` for everything it does not
# handle itself.
decode = py_decode
decode_prefix = py_decode_prefix
if _accel.speedups is not None:
    # The shared objects the C decoder must hand out exactly where this module does.
    _accel.speedups.configure({"true": _TRUE, "false": _FALSE, "unit_value": _UNIT})
    _chosen = _accel.select(__name__, decode=py_decode, decode_prefix=py_decode_prefix)
    decode, decode_prefix = _chosen["decode"], _chosen["decode_prefix"]
    del _chosen
