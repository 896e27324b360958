"""Tampering is found: altered bytes, altered hashes, and events removed from anywhere."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar

import msgpack
import pytest

from packr_replay.errors import IntegrityError
from packr_replay.storage import TRACE_FORMAT_VERSION, FlushPolicy, MemoryTrace, TraceStore

from .util import raw, write_events


def make_trace(
    store: TraceStore, n: int = 100, seal: bool = True, module: str | None = None
) -> int:
    writer = store.begin_trace(module, flush=FlushPolicy(max_events=10, background=False))
    write_events(writer, n)
    if seal:
        writer.finish()
    else:
        writer.close()
    return writer.trace_id


def segment_of(path: Path, trace_id: int, seq: int) -> tuple[int, bytes]:
    ((first, data),) = raw(
        path,
        "SELECT first_seq, data FROM segments WHERE trace_id = ? AND first_seq <= ? "
        "ORDER BY first_seq DESC LIMIT 1",
        (trace_id, seq),
    )
    return first, data


def record_offsets(data: bytes, first: int, seq: int) -> tuple[int, int]:
    """Where event ``seq``'s input payload starts, and where its stored hash starts."""
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed(data)
    for _ in range(seq - first):
        unpacker.skip()  # fields
        unpacker.skip()  # hash
    assert unpacker.read_array_header() == 13
    for _ in range(5):  # seq, call, kind, interface, function
        unpacker.skip()
    input_at = unpacker.tell() + 2  # past the bin 8 header
    for _ in range(8):
        unpacker.skip()
    return input_at, unpacker.tell() + 2


def rewrite(path: Path, trace_id: int, first: int, data: bytes) -> None:
    raw(
        path,
        "UPDATE segments SET data = ? WHERE trace_id = ? AND first_seq = ?",
        (data, trace_id, first),
    )


class TestVerify:
    """verify() recomputes the chain and names the first bad event."""

    def test_clean(self, store: TraceStore) -> None:
        trace_id = make_trace(store)
        report = store.verify(trace_id)
        assert report.ok
        assert report.events == 100
        assert report.first_bad_seq is None
        report.raise_for_error()

    @pytest.mark.parametrize("seq", [0, 37, 99])
    def test_altered_input_byte(self, store: TraceStore, seq: int) -> None:
        trace_id = make_trace(store)
        first, data = segment_of(store.path, trace_id, seq)
        at, _ = record_offsets(data, first, seq)
        rewrite(store.path, trace_id, first, data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :])
        report = store.verify(trace_id)
        assert not report.ok
        assert report.first_bad_seq == seq
        assert f"event {seq}" in report.message
        with pytest.raises(IntegrityError) as err:
            report.raise_for_error()
        assert err.value.seq == seq

    def test_altered_hash(self, store: TraceStore) -> None:
        trace_id = make_trace(store)
        first, data = segment_of(store.path, trace_id, 55)
        _, at = record_offsets(data, first, 55)
        rewrite(store.path, trace_id, first, data[:at] + bytes(32) + data[at + 32 :])
        assert store.verify(trace_id).first_bad_seq == 55

    def test_undecodable_segment(self, store: TraceStore) -> None:
        trace_id = make_trace(store)
        first, data = segment_of(store.path, trace_id, 44)
        at, _ = record_offsets(data, first, 44)
        rewrite(store.path, trace_id, first, data[:at])  # cut inside event 44
        report = store.verify(trace_id)
        assert not report.ok
        assert report.first_bad_seq == 44

    def test_deleted_tail_of_sealed_trace(self, store: TraceStore) -> None:
        trace_id = make_trace(store)
        raw(store.path, "DELETE FROM segments WHERE trace_id = ? AND first_seq >= 80", (trace_id,))
        report = store.verify(trace_id)
        assert not report.ok
        assert report.first_bad_seq == 80
        assert "missing" in report.message

    def test_deleted_tail_of_unsealed_trace(self, store: TraceStore) -> None:
        trace_id = make_trace(store, seal=False)
        raw(store.path, "DELETE FROM segments WHERE trace_id = ? AND first_seq >= 90", (trace_id,))
        assert store.verify(trace_id).first_bad_seq == 90

    def test_deleted_middle(self, store: TraceStore) -> None:
        trace_id = make_trace(store)
        raw(store.path, "DELETE FROM segments WHERE trace_id = ? AND first_seq = 30", (trace_id,))
        assert store.verify(trace_id).first_bad_seq == 30
        with pytest.raises(IntegrityError) as err:
            list(store.trace(trace_id).events())
        assert err.value.seq == 30

    def test_altered_sealed_head(self, store: TraceStore) -> None:
        trace_id = make_trace(store)
        raw(store.path, "UPDATE traces SET head_hash = ? WHERE id = ?", (bytes(32), trace_id))
        assert store.verify(trace_id).first_bad_seq == 99

    def test_altered_module(self, store: TraceStore, module_sha: str) -> None:
        trace_id = make_trace(store, module=module_sha)
        raw(store.path, "UPDATE modules SET wasm = ? WHERE sha256 = ?", (b"\0asm evil", module_sha))
        report = store.verify(trace_id)
        assert not report.ok
        assert "module" in report.message

    def test_memory_trace(self) -> None:
        memory = MemoryTrace()
        write_events(memory, 20)
        assert memory.verify().ok
        memory._events[12] = dataclasses.replace(memory._events[12], input=b"forged")
        assert memory.verify().first_bad_seq == 12
        memory.finish()
        assert memory.verify().first_bad_seq == 12


