"""Reliability suites: quick versions run in CI, ``--slow`` runs the long ones.

Counts come in three sizes: ``quick`` (the default, for CI), ``medium``
(``PACKR_RELIABILITY=medium``: the quick tests with larger counts) and ``slow`` (the
``@pytest.mark.slow`` tests, enabled by ``--slow`` or ``PACKR_SLOW=1``).

Each suite notes what it tried and what came out in the session's :class:`Tally`; with
``PACKR_RELIABILITY_LOG=FILE`` the tallies are written there as JSON at the end of the
session (RELIABILITY.md's numbers come from such a file).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def medium() -> bool:
    return os.environ.get("PACKR_RELIABILITY", "").lower() == "medium"


def quick_count(quick: int, medium_count: int) -> int:
    """The count for a quick test: ``quick`` in CI, ``medium_count`` when asked."""
    return medium_count if medium() else quick


class Tally:
    """What one suite tried and how each case came out."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.cases = 0
        self.outcomes: Counter[str] = Counter()
        self.facts: dict[str, Any] = {}
        self.started = time.perf_counter()
        self.seconds: float | None = None

    def add(self, outcome: str, n: int = 1, *, case: bool = True) -> None:
        """Count ``n`` cases with this outcome (``case=False``: an outcome of a part of
        a case already counted, e.g. each trace of a file)."""
        if case:
            self.cases += n
        self.outcomes[outcome] += n

    def fact(self, key: str, value: Any) -> None:
        self.facts[key] = value

    def peak(self, key: str, value: float) -> None:
        self.facts[key] = max(value, self.facts.get(key, value))

    def as_dict(self) -> dict[str, Any]:
        return {
            "cases": self.cases,
            "outcomes": dict(self.outcomes),
            "seconds": round(self.seconds if self.seconds is not None
                             else time.perf_counter() - self.started, 2),
            **self.facts,
        }


_TALLIES: dict[str, Tally] = {}


@pytest.fixture
def tally(request: pytest.FixtureRequest) -> Iterator[Tally]:
    """A tally named after the test (its node id without the file path)."""
    name = request.node.nodeid.split("::", 1)[-1]
    t = _TALLIES[name] = Tally(name)
    yield t
    t.seconds = time.perf_counter() - t.started


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    path = os.environ.get("PACKR_RELIABILITY_LOG")
    if not path or not _TALLIES:
        return
    data: dict[str, Any] = {
        "python": sys.version.split()[0],
        "mode": "slow"
        if session.config.getoption("--slow") or os.environ.get("PACKR_SLOW")
        else ("medium" if medium() else "quick"),
        "exitstatus": int(exitstatus),
        "suites": {name: t.as_dict() for name, t in sorted(_TALLIES.items())},
    }
    workerinput = getattr(session.config, "workerinput", None)
    if workerinput is None:
        Path(path).write_text(json.dumps(data, indent=1) + "\n")
        return
    # Under pytest-xdist each worker holds the tallies of its own tests: merge them into
    # one file, one worker at a time, keeping what another worker of this run wrote.
    import fcntl

    data["xdist_run"] = workerinput["testrunuid"]
    with open(f"{path}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with contextlib.suppress(FileNotFoundError, ValueError):
            before = json.loads(Path(path).read_text())
            if before.get("xdist_run") == data["xdist_run"]:
                data["exitstatus"] = max(data["exitstatus"], before["exitstatus"])
                data["suites"] = dict(sorted({**before["suites"], **data["suites"]}.items()))
        Path(path).write_text(json.dumps(data, indent=1) + "\n")


class Forked:
    """Jobs of ``tests.reliability.children`` run as forked children of one fresh
    process (``children fork``): one interpreter start-up for all of them."""

    def __init__(self, jobs: list[list[str]]) -> None:
        self.jobs = jobs
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.children", "fork",
             *(";".join(job) for job in jobs)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True,  # its own process group: close() ends every child
        )  # fmt: skip
        self.pids: dict[int, int] = {}
        self.codes: dict[int, int] = {}

    def _read(self) -> bool:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            return False
        parts = line.split()
        assert len(parts) == 3, f"unexpected output from the forked jobs: {line!r}"
        word, index, value = parts
        (self.pids if word == "ready" else self.codes)[int(index)] = int(value)
        return True

    def wait_ready(self) -> dict[int, int]:
        """Every job's pid, once every job has begun recording."""
        while len(self.pids) < len(self.jobs):
            if not self._read():
                self.fail("the forked jobs stopped before all were ready")
            failed = {i: c for i, c in self.codes.items() if i not in self.pids}
            if failed:
                self.fail(f"jobs {failed} ended before they were ready")
        return self.pids

    def finish(self, timeout: float = 600) -> dict[int, int]:
        """Every job's exit status (minus the signal number for a killed job)."""
        deadline = time.monotonic() + timeout
        while len(self.codes) < len(self.jobs):
            if time.monotonic() > deadline or not self._read():
                self.fail("the forked jobs did not all end")
        self.proc.wait(timeout=60)
        return self.codes

    def fail(self, message: str) -> None:
        self.close()
        raise AssertionError(f"{message}: {self.proc.stderr.read() if self.proc.stderr else ''}")

    def close(self) -> None:
        """End the forking process and every child still running (the whole group)."""
        if len(self.codes) < len(self.jobs) or self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.communicate()

    def __enter__(self) -> Forked:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
