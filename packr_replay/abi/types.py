"""``ValueType``: the type descriptors that CGRF values carry inside themselves.

Types nest (``list<list<...>>`` 100,000 deep is a legal type tag), so equality, hashing
and display are iterative; the hash is computed once, bottom-up, at construction.
"""

from __future__ import annotations

import builtins
from enum import IntEnum
from typing import ClassVar

__all__ = ["FIXED_WIDTH", "Kind", "ValueType"]


class Kind(IntEnum):
    """Node-kind bytes of CGRF v2; type tags reuse them (``ARRAY`` is node-only)."""

    BOOL = 0x01
    S32 = 0x02
    S64 = 0x03
    F32 = 0x04
    F64 = 0x05
    STRING = 0x06
    LIST = 0x07
    VARIANT = 0x08
    RECORD = 0x09
    OPTION = 0x0A
    TUPLE = 0x0B
    U8 = 0x0C
    U16 = 0x0D
    U32 = 0x0E
    U64 = 0x0F
    S8 = 0x10
    S16 = 0x11
    CHAR = 0x12
    FLAGS = 0x13
    RESULT = 0x14
    ARRAY = 0x15


#: Byte width of each fixed-width element kind: these lists are encoded as Array nodes.
FIXED_WIDTH: dict[int, int] = {
    Kind.BOOL: 1,
    Kind.U8: 1,
    Kind.S8: 1,
    Kind.U16: 2,
    Kind.S16: 2,
    Kind.U32: 4,
    Kind.S32: 4,
    Kind.F32: 4,
    Kind.CHAR: 4,
    Kind.U64: 8,
    Kind.S64: 8,
    Kind.F64: 8,
    Kind.FLAGS: 8,
}

_PRIMITIVE_NAMES: dict[int, str] = {
    Kind.BOOL: "bool",
    Kind.U8: "u8",
    Kind.U16: "u16",
    Kind.U32: "u32",
    Kind.U64: "u64",
    Kind.S8: "s8",
    Kind.S16: "s16",
    Kind.S32: "s32",
    Kind.S64: "s64",
    Kind.F32: "f32",
    Kind.F64: "f64",
    Kind.CHAR: "char",
    Kind.STRING: "string",
    Kind.FLAGS: "flags",
}

_COMPOUND = frozenset(
    {Kind.LIST, Kind.OPTION, Kind.RESULT, Kind.RECORD, Kind.VARIANT, Kind.TUPLE}
)