class TestReadingChecksTheChain:
    """Every read (events, records: what replay, diff, show and export use) checks each
    event against the chain as it goes: a damaged event is an IntegrityError there, the
    events before it still read, and nothing altered is returned as if recorded."""

    @pytest.mark.parametrize("seq", [0, 37, 98])  # events with an input
    def test_altered_input_byte(self, store: TraceStore, seq: int) -> None:
        trace_id = make_trace(store)
        first, data = segment_of(store.path, trace_id, seq)
        at, _ = record_offsets(data, first, seq)
        rewrite(store.path, trace_id, first, data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :])
        seen: list[int] = []
        events = store.trace(trace_id).events()
        with pytest.raises(IntegrityError, match=f"trace {trace_id}: event {seq} does not match") as err:
            seen.extend(event.seq for event in events)
        assert err.value.seq == seq
        assert seen == list(range(seq))

    def test_reading_from_the_middle_checks_from_the_previous_segment(self, store: TraceStore) -> None:
        trace_id = make_trace(store)
        first, data = segment_of(store.path, trace_id, 55)
        _, at = record_offsets(data, first, 50)  # event 50: first of its segment
        rewrite(store.path, trace_id, first, data[:at] + bytes(32) + data[at + 32 :])
        with pytest.raises(IntegrityError) as err:
            list(store.trace(trace_id).events(start=53))
        assert err.value.seq in (50, 51)  # its hash, or the next event chaining after it
        assert [e.seq for e in store.trace(trace_id).events(start=60)][:1] == [60]

    def test_altered_segment_head(self, store: TraceStore) -> None:
        trace_id = make_trace(store)
        raw(store.path, "UPDATE segments SET head_hash = ? WHERE trace_id = ? AND first_seq = 20",
            (bytes(32), trace_id))  # fmt: skip
        with pytest.raises(IntegrityError, match="head hash differs") as err:
            list(store.trace(trace_id).events())
        assert err.value.seq == 29

    def test_deleted_tail_of_sealed_trace(self, store: TraceStore) -> None:
        trace_id = make_trace(store)
        raw(store.path, "DELETE FROM segments WHERE trace_id = ? AND first_seq >= 80", (trace_id,))
        with pytest.raises(IntegrityError, match="sealed with 100 events but 80 are stored"):
            list(store.trace(trace_id).events())

    def test_altered_sealed_head(self, store: TraceStore) -> None:
        trace_id = make_trace(store)
        raw(store.path, "UPDATE traces SET head_hash = ? WHERE id = ?", (bytes(32), trace_id))
        with pytest.raises(IntegrityError, match="sealed head hash"):
            list(store.trace(trace_id).events())

    def test_an_unsealed_trace_reads_to_its_end(self, store: TraceStore) -> None:
        trace_id = make_trace(store, seal=False)
        assert len(list(store.trace(trace_id).events())) == 100

    def test_a_non_canonical_record_of_the_same_values_reads(self, store: TraceStore) -> None:
        """Stored bytes that are not the writer's but decode to the very fields it hashed
        are not an alteration (verify agrees): the C check defers to the canonical one."""
        trace_id = make_trace(store)
        first, data = segment_of(store.path, trace_id, 12)
        unpacker = msgpack.Unpacker(raw=False, use_list=False)
        unpacker.feed(data)
        out = bytearray()
        for fields, digest in zip(unpacker, unpacker, strict=True):
            if fields[0] == 12:  # seq as a uint64 (0xcf) instead of a fixint
                packed = b"\x9d\xcf" + (12).to_bytes(8, "big") + b"".join(
                    msgpack.packb(f, use_bin_type=True) for f in fields[1:]
                )
            else:
                packed = msgpack.packb(fields, use_bin_type=True)
            out += packed + msgpack.packb(digest, use_bin_type=True)
        rewrite(store.path, trace_id, first, bytes(out))
        assert store.verify(trace_id).ok
        assert len(list(store.trace(trace_id).events())) == 100

    def test_one_event_by_seq_checks_its_segment(self, store: TraceStore) -> None:
        trace_id = make_trace(store)
        first, data = segment_of(store.path, trace_id, 37)
        at, _ = record_offsets(data, first, 37)
        rewrite(store.path, trace_id, first, data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :])
        trace = store.trace(trace_id)
        assert trace.event(25).seq == 25  # another segment
        with pytest.raises(IntegrityError, match="event 37 does not match"):
            trace.event(31)  # same segment as the altered event

    def test_export_stops_at_an_altered_event(self, store: TraceStore) -> None:
        import io

        trace_id = make_trace(store)
        first, data = segment_of(store.path, trace_id, 63)
        at, _ = record_offsets(data, first, 63)
        rewrite(store.path, trace_id, first, data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :])
        with pytest.raises(IntegrityError, match="event 63 does not match"):
            store.export_trace(trace_id, io.BytesIO())


