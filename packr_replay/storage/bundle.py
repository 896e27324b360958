"""Bundles: one trace and its module (a composition's: all its modules) in a new,
compact, self-contained file.

A bundle is what gets attached to a bug report. It is an ordinary trace store (open it
with :class:`TraceStore`), VACUUM'd and switched to a rollback journal so it is one
file with no ``-wal``/``-shm`` companions. It is built under a temporary name and
moved into place, so a failed bundle never leaves a half-written file behind (and it
never overwrites its source or, without ``overwrite``, any file: see :mod:`.files`).

Without redaction the trace is copied exactly: same uuid, same hashes, and the chain
is verified on the way. With ``redact`` the callable sees every event and may return
replacement ``(input, output)`` bytes. Changing an event's bytes changes its hash and
every hash after it, so a redacted trace is **re-chained** under a fresh uuid (two
different traces must not share one), in the current trace format (its chain starts
from its header, which names what was redacted); its metadata records what was done::

    meta["redacted"]       sorted names (``interface.function``) of the redacted calls
    meta["redacted_events"] how many calls were redacted (whether or not a value
                           changed: a reply already equal to its placeholder counts too)
    meta["redacted_from"]  {"uuid": original uuid, "head_hash": original head (hex)}
"""

from __future__ import annotations

import os
import uuid as uuid_module
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import IntegrityError, StoreError, TraceFormatError
from .chain import SegmentBuilder, new_packer
from .codec import event_from_record, new_unpacker, pack_meta, unpack_meta
from .files import new_file
from .integrity import ChainChecker
from .model import Event, TraceInfo, trace_genesis
from .packages import composition_of
from .reader import decode_segment
from .rows import TraceRef, insert_module, insert_segment, insert_trace
from .schema import TRACE_FORMAT_VERSION, open_database
from .sqlite import translate_errors
from .writer import FlushPolicy

if TYPE_CHECKING:
    from .protocols import StoreFile

__all__ = ["Redactor", "bundle"]

Redactor = Callable[[Event], "tuple[bytes | None, bytes | None] | None"]
"""Maps an event to replacement ``(input, output)`` bytes, or ``None`` to keep it."""


def bundle(
    store: StoreFile,
    ref: TraceRef,
    dest: str | os.PathLike[str],
    *,
    redact: Redactor | None = None,
    overwrite: bool = False,
) -> Path:
    """Write trace ``ref`` of ``store`` (and its module) to a new store at ``dest``
    (never ``store``'s own file; built under a temporary name, see :mod:`.files`)."""
    trace = store.trace(ref)
    info = trace.info
    with new_file(dest, overwrite=overwrite, sources=[Path(store.path)]) as partial:
        db, _ = open_database(partial, create=True)
        try:
            composition = composition_of(info)
            shas = [info.module_sha256] + (
                [] if composition is None else [p.module_sha256 for p in composition.packages]
            )
            for sha in dict.fromkeys(s for s in shas if s is not None):
                module = store.module_info(sha)
                wasm = store.module_bytes(module.sha256)
                with translate_errors(partial):
                    insert_module(db, module.sha256, module.name, wasm, module.types)
            with translate_errors(partial):
                db.execute("BEGIN IMMEDIATE")
                try:
                    _copy(trace.segments(), info, db, redact)
                    db.execute("COMMIT")
                except BaseException:
                    db.rollback()
                    raise
                db.vacuum()
                db.execute("PRAGMA journal_mode=DELETE")
        finally:
            db.close()
    return Path(dest)


def _copy(segments: Any, info: TraceInfo, db: Any, redact: Redactor | None) -> None:
    """Copy (and check) every event; re-chain them when ``redact`` is given."""
    checker = ChainChecker(info)
    if redact is None:
        trace_id = insert_trace(db, replace(info, replay_of=None), pack_meta(info.meta))
        try:
            for segment in segments:
                for fields, digest in decode_segment(segment):
                    checker.feed(fields, digest)
                checker.check_head(segment[0] + segment[1] - 1, segment[2])
                insert_segment(db, trace_id, segment)  # verified above; copied verbatim
        except (IntegrityError, TraceFormatError) as exc:
            raise StoreError(f"refusing to bundle a damaged trace: {exc}") from exc
        _checked_report(checker)
        db.execute("UPDATE traces SET event_count = ? WHERE id = ?", [checker.count, trace_id])
        return
    _copy_redacted(segments, info, db, redact, checker)


