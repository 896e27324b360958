"""Fixtures for the CLI tests: an in-process runner, the installed executable, a
deterministic host file and recorded trace files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from packr_replay.cli import app
from packr_replay.runtime.demo import example_guest
from tests.corpus.conftest import _corpus_template, lab  # noqa: F401 - the check command's corpus

GUESTS = Path(__file__).resolve().parents[2] / "examples" / "guests"
CLOCK = str(example_guest("clock_actor"))

#: A host file for clock_actor whose answers depend only on $GOLDEN_SEED: two runs with
#: the same seed record the same values.
HOST_FILE = '''
"""clock_actor's host functions, deterministic per $GOLDEN_SEED."""
import itertools
import os

from packr_replay.abi.convert import u64

SEED = int(os.environ.get("GOLDEN_SEED", "0"))
_clock = itertools.count(1_700_000_000_000_000_000 + SEED * 1_000_000, 1000)
_dice = itertools.count(SEED)


def register(builder):
    @builder.interface("demo:host/log").func_typed("write")
    def write(ctx, message: str) -> None:
        pass

    @builder.interface("demo:host/clock").func_typed("now")
    def now(ctx) -> u64:
        return next(_clock)

    @builder.interface("demo:host/random").func_typed("next")
    def roll(ctx, bound: u64) -> u64:
        return next(_dice) % bound

    @builder.interface("demo:host/env").func_typed("get")
    def getenv(ctx, name: str) -> str | None:
        return "ada" if name == "USER" else None
'''


@dataclass
class Run:
    """What a command did: exit code, stdout, stderr."""

    code: int
    out: str
    err: str


Invoke = Callable[..., Run]


@pytest.fixture
def cli() -> Invoke:
    """Run the CLI in process: ``cli("play", path, input=...)``."""
    runner = CliRunner()

    def run(*args: str | Path, input: str | bytes | None = None) -> Run:
        result = runner.invoke(app, [str(a) for a in args], input=input)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return Run(result.exit_code, result.stdout, result.stderr)

    return run


def executable() -> str:
    """The installed console script (the venv's, beside this Python)."""
    found = Path(sys.executable).parent / "packr-replay"
    if found.exists():
        return str(found)
    which = shutil.which("packr-replay")
    assert which is not None, "packr-replay is not installed (pip install -e .)"
    return which


@pytest.fixture
def sh(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the installed ``packr-replay`` in a subprocess (cwd: ``tmp_path``)."""

    def run(*args: str | Path, input: str | None = None, cwd: Path | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
        return subprocess.run(
            [executable(), *map(str, args)],
            input=input,
            capture_output=True,
            text=True,
            cwd=cwd or tmp_path,
            env={**os.environ, "COLUMNS": "200", **(env or {})},
            timeout=120,
        )

    return run


@pytest.fixture
def host_file(tmp_path: Path) -> Path:
    path = tmp_path / "myhost.py"
    path.write_text(HOST_FILE)
    return path


@pytest.fixture(scope="session")
def _recorded_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Recorded once per session through the CLI; tests get a copy."""
    root = tmp_path_factory.mktemp("recorded")
    host_file = root / "myhost.py"
    host_file.write_text(HOST_FILE)
    path = root / "bug.db"
    runner = CliRunner()
    with pytest.MonkeyPatch.context() as mp:
        for seed, label in ((0, "first"), (1, "second")):
            mp.setenv("GOLDEN_SEED", str(seed))
            mp.delitem(sys.modules, "myhost", raising=False)  # fresh counters per run
            result = runner.invoke(app, ["record", CLOCK, "--host", f"{host_file}:register",
                                         "-c", 'run="Ada"', "-c", "run", "-o", str(path),
                                         "-l", label])  # fmt: skip
            assert result.exit_code == 0, result.stderr
        mp.delitem(sys.modules, "myhost", raising=False)
    return path


@pytest.fixture
def recorded(_recorded_template: Path, tmp_path: Path) -> Path:
    """``bug.db`` with two traces of clock_actor (``first``: seed 0, ``second``: seed 1)."""
    path = tmp_path / "bug.db"
    shutil.copy(_recorded_template, path)
    return path
