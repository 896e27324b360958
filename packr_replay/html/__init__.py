"""Traces as HTML: a trace's page (header and timeline), one event whole, and two
traces compared, written as self-contained files (``show --html``, ``diff --html``)
or served by the Datasette plugin (:mod:`packr_replay.datasette_plugin`).

Plain string building with :func:`html.escape` (no template engine, so ``--html``
needs nothing beyond the core install). Modules: ``markup`` (escaping, values as
text, the page shell with its CSS, script and Content-Security-Policy), ``view``
(links and size limits), ``timeline`` (the trace page), ``diffview`` (the diff page),
``files`` (writing without clobbering).
"""

from .diffview import aligned_rows, diff_page
from .files import write_html
from .markup import ValueLimits, esc, full_value, page, preview_value
from .timeline import event_page, read_timeline, trace_page
from .view import Links, PageLimits, TimelineFilter

__all__ = [
    "Links",
    "PageLimits",
    "TimelineFilter",
    "ValueLimits",
    "aligned_rows",
    "diff_page",
    "esc",
    "event_page",
    "full_value",
    "page",
    "preview_value",
    "read_timeline",
    "trace_page",
    "write_html",
]
