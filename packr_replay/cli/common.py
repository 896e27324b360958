"""Options and small helpers shared by the commands: how a trace is named on the
command line (``FILE``, ``FILE#ID``, ``FILE#LABEL``, or ``FILE --trace REF``) and how
its store is opened."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .errors import fail

if TYPE_CHECKING:
    from ..storage import Trace, TraceStore

__all__ = [
    "HostOpt",
    "JsonOpt",
    "TraceArg",
    "TraceRefOpt",
    "check_output_dir",
    "complete_trace",
    "open_store",
    "open_trace",
    "parse_ref",
    "split_spec",
]

JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print the result as JSON (shapes: docs/cli-json.md).")
]
HostOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--host",
        metavar="SPEC",
        help=(
            "Host functions: 'demo' (the example guests' host), 'path/to/file.py:NAME' or "
            "'package.module:NAME', where NAME registers functions on the HostLinkerBuilder "
            "or is (or returns) a HostFunctionProvider. Repeatable."
        ),
    ),
]


def check_output_dir(path: Path) -> None:
    """Refuse an output in a directory that is not there, before any work is done."""
    parent = path.parent
    if not parent.exists():
        fail(f"cannot create {path}: no such directory {parent}")
    if not parent.is_dir():
        fail(f"cannot create {path}: {parent} is not a directory")


def complete_trace(incomplete: str) -> list[str]:
    """Shell completion for ``FILE#REF``: after the ``#``, the file's trace ids and labels."""
    path, sep, _ = incomplete.rpartition("#")
    if not sep or not Path(path).is_file():
        return []  # the shell completes file names
    from ..storage import TraceStore

    try:
        with TraceStore(path, readonly=True) as store:
            infos = store.traces()
    except Exception:
        return []
    refs = [str(i.id) for i in infos] + [i.label for i in infos if i.label]
    return [f"{path}#{ref}" for ref in refs if f"{path}#{ref}".startswith(incomplete)]


TraceArg = Annotated[
    str,
    typer.Argument(
        metavar="TRACE",
        help="A trace file (its newest trace), or FILE#ID / FILE#LABEL.",
        autocompletion=complete_trace,
    ),
]
TraceRefOpt = Annotated[
    str | None,
    typer.Option(
        "--trace",
        "-t",
        metavar="REF",
        help="Which trace in the file: id, uuid or label (same as FILE#REF; default: the newest).",
    ),
]


def parse_ref(text: str) -> int | str:
    """A trace reference: digits are an id, anything else a uuid or label."""
    return int(text) if text.isdigit() else text


def split_spec(spec: str, ref: str | None = None) -> tuple[Path, int | str | None]:
    """``FILE#REF`` (or ``FILE`` plus ``--trace REF``) as a path and a reference; the
    file must exist."""
    path = Path(spec)
    inline: str | None = None
    if not path.exists() and "#" in spec:
        head, _, inline = spec.rpartition("#")
        path = Path(head)
    if not path.exists():
        fail(f"{path}: no such file")
    if path.is_dir():
        fail(f"{path}: is a directory, not a trace file")
    if inline is not None and ref is not None:
        fail(f"{spec}: give the trace either as FILE#REF or with --trace, not both")
    chosen = inline if inline is not None else ref
    if chosen == "":
        fail(f"{spec}: empty trace reference after '#'")
    return path, None if chosen is None else parse_ref(chosen)


@contextlib.contextmanager
def open_store(path: Path, *, readonly: bool = True) -> Iterator[TraceStore]:
    """An existing trace store, closed on exit."""
    if not path.exists():
        fail(f"{path}: no such file")
    from ..storage import TraceStore

    with TraceStore(path, readonly=readonly) as store:
        yield store


@contextlib.contextmanager
def open_trace(
    spec: str, ref: str | None = None, *, readonly: bool = True
) -> Iterator[tuple[TraceStore, Trace]]:
    """The trace ``spec`` names (the newest in the file when it names none)."""
    path, chosen = split_spec(spec, ref)
    with open_store(path, readonly=readonly) as store:
        if chosen is None:
            traces = store.traces()
            if not traces:
                fail(f"{path} holds no traces")
            chosen = traces[-1].id
        yield store, store.trace(chosen)