class TestHeaderIsCovered:
    """From format 3 on the chain starts from a hash of the trace's header: editing what
    a replay runs (module, settings) or how it is labelled breaks it at event 0."""

    EDITS: ClassVar[dict[str, tuple[str, object]]] = {
        "meta (fuel)": ("UPDATE traces SET meta = ? WHERE id = ?",
                        msgpack.packb({"fuel": None, "reply": "scratch"})),
        "label": ("UPDATE traces SET label = ? WHERE id = ?", "reproduced"),
        "host": ("UPDATE traces SET host = ? WHERE id = ?", "elsewhere"),
        "created_at": ("UPDATE traces SET created_at = ? WHERE id = ?", "1999-01-01T00:00:00"),
        "uuid": ("UPDATE traces SET uuid = ? WHERE id = ?", "00000000-0000-0000-0000-000000000000"),
        "format_version": ("UPDATE traces SET format_version = ? WHERE id = ?", 2),
    }  # fmt: skip

    @pytest.mark.parametrize("edit", list(EDITS))
    def test_an_edited_header_breaks_the_chain(self, store: TraceStore, edit: str) -> None:
        trace_id = make_trace(store)
        sql, value = self.EDITS[edit]
        raw(store.path, sql, (value, trace_id))
        report = store.verify(trace_id)
        assert not report.ok
        assert report.first_bad_seq == 0
        assert "header" in report.message or edit == "format_version"
        with pytest.raises(IntegrityError, match="event 0"):
            list(store.trace(trace_id).events())

    def test_an_edited_header_breaks_an_empty_sealed_trace(self, store: TraceStore) -> None:
        trace_id = make_trace(store, n=0)
        raw(store.path, "UPDATE traces SET label = 'x' WHERE id = ?", (trace_id,))
        assert not store.verify(trace_id).ok

    def test_pointing_at_another_stored_module(self, store: TraceStore, module_sha: str) -> None:
        other = store.add_module(b"\0asm\x01\0\0\0", "other.wasm")
        trace_id = make_trace(store, module=module_sha)
        raw(store.path, "UPDATE traces SET module_sha256 = ? WHERE id = ?", (other, trace_id))
        report = store.verify(trace_id)
        assert not report.ok
        assert report.first_bad_seq == 0

    def test_a_swapped_module_is_never_handed_out(self, store: TraceStore, module_sha: str) -> None:
        trace_id = make_trace(store, module=module_sha)
        raw(store.path, "UPDATE modules SET wasm = ? WHERE sha256 = ?", (b"\0asm evil", module_sha))
        with pytest.raises(IntegrityError, match="does not match its SHA-256"):
            store.module_bytes(module_sha)
        with pytest.raises(IntegrityError, match="does not match its SHA-256"):
            store.trace(trace_id).module_bytes()
        assert "altered" in store.verify(trace_id).message

    def test_the_header_survives_export_import_and_bundles(
        self, store: TraceStore, module_sha: str, tmp_path: Path
    ) -> None:
        import io

        writer = store.begin_trace(module_sha, label="l", host="h", meta={"fuel": 7, "x": [1.5]})
        write_events(writer, 30)
        info = writer.finish()
        stream = io.BytesIO()
        store.export_trace(info.id, stream)
        with TraceStore(tmp_path / "copy.db", create=True) as copy:
            stream.seek(0)
            copied = copy.import_trace(stream)
            assert copy.verify(copied).ok
        made = store.bundle(info.id, tmp_path / "bundle.db")
        with TraceStore(made, readonly=True) as bundled:
            assert bundled.verify(bundled.traces()[0].id).ok

    def test_a_redacted_bundle_binds_what_was_redacted(
        self, store: TraceStore, tmp_path: Path
    ) -> None:
        trace_id = make_trace(store, n=30)
        made = store.bundle(trace_id, tmp_path / "r.db", redact=lambda e: (b"<r>", e.output))
        with TraceStore(made) as bundled:
            info = bundled.traces()[0]
            assert info.format_version == TRACE_FORMAT_VERSION
            assert info.meta["redacted_events"] == 30
            assert bundled.verify(info.id).ok
        raw(made, "UPDATE traces SET meta = ?", (msgpack.packb({"redacted": []}),))
        with TraceStore(made, readonly=True) as bundled:
            assert bundled.verify(bundled.traces()[0].id).first_bad_seq == 0

    def test_older_formats_keep_their_uuid_genesis(self, store: TraceStore) -> None:
        """A format-2 trace (imported, or in a migrated file) verifies as it always did."""
        from packr_replay.storage import chain_genesis, trace_genesis

        trace_id = make_trace(store)
        info = dataclasses.replace(store.trace(trace_id).info, format_version=2)
        assert trace_genesis(info) == chain_genesis(info.uuid)


