"""Export/import streams and bundles: lossless copies, checked on the way in."""

from __future__ import annotations

import io
import sqlite3
import subprocess
import sys
import textwrap
from contextlib import closing
from pathlib import Path

import msgpack
import pytest

from packr_replay.errors import IntegrityError, StoreError, TraceFormatError
from packr_replay.storage import (
    Event,
    EventKind,
    FlushPolicy,
    TraceStatus,
    TraceStore,
    bundle,
)

from .util import MODULE_BYTES, raw, write_events


@pytest.fixture
def recorded(store: TraceStore, module_sha: str) -> int:
    meta = {"fuel": 1000, "args": ["a", b"b"], "nested": {"x": None}}
    with store.begin_trace(
        module_sha, label="orig", host="h", meta=meta, flush=FlushPolicy(max_events=9)
    ) as w:
        write_events(w, 60)
    return w.trace_id


def export(store: TraceStore, ref: int | str) -> bytes:
    buf = io.BytesIO()
    store.export_trace(ref, buf)
    return buf.getvalue()


class TestExportImport:
    """A trace survives export and import exactly: uuid, fields, hashes, module."""

    def test_round_trip(self, store: TraceStore, recorded: int, tmp_path: Path) -> None:
        data = export(store, recorded)
        with TraceStore(tmp_path / "other.db", create=True) as other:
            new_id = other.import_trace(io.BytesIO(data))
            a, b = store.trace(recorded), other.trace(new_id)
            assert b.info == a.info.__class__(**{**_fields(a.info), "id": new_id})
            assert list(b.events()) == list(a.events())
            assert [e.hash for e in b.events()] == [e.hash for e in a.events()]
            assert b.module_bytes() == MODULE_BYTES
            assert other.modules()[0].types == store.modules()[0].types
            assert other.verify(new_id).ok
            assert export(other, new_id) == data  # byte-identical when exported again

    def test_into_the_same_store_is_refused(self, store: TraceStore, recorded: int) -> None:
        data = export(store, recorded)
        with pytest.raises(StoreError, match="already holds"):
            store.import_trace(io.BytesIO(data))
        assert len(store.traces()) == 1

    def test_incomplete_trace(self, store: TraceStore, tmp_path: Path) -> None:
        writer = store.begin_trace(None)
        write_events(writer, 12)
        writer.flush()
        data = export(store, writer.trace_id)  # still recording: a snapshot
        writer.close()
        with TraceStore(tmp_path / "o.db", create=True) as other:
            info = other.trace(other.import_trace(io.BytesIO(data))).info
            assert info.status is TraceStatus.INCOMPLETE
            assert info.event_count == 12
            assert other.verify(info.id).ok

    def test_replay_of_is_kept_by_uuid(
        self, store: TraceStore, recorded: int, tmp_path: Path
    ) -> None:
        replay = store.begin_trace(None, replay_of=recorded).finish()
        with TraceStore(tmp_path / "o.db", create=True) as other:
            lone = other.trace(other.import_trace(io.BytesIO(export(store, replay.id)))).info
            assert lone.replay_of is None
            assert lone.replay_of_uuid == store.trace(recorded).info.uuid
        with TraceStore(tmp_path / "p.db", create=True) as other:
            orig_id = other.import_trace(io.BytesIO(export(store, recorded)))
            linked = other.trace(other.import_trace(io.BytesIO(export(store, replay.id)))).info
            assert linked.replay_of == orig_id

    def test_through_a_pipe(self, store: TraceStore, recorded: int, tmp_path: Path) -> None:
        """The CLI's use: export to stdout, import from stdin, in another process."""
        root = Path(__file__).resolve().parents[2]
        code = textwrap.dedent(
            """
            import sys
            from packr_replay.storage import TraceStore
            with TraceStore(sys.argv[1], create=True) as s:
                print(s.import_trace(sys.stdin.buffer))
            """
        )
        dest = tmp_path / "piped.db"
        proc = subprocess.run(
            [sys.executable, "-c", code, str(dest)],
            input=export(store, recorded),
            capture_output=True,
            cwd=root,
            check=True,
        )
        with TraceStore(dest) as other:
            new_id = int(proc.stdout)
            assert list(other.trace(new_id).events()) == list(store.trace(recorded).events())


