"""The app as a whole: registration, help for every command, --version, exit codes,
one-line errors, --verbose, python -m, completion."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import typer

from packr_replay._version import __version__
from packr_replay.cli import COMMAND_MODULES, app
from packr_replay.cli.app import _hoist_global_flags
from tests.cli.conftest import Invoke

COMMANDS = sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


class TestRegistration:
    """Commands come from the modules listed in COMMAND_MODULES."""

    def test_every_issue_command_is_registered(self) -> None:
        wanted = {"record", "play", "diff", "show", "info", "verify", "export", "import",
                  "bundle", "demo", "roundtrip"}  # fmt: skip
        assert wanted <= set(COMMANDS)

    def test_each_module_registers_something(self) -> None:
        import importlib

        for name in COMMAND_MODULES:
            module = importlib.import_module(f"packr_replay.cli.{name}")
            assert callable(module.register), name


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(cli: Invoke, command: str) -> None:
    run = cli(command, "--help")
    assert run.code == 0
    assert f"packr-replay {command}" in run.out
    described = typer.main.get_command(app).commands[command]  # type: ignore[attr-defined]
    assert (described.help or "").strip(), f"{command} has no help text"


class TestTopLevel:
    """--version, bare invocation, unknown commands."""

    def test_version(self, cli: Invoke) -> None:
        run = cli("--version")
        assert (run.code, run.out.strip()) == (0, f"packr-replay {__version__}")

    def test_no_arguments_shows_help(self, cli: Invoke) -> None:
        run = cli()
        assert run.code == 0
        assert "record" in run.out
        assert "play" in run.out

    def test_unknown_command_is_a_usage_error(self, cli: Invoke) -> None:
        run = cli("replay-it")
        assert run.code == 2
        assert run.err.count("\n") == 1
        assert "No such command" in run.err

    def test_missing_argument_is_one_line(self, cli: Invoke) -> None:
        run = cli("diff", "a.db")
        assert run.code == 2
        assert run.err.startswith("packr-replay: error: Missing argument 'B'")
        assert run.err.count("\n") == 1

    def test_bare_command_prints_its_help(self, cli: Invoke) -> None:
        run = cli("play")
        assert run.code == 2
        assert "TRACE" in run.out + run.err


class TestErrors:
    """Errors are one line (traceback only with --verbose) and exit 2."""

    def test_missing_file(self, cli: Invoke, tmp_path: Path) -> None:
        run = cli("play", tmp_path / "nope.db")
        assert run.code == 2
        assert run.err == f"packr-replay: error: {tmp_path / 'nope.db'}: no such file\n"

    def test_not_a_trace_file(self, cli: Invoke, tmp_path: Path) -> None:
        bad = tmp_path / "bad.db"
        bad.write_text("hello")
        run = cli("info", bad)
        assert run.code == 2
        assert "not a packr-replay trace store" in run.err
        assert "Traceback" not in run.err
        assert run.err.count("\n") == 1

    @pytest.mark.parametrize("where", ["first", "last"])
    def test_verbose_anywhere_adds_the_traceback(
        self, cli: Invoke, tmp_path: Path, where: str
    ) -> None:
        bad = tmp_path / "bad.db"
        bad.write_text("hello")
        args = ["info", str(bad)]
        args = ["--verbose", *args] if where == "first" else [*args, "--verbose"]
        run = cli(*args)
        assert run.code == 2
        assert "Traceback" in run.err
        assert run.err.splitlines()[-1].startswith("packr-replay: error: ")

    def test_unknown_trace(self, cli: Invoke, recorded: Path) -> None:
        run = cli("show", f"{recorded}#nope")
        assert run.code == 2
        assert run.err == f"packr-replay: error: no trace 'nope' in {recorded}\n"

    def test_hoisting_stops_at_double_dash(self) -> None:
        assert _hoist_global_flags(["play", "x", "--verbose"]) == ["--verbose", "play", "x"]
        assert _hoist_global_flags(["a", "--", "--verbose"]) == ["a", "--", "--verbose"]

    def test_internal_errors_say_so(self) -> None:
        from packr_replay.cli.errors import describe_error, exit_code_for

        text = describe_error(KeyError("x"))
        assert text.startswith("internal error: KeyError")
        assert "--verbose" in text
        assert exit_code_for(KeyError("x")) == 2


class TestExecutable:
    """The installed console script and ``python -m packr_replay`` (subprocesses)."""

    def test_console_script(self, sh: Callable[..., subprocess.CompletedProcess[str]]) -> None:
        done = sh("--version")
        assert (done.returncode, done.stdout.strip()) == (0, f"packr-replay {__version__}")

    def test_python_dash_m(self, tmp_path: Path) -> None:
        done = subprocess.run([sys.executable, "-m", "packr_replay", "info", "x.db"],
                              capture_output=True, text=True, cwd=tmp_path, timeout=60)  # fmt: skip
        assert done.returncode == 2
        assert done.stderr == "packr-replay: error: x.db: no such file\n"

    def test_shell_completion(
        self, sh: Callable[..., subprocess.CompletedProcess[str]], recorded: Path
    ) -> None:
        env = {"_PACKR_REPLAY_COMPLETE": "complete_bash", "COMP_WORDS": "packr-replay pl",
               "COMP_CWORD": "1"}  # fmt: skip
        assert sh(env=env).stdout.split() == ["play"]
        env.update(COMP_WORDS=f"packr-replay show {recorded}#f", COMP_CWORD="2")
        assert sh(env=env).stdout.split() == [f"{recorded}#first"]
