"""``packr-replay demo``: the README's main job."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.cli.conftest import Invoke


def test_demo_narrates_the_four_steps(cli: Invoke) -> None:
    run = cli("demo")
    assert run.code == 0, run.err
    for step in ("1. Record", "2. Replay offline", "3. Run live again", "4. Diff the two runs"):
        assert step in run.out
    assert "reproduced: 14 events replayed; results identical to the recording" in run.out
    assert "first difference: changed import demo:host/clock.now" in run.out
    assert "\\n" not in run.out  # the difference's lines laid out, not escaped
    assert "\n     output (root): " in run.out
    assert "packr-replay demo -o demo.db" in run.out


def test_keeps_its_traces_with_output(cli: Invoke, tmp_path: Path) -> None:
    out = tmp_path / "demo.db"
    run = cli("demo", "-o", out)
    assert run.code == 0
    assert f"packr-replay show {out}#1" in run.out
    assert cli("diff", f"{out}#recorded", f"{out}#live").code == 1
    again = cli("demo", "-o", out)
    assert (again.code, "already exists" in again.err) == (2, True)


def test_json(cli: Invoke) -> None:
    data = json.loads(cli("demo", "--json").out)
    assert set(data) == {"store", "recorded", "replay", "live", "diff"}
    assert data["store"] is None
    assert data["replay"]["reproduced"] is True
    assert data["replay"]["outputs"] == data["recorded"]["outputs"]
    assert data["diff"]["identical"] is False


def test_installed_executable(
    sh: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    done = sh("demo")
    assert done.returncode == 0, done.stderr
    assert "4. Diff the two runs" in done.stdout
    assert list(tmp_path.iterdir()) == []  # the temporary trace file is gone