class TestHostileStreams:
    """Bad streams are refused whole: nothing is stored."""

    def check_refused(
        self, data: bytes, tmp_path: Path, error: type[Exception] = TraceFormatError
    ) -> None:
        with TraceStore(tmp_path / "in.db", create=True) as other:
            with pytest.raises(error):
                other.import_trace(io.BytesIO(data))
            assert other.traces() == []
            assert other.modules() == []

    def test_cut_short(self, store: TraceStore, recorded: int, tmp_path: Path) -> None:
        data = export(store, recorded)
        for cut in (0, 10, len(data) // 2, len(data) - 5):
            self.check_refused(data[:cut], tmp_path)

    def test_flipped_event_byte(self, store: TraceStore, recorded: int, tmp_path: Path) -> None:
        data = bytearray(export(store, recorded))
        at = data.rindex(b"boom 53")  # an error message inside event 53
        data[at] ^= 0x20
        with TraceStore(tmp_path / "in.db", create=True) as other:
            with pytest.raises(IntegrityError) as err:
                other.import_trace(io.BytesIO(bytes(data)))
            assert err.value.seq == 53
            assert other.traces() == []

    def test_newer_version(self, store: TraceStore, recorded: int, tmp_path: Path) -> None:
        unpacker = msgpack.Unpacker(io.BytesIO(export(store, recorded)), raw=False)
        header, rest = unpacker.unpack(), b"".join(msgpack.packb(o) for o in unpacker)
        header["version"] = 99
        with (
            TraceStore(tmp_path / "in.db", create=True) as other,
            pytest.raises(TraceFormatError) as err,
        ):
            other.import_trace(io.BytesIO(msgpack.packb(header) + rest))
        assert "pip install -U packr-replay" in str(err.value)

    @pytest.mark.parametrize(
        "header",
        [
            {"format": "something-else"},
            [1, 2, 3],
            {"format": "packr-replay-trace", "version": 1},
            {"format": "packr-replay-trace", "version": 1, "trace": {"uuid": 5}},
        ],
    )
    def test_bad_headers(self, header: object, tmp_path: Path) -> None:
        self.check_refused(msgpack.packb(header), tmp_path)

    def test_module_digest_mismatch(self, store: TraceStore, recorded: int, tmp_path: Path) -> None:
        data = export(store, recorded)
        tampered = data.replace(MODULE_BYTES[8:40], bytes(32), 1)
        self.check_refused(tampered, tmp_path)

    def test_extension_types(self, tmp_path: Path) -> None:
        self.check_refused(msgpack.packb({"format": msgpack.ExtType(3, b"x")}), tmp_path)

    def test_not_msgpack(self, tmp_path: Path) -> None:
        self.check_refused(b"\xc1\xc1\xc1", tmp_path)


class TestBundle:
    """A bundle is one compact file with one trace and its module."""

    def test_exact_copy(self, store: TraceStore, recorded: int, tmp_path: Path) -> None:
        store.begin_trace(None, label="unrelated").finish()
        dest = bundle(store, recorded, tmp_path / "bug.db")
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("bug")) == ["bug.db"]
        with closing(sqlite3.connect(dest)) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
            assert conn.execute("PRAGMA freelist_count").fetchone()[0] == 0  # VACUUM'd
        with TraceStore(dest, readonly=True) as b:
            (info,) = b.traces()
            original = store.trace(recorded)
            assert info.uuid == original.info.uuid
            assert info.head_hash == original.info.head_hash
            assert list(b.trace(info.id).events()) == list(original.events())
            assert [e.hash for e in b.trace(info.id).events()] == [
                e.hash for e in original.events()
            ]
            assert b.trace(info.id).module_bytes() == MODULE_BYTES
            assert b.verify(info.id).ok

    def test_written_to_while_read(self, store: TraceStore, recorded: int, tmp_path: Path) -> None:
        """Opened for writing, a bundle takes a writer while its traces are being read
        (``replay --save`` of a bug report): it switches back to WAL."""
        dest = bundle(store, recorded, tmp_path / "bug.db")
        with TraceStore(dest, busy_timeout=0.5) as b:
            events = b.trace(b.traces()[0].id).events()
            next(events)  # a read in progress
            with b.begin_trace(None, label="while reading") as w:
                w.append(1, EventKind.EXPORT, "", "run", b"x")
            assert len(list(events)) == 59
            assert b.db.journal_mode == "wal"
        with closing(sqlite3.connect(dest)) as conn:
            assert conn.execute("SELECT count(*) FROM traces").fetchone()[0] == 2

    def test_into_a_missing_directory(self, store: TraceStore, recorded: int, tmp_path: Path) -> None:
        dest = tmp_path / "nonexistent_dir" / "b.db"
        with pytest.raises(StoreError) as info:
            bundle(store, recorded, dest)
        assert str(info.value) == f"cannot create {dest}: no such directory {dest.parent}"

    def test_redacted(self, store: TraceStore, recorded: int, tmp_path: Path) -> None:
        def redact(event: Event) -> tuple[bytes | None, bytes | None] | None:
            if event.kind is EventKind.IMPORT and event.interface == "wasi:io/streams":
                return b"<redacted>", None
            return None

        dest = store.bundle(recorded, tmp_path / "redacted.db", redact=redact)
        original = store.trace(recorded)
        with TraceStore(dest) as b:
            (info,) = b.traces()
            assert info.uuid != original.info.uuid
            assert info.meta["redacted"] == ["wasi:io/streams.read"]
            assert info.meta["redacted_events"] == 12
            assert info.meta["redacted_from"] == {
                "uuid": original.info.uuid,
                "head_hash": (original.info.head_hash or b"").hex(),
            }
            assert info.meta["fuel"] == 1000
            assert info.status is TraceStatus.COMPLETE
            assert b.verify(info.id).ok  # re-chained
            for new, old in zip(b.trace(info.id).events(), original.events(), strict=True):
                if old.interface == "wasi:io/streams":
                    assert (new.input, new.output) == (b"<redacted>", None)
                else:
                    assert new == old
                    assert new.hash != old.hash  # a new chain from a new uuid

    def test_redacted_calls_are_counted_even_when_no_value_changes(
        self, store: TraceStore, recorded: int, tmp_path: Path
    ) -> None:
        """A redacted call whose values already equal their placeholders is still one
        of the calls redacted: the count is of calls, not of changed values."""

        def unchanged(event: Event) -> tuple[bytes | None, bytes | None] | None:
            if event.kind is EventKind.IMPORT and event.interface == "wasi:io/streams":
                return event.input, event.output
            return None

        dest = store.bundle(recorded, tmp_path / "same.db", redact=unchanged)
        with TraceStore(dest) as b:
            (info,) = b.traces()
            assert info.meta["redacted"] == ["wasi:io/streams.read"]
            assert info.meta["redacted_events"] == 12

    def test_redactor_must_return_bytes(
        self, store: TraceStore, recorded: int, tmp_path: Path
    ) -> None:
        with pytest.raises(TypeError, match="redact"):
            bundle(store, recorded, tmp_path / "x.db", redact=lambda e: "nope")  # type: ignore[arg-type,return-value]
        assert list(tmp_path.glob("*x.db*")) == []

    def test_existing_destination(self, store: TraceStore, recorded: int, tmp_path: Path) -> None:
        dest = tmp_path / "bug.db"
        dest.write_bytes(b"precious")
        with pytest.raises(StoreError, match="already exists"):
            bundle(store, recorded, dest)
        assert dest.read_bytes() == b"precious"
        bundle(store, recorded, dest, overwrite=True)
        with TraceStore(dest) as b:
            assert len(b.traces()) == 1

    def test_damaged_trace_is_not_bundled(
        self, store: TraceStore, recorded: int, tmp_path: Path
    ) -> None:
        raw(store.path, "DELETE FROM segments WHERE first_seq = 18")
        with pytest.raises(StoreError, match="damaged"):
            bundle(store, recorded, tmp_path / "bug.db")
        assert list(tmp_path.glob("*bug.db*")) == []


def _fields(info: object) -> dict[str, object]:
    import dataclasses

    return {f.name: getattr(info, f.name) for f in dataclasses.fields(info)}  # type: ignore[arg-type]
