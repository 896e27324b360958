"""Two traces compared, as a page: the same content as ``packr-replay diff`` (summary,
first divergence with the value paths where the values part, the changes, a table
per function) plus the events of both traces aligned side by side.

The alignment is :func:`~packr_replay.replay.diff_traces`'s: between two listed
changes the traces make the same calls in the same order, so the aligned rows are
runs of equal pairs and one row per change. Only the rows a page shows are read: the
first ``limits.events`` and the first divergence's neighbourhood; the page says what
lies between and after.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from ..errors import IntegrityError, TraceFormatError
from ..replay import Difference, EventChange, TraceChange, TraceDiff
from ..storage import Event, Trace, TraceInfo
from .markup import esc, page, preview_value
from .timeline import event_section, trace_title
from .view import Links, PageLimits

__all__ = ["AlignedRow", "aligned_rows", "diff_page"]


_Href = Callable[[str, "Event | None"], "str | None"]
"""(side, event) -> where the event's values are."""


@dataclass(frozen=True, slots=True)
class _Run:
    """``n`` equal pairs starting at ``a0`` in a and ``b0`` in b."""

    a0: int
    b0: int
    n: int


@dataclass(frozen=True, slots=True)
class AlignedRow:
    """One row of the aligned view: ``change`` is ``None`` for an equal pair."""

    index: int
    a: Event | None
    b: Event | None
    change: TraceChange | None


def _segments(diff: TraceDiff) -> tuple[list[_Run | TraceChange], bool]:
    """The alignment as runs and changes, and whether it reaches both ends (it stops
    at the last listed change when ``diff`` listed fewer than it found)."""
    segs: list[_Run | TraceChange] = []
    ia = ib = 0
    for change in diff.changes:
        # Equal pairs fill the space before a change: as many in a as in b.
        if change.a is not None and change.b is not None:
            ta, tb = change.a.seq, change.b.seq
        elif change.a is not None:
            ta = change.a.seq
            tb = ib + (ta - ia)
        else:
            assert change.b is not None
            tb = change.b.seq
            ta = ia + (tb - ib)
        n = min(ta - ia, tb - ib)
        if n > 0:
            segs.append(_Run(ia, ib, n))
        segs.append(change)
        ia = ta + (change.a is not None)
        ib = tb + (change.b is not None)
    total = diff.changed + diff.inserted + diff.removed
    complete = len(diff.changes) >= total
    if complete:
        n = min(diff.events_a - ia, diff.events_b - ib)
        if n > 0:
            segs.append(_Run(ia, ib, n))
    return segs, complete


def _wanted(rows: int, first: int | None, limits: PageLimits) -> list[tuple[int, int]]:
    """Row ranges to show: the head, and the first divergence's neighbourhood."""
    ranges = [(0, min(rows, limits.events))]
    if first is not None:
        ranges.append((max(first - limits.context, 0), min(first + limits.context + 1, rows)))
    ranges.sort()
    merged: list[tuple[int, int]] = []
    for lo, hi in ranges:
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        elif hi > lo:
            merged.append((lo, hi))
    return merged


def aligned_rows(
    a: Trace, b: Trace, diff: TraceDiff, ranges: Iterable[tuple[int, int]]
) -> Iterator[AlignedRow]:
    """The aligned rows whose index falls in ``ranges`` (sorted, disjoint), read from
    the traces as needed."""
    segs, _ = _segments(diff)
    spans = iter(sorted(ranges))
    span = next(spans, None)
    index = 0
    for seg in segs:
        size = seg.n if isinstance(seg, _Run) else 1
        while span is not None and index + size > span[0]:
            lo, hi = max(span[0], index), min(span[1], index + size)
            for r in range(lo, hi):
                if isinstance(seg, _Run):
                    k = r - index
                    yield AlignedRow(r, a.event(seg.a0 + k), b.event(seg.b0 + k), None)
                else:
                    yield AlignedRow(r, seg.a, seg.b, seg)
            if span[1] <= index + size:
                span = next(spans, None)
            else:
                break
        index += size
        if span is None:
            return


# ------------------------------------------------------------------ rendering


