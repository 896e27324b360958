"""The Graph ABI (CGRF v2): packr's value model, binary codec and text format.

Free of I/O; every other layer builds on it. Byte-identical with packr 0.7's
``packr-abi`` crate on its golden vectors. The codec is pure Python with an optional C
accelerator in front of it (``ACCELERATED`` says whether it is in use; see ``_accel``).
"""

from ..errors import (
    AbiError,
    BufferTooSmall,
    InvalidEncoding,
    InvalidTag,
    ParseError,
    TypedParseError,
    TypeMismatch,
)
from ._accel import ACCELERATED
from .decoder import decode, decode_prefix
from .encoded import EncodedValue, as_value
from .encoder import encode
from .jsonvalue import value_from_json, value_to_json
from .limits import DEFAULT_LIMITS, Limits
from .pretty import pretty_value
from .text import format_value, parse_type, parse_value
from .typedtext import parse_typed
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
    UNIT,
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
    infer_type,
)

__all__ = [
    "ACCELERATED",
    "DEFAULT_LIMITS",
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
    "AbiError",
    "Bool",
    "BufferTooSmall",
    "Char",
    "EncodedValue",
    "Flags",
    "InvalidEncoding",
    "InvalidTag",
    "Kind",
    "Limits",
    "List",
    "Option",
    "ParseError",
    "Record",
    "Result",
    "String",
    "Tuple",
    "TypeMismatch",
    "TypedParseError",
    "Value",
    "ValueType",
    "Variant",
    "as_value",
    "decode",
    "decode_prefix",
    "encode",
    "format_value",
    "infer_type",
    "parse_type",
    "parse_typed",
    "parse_value",
    "pretty_value",
    "value_from_json",
    "value_to_json",
]
