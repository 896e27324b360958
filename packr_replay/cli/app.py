"""The ``packr-replay`` typer app: global options, error handling, command registration.

Commands live in one module per group; each module defines ``register(app)``. Adding a
command group is one line in :data:`COMMAND_MODULES`.

Startup stays light: the command modules import wasmtime, SQLite and rich only inside
the commands that run, and help is plain text (``helptext``), so ``--version``,
``--help`` and usage errors load neither wasmtime nor rich.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
import typer.core

from .. import _interrupts
from .._text import printable
from .._version import __version__
from ..errors import Interrupted
from .errors import report_error
from .helptext import format_command_help

__all__ = ["COMMAND_MODULES", "app", "main"]

#: Command modules (``packr_replay.cli.<name>``), in the order ``--help`` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "demo",
    "record",
    "play",
    "check",
    "diff",
    "inspect",
    "exchange",
    "values",
    "sql",
)

_GLOBAL_FLAGS = ("--verbose",)

# Typer >= 0.24 vendors click (``typer._click``); reach its exception classes through
# the public ``typer.BadParameter`` so this works with either.
_UsageError: type[Exception] = typer.BadParameter.__bases__[0]
_ClickException: type[Exception] = _UsageError.__bases__[0]


def _hoist_global_flags(args: list[str]) -> list[str]:
    """Let ``--verbose`` go anywhere before ``--`` (click only takes it before the command)."""
    end = args.index("--") if "--" in args else len(args)
    flags = [a for a in args[:end] if a in _GLOBAL_FLAGS]
    rest = [a for a in args[:end] if a not in _GLOBAL_FLAGS]
    return flags + rest + args[end:]


def _usage_error(exc: Exception) -> int:
    """Click's usage errors as one line (a bare command with no arguments: its help)."""
    message: str = exc.format_message()  # type: ignore[attr-defined]
    code: int = exc.exit_code  # type: ignore[attr-defined]
    if type(exc).__name__ == "NoArgsIsHelpError":
        if message.strip():  # rich help is printed as the error is made; plain help is not
            print(message, file=sys.stderr)
        return code
    hint = ""
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        hint = f" (see '{ctx.command_path} --help')"
    print(f"packr-replay: error: {printable(message)}{printable(hint)}", file=sys.stderr)
    return code


class _Command(typer.core.TyperCommand):
    """A command whose help is plain text with readable metavars (``helptext``)."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        format_command_help(self, ctx, formatter)

    def invoke(self, ctx: Any) -> Any:
        # Click turns a KeyboardInterrupt into a bare "Aborted"; an interrupt of ours
        # carries what was kept, so it is taken past click and reported in main().
        try:
            return super().invoke(ctx)
        except Interrupted as exc:
            raise _Stopped(exc) from None


class _Stopped(Exception):
    """An :class:`Interrupted` carried past click (which would make it "Aborted")."""

    def __init__(self, interrupted: Interrupted) -> None:
        super().__init__(str(interrupted))
        self.interrupted = interrupted


class _Group(typer.core.TyperGroup):
    """Turns every error into one line on stderr and an exit code (see ``cli.errors``)."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        format_command_help(self, ctx, formatter)

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        argv = _hoist_global_flags(list(sys.argv[1:] if args is None else args))
        verbose = "--verbose" in argv
        try:
            # SIGINT/SIGTERM stop a running guest within a second and leave every trace
            # being written committed and sealed incomplete (packr_replay._interrupts).
            with _interrupts.catching():
                rv = super().main(
                    argv, prog_name or "packr-replay", complete_var, standalone_mode=False,
                    **extra,
                )
            code = rv if isinstance(rv, int) else 0
        except _Stopped as stopped:
            code = report_error(stopped.interrupted, verbose=verbose)
        except Interrupted as exc:  # outside a command (while parsing, say)
            code = report_error(exc, verbose=verbose)
        except _ClickException as exc:
            code = _usage_error(exc)
        except typer.Abort:
            print("packr-replay: aborted", file=sys.stderr)
            code = 1
        except Exception as exc:
            code = report_error(exc, verbose=verbose)
        if standalone_mode:
            sys.exit(code)
        return code


app = typer.Typer(
    cls=_Group,
    name="packr-replay",
    help=(
        "Record, replay and diff the host calls of packr WebAssembly guests.\n\n"
        "Start with [bold]packr-replay demo[/bold]. Exit codes: 0 ok (reproduced, "
        "identical), 1 a verdict against (diverged, different, tampered, a recorded call "
        "failed), 2 an error (usage, a bad file or value, an unknown trace)."
    ),
    invoke_without_command=True,
    rich_markup_mode=None,  # help is helptext's plain text
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"packr-replay {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose", help="Show the traceback behind an error (anywhere on the line)."
        ),
    ] = False,
) -> None:
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit()


for _name in COMMAND_MODULES:
    importlib.import_module(f"{__package__}.{_name}").register(app)
for _info in app.registered_commands:
    if _info.cls in (None, typer.core.TyperCommand):  # the default: plain help
        _info.cls = _Command


def main(argv: Sequence[str] | None = None) -> int:
    """The console script: run the CLI on ``argv`` (default ``sys.argv[1:]``) and
    return the exit code."""
    command = typer.main.get_command(app)
    code: int = command.main(argv, prog_name="packr-replay", standalone_mode=False)
    return code
