"""packr's structural interface hashing (spec §6.3): 32-byte Merkle hashes of types.

Guests embed one hash per imported and exported interface so two sides can check
compatibility in O(1); a host that wants to compare them must compute the same bytes.
Hashes are plain ``bytes`` of length 32.

The ``hash_*`` functions are packr's low-level builders and hash their arguments in the
order given: ``hash_record``, ``hash_variant`` and ``hash_interface`` do **not** sort.
Canonical ordering (fields, cases and functions sorted by name) is the caller's job;
``metadata.TypeDesc.type_hash`` and ``metadata.compute_interface_hashes`` do it the way
guests do.

Two rules for a named type whose structure is not at hand, as in packr:

* **guest rule** (``pack_types!``, :meth:`~.metadata.TypeDesc.type_hash`): guests inline
  every named type they can see, so the only names left are recursion back into a type
  being hashed, ``self`` and ``value``; all hash as :data:`HASH_SELF_REF`;
* **host rule** (packr's host-side ``hash_type``, :func:`hash_value_type`,
  :func:`~.metadata.hash_type`): recursion and ``self`` are :data:`HASH_SELF_REF` too,
  but a name that resolves to nothing hashes as :func:`hash_ref` = SHA-256 of
  ``"ref:" + path``, a stable nominal hash.

Host and guest hashes therefore agree only for fully resolved signatures.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Sequence

from .types import Kind, ValueType

__all__ = [
    "HASH_BOOL",
    "HASH_CHAR",
    "HASH_F32",
    "HASH_F64",
    "HASH_FLAGS",
    "HASH_S8",
    "HASH_S16",
    "HASH_S32",
    "HASH_S64",
    "HASH_SELF_REF",
    "HASH_STRING",
    "HASH_U8",
    "HASH_U16",
    "HASH_U32",
    "HASH_U64",
    "PRIMITIVE_HASHES",
    "from_u64s",
    "hash_function",
    "hash_interface",
    "hash_list",
    "hash_option",
    "hash_record",
    "hash_ref",
    "hash_result",
    "hash_tuple",
    "hash_value_type",
    "hash_variant",
    "to_hex",
    "to_u64s",
]

_u32 = struct.Struct("<I").pack
_u64x4 = struct.Struct("<4Q")

# Tags of the hashed byte streams; they differ from CGRF node kinds.
_TAG_LIST = b"\x10"
_TAG_OPTION = b"\x11"
_TAG_RESULT = b"\x12"
_TAG_TUPLE = b"\x13"
_TAG_RECORD = b"\x14"
_TAG_VARIANT = b"\x15"
_TAG_FUNCTION = b"\x16"
_TAG_INTERFACE = b"\x17"


def _constant(b0: int, b1: int) -> bytes:
    return bytes([b0, b1]) + bytes(30)


# Primitive hashes are constants, not digests: all zero except byte 1.
HASH_BOOL = _constant(0, 1)
HASH_U8 = _constant(0, 2)
HASH_U16 = _constant(0, 3)
HASH_U32 = _constant(0, 4)
HASH_U64 = _constant(0, 5)
HASH_S8 = _constant(0, 6)
HASH_S16 = _constant(0, 7)
HASH_S32 = _constant(0, 8)
HASH_S64 = _constant(0, 9)
HASH_F32 = _constant(0, 10)
HASH_F64 = _constant(0, 11)
HASH_CHAR = _constant(0, 12)
HASH_STRING = _constant(0, 13)
HASH_FLAGS = _constant(0, 14)
#: Stands for ``value``, ``self``, recursion into a type being hashed and generic refs.
HASH_SELF_REF = _constant(0xFF, 0xFF)

#: Primitive hashes by packr type name (``"s64"``), plus ``"self-ref"``.
PRIMITIVE_HASHES: dict[str, bytes] = {
    "bool": HASH_BOOL,
    "u8": HASH_U8,
    "u16": HASH_U16,
    "u32": HASH_U32,
    "u64": HASH_U64,
    "s8": HASH_S8,
    "s16": HASH_S16,
    "s32": HASH_S32,
    "s64": HASH_S64,
    "f32": HASH_F32,
    "f64": HASH_F64,
    "char": HASH_CHAR,
    "string": HASH_STRING,
    "flags": HASH_FLAGS,
    "self-ref": HASH_SELF_REF,
}

_BY_KIND: dict[int, bytes] = {
    Kind.BOOL: HASH_BOOL,
    Kind.U8: HASH_U8,
    Kind.U16: HASH_U16,
    Kind.U32: HASH_U32,
    Kind.U64: HASH_U64,
    Kind.S8: HASH_S8,
    Kind.S16: HASH_S16,
    Kind.S32: HASH_S32,
    Kind.S64: HASH_S64,
    Kind.F32: HASH_F32,
    Kind.F64: HASH_F64,
    Kind.CHAR: HASH_CHAR,
    Kind.STRING: HASH_STRING,
    Kind.FLAGS: HASH_FLAGS,
}


def _string(text: str) -> bytes:
    data = text.encode("utf-8")
    # packr writes `len as u32`, which wraps; nobody has a 4 GiB name, but be exact.
    return _u32(len(data) & 0xFFFF_FFFF) + data


def _count(n: int) -> bytes:
    return _u32(n & 0xFFFF_FFFF)


def _child(h: bytes) -> bytes:
    if len(h) != 32:
        raise ValueError(f"a type hash is 32 bytes, got {len(h)}")
    return bytes(h)


def _digest(*parts: bytes) -> bytes:
    return hashlib.sha256(b"".join(parts)).digest()


def hash_list(elem: bytes) -> bytes:
    """``list<T>``."""
    return _digest(_TAG_LIST, _child(elem))


def hash_option(inner: bytes) -> bytes:
    """``option<T>``."""
    return _digest(_TAG_OPTION, _child(inner))


def hash_result(ok: bytes, err: bytes) -> bytes:
    """``result<O, E>``; the order of the two arms matters."""
    return _digest(_TAG_RESULT, _child(ok), _child(err))


def hash_tuple(items: Sequence[bytes]) -> bytes:
    """``tuple<...>``; the empty tuple is packr's ``()``."""
    return _digest(_TAG_TUPLE, _count(len(items)), *map(_child, items))


