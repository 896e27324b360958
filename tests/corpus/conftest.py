"""A recorded corpus (built once per session; tests get a copy) and the host file that
crashes or hangs its worker."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .guests import NASTY_HOST, record_corpus, write_guests


@pytest.fixture(scope="session")
def _corpus_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus-template")
    guests = write_guests(root / "guests")
    record_corpus(root, guests)
    (root / "nasty.py").write_text(NASTY_HOST)
    return root


@pytest.fixture
def lab(_corpus_template: Path, tmp_path: Path) -> Path:
    """A copy of the corpus template: guests/, corpus/, nasty.py."""
    dest = tmp_path / "lab"
    shutil.copytree(_corpus_template, dest)
    return dest
