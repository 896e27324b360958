"""The Datasette plugin: ``pip install 'packr-replay[datasette]'``, then
``datasette bug.db`` shows traces as packr sees them.

* The ``packr_*`` SQL functions (:mod:`packr_replay.storage.sqlfuncs`) on every
  connection; ``packr_input``/``packr_output`` read events through that connection.
* CGRF blobs in any table or query render as packr text, decoded under strict
  limits; a value cut short (or too big to preview) links to its whole text.
* ``/-/packr/DB``: the file's traces, each linked to its page, and a form to diff two.
* ``/-/packr/DB/trace/ID``: the trace's header (module, settings, status, head hash,
  ``verify``'s verdict) and its timeline, filterable by interface and function, a page
  of events at a time, every event linked to ``.../event/SEQ`` (its values whole).
* ``/-/packr/DB/diff?a=ID&b=ID`` (``&b_db=OTHER`` for a trace in another file): the
  comparison ``packr-replay diff`` prints, with both traces' events aligned.

Everything reads through Datasette's own connections (``mode=ro``, or ``immutable=1``
for ``datasette -i``), so the plugin never writes to a file or opens it another way,
and works on files that were never indexed (events are read from their segments).
This is the only module that imports Datasette.
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar, cast
from urllib.parse import urlencode

import markupsafe
from datasette import Response
from datasette import hookimpl as _hookimpl
from datasette.utils import tilde_decode, tilde_encode

from .errors import IntegrityError, StoreError, TraceFormatError, TraceNotFound
from .html import (
    Links,
    PageLimits,
    TimelineFilter,
    diff_page,
    esc,
    event_page,
    page,
    preview_value,
    trace_page,
)
from .html.markup import full_value
from .html.timeline import trace_title
from .replay import diff_traces
from .storage import TraceStore, VerifyReport
from .storage.sqlfuncs import MAX_TEXT_CHARS, register_functions
from .storage.sqlite import distrust_schema

__all__ = [
    "CELL_PREVIEW_CHARS",
    "EVENT_PAGE_CHARS",
    "TIMELINE_PAGE_EVENTS",
    "database_actions",
    "hookimpl",
    "prepare_connection",
    "register_routes",
    "render_cell",
    "table_actions",
]

CELL_PREVIEW_CHARS = 200
"""A CGRF blob in a table or query shows this much packr text."""

TIMELINE_PAGE_EVENTS = 500
"""Events on one page of a trace's timeline."""

EVENT_PAGE_CHARS = 200_000
"""An event page shows each value up to this much text ("show all": the SQL limit)."""

DIFF_CHANGES = 500
"""Changes a diff page lists (and aligns events through)."""

_CGRF_MAGIC = b"CGRF"
_F = TypeVar("_F", bound=Callable[..., Any])


def hookimpl(fn: _F) -> _F:
    """Datasette's hook marker (pluggy marks the function and returns it), typed."""
    return cast(_F, _hookimpl(fn))


_TRACE_TABLES = ("traces", "trace_summary", "events", "event_index", "segments")


# ------------------------------------------------------------------ cell values


