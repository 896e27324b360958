"""What a trace is made of, independent of where it is kept.

A trace is an append-only sequence of events. One export call produces an ``export``
event when it starts (its input), then one ``import`` event per typed host call the
guest makes (a ``raw`` event per raw import: its wasm arguments, results and the
guest-memory writes of its host function, all as CGRF; from format 5 on), then a
``return`` event when it ends (its output or error). Writing the
start and the end separately keeps the log append-only, so a recorder killed in the
middle of an export still leaves the input needed to replay up to the cut.

Every event carries the *exact* CGRF bytes that crossed the boundary and a SHA-256
chained over the previous event's hash, so tampering is detectable and the chain
survives export/import (it starts from the trace's identity, not its row id).

From trace format 3 on (:data:`HEADER_CHAIN_FORMAT`) the chain starts from a hash of
the trace's header -- uuid, format version, creation time, tool version, module
SHA-256, label, host, the trace it replays and the whole metadata (the settings a
replay runs under) -- so editing any of them breaks the chain at its first event.
Older traces start from their uuid alone and keep verifying as they always did.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import msgpack

from ..abi import EncodedValue

__all__ = [
    "CHAIN_VERSION",
    "HEADER_CHAIN_FORMAT",
    "Event",
    "EventKind",
    "ExportCall",
    "Outcome",
    "TraceInfo",
    "TraceStatus",
    "chain_genesis",
    "chain_hash",
    "header_covered",
    "header_genesis",
    "trace_genesis",
]


class EventKind(StrEnum):
    EXPORT = "export"  # an export call began: function, input
    IMPORT = "import"  # a typed host call, complete: input, output, status, outcome
    RETURN = "return"  # the export call ended: output or error, outcome
    RAW = "raw"  # a raw import (func_raw), complete: wasm args, results + memory writes


class Outcome(StrEnum):
    OK = "ok"
    IMPORT_ERROR = "import_error"  # a typed import failed; error_kind is packr's kind
    GUEST_ERROR = "guest_error"  # an export returned a non-zero status and a message
    TRAP = "trap"  # the guest trapped
    TIMEOUT = "timeout"  # the guest ran out of fuel / time
    HOST_ERROR = "host_error"  # an interceptor or the embedder raised


class TraceStatus(StrEnum):
    RECORDING = "recording"  # still being written, or its writer died (see ``incomplete``)
    COMPLETE = "complete"  # finished normally, head hash sealed
    INCOMPLETE = "incomplete"  # reported for a trace whose writer vanished
    DIVERGED = "diverged"  # a replay trace that stopped at a divergence
    FAILED = "failed"  # the recorded run itself ended in an error


@dataclass(frozen=True, slots=True)
class Event:
    """One recorded boundary crossing.

    ``input``/``output`` are the exact bytes (``output`` is ``None`` when there was no
    result, e.g. a failed import or a trapped export). ``status`` is what the guest
    got back (0, 1 or -1 for imports; the export's status for returns).
    """

    seq: int
    call: int
    kind: EventKind
    interface: str
    function: str
    input: bytes | None
    output: bytes | None = None
    status: int | None = None
    outcome: Outcome = Outcome.OK
    error_kind: str | None = None
    error: str | None = None
    duration_ns: int = 0
    depth: int = 0
    hash: bytes = field(default=b"", compare=False)
    #: The package the event happened in, in a composition's trace (``None`` in a
    #: trace of one guest). Last, after ``hash``, so positional construction of the
    #: fields before it is unchanged.
    package: str | None = None

    @property
    def input_value(self) -> EncodedValue | None:
        """The input as a lazily decoded value."""
        return None if self.input is None else EncodedValue(self.input)

    @property
    def output_value(self) -> EncodedValue | None:
        return None if self.output is None else EncodedValue(self.output)

    @property
    def name(self) -> str:
        """``interface.function`` (just ``function`` for bare exports)."""
        return f"{self.interface}.{self.function}" if self.interface else self.function

    def chain_fields(self) -> list[Any]:
        """The fields the hash chain covers, in a fixed order (a composition's events
        add their package as a 14th)."""
        fields = [
            self.seq,
            self.call,
            str(self.kind),
            self.interface,
            self.function,
            self.input,
            self.output,
            self.status,
            str(self.outcome),
            self.error_kind,
            self.error,
            self.duration_ns,
            self.depth,
        ]
        if self.package is not None:
            fields.append(self.package)
        return fields


CHAIN_VERSION = 1
"""The uuid-only genesis of trace formats 1 and 2."""

HEADER_CHAIN_FORMAT = 3
"""The first trace format whose chain starts from its header (:func:`header_genesis`)."""

_HEADER_TAG = "packr-replay chain v2"


def chain_genesis(trace_uuid: str) -> bytes:
    """The hash that precedes the first event of a format-1 or format-2 trace."""
    return hashlib.sha256(f"packr-replay chain v{CHAIN_VERSION}:{trace_uuid}".encode()).digest()


def header_genesis(
    *,
    uuid: str,
    format_version: int,
    created_at: str,
    tool_version: str,
    module_sha256: str | None,
    label: str | None,
    host: str | None,
    replay_of_uuid: str | None,
    meta: dict[str, Any],
) -> bytes:
    """The hash that precedes the first event of a trace of format 3 or later.

    Every field is known when recording starts and never changes afterwards (status,
    counts and the sealed head are checked against the chain itself). ``meta`` is
    hashed as it reads back from the store (plain msgpack data, key order kept).
    """
    packed = msgpack.packb(
        [_HEADER_TAG, uuid, format_version, created_at, tool_version, module_sha256,
         label, host, replay_of_uuid, meta],
        use_bin_type=True,
    )  # fmt: skip
    return hashlib.sha256(packed).digest()


def trace_genesis(info: TraceInfo) -> bytes:
    """The hash that precedes ``info``'s first event, by the trace's own format."""
    if info.format_version < HEADER_CHAIN_FORMAT:
        return chain_genesis(info.uuid)
    return header_genesis(
        uuid=info.uuid,
        format_version=info.format_version,
        created_at=info.created_at,
        tool_version=info.tool_version,
        module_sha256=info.module_sha256,
        label=info.label,
        host=info.host,
        replay_of_uuid=info.replay_of_uuid,
        meta=info.meta,
    )


def header_covered(info: TraceInfo) -> bool:
    """Whether ``info``'s chain covers its header (format 3 on) or its events only."""
    return info.format_version >= HEADER_CHAIN_FORMAT


def chain_hash(previous: bytes, event: Event) -> bytes:
    """SHA-256 over the previous hash and the event's canonical msgpack fields."""
    packed = msgpack.packb(event.chain_fields(), use_bin_type=True)
    return hashlib.sha256(previous + packed).digest()


@dataclass(frozen=True, slots=True)
class ExportCall:
    """One export call of a trace: its ``export`` event and its ``return`` event.

    ``end`` is ``None`` when the trace stops inside the call (a killed recorder, a
    replay that diverged there).
    """

    call: int
    start: Event
    end: Event | None

    @property
    def function(self) -> str:
        return self.start.function

    @property
    def outcome(self) -> Outcome | None:
        return None if self.end is None else self.end.outcome


@dataclass(frozen=True, slots=True)
class TraceInfo:
    """A trace's header row."""

    id: int
    uuid: str
    created_at: str
    module_sha256: str | None
    status: TraceStatus
    label: str | None = None
    host: str | None = None
    tool_version: str = ""
    format_version: int = 1
    event_count: int = 0
    replay_of: int | None = None
    completed_at: str | None = None
    head_hash: bytes | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    replay_of_uuid: str | None = None  # survives export/import, where row ids do not
    end_reason: str | None = None  # why it was sealed incomplete: "interrupted" (format 5)