class ValueType:
    """A packr ``ValueType``: a primitive, ``list<T>``, ``option<T>``, ``result<O, E>``,
    a named record or variant (name only, no fields), or ``tuple<...>``.

    Build with the class attributes (``ValueType.S64``) and constructors
    (``ValueType.list(ValueType.U8)``, ``ValueType.record("point")``), or
    ``ValueType.parse("list<u8>")``. Instances are immutable and hashable.
    """

    __slots__ = ("_hash", "args", "name", "tag")

    tag: int
    name: str | None
    args: builtins.tuple[ValueType, ...]
    _hash: int

    BOOL: ClassVar[ValueType]
    U8: ClassVar[ValueType]
    U16: ClassVar[ValueType]
    U32: ClassVar[ValueType]
    U64: ClassVar[ValueType]
    S8: ClassVar[ValueType]
    S16: ClassVar[ValueType]
    S32: ClassVar[ValueType]
    S64: ClassVar[ValueType]
    F32: ClassVar[ValueType]
    F64: ClassVar[ValueType]
    CHAR: ClassVar[ValueType]
    STRING: ClassVar[ValueType]
    FLAGS: ClassVar[ValueType]
    UNIT: ClassVar[ValueType]

    def __init__(
        self, tag: int, name: str | None = None, args: builtins.tuple[ValueType, ...] = ()
    ) -> None:
        if tag not in _PRIMITIVE_NAMES and tag not in _COMPOUND:
            raise ValueError(f"not a type tag: {tag:#x}")
        self.tag = tag
        self.name = name
        self.args = args
        self._hash = hash((tag, name, *[a._hash for a in args]))

    # ------------------------------------------------------------ constructors

    @staticmethod
    def list(elem: ValueType) -> ValueType:
        return ValueType(Kind.LIST, None, (_check(elem),))

    @staticmethod
    def option(inner: ValueType) -> ValueType:
        return ValueType(Kind.OPTION, None, (_check(inner),))

    @staticmethod
    def result(ok: ValueType, err: ValueType) -> ValueType:
        return ValueType(Kind.RESULT, None, (_check(ok), _check(err)))

    @staticmethod
    def record(name: str) -> ValueType:
        return ValueType(Kind.RECORD, _check_name(name))

    @staticmethod
    def variant(name: str) -> ValueType:
        return ValueType(Kind.VARIANT, _check_name(name))

    @staticmethod
    def tuple(*items: ValueType) -> ValueType:
        return ValueType(Kind.TUPLE, None, builtins.tuple(_check(t) for t in items))

    @staticmethod
    def parse(text: str) -> ValueType:
        """Parse packr's type syntax (``list<u8>``, ``result<u32, string>``, ``point``)."""
        from .text import parse_type

        return parse_type(text)

    # -------------------------------------------------------------- accessors

    @property
    def elem(self) -> ValueType:
        """Element type of ``list<T>``."""
        self._expect(Kind.LIST)
        return self.args[0]

    @property
    def inner(self) -> ValueType:
        """Inner type of ``option<T>``."""
        self._expect(Kind.OPTION)
        return self.args[0]

    @property
    def ok(self) -> ValueType:
        self._expect(Kind.RESULT)
        return self.args[0]

    @property
    def err(self) -> ValueType:
        self._expect(Kind.RESULT)
        return self.args[1]

    @property
    def kind(self) -> Kind:
        return Kind(self.tag)

    @property
    def is_primitive(self) -> bool:
        return self.tag in _PRIMITIVE_NAMES

    @property
    def fixed_width(self) -> int | None:
        """Byte width when lists of this type are encoded as Array nodes, else None."""
        return FIXED_WIDTH.get(self.tag)

    def _expect(self, tag: int) -> None:
        if self.tag != tag:
            raise AttributeError(f"{self} is not a {Kind(tag).name.lower()} type")

    # ---------------------------------------------------------------- protocol

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, ValueType):
            return NotImplemented
        if self._hash != other._hash:
            return False
        stack: builtins.list[builtins.tuple[ValueType, ValueType]] = [(self, other)]
        pop, push = stack.pop, stack.append
        while stack:
            a, b = pop()
            if a is b:
                continue
            if a.tag != b.tag or a.name != b.name or len(a.args) != len(b.args):
                return False
            for pair in zip(a.args, b.args, strict=True):
                push(pair)
        return True

    def __ne__(self, other: object) -> bool:
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def __str__(self) -> str:
        return format_type(self)

    def __repr__(self) -> str:
        text = format_type(self)
        if len(text) > 200:
            text = text[:197] + "..."
        return f"ValueType({text})"

    def __reduce__(self) -> builtins.tuple[object, ...]:
        return (ValueType, (self.tag, self.name, self.args))


def _check(t: object) -> ValueType:
    if not isinstance(t, ValueType):
        raise TypeError(f"expected a ValueType, got {type(t).__name__}")
    return t


def _check_name(name: object) -> str:
    if not isinstance(name, str):
        raise TypeError(f"type names are str, got {type(name).__name__}")
    return name


def format_type(t: ValueType) -> str:
    """packr's Display of a type, iteratively (types can nest arbitrarily deep)."""
    out: list[str] = []
    # Work items: a ValueType to render, or a literal string to emit.
    stack: list[ValueType | str] = [t]
    pop, push = stack.pop, stack.append
    while stack:
        item = pop()
        if type(item) is str:
            out.append(item)
            continue
        assert isinstance(item, ValueType)
        tag = item.tag
        prim = _PRIMITIVE_NAMES.get(tag)
        if prim is not None:
            out.append(prim)
        elif tag == Kind.RECORD or tag == Kind.VARIANT:
            out.append(item.name or "")
        elif tag == Kind.LIST or tag == Kind.OPTION:
            out.append("list<" if tag == Kind.LIST else "option<")
            push(">")
            push(item.args[0])
        elif tag == Kind.RESULT:
            out.append("result<")
            push(">")
            push(item.args[1])
            push(", ")
            push(item.args[0])
        else:  # tuple
            out.append("tuple<")
            push(">")
            for i in range(len(item.args) - 1, -1, -1):
                push(item.args[i])
                if i:
                    push(", ")
    return "".join(out)


for _tag, _name in _PRIMITIVE_NAMES.items():
    setattr(ValueType, _name.upper(), ValueType(_tag))
ValueType.UNIT = ValueType(Kind.TUPLE)
del _tag, _name

#: Primitive types by tag, shared by the codec to avoid rebuilding them.
PRIMITIVE_TYPES: dict[int, ValueType] = {
    tag: getattr(ValueType, name.upper()) for tag, name in _PRIMITIVE_NAMES.items()
}
PRIMITIVE_NAMES = _PRIMITIVE_NAMES