class _Blobs:
    """Values shown cut in a table or query, kept (bounded, least recently used out)
    so their "show all" link can render them whole without re-running the query."""

    def __init__(self, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._items: OrderedDict[str, bytes] = OrderedDict()

    def keep(self, data: bytes) -> str:
        key = hashlib.sha256(data).hexdigest()
        if key in self._items:
            self._items.move_to_end(key)
            return key
        if len(data) > self.max_bytes:
            return key
        self._items[key] = data
        self.size += len(data)
        while self.size > self.max_bytes:
            _, old = self._items.popitem(last=False)
            self.size -= len(old)
        return key

    def get(self, key: str) -> bytes | None:
        return self._items.get(key)


_BLOBS = _Blobs()


def _url(datasette: Any, path: str) -> str:
    return str(datasette.urls.path(path))


def _base(datasette: Any, database: str) -> str:
    return _url(datasette, f"/-/packr/{tilde_encode(database)}")


@hookimpl
def prepare_connection(conn: Any, database: str, datasette: Any) -> None:
    """The packr SQL functions, reading events through this very connection, which is
    guarded as the store's own are: ``trusted_schema=OFF`` (a view or trigger in the
    file cannot call them) and SQLite's defensive mode where this Python offers it."""
    distrust_schema(conn)
    path = None
    try:
        path = datasette.get_database(database).path
    except KeyError:
        pass
    register_functions(conn, path=path)


@hookimpl
def render_cell(value: Any, column: str, table: str | None, database: str, datasette: Any) -> Any:
    """CGRF blobs as packr text; trace ids as links to their pages."""
    if type(value) is bytes and value[:4] == _CGRF_MAGIC:
        limit = CELL_PREVIEW_CHARS
        text = preview_value(value, limit, "#")
        if 'class="more"' in text:  # cut: link to the whole value
            key = _BLOBS.keep(value)
            text = text.replace('href="#"', f'href="{esc(_url(datasette, "/-/packr/value/" + key))}"')
        return markupsafe.Markup(f'<span class="packr-value">{text}</span>')
    if type(value) is int and (
        column == "trace_id" or (table == "trace_summary" and column == "id")
    ):
        href = f"{_base(datasette, database)}/trace/{value}"
        return markupsafe.Markup(f'<a href="{esc(href)}" title="timeline">{value}</a>')
    return None


@hookimpl
def database_actions(datasette: Any, actor: Any, database: str, request: Any) -> list[dict[str, str]]:
    return [{"href": _base(datasette, database), "label": "packr traces: timelines and diffs"}]


@hookimpl
def table_actions(
    datasette: Any, actor: Any, database: str, table: str, request: Any
) -> list[dict[str, str]]:
    if table not in _TRACE_TABLES:
        return []
    return [{"href": _base(datasette, database), "label": "packr traces: timelines and diffs"}]


# ------------------------------------------------------------------ pages


class _NoEvent(StoreError):
    """The page names an event its trace does not have."""


class _ServerLinks(Links):
    """Links between the plugin's pages (``b`` may live in another database)."""

    server = True

    def __init__(self, base: str, base_b: str | None = None) -> None:
        self.base = base
        self.base_b = base_b or base

    def event(self, trace_id: int, seq: int, side: str = "") -> str:
        base = self.base_b if side == "b" else self.base
        return f"{base}/trace/{trace_id}/event/{seq}"

    def trace(self, trace_id: int) -> str | None:
        return f"{self.base}/trace/{trace_id}"

    def timeline(self, trace_id: int, flt: TimelineFilter) -> str | None:
        params: dict[str, str | int] = {}
        if flt.interface is not None:
            params["interface"] = flt.interface
        if flt.function is not None:
            params["function"] = flt.function
        if flt.failures:
            params["failures"] = 1
        if flt.start:
            params["start"] = flt.start
        query = f"?{urlencode(params)}" if params else ""
        return f"{self.base}/trace/{trace_id}{query}"


_VERDICTS: OrderedDict[tuple[Any, ...], VerifyReport] = OrderedDict()


def _verdict(store: TraceStore, trace_id: int, event_count: int) -> VerifyReport:
    """``verify``'s report, remembered while the file and its WAL are unchanged (a page
    view should not re-hash a million events each time)."""
    key: tuple[Any, ...] = (str(store.path), trace_id, event_count)
    for path in (store.path, store.path.with_name(store.path.name + "-wal")):
        try:
            st = os.stat(path)
        except FileNotFoundError:
            key += (None,)
        except OSError:
            return store.verify(trace_id)
        else:
            key += (st.st_mtime_ns, st.st_size)
    report = _VERDICTS.get(key)
    if report is None:
        report = store.verify(trace_id)
        _VERDICTS[key] = report
        while len(_VERDICTS) > 256:
            _VERDICTS.popitem(last=False)
    return report


def _error_page(datasette: Any, message: str, status: int, nav: list[tuple[str, str]]) -> Response:
    body = f'<h1>packr-replay</h1><p class="bad">{esc(message)}</p>'
    return Response.html(page("packr-replay: error", body, nav), status=status)


async def _open(
    datasette: Any, request: Any, name: str
) -> tuple[Any, list[tuple[str, str]]]:
    await datasette.ensure_permissions(request.actor, [("view-database", name), "view-instance"])
    db = datasette.get_database(name)
    nav = [
        (name, _url(datasette, f"/{tilde_encode(name)}")),
        ("traces", _base(datasette, name)),
    ]
    return db, nav


async def _render(
    datasette: Any, db: Any, nav: list[tuple[str, str]], work: Callable[[TraceStore], str]
) -> Response:
    """Run ``work`` on a read-only store over one of Datasette's connections."""

    def run(conn: Any) -> str:
        store = TraceStore.over_connection(conn, db.path or db.name)
        return work(store)

    try:
        return Response.html(await db.execute_fn(run))
    except (TraceNotFound, _NoEvent) as exc:
        return _error_page(datasette, str(exc), 404, nav)
    except (IntegrityError, TraceFormatError, StoreError) as exc:
        return _error_page(datasette, str(exc), 400, nav)


def _name(request: Any) -> str:
    return str(tilde_decode(request.url_vars["database"]))


def _int(request: Any, key: str, default: int | None = None) -> int | None:
    raw = request.args.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        return default
    return value if value >= 0 else default


async def traces_view(datasette: Any, request: Any) -> Response:
    name = _name(request)
    db, nav = await _open(datasette, request, name)
    base = _base(datasette, name)

    def work(store: TraceStore) -> str:
        infos = store.traces()
        rows = "".join(
            f'<tr><td class="num"><a href="{esc(base)}/trace/{i.id}">{i.id}</a></td>'
            f"<td>{esc(i.label or '')}</td><td>{esc(i.status)}</td>"
            f'<td class="num">{i.event_count:,}</td><td>{esc(i.created_at[:19])}</td>'
            f"<td>{esc(i.host or '')}</td></tr>"
            for i in infos
        )
        options = "".join(f'<option value="{i.id}">{esc(trace_title(i))}</option>' for i in infos)
        body = (
            f"<h1>{len(infos)} traces in {esc(name)}</h1>"
            '<table class="grid traces"><thead><tr><th>id</th><th>label</th><th>status</th>'
            f"<th>events</th><th>created</th><th>host</th></tr></thead><tbody>{rows}</tbody></table>"
            f'<h2>Compare two traces</h2><form class="filters" method="get" action="{esc(base)}/diff">'
            f'<label>a <select name="a">{options}</select></label>'
            f'<label>b <select name="b">{options}</select></label>'
            '<button type="submit">diff</button></form>'
        )
        return page(f"traces in {name} — packr-replay", body, nav)

    return await _render(datasette, db, nav, work)


async def trace_view(datasette: Any, request: Any) -> Response:
    name = _name(request)
    db, nav = await _open(datasette, request, name)
    trace_id = int(request.url_vars["trace"])
    flt = TimelineFilter(
        interface=request.args.get("interface") or None,
        function=request.args.get("function") or None,
        failures=request.args.get("failures") == "1",
        start=_int(request, "start", 0) or 0,
    )
    links = _ServerLinks(_base(datasette, name))

    def work(store: TraceStore) -> str:
        trace = store.trace(trace_id)
        verdict = _verdict(store, trace_id, trace.info.event_count)
        return trace_page(
            store,
            trace,
            source=name,
            flt=flt,
            limits=PageLimits(events=TIMELINE_PAGE_EVENTS),
            links=links,
            verdict=verdict,
            nav=nav,
        )

    return await _render(datasette, db, nav, work)


async def event_view(datasette: Any, request: Any) -> Response:
    name = _name(request)
    db, nav = await _open(datasette, request, name)
    trace_id = int(request.url_vars["trace"])
    seq = int(request.url_vars["seq"])
    whole = request.args.get("all") == "1"
    base = _base(datasette, name)
    nav = [*nav, (f"trace {trace_id}", f"{base}/trace/{trace_id}")]

    def work(store: TraceStore) -> str:
        trace = store.trace(trace_id)
        try:
            event = trace.event(seq)
        except IndexError:
            raise _NoEvent(f"trace {trace_id} has no event {seq}") from None
        return event_page(
            trace,
            event,
            source=name,
            max_chars=MAX_TEXT_CHARS if whole else EVENT_PAGE_CHARS,
            all_href=None if whole else f"{base}/trace/{trace_id}/event/{seq}?all=1",
            nav=nav,
        )

    return await _render(datasette, db, nav, work)


async def diff_view(datasette: Any, request: Any) -> Response:
    name = _name(request)
    db, nav = await _open(datasette, request, name)
    other = request.args.get("b_db") or name
    a_id, b_id = _int(request, "a"), _int(request, "b")
    if a_id is None or b_id is None:
        return _error_page(datasette, "name two traces: ?a=ID&b=ID (&b_db=DATABASE)", 400, nav)
    db_b, _ = await _open(datasette, request, other)
    links = _ServerLinks(_base(datasette, name), _base(datasette, other))

    def work(store_a: TraceStore) -> str:
        ta = store_a.trace(a_id)
        if other == name:
            return _diff(store_a, ta, store_a)
        conn_b = db_b.connect()  # Datasette's own read-only open of the other file
        try:
            store_b = TraceStore.over_connection(conn_b, db_b.path or db_b.name)
            return _diff(store_a, ta, store_b)
        finally:
            conn_b.close()

    def _diff(store_a: TraceStore, ta: Any, store_b: TraceStore) -> str:
        tb = store_b.trace(b_id)
        result = diff_traces(ta, tb, max_changes=DIFF_CHANGES)
        return diff_page(
            ta, tb, result, source_a=f"{name}#{a_id}", source_b=f"{other}#{b_id}",
            links=links, nav=nav,
        )  # fmt: skip

    return await _render(datasette, db, nav, work)


async def value_view(datasette: Any, request: Any) -> Response:
    await datasette.ensure_permissions(request.actor, ["view-instance"])
    data = _BLOBS.get(request.url_vars["sha"])
    if data is None:
        return _error_page(
            datasette,
            "this value is no longer held (values are kept while recent); show the table "
            "or run the query again, then follow its link",
            404,
            [],
        )
    body = f"<h1>value ({len(data):,} bytes)</h1>{full_value(data, MAX_TEXT_CHARS)}"
    return Response.html(page("value — packr-replay", body))


@hookimpl
def register_routes(datasette: Any) -> list[tuple[str, Callable[..., Any]]]:
    db = r"/-/packr/(?P<database>[^/]+)"
    return [
        (r"^/-/packr/value/(?P<sha>[0-9a-f]{64})$", value_view),
        (rf"^{db}$", traces_view),
        (rf"^{db}/trace/(?P<trace>\d+)$", trace_view),
        (rf"^{db}/trace/(?P<trace>\d+)/event/(?P<seq>\d+)$", event_view),
        (rf"^{db}/diff$", diff_view),
    ]
