"""Fixtures for the storage tests: fresh trace stores in ``tmp_path``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from packr_replay.storage import TraceStore

from .util import MODULE_BYTES, MODULE_TYPES


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "traces.db"


@pytest.fixture
def store(store_path: Path) -> Iterator[TraceStore]:
    with TraceStore(store_path, create=True) as s:
        yield s


@pytest.fixture
def module_sha(store: TraceStore) -> str:
    return store.add_module(MODULE_BYTES, "guest.wasm", MODULE_TYPES)
