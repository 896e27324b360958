"""Errors on the command line: one clear line on stderr and a meaningful exit code.

Exit codes (design §4): 0 reproduced / identical / ok, 1 diverged / different /
tampered (a verdict, not a failure), 2 the command could not do its job (bad usage, a
missing or unreadable file, bad value text, an unknown trace, a guest that cannot be
linked...). ``--verbose`` adds the traceback above the line.
"""

from __future__ import annotations

import sys
import traceback
from typing import NoReturn

from .._text import printable
from ..errors import Interrupted, LinkError, PackrReplayError, ParseError, ReplayDivergence

__all__ = [
    "DIFFERENT",
    "ERROR",
    "OK",
    "CliError",
    "describe_error",
    "exit_code_for",
    "fail",
    "report_error",
]

OK = 0
DIFFERENT = 1  # diverged, different, tampered, a recorded call failed
ERROR = 2  # usage or input error
INTERRUPTED = 130


class CliError(Exception):
    """A usage or input problem found by the CLI itself; ``str()`` is the whole message."""

    def __init__(self, message: str, code: int = ERROR) -> None:
        super().__init__(message)
        self.code = code


def fail(message: str, code: int = ERROR) -> NoReturn:
    """Stop the command with ``message`` as its one error line."""
    raise CliError(message, code)


def _one_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return "; ".join(lines)


def describe_error(exc: BaseException) -> str:
    """The one line that explains ``exc`` to someone at a terminal."""
    if isinstance(exc, CliError):
        return _one_line(str(exc))
    if isinstance(exc, LinkError):
        names = ", ".join(f"{module}.{name}" for module, name, _ in exc.missing)
        return (
            f"the guest imports {len(exc.missing)} function(s) the host does not provide: "
            f"{names} (give a host with --host demo, --host file.py:function or "
            "--host package.module:function)"
        )
    if isinstance(exc, ParseError):
        return f"bad value text: {exc}"
    if isinstance(exc, FileNotFoundError):
        return f"{exc.filename}: no such file" if exc.filename else _one_line(str(exc))
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.filename}: {exc.strerror or exc}"
    if isinstance(exc, PackrReplayError | OSError | ValueError):
        return _one_line(str(exc)) or type(exc).__name__
    return (
        f"internal error: {type(exc).__name__}: {_one_line(str(exc))} "
        "(this is a bug; rerun with --verbose for the traceback)"
    )


def exit_code_for(exc: BaseException) -> int:
    if isinstance(exc, CliError):
        return exc.code
    if isinstance(exc, ReplayDivergence):
        return DIFFERENT
    if isinstance(exc, Interrupted):
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return INTERRUPTED
    return ERROR


def report_error(exc: BaseException, *, verbose: bool) -> int:
    """Print ``exc`` as one line on stderr (after its traceback when verbose); return
    the exit code."""
    if isinstance(exc, Interrupted):  # one line: what was kept, how to replay it
        print(f"packr-replay: {_one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        print("packr-replay: interrupted", file=sys.stderr)
        return INTERRUPTED
    if verbose:
        traceback.print_exception(exc, file=sys.stderr)
    print(f"packr-replay: error: {printable(describe_error(exc))}", file=sys.stderr)
    return exit_code_for(exc)
