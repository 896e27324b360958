"""The packr value model: one small immutable class per ``Value`` variant.

Every value carries an explicit kind (``True == 1`` in Python, but ``Bool(True)`` is not
``U8(1)``), integers are range-checked for their width, floats keep their exact IEEE
bits (NaN payloads, -0.0), and compound values keep their *declared* types: a list's
``elem_type`` is stored, never derived.

Equality follows Rust's derived ``PartialEq`` exactly: NaN is unequal to itself, field
order, declared types, variant tag and case name all matter. It is iterative, as are
all walks over values, so a value nested a million levels deep is an ordinary value.
Values are unhashable, like packr's.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar

from .types import PRIMITIVE_TYPES, Kind, ValueType

__all__ = [
    "F32",
    "F64",
    "S8",
    "S16",
    "S32",
    "S64",
    "U8",
    "U16",
    "U32",
    "U64",
    "UNIT",
    "Bool",
    "Char",
    "Flags",
    "List",
    "Option",
    "Record",
    "Result",
    "String",
    "Tuple",
    "Value",
    "Variant",
]

_pack_f, _unpack_f = struct.Struct("<f").pack, struct.Struct("<f").unpack
_pack_I = struct.Struct("<I").pack
_pack_d, _unpack_d = struct.Struct("<d").pack, struct.Struct("<d").unpack
_pack_Q = struct.Struct("<Q").pack
_unpack_I = struct.Struct("<I").unpack
_unpack_Q = struct.Struct("<Q").unpack


class Value:
    """Base of every packr value. Subclasses are the variants of packr's ``Value``."""

    __slots__ = ()

    KIND: ClassVar[Kind]

    @property
    def kind(self) -> Kind:
        return self.KIND

    def infer_type(self) -> ValueType:
        """packr's ``infer_type``: declared types for containers, structural for tuples."""
        return infer_type(self)

    def to_python(self) -> Any:
        """A plain Python rendering (ints, floats, str, lists, dicts, tuples)."""
        from .convert import to_python

        return to_python(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Value):
            return NotImplemented
        return values_equal(self, other)

    def __ne__(self, other: object) -> bool:
        if not isinstance(other, Value):
            return NotImplemented
        return not values_equal(self, other)

    __hash__ = None  # type: ignore[assignment]

    def __str__(self) -> str:
        from .text import format_value

        return format_value(self)

    def __repr__(self) -> str:
        from .text import format_value

        text = format_value(self, limit=200)
        return f"<{type(self).__name__} {text}>"

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickle/copy go through CGRF so deep values never recurse.
        from .decoder import decode
        from .encoder import encode

        return (decode, (encode(self),))


# ---------------------------------------------------------------- primitives


class Bool(Value):
    __slots__ = ("value",)
    KIND = Kind.BOOL
    value: bool

    def __init__(self, value: bool) -> None:
        if type(value) is not bool:
            raise TypeError(f"Bool takes a bool, got {type(value).__name__}")
        self.value = value

    def __bool__(self) -> bool:
        return self.value


class _Int(Value):
    __slots__ = ("value",)
    MIN: ClassVar[int]
    MAX: ClassVar[int]
    value: int

    def __init__(self, value: int) -> None:
        if type(value) is not int:
            if isinstance(value, int) and not isinstance(value, bool):
                value = int(value)
            else:
                raise TypeError(f"{type(self).__name__} takes an int, got {type(value).__name__}")
        if not self.MIN <= value <= self.MAX:
            raise OverflowError(
                f"{value} is out of range for {type(self).__name__.lower()} "
                f"[{self.MIN}, {self.MAX}]"
            )
        self.value = value

    def __int__(self) -> int:
        return self.value

    def __index__(self) -> int:
        return self.value


class U8(_Int):
    __slots__ = ()
    KIND = Kind.U8
    MIN, MAX = 0, 0xFF


class U16(_Int):
    __slots__ = ()
    KIND = Kind.U16
    MIN, MAX = 0, 0xFFFF


class U32(_Int):
    __slots__ = ()
    KIND = Kind.U32
    MIN, MAX = 0, 0xFFFF_FFFF


class U64(_Int):
    __slots__ = ()
    KIND = Kind.U64
    MIN, MAX = 0, 0xFFFF_FFFF_FFFF_FFFF


