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


#: The two ways typed imports are served: the C trampoline and the Python path
#: (packr_replay.runtime.native). Only the Python path when the extension is not built.
IMPORT_PATHS = ["native", "python"]


@pytest.fixture(params=IMPORT_PATHS)
def import_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test on each import path: every Runtime made while it runs, and the
    session's ``runtime`` fixture if the test uses one, serve imports that way."""
    from packr_replay.runtime import native

    path: str = request.param
    if path == "native" and not native.AVAILABLE:
        pytest.skip(f"the C trampoline is not built: {native.UNAVAILABLE_REASON}")
    monkeypatch.setattr(native, "DEFAULT", path == "native")
    if "runtime" in request.fixturenames:
        monkeypatch.setattr(request.getfixturevalue("runtime"), "native", path == "native")
    return path
