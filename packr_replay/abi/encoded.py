"""``EncodedValue``: CGRF bytes held as-is, decoded only when someone looks.

The recorder stores, and the replayer writes back, the exact bytes a guest produced;
non-canonical buffers (shared subtrees, an Option presence byte of 2, a Result tag of
2) survive record → replay byte for byte because nothing re-encodes them.
"""

from __future__ import annotations

from typing import Any

from .decoder import decode
from .encoder import encode
from .limits import Limits
from .values import Value, values_equal

__all__ = ["EncodedValue", "as_value"]


class EncodedValue:
    """A CGRF buffer plus its value, decoded on first access and cached.

    Equality is value equality (packr's ``PartialEq``, so NaN != NaN); compare
    ``.data`` for byte identity.
    """

    __slots__ = ("_value", "data")

    data: bytes
    _value: Value | None

    def __init__(self, data: bytes | bytearray | memoryview, value: Value | None = None) -> None:
        self.data = data if type(data) is bytes else bytes(data)
        self._value = value

    @classmethod
    def of(cls, value: Value) -> EncodedValue:
        """Encode a value once and keep both forms."""
        return cls(encode(value), value)

    @property
    def value(self) -> Value:
        """The decoded value (raises ``AbiError`` if the bytes are not valid CGRF)."""
        if self._value is None:
            self._value = decode(self.data)
        return self._value

    def decode(self, limits: Limits | None = None) -> Value:
        if limits is None:
            return self.value
        return decode(self.data, limits)

    @property
    def is_decoded(self) -> bool:
        return self._value is not None

    def __len__(self) -> int:
        return len(self.data)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, EncodedValue):
            return values_equal(self.value, other.value)
        if isinstance(other, Value):
            return values_equal(self.value, other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __str__(self) -> str:
        return str(self.value)

    def __repr__(self) -> str:
        state = repr(self._value) if self._value is not None else "undecoded"
        return f"<EncodedValue {len(self.data)} bytes, {state}>"

    def __getattr__(self, name: str) -> Any:
        # Let an EncodedValue stand in for its value (``input.items``, ``input.kind``).
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.value, name)


def as_value(obj: Value | EncodedValue) -> Value:
    """The Value behind a Value or an EncodedValue."""
    return obj.value if isinstance(obj, EncodedValue) else obj