class S8(_Int):
    __slots__ = ()
    KIND = Kind.S8
    MIN, MAX = -0x80, 0x7F


class S16(_Int):
    __slots__ = ()
    KIND = Kind.S16
    MIN, MAX = -0x8000, 0x7FFF


class S32(_Int):
    __slots__ = ()
    KIND = Kind.S32
    MIN, MAX = -0x8000_0000, 0x7FFF_FFFF


class S64(_Int):
    __slots__ = ()
    KIND = Kind.S64
    MIN, MAX = -0x8000_0000_0000_0000, 0x7FFF_FFFF_FFFF_FFFF


class Flags(_Int):
    """A u64 bit mask; flag names are not carried on the wire."""

    __slots__ = ()
    KIND = Kind.FLAGS
    MIN, MAX = 0, 0xFFFF_FFFF_FFFF_FFFF


class F32(Value):
    """An IEEE single stored as its 32 raw bits, so NaN payloads survive.

    ``F32(1.5)`` rounds a Python float to nearest single (overflow gives ±inf, as Rust's
    ``as f32``); ``F32.from_bits(0x7F800001)`` keeps a signalling NaN intact.
    """

    __slots__ = ("bits",)
    KIND = Kind.F32
    bits: int

    def __init__(self, value: float) -> None:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise TypeError(f"F32 takes a float, got {type(value).__name__}")
        try:
            packed = _pack_f(value)
        except OverflowError:
            packed = _pack_f(math.copysign(math.inf, value))
        self.bits = _unpack_I(packed)[0]

    @classmethod
    def from_bits(cls, bits: int) -> F32:
        if not 0 <= bits <= 0xFFFF_FFFF:
            raise OverflowError(f"f32 bit pattern out of range: {bits:#x}")
        obj = cls.__new__(cls)
        obj.bits = bits
        return obj

    @property
    def value(self) -> float:
        return float(_unpack_f(_pack_I(self.bits))[0])

    def __float__(self) -> float:
        return self.value


class F64(Value):
    """An IEEE double stored as its 64 raw bits."""

    __slots__ = ("bits",)
    KIND = Kind.F64
    bits: int

    def __init__(self, value: float) -> None:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise TypeError(f"F64 takes a float, got {type(value).__name__}")
        self.bits = _unpack_Q(_pack_d(float(value)))[0]

    @classmethod
    def from_bits(cls, bits: int) -> F64:
        if not 0 <= bits <= 0xFFFF_FFFF_FFFF_FFFF:
            raise OverflowError(f"f64 bit pattern out of range: {bits:#x}")
        obj = cls.__new__(cls)
        obj.bits = bits
        return obj

    @property
    def value(self) -> float:
        return float(_unpack_d(_pack_Q(self.bits))[0])

    def __float__(self) -> float:
        return self.value


class Char(Value):
    """One Unicode scalar value (surrogates D800-DFFF are not scalars)."""

    __slots__ = ("value",)
    KIND = Kind.CHAR
    value: str

    def __init__(self, value: str | int) -> None:
        if type(value) is int:
            if not 0 <= value <= 0x10FFFF:
                raise ValueError(f"not a Unicode scalar value: {value:#x}")
            value = chr(value)
        elif type(value) is not str or len(value) != 1:
            raise TypeError(f"Char takes one character or a code point, got {value!r}")
        if 0xD800 <= ord(value) <= 0xDFFF:
            raise ValueError(f"surrogate {ord(value):#x} is not a Unicode scalar value")
        self.value = value

    @property
    def code(self) -> int:
        return ord(self.value)


class String(Value):
    """UTF-8 text; lone surrogates (which Rust strings cannot hold) are rejected."""

    __slots__ = ("value",)
    KIND = Kind.STRING
    value: str

    def __init__(self, value: str) -> None:
        if type(value) is not str:
            if isinstance(value, str):
                value = str(value)
            else:
                raise TypeError(f"String takes a str, got {type(value).__name__}")
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ValueError(
                    f"lone surrogate at index {exc.start} cannot be encoded as UTF-8"
                ) from None
        self.value = value

    def __len__(self) -> int:
        return len(self.value)


# ------------------------------------------------------------------ compounds