def _checked_report(checker: ChainChecker) -> None:
    report = checker.finish()
    if not report.ok:
        raise StoreError(f"refusing to bundle a damaged trace: {report.message}")


def _copy_redacted(
    segments: Any, info: TraceInfo, db: Any, redact: Redactor, checker: ChainChecker
) -> None:
    """Two passes: redact into a scratch table, then chain under the new header.

    A re-chained trace starts from a hash of its header, and the header's metadata
    names what was redacted, which is only known once every event has been seen.
    """
    pack = new_packer().pack
    names: set[str] = set()
    rewritten = 0
    db.execute("CREATE TEMP TABLE packr_redacted (first_seq INTEGER PRIMARY KEY, data BLOB)")
    try:
        try:
            for segment in segments:
                records = bytearray()
                for fields, digest in decode_segment(segment):
                    checker.feed(fields, digest)
                    event = event_from_record(fields, digest)
                    new_fields = list(fields)
                    replacement = redact(event)
                    if replacement is not None:
                        new_fields[5], new_fields[6] = _checked(replacement, event.seq)
                        rewritten += 1
                        names.add(event.name)
                    records += pack(new_fields)
                checker.check_head(segment[0] + segment[1] - 1, segment[2])
                db.execute(
                    "INSERT INTO temp.packr_redacted VALUES (?, ?)", [segment[0], bytes(records)]
                )
        except (IntegrityError, TraceFormatError) as exc:
            raise StoreError(f"refusing to bundle a damaged trace: {exc}") from exc
        _checked_report(checker)
        meta = {
            **info.meta,
            "redacted": sorted(names),
            "redacted_events": rewritten,
            "redacted_from": {"uuid": info.uuid, "head_hash": checker.head.hex()},
        }
        new = replace(
            info,
            uuid=str(uuid_module.uuid4()),  # two different traces must not share a uuid
            replay_of=None,
            format_version=TRACE_FORMAT_VERSION,
            meta=unpack_meta(pack_meta(meta)),  # as it reads back, which the genesis hashes
            head_hash=None,
            event_count=0,
        )
        trace_id = insert_trace(db, new, pack_meta(meta))
        builder = SegmentBuilder(trace_genesis(new))
        policy = FlushPolicy()
        for _first, data in db.execute(
            "SELECT first_seq, data FROM temp.packr_redacted ORDER BY first_seq"
        ).fetchall():
            unpacker = new_unpacker(max_buffer_size=max(len(data), 1), max_bin_len=len(data))
            unpacker.feed(data)
            for fields in unpacker:
                builder.add_fields(list(fields))
                if builder.pending >= policy.max_events or len(builder.buf) >= policy.max_bytes:
                    _flush(db, trace_id, builder)
        _flush(db, trace_id, builder)
    finally:
        db.execute("DROP TABLE IF EXISTS temp.packr_redacted")
    head = builder.head if info.head_hash is not None else None
    db.execute(
        "UPDATE traces SET head_hash = ?, event_count = ? WHERE id = ?",
        [head, checker.count, trace_id],
    )


def _flush(db: Any, trace_id: int, builder: SegmentBuilder) -> None:
    segment = builder.take()
    if segment is not None:
        insert_segment(db, trace_id, segment)


def _checked(replacement: Any, seq: int) -> tuple[bytes | None, bytes | None]:
    if not (isinstance(replacement, tuple) and len(replacement) == 2) or not all(
        v is None or isinstance(v, bytes) for v in replacement
    ):
        raise TypeError(
            f"redact() must return None or an (input, output) pair of bytes/None (event {seq})"
        )
    return replacement[0], replacement[1]
