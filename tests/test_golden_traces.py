"""Golden trace files (``traces/``): every one still opens, verifies, replays and diffs.

A file is written once per trace-store format (``traces/make_golden.py``) and never
changed; a format bump adds files, and this test keeps the old ones working.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from packr_replay import api
from packr_replay.runtime import native
from packr_replay.runtime.demo import EXAMPLE_GUESTS
from packr_replay.storage import TRACE_FORMAT_VERSION, TraceStore
from packr_replay.storage.packages import composition_of
from tests.conftest import IMPORT_PATHS

TRACES = Path(__file__).resolve().parents[1] / "traces"
GOLDEN = sorted(TRACES.glob("*.db"))


def _format_of(path: Path) -> int:
    match = re.search(r"format-(\d+)\.db$", path.name)
    assert match is not None, f"{path.name}: golden files are named ...format-N.db"
    return int(match.group(1))


#: Which import path replays which file: the current format's files on both; an older
#: format's on one (how the events were stored is what differs, and the two paths read
#: them alike once loaded).
REPLAYS = [
    (p, path)
    for p in GOLDEN
    for path in IMPORT_PATHS
    if _format_of(p) == TRACE_FORMAT_VERSION or path == ("native" if native.AVAILABLE else "python")
]


@pytest.fixture(params=GOLDEN, ids=[p.name for p in GOLDEN])
def golden(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A copy (opening for writing migrates a file; the committed ones never change)."""
    source: Path = request.param
    copy = tmp_path / source.name
    shutil.copy(source, copy)
    return copy


def _ids(path: Path) -> list[int]:
    with TraceStore(path, readonly=True) as store:
        return [info.id for info in store.traces()]


class TestInventory:
    """What ``traces/`` must hold."""

    def test_current_format_has_golden_files(self) -> None:
        names = {p.name for p in GOLDEN}
        n = TRACE_FORMAT_VERSION
        assert {f"format-{n}.db", f"examples-format-{n}.db"} <= names, (
            "new trace format: run python traces/make_golden.py and commit the files"
        )

    def test_examples_cover_every_example_guest(self) -> None:
        latest = TRACES / f"examples-format-{TRACE_FORMAT_VERSION}.db"
        with TraceStore(latest, readonly=True) as store:
            labels = sorted(i.label or "" for i in store.traces())
        assert labels == sorted([*EXAMPLE_GUESTS, "composition"])

    def test_a_composition_is_kept_from_format_4_on(self) -> None:
        """The package dimension: every event names its package, and each package's
        events replay alone."""
        for path in sorted(TRACES.glob("examples-format-*.db")):
            if _format_of(path) < 4:
                continue
            with TraceStore(path, readonly=True) as store:
                trace = store.trace("composition")
                composition = composition_of(trace.info)
                assert composition is not None
                assert composition.names == ["doubler", "actor"]
                assert {e.package for e in trace.events()} == {"doubler", "actor"}
            for package in composition.names:
                report = api.replay(path, "composition", package=package)
                assert report.reproduced, report.summary()

    def test_files_are_single_and_closed(self) -> None:
        assert not list(TRACES.glob("*.db-wal"))
        assert not list(TRACES.glob("*.partial"))


class TestGoldenFile:
    """Each golden file with the current code."""

    def test_opens_read_only_unchanged(self, golden: Path) -> None:
        before = golden.read_bytes()
        with TraceStore(golden, readonly=True) as store:
            assert store.format_version == _format_of(golden)
            infos = store.traces()
        assert infos
        assert all(i.status == "complete" for i in infos)
        assert golden.read_bytes() == before

    def test_every_trace_verifies(self, golden: Path) -> None:
        with TraceStore(golden, readonly=True) as store:
            for info in store.traces():
                report = store.verify(info.id)
                assert report.ok, report.message
                assert report.events == info.event_count

    @pytest.mark.parametrize(("golden", "import_path"), REPLAYS, indirect=True,
                             ids=[f"{p.name}-{path}" for p, path in REPLAYS])  # fmt: skip
    def test_every_trace_replays_and_its_replay_diffs_identical(
        self, golden: Path, import_path: str
    ) -> None:
        for trace_id in _ids(golden):
            report = api.replay(golden, trace_id, save=True)  # opening to write migrates
            assert report.reproduced, report.summary()
            assert report.saved_trace is not None
            diff = api.diff((golden, trace_id), (golden, report.saved_trace))
            assert diff.identical, diff.summary()

    def test_opening_for_writing_migrates_to_the_current_format(self, golden: Path) -> None:
        with TraceStore(golden) as store:
            assert store.format_version == TRACE_FORMAT_VERSION
            assert all(store.verify(i.id).ok for i in store.traces())
