"""A Session on a trace file another process is still creating (two pytest-xdist
workers sharing a file): a mode that may record waits for that creation or finishes
it; ``none``, which only reads (and works on read-only storage), refuses it with the
typed :class:`UnfinishedStore`."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from packr_replay import api
from packr_replay.abi import String
from packr_replay.errors import TraceFormatError, UnfinishedStore
from packr_replay.runtime import Module
from packr_replay.storage import TraceStatus, TraceStore
from packr_replay.storage.schema import TRACE_FORMAT_VERSION
from tests.storage.util import half_created

from .conftest import demo_host


def empty(path: Path) -> None:
    """A zero-byte file: what a creator's first open leaves before it writes anything."""
    path.write_bytes(b"")


@pytest.mark.parametrize("unfinished", [half_created, empty], ids=["half-created", "empty"])
class TestUnfinishedFile:
    @pytest.mark.parametrize("mode", ["once", "all", "new_episodes"])
    def test_a_mode_that_records_finishes_it(
        self, guest: Callable[[str], Module], db: Path, unfinished: Callable[[Path], None],
        mode: str,
    ) -> None:  # fmt: skip
        unfinished(db)
        with api.Session(guest("clock_actor"), store=db, label="t", mode=mode, host=demo_host(1)) as s:
            assert s.recording
            assert not s.replaying
            first = s.call("run", String("Ada"))
        with TraceStore(db, readonly=True) as store:
            assert store.format_version == TRACE_FORMAT_VERSION
            assert [(t.label, t.status) for t in store.traces()] == [("t", TraceStatus.COMPLETE)]
        with api.Session(guest("clock_actor"), store=db, label="t", mode="none") as s:
            assert s.call("run", String("Ada")) == first

    def test_none_refuses_it_typed(
        self, guest: Callable[[str], Module], db: Path, unfinished: Callable[[Path], None]
    ) -> None:
        unfinished(db)
        before = db.read_bytes()
        with pytest.raises(UnfinishedStore) as err:
            api.Session(guest("clock_actor"), store=db, label="t", mode="none")
        assert isinstance(err.value, TraceFormatError)
        assert err.value.path == db
        assert db.read_bytes() == before  # a replay-only session writes nothing

    def test_recorded_trace(self, db: Path, unfinished: Callable[[Path], None]) -> None:
        unfinished(db)
        with pytest.raises(UnfinishedStore):
            api.recorded_trace(db, "t", can_record=False)
        assert api.recorded_trace(db, "t", can_record=True) is None
        with TraceStore(db, readonly=True) as store:  # finished: now it reads
            assert store.traces() == []


# A creator in another process, stopped inside its creation transaction (its second
# migration sleeps) until the test says go: the real creation code, held mid-way.
CREATOR = """
import sys, time
from pathlib import Path
from sqlite_utils import Migrations
from packr_replay.storage import schema, sqlite

path, ready, go = (Path(a) for a in sys.argv[1:4])
slow = Migrations("packr-replay")
held = []
for migration in schema.MIGRATIONS._migrations:
    def run(db, fn=migration.fn):
        if not held:  # the file's creation, not the scratch copy checked afterwards
            held.append(True)
            ready.touch()
            deadline = time.monotonic() + 60
            while not go.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.3)  # the other side is now waiting on the write lock
        fn(db)
    slow(name=migration.name)(run)
db = sqlite.connect(path, create=True)
print(schema.ensure_schema(db, path, create=True, readonly=False, migrations=slow))
db.close()
"""


def test_a_session_waits_for_another_process_creating_the_file(
    guest: Callable[[str], Module], db: Path, tmp_path: Path
) -> None:
    ready, go = tmp_path / "ready", tmp_path / "go"
    creator = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(CREATOR), str(db), str(ready), str(go)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert creator.poll() is None, creator.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.01)
        # The creator holds its write lock; what it wrote so far is not visible.
        with pytest.raises(UnfinishedStore):
            api.Session(guest("clock_actor"), store=db, label="t", mode="none")
        go.touch()
        with api.Session(guest("clock_actor"), store=db, label="t", mode="once", host=demo_host(1)) as s:
            assert s.recording
            s.call("run", String("Ada"))
        out, err = creator.communicate(timeout=60)
    finally:
        if creator.poll() is None:
            creator.kill()
            creator.wait()
    assert creator.returncode == 0, err
    assert out.strip() == str(TRACE_FORMAT_VERSION)
    with TraceStore(db, readonly=True) as store:
        assert [(t.label, t.status) for t in store.traces()] == [("t", TraceStatus.COMPLETE)]