def hash_record(fields: Sequence[tuple[str, bytes]]) -> bytes:
    """A record's fields **in the order given** (packr's callers sort them by name)."""
    parts = [_TAG_RECORD, _count(len(fields))]
    for name, h in fields:
        parts += (_string(name), _child(h))
    return _digest(*parts)


def hash_variant(cases: Sequence[tuple[str, bytes | None]]) -> bytes:
    """A variant's cases **in the order given**; ``None`` marks a case without payload."""
    parts = [_TAG_VARIANT, _count(len(cases))]
    for name, h in cases:
        parts.append(_string(name))
        parts += (b"\x00",) if h is None else (b"\x01", _child(h))
    return _digest(*parts)


def hash_function(params: Sequence[bytes], results: Sequence[bytes]) -> bytes:
    """A signature: parameter and result types in order; names are not part of it."""
    return _digest(
        _TAG_FUNCTION,
        _count(len(params)),
        *map(_child, params),
        _count(len(results)),
        *map(_child, results),
    )


def hash_interface(
    name: str,
    types: Sequence[tuple[str, bytes]],
    funcs: Sequence[tuple[str, bytes]],
) -> bytes:
    """An interface: its name, then type and function bindings **in the order given**.

    Guests always pass no type bindings (types are inlined) and functions sorted by name.
    """
    parts = [_TAG_INTERFACE, _string(name), _count(len(types))]
    for binding, h in types:
        parts += (_string(binding), _child(h))
    parts.append(_count(len(funcs)))
    for binding, h in funcs:
        parts += (_string(binding), _child(h))
    return _digest(*parts)


def hash_ref(path: str) -> bytes:
    """packr's host-side hash of a named type it cannot resolve: SHA-256 of
    ``"ref:" + path`` (the guest macros use :data:`HASH_SELF_REF` instead)."""
    return hashlib.sha256(b"ref:" + path.encode("utf-8")).digest()


def hash_value_type(
    vtype: ValueType, resolve: Callable[[ValueType], bytes | None] | None = None
) -> bytes:
    """The host-side hash of a ``ValueType`` (packr's ``hash_type``), iteratively.

    A ``ValueType`` names records and variants without their structure, so ``resolve``
    is asked for the hash of each named type; a name it does not resolve (it returns
    ``None``, or there is no ``resolve``) hashes as :func:`hash_ref` of its name, as
    packr's host does with a ``Type::Ref`` it cannot resolve.
    """
    out: list[bytes] = []
    stack: list[tuple[ValueType, bool]] = [(vtype, False)]
    while stack:
        t, expanded = stack.pop()
        prim = _BY_KIND.get(t.tag)
        if prim is not None:
            out.append(prim)
            continue
        if t.tag == Kind.RECORD or t.tag == Kind.VARIANT:
            found = None if resolve is None else resolve(t)
            out.append(hash_ref(t.name or "") if found is None else _child(found))
            continue
        if not expanded:
            stack.append((t, True))
            stack.extend((a, False) for a in reversed(t.args))
            continue
        n = len(t.args)
        kids = out[len(out) - n :] if n else []
        if n:
            del out[len(out) - n :]
        if t.tag == Kind.LIST:
            out.append(hash_list(kids[0]))
        elif t.tag == Kind.OPTION:
            out.append(hash_option(kids[0]))
        elif t.tag == Kind.RESULT:
            out.append(hash_result(kids[0], kids[1]))
        else:
            out.append(hash_tuple(kids))
    return out[0]


def to_u64s(h: bytes) -> tuple[int, int, int, int]:
    """The four little-endian u64 words guests embed (bytes 0-8, 8-16, 16-24, 24-32)."""
    a, b, c, d = _u64x4.unpack(_child(h))
    return a, b, c, d


def from_u64s(a: int, b: int, c: int, d: int) -> bytes:
    """Inverse of :func:`to_u64s`: ``from_u64s(*to_u64s(h)) == h``."""
    try:
        return _u64x4.pack(a, b, c, d)
    except struct.error:
        raise ValueError(f"hash words must be u64, got {(a, b, c, d)!r}") from None


def to_hex(h: bytes) -> str:
    """Lower-case hex of the 32 bytes, as packr's ``TypeHash::to_hex``."""
    return _child(h).hex()
