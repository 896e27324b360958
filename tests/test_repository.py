"""The repository keeps its promises about itself: CI runs the README's test command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

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


class TestVectors:
    """The golden vectors ship with the repository, and their absence fails the run."""

    def test_the_repository_has_its_own_copy(self) -> None:
        folder = ROOT / "tests" / "vectors"
        for name in ("encode", "decode", "text", "hash"):
            assert (folder / f"{name}_vectors.public.json").is_file()
        assert "Rust" in (folder / "README.md").read_text()  # the provenance travels with them

    def test_missing_vectors_fail_collection_loudly(self, tmp_path: Path) -> None:
        import subprocess
        import sys

        code = (
            "from tests import golden_vectors as v\n"
            "try:\n    v.cases('encode')\nexcept v.MissingVectors as e:\n    print('refused:', e)\n"
        )
        env = {"PACKR_VECTORS": str(tmp_path), "PATH": "/usr/bin:/bin"}
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
            check=True,
        )
        assert out.stdout.startswith("refused: no encode vectors in")

    def test_an_empty_parametrization_fails_collection(self, pytestconfig: pytest.Config) -> None:
        # Any test parametrised over nothing (vectors that did not load, a filter that
        # matched none) fails the run instead of being skipped.
        assert pytestconfig.getini("empty_parameter_set_mark") == "fail_at_collect"