def _values(items: Iterable[Value], what: str) -> tuple[Value, ...]:
    out = tuple(items)
    for v in out:
        if not isinstance(v, Value):
            raise TypeError(f"{what} items must be Values, got {type(v).__name__}")
    return out


class List(Value):
    """A list with a *declared* element type (stored, never derived).

    Items need not match ``elem_type`` unless it is fixed-width (then ``encode``
    insists, as packr does). ``List.from_bytes(b"...")`` builds a ``list<u8>``.
    """

    __slots__ = ("elem_type", "items")
    KIND = Kind.LIST
    elem_type: ValueType
    items: tuple[Value, ...]

    def __init__(self, elem_type: ValueType, items: Iterable[Value] = ()) -> None:
        if not isinstance(elem_type, ValueType):
            raise TypeError(f"List needs a ValueType first, got {type(elem_type).__name__}")
        self.elem_type = elem_type
        self.items = _values(items, "List")

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> List:
        obj = cls.__new__(cls)
        obj.elem_type = ValueType.U8
        obj.items = tuple(map(_U8_CACHE.__getitem__, bytes(data)))
        return obj

    @classmethod
    def of(cls, elem_type: ValueType, items: Iterable[Any]) -> List:
        """Build from plain Python items converted to ``elem_type``."""
        from .convert import from_python

        return cls(elem_type, [from_python(x, elem_type) for x in items])

    def to_bytes(self) -> bytes:
        """The items of a ``list<u8>`` as bytes."""
        if self.elem_type.tag != Kind.U8 or any(type(i) is not U8 for i in self.items):
            raise TypeError(f"not a list<u8>: list<{self.elem_type}>")
        return bytes(i.value for i in self.items)  # type: ignore[attr-defined]

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Value]:
        return iter(self.items)

    def __getitem__(self, index: int) -> Value:
        return self.items[index]


class Option(Value):
    """``some<T>(v)`` or ``none<T>``; the inner type is always carried."""

    __slots__ = ("inner_type", "value")
    KIND = Kind.OPTION
    inner_type: ValueType
    value: Value | None

    def __init__(self, inner_type: ValueType, value: Value | None = None) -> None:
        if not isinstance(inner_type, ValueType):
            raise TypeError(f"Option needs a ValueType first, got {type(inner_type).__name__}")
        if value is not None and not isinstance(value, Value):
            raise TypeError(f"Option holds a Value or None, got {type(value).__name__}")
        self.inner_type = inner_type
        self.value = value

    @classmethod
    def some(cls, value: Value, inner_type: ValueType | None = None) -> Option:
        return cls(inner_type if inner_type is not None else value.infer_type(), value)

    @classmethod
    def none(cls, inner_type: ValueType) -> Option:
        return cls(inner_type, None)

    @property
    def is_some(self) -> bool:
        return self.value is not None


class Result(Value):
    """``ok<O, E>(v)`` or ``err<O, E>(v)``; both declared types are always carried."""

    __slots__ = ("err_type", "is_err", "ok_type", "value")
    KIND = Kind.RESULT
    ok_type: ValueType
    err_type: ValueType
    value: Value
    is_err: bool

    def __init__(
        self, ok_type: ValueType, err_type: ValueType, value: Value, *, is_err: bool = False
    ) -> None:
        if not isinstance(ok_type, ValueType) or not isinstance(err_type, ValueType):
            raise TypeError("Result needs ok and err ValueTypes")
        if not isinstance(value, Value):
            raise TypeError(f"Result holds a Value, got {type(value).__name__}")
        self.ok_type = ok_type
        self.err_type = err_type
        self.value = value
        self.is_err = bool(is_err)

    @classmethod
    def ok(cls, value: Value, ok_type: ValueType | None = None, err_type: ValueType = ValueType.STRING) -> Result:
        return cls(ok_type if ok_type is not None else value.infer_type(), err_type, value)

    @classmethod
    def err(cls, value: Value, ok_type: ValueType = ValueType.UNIT, err_type: ValueType | None = None) -> Result:
        return cls(ok_type, err_type if err_type is not None else value.infer_type(), value, is_err=True)

    @property
    def is_ok(self) -> bool:
        return not self.is_err


