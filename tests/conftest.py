"""Project-wide test options: ``--slow`` enables the long reliability runs."""

from __future__ import annotations

import compileall
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parents[1]


# Property tests check values, not speed: on a loaded 2-CPU machine (CI, pytest -n 2 beside
# other jobs) Hypothesis's 200 ms per-example deadline and its too-slow health check fail
# correct code. Timing is the benchmarks' job (bench/).
settings.register_profile("packr", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("packr")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--slow",
        action="store_true",
        default=False,
        help="also run @pytest.mark.slow tests (long fuzzing, kill trials, 1M-event traces)",
    )


def pytest_sessionstart(session: pytest.Session) -> None:
    """Compile the package's bytecode once, before any test starts a Python child.

    The CLI tests run the installed ``packr-replay`` hundreds of times; where
    ``PYTHONDONTWRITEBYTECODE`` is set (CI's image sets it), each of those children would
    otherwise compile the package's modules from source again (a quarter of its start-up).
    Only the main process does it (not each pytest-xdist worker)."""
    if not os.environ.get("PYTHONDONTWRITEBYTECODE") or hasattr(session.config, "workerinput"):
        return
    for folder in ("packr_replay", "tests"):
        compileall.compile_dir(ROOT / folder, quiet=1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--slow") or os.environ.get("PACKR_SLOW"):
        return
    skip = pytest.mark.skip(reason="slow: run with --slow (or PACKR_SLOW=1)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


#: For a test where every test runs on both import paths (``tests/replay``,
#: ``tests/runtime``) that makes no Runtime at all (values, option parsing): both runs
#: would take the same code path, so it runs once, on the Python path.
ONE_IMPORT_PATH = pytest.mark.parametrize("import_path", ["python"], indirect=True)

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
