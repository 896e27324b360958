"""A raw import call as a trace event (kind ``raw``), and back.

A raw call crosses the boundary as wasm numbers, not CGRF, so the recorder writes it in
CGRF of its own to keep every event readable by the same tools (``show``, ``diff``, the
``events`` view):

* input: the arguments as a tuple, each by its wasm type (``i32`` -> ``s32``, ``i64`` ->
  ``s64``, ``f32``, ``f64``), e.g. ``(1024s32, 5s32)``;
* output: ``raw-reply{results: (...), memory: [...], raw_access: bool}``: the results
  the same way, then every write the host function made to guest memory, in order, as
  ``memory-op`` variants (``write(address: u32, bytes: list<u8>)``, ``grow(pages:
  u32)``, ``alloc(size: u32, address: u32)``), then whether raw memory access was
  handed out during the call (writes through it are not in the trace).

Decoding checks everything against the import's signature, since a trace is untrusted:
a reply of the wrong shape is refused, never half-applied.
"""

from __future__ import annotations

from typing import Any

from ..abi import (
    F32,
    F64,
    S32,
    S64,
    U32,
    AbiError,
    Bool,
    List,
    Record,
    Tuple,
    Value,
    ValueType,
    Variant,
    decode,
    encode,
)
from ..runtime import MemoryOp, RawCall, RawReply

__all__ = ["BadRawEvent", "decode_reply", "encode_args", "encode_reply", "raw_access"]

_WRITE, _GROW, _ALLOC = 0, 1, 2
_OP_TYPE = ValueType.variant("memory-op")
_REPLY = "raw-reply"


class BadRawEvent(ValueError):
    """A recorded raw event that does not fit its import (a damaged or forged trace)."""


def _number(kind: str, value: Any) -> Value:
    if kind == "i32":
        return S32(((int(value) + 2**31) % 2**32) - 2**31)
    if kind == "i64":
        return S64(((int(value) + 2**63) % 2**64) - 2**63)
    if kind == "f32":
        return F32(float(value))
    return F64(float(value))


def encode_args(params: tuple[str, ...], args: tuple[Any, ...]) -> bytes:
    """The arguments as the event's input (CGRF)."""
    return encode(Tuple(*(_number(k, a) for k, a in zip(params, args, strict=True))))


def _op(op: MemoryOp) -> Variant:
    if op[0] == "write":
        return Variant("memory-op", "write", _WRITE, [U32(op[1]), List.from_bytes(op[2])])
    if op[0] == "grow":
        return Variant("memory-op", "grow", _GROW, [U32(op[1] & 0xFFFF_FFFF)])
    return Variant("memory-op", "alloc", _ALLOC, [U32(op[1]), U32(op[2] & 0xFFFF_FFFF)])


def encode_reply(call: RawCall) -> bytes:
    """The results and memory writes as the event's output (CGRF)."""
    results = Tuple(*(_number(k, v) for k, v in zip(call.results, call.returned, strict=True)))
    return encode(
        Record(
            _REPLY,
            [
                ("results", results),
                ("memory", List(_OP_TYPE, [_op(op) for op in call.memory])),
                ("raw_access", Bool(call.raw_access)),
            ],
        )
    )


_KINDS = {"i32": S32, "i64": S64, "f32": F32, "f64": F64}


def _reply_record(data: bytes) -> Record:
    try:
        value = decode(data)
    except AbiError as exc:
        raise BadRawEvent(f"the recorded reply is not valid CGRF: {exc}") from None
    if type(value) is not Record or value.type_name != _REPLY:
        raise BadRawEvent("the recorded reply is not a raw-reply record")
    return value


def raw_access(data: bytes | None) -> bool:
    """Whether the recorded call handed out raw memory access (False when unreadable)."""
    if data is None:
        return False
    try:
        flag = _reply_record(data).get("raw_access")
    except BadRawEvent:
        return False
    return type(flag) is Bool and bool(flag.value)


def decode_reply(data: bytes | None, results: tuple[str, ...]) -> RawReply:
    """The recorded reply as the runtime applies it, checked against ``results``."""
    if data is None:
        raise BadRawEvent("the recorded raw call has no reply")
    record = _reply_record(data)
    values = record.get("results")
    memory = record.get("memory")
    if type(values) is not Tuple or type(memory) is not List:
        raise BadRawEvent("the recorded reply lacks its results or memory writes")
    if len(values.items) != len(results) or any(
        type(v) is not _KINDS[k] for v, k in zip(values.items, results, strict=False)
    ):
        shown = ", ".join(results)
        raise BadRawEvent(f"the recorded results do not fit the import's result types ({shown})")
    ops: list[MemoryOp] = []
    for item in memory.items:
        ops.append(_decode_op(item))
    return RawReply(tuple(_plain(v) for v in values.items), tuple(ops))


def _plain(value: Value) -> Any:
    return value.value  # type: ignore[attr-defined]


def _decode_op(item: Value) -> MemoryOp:
    if type(item) is Variant:
        payload = item.payload
        if item.tag == _WRITE and len(payload) == 2 and type(payload[0]) is U32:
            data = payload[1]
            if type(data) is List:
                try:
                    return ("write", payload[0].value, data.to_bytes())
                except TypeError:
                    pass
        elif item.tag == _GROW and len(payload) == 1 and type(payload[0]) is U32:
            return ("grow", payload[0].value)
        elif item.tag == _ALLOC and len(payload) == 2 and all(type(p) is U32 for p in payload):
            return ("alloc", payload[0].value, payload[1].value)  # type: ignore[attr-defined]
    raise BadRawEvent("a recorded memory write is not a memory-op the recorder writes")
