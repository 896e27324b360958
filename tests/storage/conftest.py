"""Fixtures for the storage tests: fresh trace stores in ``tmp_path``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from packr_replay.storage import TraceStore

from .util import MODULE_BYTES, MODULE_TYPES


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ``@pytest.mark.slow`` storage tests unless ``--slow`` or ``PACKR_SLOW=1``."""
    if config.getoption("--slow", default=False) or os.environ.get("PACKR_SLOW"):
        return
    here = Path(__file__).parent
    skip = pytest.mark.skip(reason="slow: run with --slow (or PACKR_SLOW=1)")
    for item in items:
        if "slow" in item.keywords and here in item.path.parents:
            item.add_marker(skip)


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
