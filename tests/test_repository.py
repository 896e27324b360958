"""The repository keeps its promises about itself: CI runs the README's test command."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```sh\n(.+?)\n```", text)


class TestCommands:
    """README's two commands and what CI runs."""

    def test_ci_runs_the_readme_test_command(self) -> None:
        commands = _readme_commands()
        test_cmd = next(c for c in commands if "pytest" in c)
        ci = (ROOT / ".ci" / "run").read_text().splitlines()
        assert test_cmd in ci, f"{test_cmd!r} not in .ci/run"

    def test_readme_has_a_setup_and_main_job_command(self) -> None:
        commands = _readme_commands()
        assert any("pip install -e ." in c and "packr-replay" in c for c in commands)

    def test_ci_script_fails_fast(self) -> None:
        assert "set -euo pipefail" in (ROOT / ".ci" / "run").read_text()
