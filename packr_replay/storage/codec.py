"""Event records and metadata on the wire: msgpack, with strict limits both ways.

One event is stored as two msgpack objects back to back: the 13-element array of
:meth:`Event.chain_fields` (exactly the bytes the chain hash covers; 14 in a
composition's trace, from format 4 on, the last naming the event's package) and a
32-byte ``bin`` holding that hash. Storing the hashed bytes themselves means the writer packs
each event once and hashes what it stores; a segment of events is the concatenation
of such records, and the export stream is the same records one after another.

Everything read back is decoded with hard caps (``max_bin_len``, ``max_str_len``,
``max_array_len``, ``max_map_len``), ``strict_map_key``, and extension types refused,
then type-checked field by field: a hostile file can make us raise, never allocate
without bound, and never build anything but plain data (there is no pickle anywhere).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator
from hashlib import sha256
from typing import Any, NoReturn

import msgpack

from ..errors import IntegrityError, TraceFormatError
from . import _accel
from .model import Event, EventKind, Outcome

__all__ = [
    "HASH_PREFIX",
    "KINDS",
    "MAX_BLOB_BYTES",
    "MAX_META_BYTES",
    "MAX_STR_BYTES",
    "OUTCOMES",
    "RECORD_VIEW",
    "RawRecord",
    "Shape",
    "check_meta",
    "decode_records",
    "decode_segment",
    "decode_segment_lazy",
    "event_from_record",
    "new_unpacker",
    "pack_meta",
    "py_decode_segment",
    "unpack_meta",
]

MAX_BLOB_BYTES = 256 * 1024 * 1024
"""Largest single blob (CGRF value, module, segment) read from a file or stream."""

MAX_META_BYTES = 1024 * 1024
"""Largest packed metadata map; metadata describes a run, it does not carry data."""

MAX_STR_BYTES = 16 * 1024 * 1024
"""Largest string (names, error messages) read back."""

_MAX_CONTAINER = 1_000_000

HASH_PREFIX = b"\xc4\x20"
"""msgpack ``bin 8`` header of a 32-byte value: what precedes each stored hash."""

KINDS: dict[str, EventKind] = {str(k): k for k in EventKind}
OUTCOMES: dict[str, Outcome] = {str(o): o for o in Outcome}

RawRecord = tuple[tuple[Any, ...], bytes]
"""An event as decoded: its 13 (or, with a package, 14) chain fields (validated) and its
stored hash."""


def _refuse_ext(code: int, data: bytes) -> NoReturn:
    raise ValueError(f"msgpack extension type {code} is not allowed")


_CONTAINERS = (tuple, list, dict)
MAX_HEADER_CONTAINERS = 100_000
"""Arrays and maps a stream's header and trailer may hold (its metadata's among them)."""


class Shape:
    """What containers an unpacker may build, checked as it builds them.

    A stream of event records holds flat 13-field arrays and nothing else, so while
    ``records`` is set an array holding an array or a map, or any map, is refused the
    moment it is complete: a nested bomb (a 250 MB segment of arrays of arrays) costs
    a few small arrays, not the gigabytes of Python objects its bytes describe. Outside
    records (a stream's header and trailer) at most ``budget`` arrays and maps are
    built.
    """

    __slots__ = ("budget", "records")

    def __init__(self, *, records: bool = True, budget: int = MAX_HEADER_CONTAINERS) -> None:
        self.records = records
        self.budget = budget

    def list_hook(self, items: Any) -> Any:
        if self.records:
            for item in items:
                if item.__class__ in _CONTAINERS:
                    raise ValueError("an event record holds no nested arrays or maps")
        else:
            self._spend()
        return items

    def object_hook(self, mapping: dict[str, Any]) -> dict[str, Any]:
        if self.records:
            raise ValueError("an event record holds no maps")
        self._spend()
        return mapping

    def _spend(self) -> None:
        self.budget -= 1
        if self.budget < 0:
            raise ValueError(f"more than {MAX_HEADER_CONTAINERS} arrays and maps outside events")


def new_unpacker(
    file_like: Any = None,
    *,
    max_buffer_size: int = MAX_BLOB_BYTES + MAX_STR_BYTES,
    max_bin_len: int = MAX_BLOB_BYTES,
    shape: Shape | None = None,
) -> msgpack.Unpacker:
    """A streaming unpacker with every limit set and extension types refused; its
    containers are checked by ``shape`` (default: event records only)."""
    shape = Shape() if shape is None else shape
    return msgpack.Unpacker(
        file_like,
        raw=False,
        use_list=False,
        list_hook=shape.list_hook,
        object_hook=shape.object_hook,
        strict_map_key=True,
        ext_hook=_refuse_ext,
        max_buffer_size=max_buffer_size,
        max_bin_len=max_bin_len,
        max_str_len=MAX_STR_BYTES,
        max_array_len=_MAX_CONTAINER,
        max_map_len=_MAX_CONTAINER,
        max_ext_len=0,
        read_size=min(64 * 1024, max_buffer_size) if file_like is not None else 0,
    )


# ------------------------------------------------------------------------ metadata


def check_meta(meta: object) -> dict[str, Any]:
    """Validate caller metadata; returns a plain dict copy."""
    if meta is None:
        return {}
    if not isinstance(meta, dict) or not all(isinstance(k, str) for k in meta):
        raise TypeError("trace metadata must be a dict with str keys")
    return dict(meta)


def pack_meta(meta: dict[str, Any]) -> bytes:
    """Pack a metadata map, refusing anything :func:`unpack_meta` would not read back.

    Only msgpack's plain types are accepted (no extension types, str keys only at
    every level); tuples come back as lists.
    """
    try:
        data: bytes = msgpack.packb(meta, use_bin_type=True, strict_types=False)
    except (TypeError, ValueError, OverflowError) as exc:
        raise TypeError(f"trace metadata is not plain msgpack data: {exc}") from None
    if len(data) > MAX_META_BYTES:
        raise ValueError(
            f"trace metadata is {len(data)} bytes packed; the limit is {MAX_META_BYTES}"
        )
    try:
        unpack_meta(data)
    except TraceFormatError as exc:
        raise TypeError(f"trace metadata would not read back: {exc}") from None
    return data


def unpack_meta(data: object, where: str = "trace metadata") -> dict[str, Any]:
    """Decode stored metadata with tight limits; anything odd is a format error."""
    if not isinstance(data, bytes):
        raise TraceFormatError(f"{where} is {type(data).__name__}, not msgpack bytes")
    if len(data) > MAX_META_BYTES:
        raise TraceFormatError(f"{where} is {len(data)} bytes; the limit is {MAX_META_BYTES}")
    try:
        value = msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=True,
            ext_hook=_refuse_ext,
            max_bin_len=MAX_META_BYTES,
            max_str_len=MAX_META_BYTES,
            max_array_len=MAX_META_BYTES,
            max_map_len=MAX_META_BYTES,
            max_ext_len=0,
        )
    except (ValueError, TypeError) as exc:
        raise TraceFormatError(f"{where} is not valid msgpack: {exc}") from None
    if not isinstance(value, dict):
        raise TraceFormatError(f"{where} is a {type(value).__name__}, not a map")
    return value


# -------------------------------------------------------------------------- events

_OPT_BYTES = (bytes, type(None))
_OPT_STR = (str, type(None))
_OPT_INT = (int, type(None))


def _check_fields(fields: object, seq: int) -> tuple[Any, ...]:
    """Type-check one decoded field array; the position is the expected seq."""
    if not isinstance(fields, tuple) or len(fields) not in (13, 14):
        raise TraceFormatError(f"event {seq}: not a 13-field record")
    if len(fields) == 14 and type(fields[13]) is not str:
        raise TraceFormatError(f"event {seq}: its package is not a string")
    (
        f_seq,
        call,
        kind,
        interface,
        function,
        input_,
        output,
        status,
        outcome,
        error_kind,
        error,
        duration_ns,
        depth,
    ) = fields[:13]
    if type(f_seq) is not int or f_seq != seq:
        raise TraceFormatError(f"event {seq}: record says seq {f_seq!r}")
    if not (
        type(call) is int
        and type(kind) is str
        and kind in KINDS
        and type(interface) is str
        and type(function) is str
        and isinstance(input_, _OPT_BYTES)
        and isinstance(output, _OPT_BYTES)
        and isinstance(status, _OPT_INT)
        and type(status) is not bool
        and type(outcome) is str
        and outcome in OUTCOMES
        and isinstance(error_kind, _OPT_STR)
        and isinstance(error, _OPT_STR)
        and type(duration_ns) is int
        and type(depth) is int
    ):
        raise TraceFormatError(f"event {seq}: a field has the wrong type")
    return fields


def _signatures() -> frozenset[tuple[type, ...]]:
    """Every allowed tuple of field types (five fields may be None; a 14th, the
    package, is a str)."""
    none = type(None)
    out: set[tuple[type, ...]] = set()
    for mask in range(32):
        opt = [(bytes, bytes, int, str, str)[i] if not mask & (1 << i) else none for i in range(5)]
        sig = (int, int, str, str, str, opt[0], opt[1], opt[2], str, opt[3], opt[4], int, int)
        out.add(sig)
        out.add((*sig, str))
    return frozenset(out)


_SIGNATURES = _signatures()


def decode_records(unpacker: msgpack.Unpacker, first_seq: int, count: int) -> Iterator[RawRecord]:
    """Yield ``count`` validated ``(fields, hash)`` pairs from a fed unpacker.

    Raises :class:`TraceFormatError` naming the seq where decoding went wrong. The common
    case is checked with one type-signature lookup per record; anything unusual goes
    through :func:`_check_fields` for the precise complaint.
    """
    it = iter(unpacker)
    sigs, kinds, outcomes = _SIGNATURES, KINDS, OUTCOMES
    seq = first_seq
    end = first_seq + count
    while seq < end:
        try:
            fields = next(it)
            digest = next(it)
        except StopIteration:
            raise TraceFormatError(f"event {seq}: record cut short") from None
        except (ValueError, TypeError) as exc:
            raise TraceFormatError(f"event {seq}: undecodable record: {exc}") from None
        if not (
            type(fields) is tuple
            and tuple(map(type, fields)) in sigs
            and fields[0] == seq
            and fields[2] in kinds
            and fields[8] in outcomes
        ):
            _check_fields(fields, seq)
        if type(digest) is not bytes or len(digest) != 32:
            raise TraceFormatError(f"event {seq}: stored hash is not 32 bytes")
        yield fields, digest
        seq += 1


def py_decode_segment(
    data: bytes, first_seq: int, count: int, prev: bytes | None = None, trace_id: object = None
) -> Iterator[RawRecord]:
    """Validated records of one segment's data; trailing or missing bytes are format errors.

    With ``prev`` (the hash the segment chains after), each record's stored hash must
    be SHA-256 over the previous hash and its canonically packed fields (what the
    writer hashed, and what ``verify`` checks): the first that is not raises
    :class:`IntegrityError` naming ``trace_id`` and the event, after the records before it.
    """
    # Read through a view in chunks rather than fed whole: the unpacker's buffer holds
    # one record at a time, not a second copy of the segment.
    unpacker = new_unpacker(io.BytesIO(data), max_buffer_size=max(len(data), 1), max_bin_len=len(data))
    if prev is None:
        yield from decode_records(unpacker, first_seq, count)
    else:
        pack = msgpack.Packer(use_bin_type=True).pack
        for fields, digest in decode_records(unpacker, first_seq, count):
            if sha256(prev + pack(fields)).digest() != digest:
                seq = fields[0]
                where = "" if trace_id is None else f"trace {trace_id}: "
                raise IntegrityError(
                    trace_id, seq, f"{where}event {seq} does not match its hash: it was altered after recording"
                )
            prev = digest
            yield fields, digest
    if unpacker.tell() != len(data):
        raise TraceFormatError(f"event {first_seq + count - 1}: segment has trailing bytes")


def event_from_record(fields: tuple[Any, ...], digest: bytes) -> Event:
    """Build the model's Event from a validated record."""
    return Event(
        fields[0],
        fields[1],
        KINDS[fields[2]],
        fields[3],
        fields[4],
        fields[5],
        fields[6],
        fields[7],
        OUTCOMES[fields[8]],
        fields[9],
        fields[10],
        fields[11],
        fields[12],
        digest,
        fields[13] if len(fields) == 14 else None,
    )


# The C accelerator decodes a regular segment into a list at once; for anything else it
# returns py_decode_segment's iterator, which yields up to the fault and raises there.
decode_segment: Callable[..., Iterable[RawRecord]] = _accel.select(
    __name__,
    {
        "kinds": tuple(KINDS),
        "outcomes": tuple(OUTCOMES),
        "enums": (EventKind, Outcome),
        "max_str_len": MAX_STR_BYTES,
    },
    decode_segment=py_decode_segment,
)["decode_segment"]

#: decode_segment's records built on first use (the C accelerator's; None without it),
#: and the capsule through which C code reads such a record without building it.
decode_segment_lazy: Callable[..., Iterable[RawRecord]] | None = (
    None if _accel.speedups is None else _accel.speedups.decode_segment_lazy
)
RECORD_VIEW: Any = None if _accel.speedups is None else _accel.speedups.RECORD_VIEW
