"""Startup stays light and help reads well: ``--version``, ``--help`` and the error
paths load neither wasmtime nor rich; help shows readable metavars, no markup."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from packr_replay.cli import app
from tests.cli.conftest import Invoke

COMMANDS = sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]

# Runs the CLI in a fresh interpreter and prints which heavy modules it loaded.
_PROBE = """
import json, sys
from packr_replay.cli import main
code = main(sys.argv[1:])
heavy = sorted(m for m in sys.modules
               if m.split(".")[0] in ("wasmtime", "rich", "sqlite_utils", "sqlite3", "msgpack"))
print(json.dumps({"code": code, "heavy": heavy}), file=sys.__stderr__)
"""


def _loaded(tmp_path: Path, *args: str) -> tuple[int, list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *args],
        capture_output=True, text=True, cwd=tmp_path, timeout=60,
    )  # fmt: skip
    report = json.loads(done.stderr.strip().splitlines()[-1])
    return report["code"], report["heavy"]


class TestLightStartup:
    """What a fresh process imports on the paths that do no real work."""

    @pytest.mark.parametrize(
        "args",
        [
            ["--version"],
            ["--help"],
            [],
            ["record", "--help"],
            ["play", "--help"],
            ["check", "--help"],
            ["check", "nope.db"],
            ["sql", "--help"],
            ["diff", "a.db"],  # usage error: missing argument
            ["play", "nope.db"],  # no such file
            ["show", "nope.db#3"],
            ["record", "nope.wasm", "-c", "run"],
            ["frobnicate"],
        ],
        ids=lambda a: " ".join(a) or "bare",
    )
    def test_no_wasmtime_no_rich(self, tmp_path: Path, args: list[str]) -> None:
        code, heavy = _loaded(tmp_path, *args)
        assert code in (0, 2)
        assert heavy == []

    def test_help_texts_copied_from_the_library_stay_true(self) -> None:
        from packr_replay.cli.record import DEFAULT_FUEL_TEXT
        from packr_replay.cli.sql import FUNCTION_NAMES
        from packr_replay.runtime import DEFAULT_FUEL
        from packr_replay.storage.sqlfuncs import FUNCTIONS

        assert f"{DEFAULT_FUEL:,}" == DEFAULT_FUEL_TEXT
        assert FUNCTION_NAMES == FUNCTIONS


_PYTHON_TYPES = re.compile(r"<(bool|str|int|float|path|file|directory|list\[[^>]*\]|int range)>")


@pytest.mark.parametrize("command", COMMANDS)
def test_help_has_readable_metavars(cli: Invoke, command: str) -> None:
    text = cli(command, "--help").out
    assert not _PYTHON_TYPES.search(text), _PYTHON_TYPES.search(text)
    assert "[bold]" not in text
    assert "[/bold]" not in text
    assert "{" not in text.splitlines()[0]  # the usage line: MODULE, not {MODULE}


class TestHelpText:
    """A few metavars, literally."""

    def test_record(self, cli: Invoke) -> None:
        text = cli("record", "--help").out
        assert text.startswith("Usage: packr-replay record [OPTIONS] MODULE\n")
        assert "-l, --label LABEL" in text
        assert "--mode [none|once|new_episodes|all]" in text
        assert re.search(r"-q, --quiet +Print only", text)  # a flag: no metavar

    def test_sql(self, cli: Invoke) -> None:
        text = cli("sql", "--help").out
        assert "-p, --param VALUE" in text
        assert "--max-rows N" in text
        assert "[at least 1]" in text

    def test_top_level_lists_commands_with_their_first_sentence(self, cli: Invoke) -> None:
        text = cli("--help").out
        assert re.search(
            r"^  import +Read a trace written by export into a trace file\.$", text, re.M
        )