class Record(Value):
    """A named record with *ordered* ``(field name, value)`` pairs.

    Duplicate names are legal (packr does not reject them); ``record["x"]`` returns the
    first field called ``x``.
    """

    __slots__ = ("fields", "type_name")
    KIND = Kind.RECORD
    type_name: str
    fields: tuple[tuple[str, Value], ...]

    def __init__(
        self,
        type_name: str,
        fields: Mapping[str, Value] | Iterable[tuple[str, Value]] = (),
    ) -> None:
        if type(type_name) is not str:
            raise TypeError(f"record type names are str, got {type(type_name).__name__}")
        pairs = tuple(fields.items()) if isinstance(fields, Mapping) else tuple(fields)
        for pair in pairs:
            if (
                type(pair) is not tuple
                or len(pair) != 2
                or type(pair[0]) is not str
                or not isinstance(pair[1], Value)
            ):
                raise TypeError(f"record fields are (str, Value) pairs, got {pair!r}")
        self.type_name = type_name
        self.fields = pairs

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.fields)

    def __getitem__(self, name: str) -> Value:
        for field, value in self.fields:
            if field == name:
                return value
        raise KeyError(name)

    def get(self, name: str, default: Value | None = None) -> Value | None:
        for field, value in self.fields:
            if field == name:
                return value
        return default

    def __len__(self) -> int:
        return len(self.fields)


class Variant(Value):
    """A variant value: type name, case name, a u32 ``tag`` and zero or more payload
    values. Tag and case name are independent; equality checks both."""

    __slots__ = ("case_name", "payload", "tag", "type_name")
    KIND = Kind.VARIANT
    type_name: str
    case_name: str
    tag: int
    payload: tuple[Value, ...]

    def __init__(
        self, type_name: str, case_name: str, tag: int = 0, payload: Iterable[Value] = ()
    ) -> None:
        if type(type_name) is not str or type(case_name) is not str:
            raise TypeError("variant type and case names are str")
        if type(tag) is not int or not 0 <= tag <= 0xFFFF_FFFF:
            raise OverflowError(f"variant tag must be a u32, got {tag!r}")
        self.type_name = type_name
        self.case_name = case_name
        self.tag = tag
        self.payload = _values(payload, "Variant payload")


class Tuple(Value):
    """Positional values; ``Tuple()`` is the unit value ``()``."""

    __slots__ = ("items",)
    KIND = Kind.TUPLE
    items: tuple[Value, ...]

    def __init__(self, *items: Value) -> None:
        self.items = _values(items, "Tuple")

    @classmethod
    def from_items(cls, items: Sequence[Value]) -> Tuple:
        obj = cls.__new__(cls)
        obj.items = _values(items, "Tuple")
        return obj

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Value]:
        return iter(self.items)

    def __getitem__(self, index: int) -> Value:
        return self.items[index]


UNIT = Tuple()

_U8_CACHE: tuple[U8, ...] = tuple(U8(i) for i in range(256))

# ----------------------------------------------------------- type inference

_CLASS_BY_KIND: dict[int, type[Value]] = {
    cls.KIND: cls
    for cls in (Bool, U8, U16, U32, U64, S8, S16, S32, S64, F32, F64, Char, String, Flags,
                List, Option, Result, Record, Variant, Tuple)
}


def infer_type(value: Value) -> ValueType:
    """packr's ``infer_type``, iterative for nested tuples."""
    cls = type(value)
    prim = PRIMITIVE_TYPES.get(cls.KIND)
    if prim is not None:
        return prim
    if cls is List:
        return ValueType.list(value.elem_type)  # type: ignore[attr-defined]
    if cls is Option:
        return ValueType.option(value.inner_type)  # type: ignore[attr-defined]
    if cls is Result:
        return ValueType.result(value.ok_type, value.err_type)  # type: ignore[attr-defined]
    if cls is Record:
        return ValueType.record(value.type_name)  # type: ignore[attr-defined]
    if cls is Variant:
        return ValueType.variant(value.type_name)  # type: ignore[attr-defined]
    # Tuple: post-order over nested tuples so depth costs no recursion.
    results: list[ValueType] = []
    stack: list[tuple[Value, bool]] = [(value, False)]
    while stack:
        v, expanded = stack.pop()
        if type(v) is not Tuple:
            results.append(infer_type(v))
        elif expanded:
            n = len(v.items)
            args = tuple(results[len(results) - n :]) if n else ()
            del results[len(results) - n :]
            results.append(ValueType(Kind.TUPLE, None, args))
        else:
            stack.append((v, True))
            stack.extend((item, False) for item in reversed(v.items))
    return results[0]


