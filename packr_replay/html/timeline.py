"""A trace as a page: its header (module, settings, status, head hash, ``verify``'s
verdict) and a timeline of its calls, nested by depth, failures marked, filterable by
interface and function, every event linked to its values in full.

The trace is read once, as records (no value is decoded unless its row is shown), so
a page over a million-event trace costs one pass and the rows it shows. A trace that
fails its hash chain part-way is listed up to the bad event, with the reason.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..errors import IntegrityError, StoreError, TraceFormatError
from ..storage import Event, Trace, TraceInfo, TraceStore, VerifyReport
from ..storage.codec import event_from_record
from ..storage.rows import ModuleInfo
from .markup import esc, full_value, page, preview_value
from .view import Links, PageLimits, TimelineFilter

__all__ = [
    "Timeline",
    "event_page",
    "event_row",
    "event_section",
    "read_timeline",
    "trace_header",
    "trace_page",
    "trace_title",
]

_MAX_META_KEYS = 40
_MAX_META_CHARS = 200


def trace_title(info: TraceInfo) -> str:
    """``trace 3 'flaky'`` (plain text)."""
    return f"trace {info.id}" + (f" {info.label!r}" if info.label else "")


def _verdict(report: VerifyReport | None) -> str:
    if report is None:
        return '<span class="note">not checked</span>'
    if report.ok:
        return f'<span class="verdict ok">ok</span> {report.events:,} events, hash chain intact'
    where = "" if report.first_bad_seq is None else f" at event #{report.first_bad_seq}"
    return f'<span class="verdict bad">TAMPERED{where}</span> {esc(report.message)}'


def _settings(meta: dict[str, object]) -> str:
    if not meta:
        return '<span class="none">-</span>'
    items = []
    for key in sorted(meta, key=str)[:_MAX_META_KEYS]:
        text = f"{key}={meta[key]!r}"
        if len(text) > _MAX_META_CHARS:
            text = text[:_MAX_META_CHARS] + "…"
        items.append(f"<code>{esc(text)}</code>")
    more = len(meta) - _MAX_META_KEYS
    if more > 0:
        items.append(f'<span class="note">and {more} more</span>')
    return ", ".join(items)


def trace_header(
    info: TraceInfo,
    *,
    source: str,
    verdict: VerifyReport | None,
    module: ModuleInfo | None,
) -> str:
    """The ``<dl>`` describing one trace (``source``: where it was read from)."""
    if info.module_sha256 is None:
        mod = '<span class="none">none stored</span>'
    elif module is None:
        mod = f'<span class="bad">missing</span> sha256 <code>{esc(info.module_sha256)}</code>'
    else:
        mod = (
            f"{esc(module.name)} ({module.size:,} bytes, sha256 "
            f"<code>{esc(module.sha256)}</code>)"
        )
    head = (
        f"<code>{info.head_hash.hex()}</code>"
        if info.head_hash is not None
        else '<span class="none">not sealed</span>'
    )
    rows = [
        ("file", esc(source)),
        ("module", mod),
        ("status", esc(info.status)),
        ("events", f"{info.event_count:,}"),
        ("created", esc(info.created_at)),
        ("completed", esc(info.completed_at or "-")),
        ("host", esc(info.host or "-")),
        ("recorded by", f"packr-replay {esc(info.tool_version)}, trace format {info.format_version}"),
        ("settings", _settings(info.meta)),
        ("uuid", f"<code>{esc(info.uuid)}</code>"),
        ("head hash", head),
        ("verify", _verdict(verdict)),
    ]
    if info.replay_of is not None:
        rows.insert(5, ("replay of", f"trace {info.replay_of}"))
    body = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in rows)
    return f'<dl class="meta">{body}</dl>'


# ------------------------------------------------------------------ reading


@dataclass(slots=True)
class Timeline:
    """What one pass over a trace found: the rows to show, every call name's count
    (for the filters), how many events matched, and where reading stopped early."""

    events: list[Event] = field(default_factory=list)
    interfaces: Counter[str] = field(default_factory=Counter)
    functions: Counter[str] = field(default_factory=Counter)
    read: int = 0
    matched: int = 0
    next_start: int | None = None
    stopped: str | None = None  # why reading ended before the last event


def read_timeline(trace: Trace, flt: TimelineFilter, limit: int) -> Timeline:
    """One pass over ``trace``: the first ``limit`` events ``flt`` lets through from
    ``flt.start``, and the counts of every name (the whole trace)."""
    out = Timeline()
    start = flt.start
    try:
        for fields, digest in trace.records():
            out.read += 1
            seq, _call, _kind, interface, function = fields[:5]
            if interface:
                out.interfaces[interface] += 1
            out.functions[function] += 1
            if seq < start or not flt(interface, function, fields[8]):
                continue
            out.matched += 1
            if len(out.events) < limit:
                out.events.append(event_from_record(fields, digest))
            elif out.next_start is None:
                out.next_start = seq
    except (IntegrityError, TraceFormatError) as exc:
        out.stopped = str(exc)
    return out


# ------------------------------------------------------------------ rendering


def _outcome(event: Event) -> str:
    status = "" if event.status is None else f" ({event.status})"
    if event.outcome == "ok":
        return f"✓ ok{status}"
    return f"✗ {esc(event.outcome)}{status}"


def _duration(ns: int) -> str:
    if not ns:
        return ""
    return f"{ns / 1e6:.3f} ms" if ns >= 1000 else f"{ns} ns"


def event_row(event: Event, href: str, limits: PageLimits, extra: str = "") -> str:
    """One timeline row (a ``<tr>`` with the data attributes the filters use)."""
    failed = event.outcome != "ok"
    classes = f"k-{event.kind}" + (" fail" if failed else "") + extra
    preview = limits.values.preview
    if event.kind == "export":
        inp, out = preview_value(event.input, preview, href), ""
    elif event.kind == "return":
        inp = ""
        out = preview_value(event.output, preview, href) if event.output is not None else ""
    else:
        inp = preview_value(event.input, preview, href)
        out = preview_value(event.output, preview, href) if event.output is not None else ""
    if failed:
        error = f"{event.error_kind}: {event.error}" if event.error_kind else str(event.error)
        out += f'<div class="bad">✗ {esc(error)}</div>'
    depth = min(max(event.depth, 0), 8)
    return (
        f'<tr id="row-{event.seq}" class="{classes}" data-seq="{event.seq}" '
        f'data-interface="{esc(event.interface)}" data-function="{esc(event.function)}" '
        f'data-failed="{1 if failed else 0}">'
        f'<td class="seq"><a href="{esc(href)}">{event.seq}</a></td>'
        f'<td class="num">{event.call}</td>'
        f'<td class="name d{depth}"><span class="badge">{event.kind}</span>{esc(event.name)}</td>'
        f'<td class="val">{inp}</td><td class="val">{out}</td>'
        f'<td class="outcome">{_outcome(event)}</td>'
        f'<td class="num">{_duration(event.duration_ns)}</td></tr>'
    )


TIMELINE_HEAD = (
    '<table class="grid timeline"><thead><tr><th>seq</th><th>call</th><th>event</th>'
    "<th>input</th><th>output</th><th>outcome</th><th>time</th></tr></thead><tbody>"
)


def _filters(tl: Timeline, flt: TimelineFilter, links: Links) -> str:
    def options(counts: Counter[str], chosen: str | None) -> str:
        opts = ['<option value="">(all)</option>']
        for name in sorted(counts):
            sel = " selected" if name == chosen else ""
            opts.append(f'<option value="{esc(name)}"{sel}>{esc(name)} ({counts[name]:,})</option>')
        return "".join(opts)

    mode = "server" if links.server else "page"
    checked = " checked" if flt.failures else ""
    return (
        f'<form id="filters" class="filters" method="get" data-mode="{mode}">'
        f'<label>interface <select name="interface">{options(tl.interfaces, flt.interface)}'
        "</select></label>"
        f'<label>function <select name="function">{options(tl.functions, flt.function)}'
        "</select></label>"
        f'<label><input type="checkbox" name="failures" value="1"{checked}> failures only</label>'
        '<noscript><button type="submit">filter</button></noscript>'
        '<span id="shown"></span></form>'
    )


def event_section(
    event: Event,
    anchor: str,
    limits: PageLimits,
    budget: list[int],
    note: str = "",
    title: str = "",
) -> str:
    """An event's values in full, in a ``<section id=anchor>`` (inside a file);
    ``budget`` (one int, shared across a page) runs down as values are written;
    ``note`` (markup) says where a left-out value can be read."""
    head = f"{title}#{event.seq} {event.kind} {event.name}"
    parts = [f'<section class="event" id="{esc(anchor)}"><h3>{esc(head)}</h3>']
    if event.outcome != "ok":
        parts.append(f'<p class="bad">✗ {esc(event.outcome)}: {esc(event.error_kind)}: {esc(event.error)}</p>')
    for side, data in (("input", event.input), ("output", event.output)):
        if data is None:
            continue
        if budget[0] <= 0:
            parts.append(
                f'<div class="side"><p>{side} ({len(data):,} bytes): left out, this file '
                f"is full{note}</p></div>"
            )
            continue
        block = full_value(data, min(limits.values.full, budget[0]))
        budget[0] -= len(block)
        parts.append(f'<div class="side"><p>{side} ({len(data):,} bytes)</p>{block}</div>')
    parts.append("</section>")
    return "".join(parts)


def trace_page(
    store: TraceStore,
    trace: Trace,
    *,
    source: str,
    flt: TimelineFilter | None = None,
    limits: PageLimits | None = None,
    links: Links | None = None,
    verdict: VerifyReport | None = None,
    nav: Iterable[tuple[str, str]] = (),
) -> str:
    """The trace's page as one HTML document (see the module docstring).

    With the default :class:`Links` it is a self-contained file: the first
    ``limits.events`` events, their values whole further down (up to
    ``limits.budget``), and a note of what it left out. ``verdict``: ``verify``'s
    report, when the caller has it already (it is computed otherwise).
    """
    flt = flt or TimelineFilter()
    limits = limits or PageLimits()
    links = links or Links()
    info = trace.info
    if verdict is None:
        verdict = store.verify(info.id)
    module = None
    if info.module_sha256 is not None:
        try:
            module = store.module_info(info.module_sha256)
        except StoreError:
            module = None
    tl = read_timeline(trace, flt, limits.events)
    title = trace_title(info)
    parts = [
        f"<h1>{esc(title)}</h1>",
        trace_header(info, source=source, verdict=verdict, module=module),
        "<h2>Timeline</h2>",
        _filters(tl, flt, links),
    ]
    shown = len(tl.events)
    if tl.matched > shown or flt.start:
        what = "matching events" if flt.active else "events"
        text = f"Showing {shown:,} of {tl.matched:,} {what}"
        if flt.start:
            text += f" from #{flt.start}"
        if tl.matched > shown:
            last = tl.events[-1].seq if tl.events else flt.start
            text += f"; the {tl.matched - shown:,} after #{last} are left out"
            if not links.server:
                text += f" (packr-replay show {source}#{info.id} --start {last + 1} lists them)"
        parts.append(f'<p class="leftout">{esc(text)}</p>')
    rows = [TIMELINE_HEAD]
    for event in tl.events:
        rows.append(event_row(event, links.event(info.id, event.seq), limits))
    if tl.stopped is not None:
        rows.append(f'<tr class="stop"><td colspan="7">reading stopped: {esc(tl.stopped)}</td></tr>')
    elif not tl.events:
        rows.append('<tr class="gap"><td colspan="7">no events match</td></tr>')
    rows.append("</tbody></table>")
    parts.extend(rows)
    if links.server and tl.next_start is not None:
        href = links.timeline(info.id, TimelineFilter(flt.interface, flt.function, flt.failures, tl.next_start))
        if href:
            parts.append(f'<p><a class="next" href="{esc(href)}">next page from #{tl.next_start} →</a></p>')
    if links.embeds_values() and tl.events:
        parts.append("<h2>Values</h2>")
        budget = [limits.budget]
        note = f" (packr-replay show {source}#{info.id} SEQ prints it)"
        parts.extend(
            event_section(event, links.event(info.id, event.seq)[1:], limits, budget, esc(note))
            for event in tl.events
        )
    return page(f"{title} — packr-replay", "\n".join(parts), nav)


def event_page(
    trace: Trace,
    event: Event,
    *,
    source: str,
    max_chars: int,
    all_href: str | None,
    nav: Iterable[tuple[str, str]] = (),
) -> str:
    """One event whole: its fields and both values indented, each cut at
    ``max_chars`` characters with a "show all" link to ``all_href``."""
    info = trace.info
    status = "" if event.status is None else f" (status {event.status})"
    rows = [
        ("trace", esc(trace_title(info)) + f" in {esc(source)}"),
        ("kind", esc(event.kind)),
        ("name", esc(event.name)),
        ("call", f"{event.call} (depth {event.depth})"),
        ("outcome", f"{esc(event.outcome)}{status}"),
    ]
    if event.error is not None or event.error_kind is not None:
        rows.append(("error", f'<span class="bad">{esc(event.error_kind)}: {esc(event.error)}</span>'))
    if event.duration_ns:
        rows.append(("duration", _duration(event.duration_ns)))
    rows.append(("hash", f"<code>{event.hash.hex()}</code>"))
    body = [
        f"<h1>event #{event.seq}: {esc(event.kind)} {esc(event.name)}</h1>",
        '<dl class="meta">' + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows) + "</dl>",
    ]
    for side, data in (("input", event.input), ("output", event.output)):
        size = "" if data is None else f" ({len(data):,} bytes)"
        body.append(f"<h2>{side}{size}</h2>")
        body.append(full_value(data, max_chars, all_href))
    return page(f"event #{event.seq} of {trace_title(info)} — packr-replay", "\n".join(body), nav)
