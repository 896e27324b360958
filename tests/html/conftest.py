"""Trace files shared by the HTML tests (made once per session; tests read them and
never write)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from .traces import record_clock, write_hostile, write_long


@dataclass(frozen=True)
class Files:
    bug: Path  # traces 1 'first' and 2 'second': clock_actor, different clocks and dice
    hostile: Path  # trace 1: markup in every string
    long_a: Path  # 2,000 events
    long_b: Path  # the same with one output changed at 1,201 and a call inserted at 1,500


@pytest.fixture(scope="session")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    root = tmp_path_factory.mktemp("html-traces")
    bug = root / "bug.db"
    record_clock(bug, 0, "first")
    record_clock(bug, 1, "second")
    hostile = root / "hostile.db"
    write_hostile(hostile)
    long_a, long_b = root / "long_a.db", root / "long_b.db"
    write_long(long_a, 2000, "a")
    write_long(long_b, 2000, "b", change_at=1201, insert_at=1500)
    return Files(bug, hostile, long_a, long_b)
