"""Moving traces between files: ``export`` / ``import`` (the storage layer's versioned
msgpack stream, ``-`` for stdout/stdin so they pipe) and ``bundle`` (one compact file
with one trace and its module, optionally redacted, for a bug report)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Annotated

import typer

from . import render
from .common import JsonOpt, TraceArg, TraceRefOpt, check_output_dir, open_trace
from .errors import fail

__all__ = ["register"]


def _write_stream(
    dest: str, write: Callable[[IO[bytes]], int], *, force: bool, source: Path
) -> int:
    """Run ``write(fileobj)`` into ``dest`` (``-``: stdout); a file appears whole or not
    at all, never over an existing one without ``force``, never over ``source``."""
    if dest == "-":
        stream: IO[bytes] = sys.stdout.buffer
        if stream.isatty():
            fail("refusing to write a binary trace stream to a terminal; give -o FILE or pipe it")
        count = write(stream)
        stream.flush()
        return count
    from ..storage.files import new_file

    path = Path(dest)
    check_output_dir(path)
    with new_file(path, overwrite=force, sources=[source]) as partial, open(partial, "wb") as f:
        count = write(f)
    return count


def register(app: typer.Typer) -> None:
    @app.command("export", no_args_is_help=True)
    def export_(
        trace: TraceArg,
        output: Annotated[
            str,
            typer.Option("--output", "-o", metavar="FILE", help="Where to write ('-': stdout)."),
        ],
        trace_ref: TraceRefOpt = None,
        force: Annotated[
            bool, typer.Option("--force", help="Overwrite FILE if it exists.")
        ] = False,
        as_json: JsonOpt = False,
    ) -> None:
        """Write one trace and its module as a versioned msgpack stream.

        The stream keeps the trace's uuid and hash chain, so the imported copy verifies. Pipe it: [bold]packr-replay export a.db -o - | packr-replay import - -o b.db[/bold]
        """
        if as_json and output == "-":
            fail("--json needs stdout for itself; give -o FILE")
        with open_trace(trace, trace_ref) as (store, chosen):
            info = chosen.info
            count = _write_stream(
                output, lambda f: store.export_trace(info.id, f), force=force, source=store.path
            )
        size = None if output == "-" else Path(output).stat().st_size
        if as_json:
            render.emit_json(
                {"output": output, "trace": render.trace_json(info), "events": count, "bytes": size}
            )
            return
        where = "stdout" if output == "-" else output
        shown = "" if size is None else f", {render.human_bytes(size)}"
        render.err().print(
            f"exported {render.escape(render.trace_title(info))} ({count} events"
            f"{shown}) to {render.escape(where)}"
        )

    @app.command("import", no_args_is_help=True)
    def import_(
        source: Annotated[
            str, typer.Argument(metavar="FILE", help="A stream written by export ('-': stdin).")
        ],
        output: Annotated[
            Path,
            typer.Option(
                "--output",
                "-o",
                metavar="TRACE",
                help="The trace file to add it to (created if missing).",
            ),
        ],
        as_json: JsonOpt = False,
    ) -> None:
        """Read a trace written by [bold]export[/bold] into a trace file.

        Every event's hash is checked on the way in and nothing is stored unless the whole stream is valid.
        """
        from ..storage import TraceStore

        if source == "-":
            fileobj: IO[bytes] = sys.stdin.buffer
            with TraceStore(output, create=True) as store:
                trace_id = store.import_trace(fileobj)
                info = store.trace(trace_id).info
        else:
            if not Path(source).is_file():
                fail(f"{source}: no such file")
            with open(source, "rb") as fileobj, TraceStore(output, create=True) as store:
                trace_id = store.import_trace(fileobj)
                info = store.trace(trace_id).info
        if as_json:
            render.emit_json({"store": str(output), "trace": render.trace_json(info)})
            return
        render.out().print(
            f"imported {render.escape(render.trace_title(info))} "
            f"({info.event_count} events, uuid {info.uuid}) into "
            f"{render.escape(str(output))}"
        )

    @app.command(no_args_is_help=True)
    def bundle(
        trace: TraceArg,
        output: Annotated[
            Path, typer.Option("--output", "-o", metavar="REPORT.db", help="The bundle to write.")
        ],
        redact: Annotated[
            list[str] | None,
            typer.Option(
                "--redact",
                metavar="INTERFACE.FUNCTION",
                help="Replace the values of these host calls with placeholders of the same "
                'type (strings "<redacted>", numbers 0, ...); shell-style globs allowed '
                "(demo:host/env.*). Repeatable.",
            ),
        ] = None,
        force: Annotated[
            bool, typer.Option("--force", help="Overwrite REPORT.db if it exists.")
        ] = False,
        trace_ref: TraceRefOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Write one trace and its module into a new, compact, single file for a bug report.

        Anyone can replay it with nothing else: [bold]packr-replay play REPORT.db[/bold]. Redacted calls are served with their placeholders on replay, which says so; values the guest computed from them are not redacted, and a replay diverges where the placeholders change what the guest does.
        """
        from ..replay import redactor
        from ..replay.redact import matches_any
        from ..storage import TraceStore

        patterns = list(redact or [])
        if output.exists() and not force:
            fail(f"{output} already exists (pass --force to overwrite it)")
        check_output_dir(output)
        with open_trace(trace, trace_ref) as (store, chosen):
            info = chosen.info
            if patterns:
                names = sorted({e.name for e in chosen.events(kind="import")})
                for pattern in patterns:
                    if not any(matches_any(n, [pattern]) for n in names):
                        fail(
                            f"--redact {pattern}: no host call of {render.trace_title(info)} "
                            f"matches it; its host calls are: {', '.join(names) or 'none'}"
                        )
            store.bundle(
                info.id, output, redact=redactor(patterns) if patterns else None, overwrite=force
            )
        with TraceStore(output, readonly=True) as made:
            bundled = made.traces()[0]
        size = output.stat().st_size
        redacted = [str(n) for n in bundled.meta.get("redacted") or []]
        rewritten = int(bundled.meta.get("redacted_events") or 0)
        if as_json:
            render.emit_json(
                {
                    "bundle": str(output),
                    "bytes": size,
                    "trace": render.trace_json(bundled),
                    "source": {"store": str(store.path), "trace": info.id},
                    "redacted": redacted,
                    "redacted_events": rewritten,
                }
            )
            return
        console = render.out()
        console.print(
            f"bundled {render.escape(render.trace_title(info))} and its module into "
            f"{render.escape(str(output))} ({render.human_bytes(size)})"
        )
        if patterns:
            console.print(
                f"redacted {rewritten} host call(s) of "
                f"{render.escape(', '.join(redacted) or '-')}"
            )
        console.print(f"replay it anywhere with: packr-replay play {render.escape(str(output))}")
