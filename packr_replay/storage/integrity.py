"""Re-deriving a trace's hash chain to prove nothing was altered, dropped or added.

Each event's stored hash must equal SHA-256 over the previous hash and the event's
canonical fields (:func:`model.chain_hash`), starting from the trace's genesis hash. A
sealed trace (finished: complete, failed, diverged) also records its event count and
head hash, so removing events from the end -- which leaves a valid shorter chain -- is
caught too. For an unsealed trace the count committed with each flush plays that role.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from hashlib import sha256
from typing import Any

from ..errors import IntegrityError, TraceFormatError
from .chain import new_packer
from .model import TraceInfo, header_covered, trace_genesis

__all__ = ["ChainChecker", "VerifyReport", "altered"]


def altered(info: TraceInfo, seq: int) -> str:
    """What a hash mismatch at ``seq`` means: event 0 of a trace whose chain starts
    from its header also breaks when the header was edited."""
    if seq == 0 and header_covered(info):
        return (
            "it, or the trace's header (module, settings, label, host), was altered "
            "after recording"
        )
    return "it was altered after recording"


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The outcome of ``verify``: ``ok``, or the first bad event and why."""

    trace_id: int
    ok: bool
    events: int  # events whose hashes were checked and found valid
    first_bad_seq: int | None = None
    message: str = ""
    head: bytes | None = None  # the chain's hash after the last valid event (ok: the head)
    header_covered: bool = False  # the chain starts from the header (format 3 on)

    def matches(self, expected: str) -> bool:
        """Whether the head hash is ``expected`` (hex; a prefix of 16 or more digits
        will do): a trace pinned out of band, e.g. by the hash in a bug report's text."""
        text = expected.strip().lower()
        if len(text) < 16 or any(c not in "0123456789abcdef" for c in text):
            raise ValueError(
                f"expected head hash {expected!r}: give 16 to 64 hex digits (info prints it)"
            )
        return self.ok and self.head is not None and self.head.hex().startswith(text)

    @property
    def error(self) -> IntegrityError | None:
        """The failure as an exception; ``.seq`` is -1 when no event is to blame (the module)."""
        if self.ok:
            return None
        seq = -1 if self.first_bad_seq is None else self.first_bad_seq
        return IntegrityError(self.trace_id, seq, self.message)

    def raise_for_error(self) -> None:
        """Raise the :class:`IntegrityError` (with ``.seq``) if verification failed."""
        error = self.error
        if error is not None:
            raise error


class ChainChecker:
    """Feeds records in order; raises :class:`IntegrityError` at the first bad one."""

    def __init__(self, info: TraceInfo) -> None:
        self.info = info
        self.head = trace_genesis(info)
        self.count = 0
        self._pack = new_packer().pack

    def feed(self, fields: tuple[Any, ...] | list[Any], digest: bytes) -> None:
        seq = self.count
        if fields[0] != seq:
            raise IntegrityError(self.info.id, seq, f"event {seq} is missing (found {fields[0]})")
        if sha256(self.head + self._pack(fields)).digest() != digest:
            raise IntegrityError(
                self.info.id, seq, f"event {seq} does not match its hash: {altered(self.info, seq)}"
            )
        self.head = digest
        self.count += 1

    def check_head(self, seq: int, head: bytes) -> None:
        """A segment's stored head hash must be the chain's hash at its last event."""
        if head != self.head:
            raise IntegrityError(self.info.id, seq, f"event {seq}: segment head hash differs")

    def finish(self) -> VerifyReport:
        """Compare what was fed with the sealed (or last committed) count and head."""
        info, n = self.info, self.count
        if info.head_hash is not None:
            if n < info.event_count:
                return self._bad(
                    n, f"events {n}..{info.event_count - 1} of the sealed trace are missing"
                )
            if n > info.event_count:
                return self._bad(
                    info.event_count, f"{n - info.event_count} events follow the sealed end"
                )
            if self.head != info.head_hash:
                return self._bad(
                    max(n - 1, 0), "the last event does not match the sealed head hash"
                )
        elif n < info.event_count:
            return self._bad(
                n, f"events {n}..{info.event_count - 1} were committed but are missing"
            )
        return VerifyReport(info.id, True, n, head=self.head, header_covered=header_covered(info))

    def _bad(self, seq: int, message: str) -> VerifyReport:
        return VerifyReport(
            self.info.id, False, self.count, seq, f"trace {self.info.id}: {message}",
            header_covered=header_covered(self.info),
        )  # fmt: skip

    def report(self, error: IntegrityError | TraceFormatError) -> VerifyReport:
        """Turn an error raised while reading or feeding into a failed report."""
        seq = error.seq if isinstance(error, IntegrityError) else self.count
        return self._bad(seq, str(error))


def check_events(info: TraceInfo, records: Iterable[tuple[Any, bytes]]) -> VerifyReport:
    """Verify an in-order stream of ``(chain fields, stored hash)`` pairs."""
    checker = ChainChecker(info)
    try:
        for fields, digest in records:
            checker.feed(fields, digest)
    except (IntegrityError, TraceFormatError) as exc:
        return checker.report(exc)
    return checker.finish()
