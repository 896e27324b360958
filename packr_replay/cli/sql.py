"""``index`` and ``sql``: trace files as tables, for people and everyday SQL tools.

``index`` fills the per-event ``event_index`` table behind the ``events`` view, so the
file reads in ``sqlite3`` or Datasette without packr-replay. ``sql`` runs one
statement with the ``packr_*`` value functions registered (read-only unless
``--write``) and prints a table, or ``--json``::

    {"columns": ["seq", "name"], "rows": [[0, "run"], ...], "truncated": false, "changes": 0}

(blobs as hex, as everywhere in the CLI's JSON).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .._text import printable
from .errors import fail
from .render import LazyProgress, emit_json, err, escape, out

if TYPE_CHECKING:  # SQLite and rich load when a command runs, not for --help
    from rich.table import Table
    from rich.text import Text

    from ..storage.sqlfuncs import QueryResult

__all__ = ["index", "register", "sql"]

#: storage.sqlfuncs.FUNCTIONS, for the help text (tests/cli/test_startup.py keeps them equal).
FUNCTION_NAMES = (
    "packr_text", "packr_json", "packr_kind", "packr_error", "packr_input", "packr_output",
)  # fmt: skip

_CELL_CHARS = 200  # longer text is cut in the table (never in --json)

_SQL_HELP = f"""Run one SQL statement on a trace file and print the rows.

Views: [bold]trace_summary[/bold] (traces with module name and status) and
[bold]events[/bold] (one row per indexed event: name, kind, sizes, outcome, text of small
values; fill it with [bold]packr-replay index[/bold] or --index). Functions:
{", ".join(FUNCTION_NAMES)}; e.g.
[bold]select seq, name, packr_text(packr_output(trace_id, seq)) from events[/bold].
The file is opened read-only unless --write is given.
"""


def _store_path(path: Path) -> Path:
    if not path.exists():
        fail(f"{path}: no such file")
    return path


def index(
    path: Annotated[Path, typer.Argument(metavar="TRACE_FILE", help="A trace store (.db).")],
    trace: Annotated[
        list[str] | None,
        typer.Option("--trace", "-t", help="Only this trace (id, uuid or label); repeatable."),
    ] = None,
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Drop the traces' rows and index them again.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Index a trace file's events, so sqlite3 and Datasette show them in the [bold]events[/bold] view.

    Indexing is incremental (only events not yet indexed are read) and migrates an
    older file to the current format.
    """
    from ..storage import TraceStore, index_all
    from ..storage.index import index_status

    with TraceStore(_store_path(path)) as store:
        infos = store.traces()
        wanted = {store.trace(r).id for r in trace} if trace else None
        total = sum(i.event_count for i in infos if wanted is None or i.id in wanted)
        with LazyProgress("indexing events", total, enabled=not as_json) as bar:
            written = index_all(store, wanted, rebuild=rebuild, progress=bar.advance)
        indexed = index_status(store)
    rows = [
        {"id": i.id, "label": i.label, "written": written[i.id], "indexed": indexed.get(i.id, 0),
         "events": i.event_count}
        for i in infos
        if i.id in written
    ]  # fmt: skip
    if as_json:
        emit_json({"path": str(path), "written": sum(written.values()), "traces": rows})
        return
    console = out()
    console.print(
        f"indexed {sum(written.values())} new event(s) in {len(rows)} trace(s) of "
        f"{escape(str(path))}; {sum(indexed.get(i, 0) for i in written)} event(s) in the index"
    )
    console.print(f'read it with: sqlite3 {escape(str(path))} "select * from events limit 20"')


def _cell(value: Any) -> Text:
    from rich.text import Text

    if value is None:
        return Text("NULL", style="dim")
    if isinstance(value, bytes):
        return Text(f"<blob {len(value)} bytes>", style="dim")
    text = (
        value if isinstance(value, str) else repr(value) if isinstance(value, float) else str(value)
    )
    if len(text) > _CELL_CHARS:
        text = text[:_CELL_CHARS] + "..."
    return Text(printable(text))


def _table(result: QueryResult) -> Table:
    from rich.table import Table

    table = Table(show_lines=False)
    for name in result.columns:
        table.add_column(escape(name), overflow="fold")
    for row in result.rows:
        table.add_row(*(_cell(v) for v in row))
    return table


def sql(
    path: Annotated[Path, typer.Argument(metavar="TRACE_FILE", help="A trace store (.db).")],
    query: Annotated[str, typer.Argument(metavar="SQL", help="One SQL statement.")],
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param", "-p", metavar="VALUE", help="A value for the next ? placeholder; repeatable."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False,
    write: Annotated[
        bool, typer.Option("--write", help="Open the file for writing (default read-only).")
    ] = False,
    index_first: Annotated[
        bool, typer.Option("--index", help="Bring the event index up to date first (writes).")
    ] = False,
    max_rows: Annotated[
        int | None, typer.Option("--max-rows", min=1, help="Stop after this many rows.")
    ] = None,
) -> None:
    """Run one SQL statement on a trace file (help text: ``_SQL_HELP``)."""
    from ..storage import TraceStore, index_all
    from ..storage.sqlfuncs import run_query, unindexed_traces

    _store_path(path)
    if index_first:
        with TraceStore(path) as store:
            index_all(store)
    with TraceStore(path, readonly=not write) as store:
        result = run_query(
            store, query, list(param or []), max_rows=max_rows, write_hint="pass --write"
        )
        lowered = query.lower()
        missing = unindexed_traces(store) if "events" in lowered or "event_index" in lowered else []
    if missing:
        err().print(
            f"note: {len(missing)} trace(s) are not fully indexed, so the events view lacks "
            f"some of their events; run: packr-replay index {escape(str(path))} (or add --index)"
        )
    if result.truncated:
        err().print(f"note: showing the first {len(result.rows)} row(s) (--max-rows)")
    if as_json:
        emit_json(
            {
                "columns": result.columns,
                "rows": [list(r) for r in result.rows],
                "truncated": result.truncated,
                "changes": result.changes,
            }
        )
        return
    if result.columns:
        out().print(_table(result))
    else:
        out().print(f"{result.changes} row(s) changed")


def register(app: typer.Typer) -> None:
    app.command("index")(index)
    app.command("sql", help=_SQL_HELP)(sql)