# ---------------------------------------------------------------- equality

_SCALARS = frozenset({Bool, U8, U16, U32, U64, S8, S16, S32, S64, Char, String, Flags})


def values_equal(a: Value, b: Value) -> bool:
    """Rust ``PartialEq`` for values: structural, ordered, NaN != NaN, 0.0 == -0.0."""
    stack: list[tuple[Value, Value]] = [(a, b)]
    pop, push, extend = stack.pop, stack.append, stack.extend
    while stack:
        x, y = pop()
        cls = type(x)
        if cls is not type(y):
            return False
        if cls in _SCALARS:
            if x.value != y.value:  # type: ignore[attr-defined]
                return False
        elif cls is F32 or cls is F64:
            if x.value != y.value:  # type: ignore[attr-defined]  # IEEE: NaN != NaN
                return False
        elif cls is List:
            xi, yi = x.items, y.items  # type: ignore[attr-defined]
            if len(xi) != len(yi) or x.elem_type != y.elem_type:  # type: ignore[attr-defined]
                return False
            extend(zip(xi, yi, strict=True))
        elif cls is Tuple:
            xi, yi = x.items, y.items  # type: ignore[attr-defined]
            if len(xi) != len(yi):
                return False
            extend(zip(xi, yi, strict=True))
        elif cls is Record:
            xf, yf = x.fields, y.fields  # type: ignore[attr-defined]
            if x.type_name != y.type_name or len(xf) != len(yf):  # type: ignore[attr-defined]
                return False
            for (xn, xv), (yn, yv) in zip(xf, yf, strict=True):
                if xn != yn:
                    return False
                push((xv, yv))
        elif cls is Variant:
            if (
                x.tag != y.tag  # type: ignore[attr-defined]
                or x.case_name != y.case_name  # type: ignore[attr-defined]
                or x.type_name != y.type_name  # type: ignore[attr-defined]
                or len(x.payload) != len(y.payload)  # type: ignore[attr-defined]
            ):
                return False
            extend(zip(x.payload, y.payload, strict=True))  # type: ignore[attr-defined]
        elif cls is Option:
            if x.inner_type != y.inner_type:  # type: ignore[attr-defined]
                return False
            xv, yv = x.value, y.value  # type: ignore[attr-defined]
            if (xv is None) != (yv is None):
                return False
            if xv is not None:
                push((xv, yv))
        elif cls is Result:
            if (
                x.is_err != y.is_err  # type: ignore[attr-defined]
                or x.ok_type != y.ok_type  # type: ignore[attr-defined]
                or x.err_type != y.err_type  # type: ignore[attr-defined]
            ):
                return False
            push((x.value, y.value))  # type: ignore[attr-defined]
        else:  # pragma: no cover - every kind is handled above
            raise TypeError(f"not a packr value: {cls.__name__}")
    return True


def children(value: Value) -> tuple[Value, ...]:
    """The values ``value`` holds directly (none for a scalar): what an iterative walk
    over a value (counting, converting, redacting) pushes next."""
    cls = type(value)
    if cls is List or cls is Tuple:
        return value.items  # type: ignore[attr-defined, no-any-return]
    if cls is Record:
        return tuple(v for _, v in value.fields)  # type: ignore[attr-defined]
    if cls is Variant:
        return value.payload  # type: ignore[attr-defined, no-any-return]
    if cls is Option:
        return () if value.value is None else (value.value,)  # type: ignore[attr-defined]
    if cls is Result:
        return (value.value,)  # type: ignore[attr-defined]
    return ()


def count_nodes(value: Value, stop_at: int) -> int:
    """How many nodes ``value`` has written out (shared subtrees counted each time
    they appear), stopping once past ``stop_at``: the cost of rendering or walking it,
    found in at most ``stop_at`` steps however far a small DAG expands."""
    count = 0
    stack = [value]
    pop, extend = stack.pop, stack.extend
    while stack:
        count += 1
        if count > stop_at:
            return count
        extend(children(pop()))
    return count