def _side(event: Event | None, href: str | None, limits: PageLimits) -> str:
    if event is None:
        return '<td class="seq"></td><td class="name"></td><td class="val"></td>'
    preview = limits.values.preview
    if event.kind == "export":
        value = preview_value(event.input, preview, href)
    elif event.kind == "return":
        value = "→ " + preview_value(event.output, preview, href)
    else:
        value = preview_value(event.input, preview // 2, href)
        if event.output is not None:
            value += " → " + preview_value(event.output, preview // 2, href)
    if event.outcome != "ok":
        value += f'<div class="bad">✗ {esc(event.outcome)}: {esc(event.error_kind)}: {esc(event.error)}</div>'
    depth = min(max(event.depth, 0), 8)
    link = f'<a href="{esc(href)}">{event.seq}</a>' if href else str(event.seq)
    return (
        f'<td class="seq">{link}</td>'
        f'<td class="name d{depth}"><span class="badge">{event.kind}</span>{esc(event.name)}</td>'
        f'<td class="val">{value}</td>'
    )


def _paths(change: TraceChange) -> str:
    rows: list[tuple[str, Difference]] = [("input", d) for d in change.input_diffs]
    rows += [("output", d) for d in change.output_diffs]
    if not rows:
        return ""
    body = "".join(
        f'<tr><td>{side}</td><td class="path">{esc(d.path or "(root)")}</td>'
        f"<td>{esc(d.change)}</td><td class=\"val\">{esc(d.a if d.a is not None else '-')}</td>"
        f"<td class=\"val\">{esc(d.b if d.b is not None else '-')}</td></tr>"
        for side, d in rows
    )
    return (
        '<table class="grid paths"><thead><tr><th>value</th><th>path</th><th>change</th>'
        f"<th>a</th><th>b</th></tr></thead><tbody>{body}</tbody></table>"
    )


def _change_title(change: TraceChange) -> str:
    if change.change is EventChange.INSERTED:
        assert change.b is not None
        return f"inserted in b: #{change.b.seq} {change.name}"
    if change.change is EventChange.REMOVED:
        assert change.a is not None
        return f"removed from a: #{change.a.seq} {change.name}"
    assert change.a is not None and change.b is not None
    return (
        f"changed {change.name} (a #{change.a.seq}, b #{change.b.seq}): "
        + ", ".join(change.fields)
    )


def _header(side: str, info: TraceInfo, source: str) -> str:
    head = info.head_hash.hex() if info.head_hash is not None else "not sealed"
    rows = [
        ("trace", esc(trace_title(info))),
        ("file", esc(source)),
        ("status", esc(info.status)),
        ("events", f"{info.event_count:,}"),
        ("module", f"<code>{esc(info.module_sha256 or '-')}</code>"),
        ("head hash", f"<code>{esc(head)}</code>"),
    ]
    body = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
    return f'<div class="side"><h2>{side}</h2><dl class="meta">{body}</dl></div>'


def diff_page(
    a: Trace,
    b: Trace,
    diff: TraceDiff,
    *,
    source_a: str,
    source_b: str,
    limits: PageLimits | None = None,
    links: Links | None = None,
    nav: Iterable[tuple[str, str]] = (),
) -> str:
    """The comparison of ``a`` and ``b`` (``diff``: :func:`diff_traces` of them) as
    one HTML document; with the default :class:`Links`, a self-contained file."""
    limits = limits or PageLimits()
    links = links or Links()
    ia, ib = a.info, b.info

    def href(side: str, event: Event | None) -> str | None:
        if event is None:
            return None
        return links.event((ia if side == "a" else ib).id, event.seq, side)

    title = f"{trace_title(ia)} vs {trace_title(ib)}"
    parts = [
        f"<h1>{esc(title)}</h1>",
        f'<div class="sides">{_header("a", ia, source_a)}{_header("b", ib, source_b)}</div>',
    ]
    verdict = "identical" if diff.identical else "different"
    parts.append(
        f'<p class="summary"><span class="verdict {"ok" if diff.identical else "bad"}">'
        f"{verdict}</span> {esc(diff.summary())}</p>"
    )
    first = diff.first
    if first is not None:
        parts.append(
            '<div class="divergence" id="divergence"><h2>First divergence</h2>'
            f"<p><strong>{esc(_change_title(first))}</strong></p>{_paths(first)}"
            + "".join(
                f"<p>{side}: {esc(_describe(event))}</p>"
                for side, event in (("a", first.a), ("b", first.b))
                if event is not None and ("outcome" in first.fields or "error" in first.fields)
            )
            + '<p><a href="#first-divergence">see it among the aligned events ↓</a></p></div>'
        )

    segs, complete = _segments(diff)
    total_rows = sum(s.n if isinstance(s, _Run) else 1 for s in segs)
    first_row = _first_row(segs)
    ranges = _wanted(total_rows, first_row, limits)
    parts.append("<h2>Aligned events</h2>")
    shown = sum(hi - lo for lo, hi in ranges)
    if shown < total_rows or not complete:
        text = f"Showing {shown:,} of {total_rows:,} aligned rows"
        if first_row is not None:
            text += f" (the first {min(limits.events, total_rows):,} and ±{limits.context} around the first divergence)"
        if not complete:
            text += (
                f"; the alignment stops after the {len(diff.changes):,} listed changes "
                f"of {diff.changed + diff.inserted + diff.removed:,}"
            )
        parts.append(f'<p class="leftout">{esc(text)}</p>')
    table = [
        '<table class="grid aligned"><thead><tr><th>a</th><th>event</th><th>value</th>'
        "<th>change</th><th>b</th><th>event</th><th>value</th></tr></thead><tbody>"
    ]
    shown_events: list[tuple[str, Event]] = []
    prev = 0
    try:
        for row in aligned_rows(a, b, diff, ranges):
            if row.index > prev:
                table.append(_gap(segs, prev, row.index))
            prev = row.index + 1
            table.append(_row(row, row.index == first_row, href, limits))
            for side, event in (("a", row.a), ("b", row.b)):
                if event is not None:
                    shown_events.append((side, event))
    except (IntegrityError, TraceFormatError) as exc:
        table.append(f'<tr class="stop"><td colspan="7">reading stopped: {esc(exc)}</td></tr>')
    if prev < total_rows:
        table.append(_gap(segs, prev, total_rows))
    table.append("</tbody></table>")
    parts.extend(table)

    if diff.changes:
        total = diff.changed + diff.inserted + diff.removed
        parts.append(f"<h2>Changes ({len(diff.changes):,} of {total:,} listed)</h2><ol class=\"changes\">")
        for change in diff.changes:
            parts.append(f"<li><pre>{esc(change)}</pre></li>")
        parts.append("</ol>")
    parts.append(_per_function(diff))

    if links.embeds_values() and shown_events:
        parts.append("<h2>Values</h2>")
        budget = [limits.budget]
        seen: set[tuple[str, int]] = set()
        for side, event in shown_events:
            if (side, event.seq) in seen:
                continue
            seen.add((side, event.seq))
            anchor = links.event(0, event.seq, side)[1:]
            parts.append(event_section(event, anchor, limits, budget, title=f"{side} "))
    return page(f"{title} — packr-replay", "\n".join(parts), nav)


def _describe(event: Event) -> str:
    if event.outcome == "ok":
        return f"#{event.seq} {event.kind} {event.name}: ok"
    return f"#{event.seq} {event.kind} {event.name}: {event.outcome} {event.error_kind}: {event.error}"


def _first_row(segs: list[_Run | TraceChange]) -> int | None:
    index = 0
    for seg in segs:
        if isinstance(seg, _Run):
            index += seg.n
        else:
            return index
    return None


def _gap(segs: list[_Run | TraceChange], lo: int, hi: int) -> str:
    """A row saying what rows ``lo``..``hi`` (left out) hold."""
    equal = changes = 0
    index = 0
    for seg in segs:
        size = seg.n if isinstance(seg, _Run) else 1
        overlap = max(0, min(hi, index + size) - max(lo, index))
        if isinstance(seg, _Run):
            equal += overlap
        else:
            changes += overlap
        index += size
    rest = hi - lo - equal - changes
    what = [f"{equal:,} equal pairs"]
    if changes:
        what.append(f"{changes:,} change" + ("s" if changes != 1 else ""))
    if rest > 0:
        what.append(f"{rest:,} rows past the listed changes")
    return (
        f'<tr class="gap"><td colspan="7">… {hi - lo:,} rows left out: '
        f"{', '.join(what)} …</td></tr>"
    )


def _row(row: AlignedRow, first: bool, href: _Href, limits: PageLimits) -> str:
    change = row.change
    kind = "equal" if change is None else str(change.change)
    classes = f"c-{kind}" + (" first" if first else "")
    ident = ' id="first-divergence"' if first else ""
    label = kind if change is None or not change.fields else f"{kind}: {', '.join(change.fields)}"
    return (
        f'<tr class="{classes}"{ident}>'
        + _side(row.a, href("a", row.a), limits)
        + f'<td class="change">{esc(label)}</td>'
        + _side(row.b, href("b", row.b), limits)
        + "</tr>"
    )


def _per_function(diff: TraceDiff) -> str:
    rows = []
    for name, s in diff.calls.items():
        cls = ' class="c-changed"' if s.changed or s.inserted or s.removed else ""
        rows.append(
            f"<tr{cls}><td class=\"name\">{esc(name)}</td><td class=\"num\">{s.a:,}</td>"
            f"<td class=\"num\">{s.b:,}</td><td class=\"num\">{s.changed:,}</td>"
            f"<td class=\"num\">{s.inserted:,}</td><td class=\"num\">{s.removed:,}</td></tr>"
        )
    return (
        '<h2>Per function</h2><table class="grid calls"><thead><tr><th>call</th><th>a</th>'
        "<th>b</th><th>changed</th><th>inserted</th><th>removed</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )
