"""Export and import: one trace as a versioned msgpack stream, file-object in, file-object out.

The stream is three parts, each plain msgpack::

    header   {"format": "packr-replay-trace", "version": N, "tool_version": ...,
              "trace": {uuid, created_at, status, label, ..., meta},
              "module": {"sha256", "name", "types", "wasm"} | nil,
              "package_modules": [module, ...]}    (format 4: a composition's modules)
    events   event_count records, each the 13 chain fields then the 32-byte hash
             (byte for byte what a segment stores)
    trailer  {"end": true, "events": n, "head": <hash of the last event>}

The uuid and every hash survive the trip, so ``verify`` passes on the imported copy
and both copies name the same chain. The trailer makes a cut-off pipe an error rather
than a silently shorter trace. Nothing in a stream is trusted: limits on every
length, the version checked first, each hash recomputed, the module's digest checked,
and the whole import is one transaction -- all or nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from typing import IO, TYPE_CHECKING, Any

import msgpack

from .._version import __version__
from ..errors import IntegrityError, StoreError, TraceFormatError
from . import codec
from .chain import SegmentBuilder
from .codec import MAX_BLOB_BYTES, Shape, check_meta, decode_records, new_unpacker, pack_meta
from .model import TraceInfo, TraceStatus, trace_genesis
from .packages import composition_of
from .reader import Trace
from .rows import find_uuid, insert_module, insert_segment, insert_trace
from .schema import TRACE_FORMAT_VERSION, newer_format_message
from .sqlite import translate_errors
from .writer import FlushPolicy

if TYPE_CHECKING:
    from .protocols import StoreFile

__all__ = ["STREAM_FORMAT", "export_trace", "import_trace"]

STREAM_FORMAT = "packr-replay-trace"
_STAGE_CHUNK = 1024 * 1024
_WRITE_CHUNK = 256 * 1024


def _trace_header(info: TraceInfo, event_count: int, head: bytes | None) -> dict[str, Any]:
    return {
        "uuid": info.uuid,
        "created_at": info.created_at,
        "status": str(info.status),
        "label": info.label,
        "host": info.host,
        "tool_version": info.tool_version,
        "format_version": info.format_version,
        "event_count": event_count,
        "replay_of_uuid": info.replay_of_uuid,
        "completed_at": info.completed_at,
        "head_hash": head,
        "module_sha256": info.module_sha256,
        "meta": info.meta,
        "end_reason": info.end_reason,
    }


def export_trace(store: StoreFile, trace: Trace, fileobj: IO[bytes]) -> int:
    """Write ``trace`` to ``fileobj``; returns the number of events written.

    A trace still being recorded is exported as far as it is committed (a snapshot of
    whole segments), with status ``incomplete`` once imported.
    """
    info = trace.info
    sealed = info.head_hash is not None
    count = info.event_count if sealed else len(trace)
    module = None if info.module_sha256 is None else _module(store, info.module_sha256)
    composition = composition_of(info)
    package_modules = []
    if composition is not None:
        shas = dict.fromkeys(p.module_sha256 for p in composition.packages if p.module_sha256)
        package_modules = [_module(store, sha) for sha in shas]
    packer = msgpack.Packer(use_bin_type=True)
    fileobj.write(
        packer.pack(
            {
                "format": STREAM_FORMAT,
                "version": TRACE_FORMAT_VERSION,
                "tool_version": __version__,
                "trace": _trace_header(info, count, info.head_hash),
                "module": module,
                "package_modules": package_modules,
            }
        )
    )
    head = trace_genesis(info)
    written = 0
    chunk: list[bytes] = []
    size = 0
    for segment in trace.segments():
        if written >= count:
            break
        # Validated and checked against the chain before sending: an altered event stops
        # the export with an IntegrityError instead of travelling in the stream.
        for _fields, digest in codec.decode_segment(segment[3], segment[0], segment[1], head, info.id):
            head = digest
        written += segment[1]
        chunk.append(segment[3])
        size += len(segment[3])
        if size >= _WRITE_CHUNK:
            fileobj.write(b"".join(chunk))
            chunk, size = [], 0
    if chunk:
        fileobj.write(b"".join(chunk))
    if written != count:
        raise StoreError(
            f"trace {info.id} has {written} events stored but {count} recorded; "
            "run verify to find out what is missing"
        )
    fileobj.write(packer.pack({"end": True, "events": written, "head": head}))
    return written


def _module(store: StoreFile, sha256: str) -> dict[str, Any]:
    module_info = store.module_info(sha256)
    return {
        "sha256": module_info.sha256,
        "name": module_info.name,
        "types": module_info.types,
        "wasm": store.module_bytes(sha256),
    }


# -------------------------------------------------------------------------- import


def _field(mapping: dict[str, Any], key: str, types: tuple[type, ...], where: str) -> Any:
    value = mapping.get(key)
    if type(value) not in types:
        raise TraceFormatError(f"{where}: field {key!r} is missing or has the wrong type")
    return value


_OPT_STR = (str, type(None))


def _read_header(
    unpacker: msgpack.Unpacker,
) -> tuple[TraceInfo, int, dict[str, Any] | None, list[dict[str, Any]]]:
    try:
        header = unpacker.unpack()
    except msgpack.OutOfData:
        raise TraceFormatError("the trace stream is empty or cut short in its header") from None
    except (ValueError, TypeError) as exc:
        raise TraceFormatError(f"not a packr-replay trace stream: {exc}") from None
    if not isinstance(header, dict) or header.get("format") != STREAM_FORMAT:
        raise TraceFormatError("not a packr-replay trace stream (no format marker)")
    version = header.get("version")
    if type(version) is not int or version < 1:
        raise TraceFormatError("trace stream has no valid format version")
    if version > TRACE_FORMAT_VERSION:
        raise TraceFormatError(newer_format_message("this trace stream", version))
    where = "trace stream header"
    t = _field(header, "trace", (dict,), where)
    status_text = _field(t, "status", (str,), where)
    try:
        status = TraceStatus(status_text)
    except ValueError:
        raise TraceFormatError(f"{where}: unknown status {status_text!r}") from None
    head = _field(t, "head_hash", (bytes, type(None)), where)
    if head is not None and len(head) != 32:
        raise TraceFormatError(f"{where}: malformed head hash")
    count = _field(t, "event_count", (int,), where)
    fmt = _field(t, "format_version", (int,), where)
    if fmt > TRACE_FORMAT_VERSION:
        raise TraceFormatError(newer_format_message("the trace in this stream", fmt))
    if count < 0:
        raise TraceFormatError(f"{where}: negative event count")
    try:
        meta = check_meta(_field(t, "meta", (dict,), where))
    except TypeError as exc:
        raise TraceFormatError(f"{where}: {exc}") from None
    info = TraceInfo(
        id=0,
        uuid=_field(t, "uuid", (str,), where),
        created_at=_field(t, "created_at", (str,), where),
        module_sha256=_field(t, "module_sha256", _OPT_STR, where),
        status=status,
        label=_field(t, "label", _OPT_STR, where),
        host=_field(t, "host", _OPT_STR, where),
        tool_version=_field(t, "tool_version", (str,), where),
        format_version=fmt,
        event_count=count,
        completed_at=_field(t, "completed_at", _OPT_STR, where),
        head_hash=head,
        meta=meta,
        replay_of_uuid=_field(t, "replay_of_uuid", _OPT_STR, where),
        # (streams before format 5 do not have it)
        end_reason=_field(t, "end_reason", _OPT_STR, where) if "end_reason" in t else None,
    )
    module = _field(header, "module", (dict, type(None)), where)
    if module is not None:
        _check_module(module)
        if module["sha256"] != info.module_sha256:
            raise TraceFormatError("the trace stream's module is not the one its trace ran")
    package_modules = header.get("package_modules", [])
    if not isinstance(package_modules, (list, tuple)) or not all(
        isinstance(m, dict) for m in package_modules
    ):
        raise TraceFormatError(f"{where}: field 'package_modules' has the wrong type")
    for m in package_modules:
        _check_module(m)
    return info, count, module, list(package_modules)


def _check_module(module: dict[str, Any]) -> None:
    where = "trace stream module"
    wasm = _field(module, "wasm", (bytes,), where)
    _field(module, "name", (str,), where)
    _field(module, "types", (bytes, type(None)), where)
    if hashlib.sha256(wasm).hexdigest() != _field(module, "sha256", (str,), where):
        raise TraceFormatError("a module in the trace stream does not match its SHA-256")


def import_trace(store: StoreFile, fileobj: IO[bytes]) -> int:
    """Import one exported trace into ``store``; returns its new id.

    A stream that is not a regular file (a pipe, a socket) is first copied to a
    temporary file: the import holds the store's write lock while it reads, and a
    writer must not wait on whoever feeds the pipe.
    """
    with _staged(fileobj) as staged:
        return _import(store, staged)


@contextlib.contextmanager
def _staged(fileobj: IO[bytes]) -> Iterator[IO[bytes]]:
    if _regular_file(fileobj):
        yield fileobj
        return
    with tempfile.TemporaryFile(prefix="packr-replay-import-") as tmp:
        shutil.copyfileobj(fileobj, tmp, _STAGE_CHUNK)
        tmp.seek(0)
        yield tmp


def _regular_file(fileobj: IO[bytes]) -> bool:
    try:
        return stat.S_ISREG(os.fstat(fileobj.fileno()).st_mode)
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return isinstance(fileobj, io.BytesIO)  # in memory: nothing to wait for


def _import(store: StoreFile, fileobj: IO[bytes]) -> int:
    shape = Shape(records=False)  # the header and trailer are maps; events are flat
    unpacker = new_unpacker(fileobj, max_buffer_size=MAX_BLOB_BYTES + 4 * 1024 * 1024, shape=shape)
    info, count, module, package_modules = _read_header(unpacker)
    meta = pack_meta(info.meta)
    db = store.db
    path = store.path
    policy = FlushPolicy()
    with translate_errors(path):
        existing = find_uuid(db, info.uuid)
        if existing is not None:
            raise StoreError(f"{path} already holds trace {info.uuid} (id {existing})")
        db.execute("BEGIN IMMEDIATE")
        try:
            for m in package_modules:
                insert_module(db, m["sha256"], m["name"], m["wasm"], m["types"])
            if module is not None:
                insert_module(
                    db, module["sha256"], module["name"], module["wasm"], module["types"]
                )
            elif info.module_sha256 is not None and (
                db.execute(
                    "SELECT 1 FROM modules WHERE sha256 = ?", [info.module_sha256]
                ).fetchone()
                is None
            ):
                raise TraceFormatError(
                    f"the trace stream refers to module {info.module_sha256} but carries no module"
                )
            replay_of = None
            if info.replay_of_uuid is not None:
                replay_of = find_uuid(db, info.replay_of_uuid)
            trace_id = insert_trace(db, _with(info, replay_of), meta)
            builder = SegmentBuilder(trace_genesis(info))
            shape.records = True
            for fields, digest in decode_records(unpacker, 0, count):
                if builder.add_fields(list(fields)) != digest:
                    raise IntegrityError(
                        info.uuid, fields[0], f"event {fields[0]} does not match its hash"
                    )
                if builder.pending >= policy.max_events or len(builder.buf) >= policy.max_bytes:
                    _flush(db, trace_id, builder)
            _flush(db, trace_id, builder)
            shape.records = False
            _check_trailer(unpacker, info, count, builder.head)
            db.execute("COMMIT")
        except BaseException:
            db.rollback()
            raise
    return trace_id


def _with(info: TraceInfo, replay_of: int | None) -> TraceInfo:
    return replace(info, replay_of=replay_of)


def _flush(db: Any, trace_id: int, builder: SegmentBuilder) -> None:
    segment = builder.take()
    if segment is not None:
        insert_segment(db, trace_id, segment)


def _check_trailer(unpacker: msgpack.Unpacker, info: TraceInfo, count: int, head: bytes) -> None:
    try:
        trailer = unpacker.unpack()
    except msgpack.OutOfData:
        raise TraceFormatError("the trace stream is cut short: no end marker") from None
    except (ValueError, TypeError) as exc:
        raise TraceFormatError(f"the trace stream's end marker is unreadable: {exc}") from None
    if not isinstance(trailer, dict) or trailer.get("end") is not True:
        raise TraceFormatError("the trace stream has more events than its header says")
    if trailer.get("events") != count or trailer.get("head") != head:
        raise IntegrityError(
            info.uuid, count, "the trace stream's end marker does not match its events"
        )
    if info.head_hash is not None and info.head_hash != head:
        raise IntegrityError(
            info.uuid, max(count - 1, 0), "the events do not end at the trace's sealed head hash"
        )
