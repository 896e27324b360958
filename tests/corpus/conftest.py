"""A recorded corpus (built once per session; tests get a copy) and the host file that
crashes or hangs its worker."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from packr_replay.corpus import CheckReport, check
from packr_replay.replay import ReplayCaps

from .guests import NASTY_HOST, record_corpus, write_guests

MIXED_TIME_LIMIT = 2.0


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


def run_mixed(lab: Path, **kwargs: object) -> CheckReport:
    """Check the whole corpus: kv and spin against their new builds, with the host that
    crashes or hangs the actor traces' workers."""
    guests = lab / "guests"
    return check(
        [lab / "corpus"],
        module=[f"kv={guests / 'kv2' / 'kv.wat'}", f"spin={guests / 'spin2' / 'spin.wat'}"],
        hosts=[f"{lab / 'nasty.py'}:register"],
        caps=ReplayCaps(time=MIXED_TIME_LIMIT),
        **({"jobs": 2} | kwargs),  # type: ignore[arg-type]
    )


@pytest.fixture(scope="session")
def mixed_lab(_corpus_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    lab = tmp_path_factory.mktemp("mixed") / "lab"
    shutil.copytree(_corpus_template, lab)
    return lab


@pytest.fixture(scope="session")
def mixed(mixed_lab: Path) -> CheckReport:
    """One local run over the whole mixed corpus, shared by the tests that only read it."""
    return run_mixed(mixed_lab)
