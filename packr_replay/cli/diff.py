"""``packr-replay diff``: compare two traces event by event."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from . import render
from .common import JsonOpt, complete_trace, open_trace
from .errors import DIFFERENT, fail

__all__ = ["HTML_CHANGES", "register"]

HTML_CHANGES = 500
"""Changes an HTML comparison lists (and aligns events through)."""


def register(app: typer.Typer) -> None:
    @app.command(no_args_is_help=True)
    def diff(
        a: Annotated[
            str,
            typer.Argument(
                metavar="A",
                help="A trace: FILE (its newest trace), FILE#ID or FILE#LABEL.",
                autocompletion=complete_trace,
            ),
        ],
        b: Annotated[
            str,
            typer.Argument(
                metavar="B", help="The trace to compare it with.", autocompletion=complete_trace
            ),
        ],
        limit: Annotated[
            int, typer.Option("--limit", "-n", metavar="N", help="Show at most N changes.")
        ] = 20,
        html: Annotated[
            Path | None,
            typer.Option(
                "--html",
                metavar="OUT.html",
                help="Also write the comparison as one self-contained HTML page (both traces' events aligned, the first divergence highlighted).",
            ),
        ] = None,
        force: Annotated[bool, typer.Option("--force", help="Overwrite OUT.html if it exists.")] = False,
        as_json: JsonOpt = False,
    ) -> None:
        """Compare two traces: exit 0 when identical, 1 when they differ.

        Shows the first divergence with the value paths where the values part, the changes, and a per-function summary. A FILE alone means its newest trace. --html OUT.html also writes it as a page to open in a browser.
        """
        from ..replay import diff_traces

        if html is not None and html.exists() and not force:
            fail(f"{html} already exists (pass --force to overwrite it)")
        with open_trace(a) as (sa, ta), open_trace(b) as (sb, tb):
            wanted = max(limit, 1) if html is None else max(limit, HTML_CHANGES)
            result = diff_traces(ta, tb, max_changes=wanted)
            info_a, info_b = ta.info, tb.info
            names = [
                store.module_info(sha).name if sha is not None else "?"
                for store, sha in ((sa, info_a.module_sha256), (sb, info_b.module_sha256))
            ]
            if html is not None:
                from ..html import diff_page, write_html

                write_html(
                    html, diff_page(ta, tb, result, source_a=a, source_b=b), overwrite=force
                )
                render.err().print(
                    f"wrote the comparison to {render.escape(str(html))} "
                    f"({render.human_bytes(html.stat().st_size)})"
                )
            result.changes = result.changes[: max(limit, 1)]
        if as_json:
            data = render.trace_diff_json(result)
            data["changes"] = data["changes"][: max(limit, 0)]
            render.emit_json(
                {
                    "a": {"spec": a, "trace": render.trace_json(info_a)},
                    "b": {"spec": b, "trace": render.trace_json(info_b)},
                    **data,
                }
            )
        else:
            console = render.out()
            for side, spec, info in (("a", a, info_a), ("b", b, info_b)):
                console.print(
                    f"{side}: {render.escape(render.trace_title(info))} "
                    f"({info.event_count} events) from {render.escape(spec)}"
                )
            if result.modules_differ:
                shas = [(info.module_sha256 or "")[:12] for info in (info_a, info_b)]
                console.print(
                    f"[yellow]note: the traces ran different modules: a ran "
                    f"{render.escape(names[0])} (sha256 {shas[0]}), b ran "
                    f"{render.escape(names[1])} (sha256 {shas[1]})[/yellow]"
                )
            if result.identical:
                console.print(f"[green bold]identical[/green bold]: {result.events_a} events")
                return
            console.print(f"[bold]{render.escape_lines(result.summary())}[/bold]")
            if result.first is not None:
                console.print("\n[bold]first divergence[/bold]")
                console.print(render.escape_lines(str(result.first)))
            total = result.changed + result.inserted + result.removed
            more = result.changes[1:limit]
            if more:
                console.print(f"\n[bold]then[/bold] ({len(more)} more of {total} changes)")
                for change in more:
                    console.print(render.escape_lines(str(change)))
            if total > len(more) + 1:
                console.print(f"... {total - len(more) - 1} more (--limit N to see them)")
            from rich.table import Table

            table = Table(title="per function", title_justify="left")
            for name in ("call", "a", "b", "changed", "inserted", "removed"):
                table.add_column(name, justify="left" if name == "call" else "right")
            for name, stats in result.calls.items():
                style = "" if not (stats.changed or stats.inserted or stats.removed) else "yellow"
                table.add_row(
                    render.escape(name),
                    str(stats.a),
                    str(stats.b),
                    str(stats.changed),
                    str(stats.inserted),
                    str(stats.removed),
                    style=style,
                )
            console.print()
            console.print(table)
        if not result.identical:
            raise typer.Exit(DIFFERENT)
