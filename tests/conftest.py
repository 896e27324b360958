"""Project-wide test options: ``--slow`` enables the long reliability runs."""

from __future__ import annotations

import os

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--slow",
        action="store_true",
        default=False,
        help="also run @pytest.mark.slow tests (long fuzzing, kill trials, 1M-event traces)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--slow") or os.environ.get("PACKR_SLOW"):
        return
    skip = pytest.mark.skip(reason="slow: run with --slow (or PACKR_SLOW=1)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