def _drain(records: object) -> tuple[list[object], tuple[type, str] | None]:
    got: list[object] = []
    try:
        for record in records:  # type: ignore[attr-defined]
            got.append(tuple(record))  # (a LazyRecord is built as the pair it stands for)
    except Exception as exc:
        return got, (type(exc), str(exc))
    return got, None


def _alter_input(path: Path, trace_id: int, seq: int) -> None:
    first, data = segment_of(path, trace_id, seq)
    at, _ = record_offsets(data, first, seq)
    rewrite(path, trace_id, first, data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :])


def _alter_hash(path: Path, trace_id: int, seq: int) -> None:
    first, data = segment_of(path, trace_id, seq)
    _, at = record_offsets(data, first, seq)
    rewrite(path, trace_id, first, data[:at] + bytes(32) + data[at + 32 :])


DAMAGES = {
    "none": lambda path, trace_id: None,
    "input-0": lambda path, trace_id: _alter_input(path, trace_id, 0),
    "input-37": lambda path, trace_id: _alter_input(path, trace_id, 37),
    "hash-50": lambda path, trace_id: _alter_hash(path, trace_id, 50),
    "segment-head": lambda path, trace_id: raw(
        path, "UPDATE segments SET head_hash = ? WHERE trace_id = ? AND first_seq = 20",
        (bytes(32), trace_id)),
    "tail": lambda path, trace_id: raw(
        path, "DELETE FROM segments WHERE trace_id = ? AND first_seq >= 80", (trace_id,)),
    "sealed-head": lambda path, trace_id: raw(
        path, "UPDATE traces SET head_hash = ? WHERE id = ?", (bytes(32), trace_id)),
    "cut-segment": lambda path, trace_id: rewrite(
        path, trace_id, 30, segment_of(path, trace_id, 30)[1][:-5]),
}  # fmt: skip


class TestLazyRecords:
    """lazy_records (the native replay's reader: records built on first use) reads and
    refuses exactly what records reads and refuses, from any start."""

    @pytest.mark.parametrize("damage", sorted(DAMAGES))
    @pytest.mark.parametrize("start", [0, 25, 55])
    def test_same_records_and_errors(self, store: TraceStore, damage: str, start: int) -> None:
        trace_id = make_trace(store)
        DAMAGES[damage](store.path, trace_id)
        trace = store.trace(trace_id)
        eager = _drain(trace.records(start))
        assert _drain(trace.lazy_records(start)) == eager
        if start == 0:
            assert (eager[1] is None) == (damage == "none")
