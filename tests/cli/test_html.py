"""``show --html`` and ``diff --html``: one self-contained file, never clobbering."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from .conftest import Invoke


def files_referenced(html: str) -> list[str]:
    """Every URL the page would load (none: it is self-contained)."""
    return re.findall(r"""(?:src|href)\s*=\s*["']?((?:https?:)?//[^"'\s>]+)""", html) + re.findall(
        r"url\(", html
    )


class TestShowHtml:
    """``show FILE#REF --html OUT``."""

    def test_writes_the_trace(self, cli: Invoke, recorded: Path, tmp_path: Path) -> None:
        out = tmp_path / "trace.html"
        run = cli("show", f"{recorded}#first", "--html", out)
        assert run.code == 0, run.err
        assert run.out == ""
        assert f"wrote trace 1 'first' to {out}" in run.err
        html = out.read_text()
        assert html.startswith("<!DOCTYPE html>")
        assert len(re.findall(r'<tr id="row-\d+"', html)) == 14
        assert files_referenced(html) == []

    def test_limit_and_filters(self, cli: Invoke, recorded: Path, tmp_path: Path) -> None:
        out = tmp_path / "t.html"
        run = cli("show", f"{recorded}#first", "--html", out, "-n", "2", "-f", "write")
        assert run.code == 0, run.err
        html = out.read_text()
        assert re.findall(r'<tr id="row-(\d+)"', html) == ["1", "5"]
        assert "Showing 2 of 4 matching events; the 2 after #5 are left out" in html

    def test_refuses_to_overwrite(self, cli: Invoke, recorded: Path, tmp_path: Path) -> None:
        out = tmp_path / "t.html"
        out.write_text("mine")
        run = cli("show", f"{recorded}#first", "--html", out)
        assert run.code == 2
        assert "already exists (pass --force to overwrite it)" in run.err
        assert out.read_text() == "mine"
        assert cli("show", f"{recorded}#first", "--html", out, "--force").code == 0
        assert out.read_text().startswith("<!DOCTYPE html>")
        assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # none left behind

    def test_not_with_seq_or_json(self, cli: Invoke, recorded: Path, tmp_path: Path) -> None:
        for extra in (["3"], ["--json"], ["--kind", "import"]):
            run = cli("show", f"{recorded}#first", *extra, "--html", tmp_path / "x.html")
            assert run.code == 2
            assert "--html writes a trace's page" in run.err
        assert not (tmp_path / "x.html").exists()

    def test_unwritable_destination(self, cli: Invoke, recorded: Path, tmp_path: Path) -> None:
        run = cli("show", f"{recorded}#first", "--html", tmp_path / "no" / "such" / "x.html")
        assert run.code == 2
        assert "cannot write" in run.err


class TestDiffHtml:
    """``diff A B --html OUT``."""

    def test_writes_the_comparison(self, cli: Invoke, recorded: Path, tmp_path: Path) -> None:
        out = tmp_path / "diff.html"
        run = cli("diff", f"{recorded}#first", f"{recorded}#second", "--html", out, "-n", "1")
        assert run.code == 1  # different, as without --html
        assert "first divergence" in run.out
        assert "wrote the comparison to" in run.err
        html = out.read_text()
        assert 'id="first-divergence"' in html
        assert len(re.findall(r"<li><pre>", html)) == 8  # every change, whatever -n says
        assert files_referenced(html) == []

    def test_identical(self, cli: Invoke, recorded: Path, tmp_path: Path) -> None:
        out = tmp_path / "same.html"
        run = cli("diff", f"{recorded}#first", f"{recorded}#first", "--html", out)
        assert run.code == 0
        assert '<span class="verdict ok">identical</span>' in out.read_text()

    def test_refuses_to_overwrite(self, cli: Invoke, recorded: Path, tmp_path: Path) -> None:
        out = tmp_path / "d.html"
        out.write_text("mine")
        run = cli("diff", f"{recorded}#first", f"{recorded}#second", "--html", out)
        assert run.code == 2
        assert "already exists" in run.err
        assert out.read_text() == "mine"
        run = cli("diff", f"{recorded}#first", f"{recorded}#second", "--html", out, "--force")
        assert run.code == 1
        assert out.read_text().startswith("<!DOCTYPE html>")


def test_html_needs_no_datasette(
    recorded: Path, tmp_path: Path, sh: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    """The installed command writes both pages with Datasette and Jinja2 unimportable."""
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        "import sys\nfor name in ('datasette', 'jinja2', 'markupsafe'):\n    sys.modules[name] = None\n"
    )
    env = {"PYTHONPATH": str(blocker)}
    done = sh("show", f"{recorded}#first", "--html", tmp_path / "t.html", env=env)
    assert done.returncode == 0, done.stderr
    done = sh("diff", f"{recorded}#first", f"{recorded}#second", "--html", tmp_path / "d.html", env=env)
    assert done.returncode == 1, done.stderr
    assert "<!DOCTYPE html>" in (tmp_path / "d.html").read_text()
    check = subprocess.run(
        [sys.executable, "-c", "import datasette"], env={"PYTHONPATH": str(blocker)},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert check.returncode != 0  # the blocker works
