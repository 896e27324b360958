"""Packing and chaining events into segment data, shared by every writer.

Three steps per event: pack the chain fields, hash them after the previous hash, append
``record + hash`` to a buffer. :func:`pack_chain` does them for a batch of writer rows
(the C accelerator when built, else :func:`py_pack_chain`); :class:`SegmentBuilder` is
the readable version used by import, bundles and :class:`MemoryTrace`, and the tests
check both against :func:`model.chain_hash`.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable
from hashlib import sha256
from typing import Any

import msgpack

from ..errors import IntegrityError
from . import _accel
from .codec import HASH_PREFIX
from .model import Event, EventKind, Outcome

__all__ = [
    "KIND_NAMES",
    "OUTCOME_NAMES",
    "SegmentBuilder",
    "hash_records",
    "new_packer",
    "normalize_fields",
    "pack_chain",
    "pack_row",
    "pack_rows",
    "py_hash_records",
    "py_pack_chain",
    "py_pack_rows",
]

KIND_NAMES = frozenset(str(k) for k in EventKind)
OUTCOME_NAMES = frozenset(str(o) for o in Outcome)


def new_packer() -> msgpack.Packer:
    """The packer whose output :func:`model.chain_hash` hashes (``use_bin_type``)."""
    return msgpack.Packer(use_bin_type=True)


class SegmentBuilder:
    """Accumulates chained event records until they are taken as one segment."""

    __slots__ = ("_pack", "buf", "first_seq", "head", "seq")

    def __init__(self, head: bytes, seq: int = 0) -> None:
        self._pack = new_packer().pack
        self.head = head
        self.seq = seq
        self.first_seq = seq
        self.buf = bytearray()

    @property
    def pending(self) -> int:
        return self.seq - self.first_seq

    def add_fields(self, fields: list[Any]) -> bytes:
        """Append one event given its 13 chain fields (``fields[0]`` is its seq)."""
        if fields[0] != self.seq:
            raise ValueError(f"event seq {fields[0]} out of order; expected {self.seq}")
        packed = self._pack(fields)
        digest = sha256(self.head + packed).digest()
        self.buf += packed
        self.buf += HASH_PREFIX
        self.buf += digest
        self.head = digest
        self.seq += 1
        return digest

    def add_event(self, event: Event, *, trace: object = None, check: bool = True) -> bytes:
        """Append an event; with ``check`` its stored hash must match the chain."""
        digest = self.add_fields(event.chain_fields())
        if check and digest != event.hash:
            raise IntegrityError(
                trace, event.seq, f"event {event.seq}: hash does not match the chain"
            )
        return digest

    def take(self) -> tuple[int, int, bytes, bytes] | None:
        """``(first_seq, count, head_hash, data)`` of the pending events, then reset."""
        if self.seq == self.first_seq:
            return None
        segment = (self.first_seq, self.seq - self.first_seq, self.head, bytes(self.buf))
        self.buf.clear()
        self.first_seq = self.seq
        return segment


def normalize_fields(
    call: object,
    kind: object,
    interface: object,
    function: object,
    input: object,
    output: object,
    status: object,
    outcome: object,
    error_kind: object,
    error: object,
    duration_ns: object,
    depth: object,
    *package: object,
) -> tuple[Any, ...]:
    """Check ``append``'s arguments: coerce subclasses and bytes-likes, explain the rest.

    Returns the 12 fields after ``seq`` in chain order, as plain ints, strs and bytes
    (13 with a ``package``: a composition's event).
    """
    if len(package) > 1:
        raise TypeError(f"an event row has 12 or 13 fields, got {12 + len(package)}")
    if kind not in KIND_NAMES:
        raise ValueError(f"unknown event kind {kind!r}")
    if outcome not in OUTCOME_NAMES:
        raise ValueError(f"unknown outcome {outcome!r}")
    return (
        _as_int("call", call),
        str(kind),
        _as_str("interface", interface),
        _as_str("function", function),
        _as_bytes("input", input),
        _as_bytes("output", output),
        None if status is None else _as_int("status", status),
        str(outcome),
        None if error_kind is None else _as_str("error_kind", error_kind),
        None if error is None else _as_str("error", error),
        _as_int("duration_ns", duration_ns),
        _as_int("depth", depth),
        *(_as_str("package", p) for p in package),
    )


def _as_int(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    return int(value)


def _as_str(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    return str(value)


def _as_bytes(name: str, value: object) -> bytes | None:
    if value is None or type(value) is bytes:
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise TypeError(f"{name} must be bytes or None, not {type(value).__name__}")


# ------------------------------------------------------------------ writer rows


def _plain(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """A writer row's 12 fields as plain types: as they are, or ``normalize_fields``';
    a composition's row has a 13th, its package."""
    if len(row) != 12:
        return normalize_fields(*row)
    (call, kind, interface, function, input, output, status, outcome,
     error_kind, error, duration_ns, depth) = row  # fmt: skip
    if (
        kind not in KIND_NAMES
        or outcome not in OUTCOME_NAMES
        or interface.__class__ is not str
        or function.__class__ is not str
        or (input is not None and input.__class__ is not bytes)
        or (output is not None and output.__class__ is not bytes)
        or call.__class__ is not int
        or duration_ns.__class__ is not int
        or depth.__class__ is not int
        or (status is not None and status.__class__ is not int)
        or (error is not None and error.__class__ is not str)
        or (error_kind is not None and error_kind.__class__ is not str)
    ):
        return normalize_fields(*row)
    return (call, kind, interface, function, input, output, status, outcome,
            error_kind, error, duration_ns, depth)  # fmt: skip


def pack_row(seq: int, row: tuple[Any, ...]) -> bytes:
    """One writer row packed as the record of event ``seq`` (what the C packer defers to)."""
    packed: bytes = new_packer().pack([seq, *_plain(row)])
    return packed


def py_pack_chain(
    rows: Iterable[tuple[Any, ...]], first_seq: int, head: bytes
) -> tuple[bytes, bytes, int]:
    """Pack and chain writer rows (``TraceWriter.extend``'s) as events from ``first_seq``.

    Returns ``(data, new_head, count)``: the segment records, the last hash and how
    many rows there were. A refused row raises, and nothing of the batch is returned.
    """
    pack = new_packer().pack
    buf = bytearray()
    seq = first_seq
    for row in rows:
        packed = pack([seq, *_plain(row)])
        head = sha256(head + packed).digest()
        buf += packed
        buf += HASH_PREFIX
        buf += head
        seq += 1
    return bytes(buf), head, seq - first_seq


_SLOT = HASH_PREFIX + bytes(32)


def py_pack_rows(rows: Iterable[tuple[Any, ...]], first_seq: int) -> tuple[bytes, bytes, int]:
    """Pack writer rows as :func:`py_pack_chain` does but leave each hash slot zero, to
    be chained later by :func:`hash_records` (off the recording thread).

    Returns ``(data, lens, count)``: the records with their empty slots, each record's
    length (native ``uint32``), and how many rows there were.
    """
    pack = new_packer().pack
    buf = bytearray()
    lens = array("I")
    seq = first_seq
    for row in rows:
        packed = pack([seq, *_plain(row)])
        buf += packed
        buf += _SLOT
        lens.append(len(packed))
        seq += 1
    return bytes(buf), lens.tobytes(), seq - first_seq


def py_hash_records(buf: bytearray, lens: bytes, head: bytes) -> bytes:
    """Chain records packed by :func:`pack_rows` in place: ``buf`` holds 32 bytes of
    room for ``head``, then the records with their slots. Returns the last hash."""
    sizes = array("I")
    sizes.frombytes(lens)
    if len(head) != 32 or len(buf) != 32 + sum(sizes) + 34 * len(sizes) or 0 in sizes:
        raise ValueError("hash_records: lens do not describe buf")
    buf[0:32] = head
    pos = 32
    for n in sizes:
        head = sha256(buf[pos - 32 : pos + n]).digest()
        buf[pos + n : pos + n + 34] = HASH_PREFIX + head
        pos += n + 34
    return head


_chosen = _accel.select(
    __name__,
    {"py_pack_row": pack_row},
    pack_chain=py_pack_chain,
    pack_rows=py_pack_rows,
    hash_records=py_hash_records,
)
pack_chain: Callable[[Iterable[tuple[Any, ...]], int, bytes], tuple[bytes, bytes, int]] = (
    _chosen["pack_chain"]
)
pack_rows: Callable[[Iterable[tuple[Any, ...]], int], tuple[bytes, bytes, int]] = _chosen[
    "pack_rows"
]
#: In C it runs with the GIL released: a writer's committer thread hashes in parallel.
hash_records: Callable[[bytearray, bytes, bytes], bytes] = _chosen["hash_records"]
