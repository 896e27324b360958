"""The trace page and the diff page as HTML (the browser tests look at them rendered)."""

from __future__ import annotations

import re
import shutil
from html import unescape
from pathlib import Path

import pytest

from packr_replay.html import PageLimits, TimelineFilter, aligned_rows, diff_page, trace_page
from packr_replay.replay import diff_traces
from packr_replay.storage import TraceStore

from .conftest import Files
from .traces import HOSTILE_FUNCTION, HOSTILE_INTERFACE, HOSTILE_LABEL, HOSTILE_VALUE, tamper


def rows(html: str) -> list[int]:
    return [int(s) for s in re.findall(r'<tr id="row-(\d+)"', html)]


def scripts(html: str) -> int:
    return len(re.findall(r"<script\b", html, re.I))


class TestTracePage:
    """Header, timeline, filters, bounds."""

    def test_header_and_every_event(self, files: Files) -> None:
        with TraceStore(files.bug, readonly=True) as store:
            trace = store.trace("first")
            html = trace_page(store, trace, source="bug.db")
            info = trace.info
        assert rows(html) == list(range(14))
        assert "clock_actor" in html
        assert info.module_sha256 in html
        assert info.head_hash is not None
        assert info.head_hash.hex() in html
        assert '<span class="verdict ok">ok</span> 14 events, hash chain intact' in html
        assert "fuel=5000000000" in html  # the settings the run was recorded with
        assert len(re.findall(r'<section class="event" id="ev-\d+"', html)) == 14
        assert 'href="#ev-6"' in html  # each row links to its values further down
        assert '"clock-actor: run Ada"' in html.replace("&quot;", '"')
        assert 'class="name d1"' in html
        assert 'class="name d0"' in html

    def test_bounded_and_says_what_it_left_out(self, files: Files) -> None:
        with TraceStore(files.long_a, readonly=True) as store:
            html = trace_page(store, store.trace(1), source="long_a.db", limits=PageLimits(events=5))
        assert rows(html) == [0, 1, 2, 3, 4]
        assert "Showing 5 of 2,000 events; the 1,995 after #4 are left out" in html
        assert "show long_a.db#1 --start 5" in html

    def test_value_budget(self, files: Files) -> None:
        with TraceStore(files.long_a, readonly=True) as store:
            html = trace_page(
                store, store.trace(1), source="a.db", limits=PageLimits(events=50, budget=2000)
            )
        assert "left out, this file is full" in html
        assert len(html) < 60_000

    def test_filters_on_the_server_side(self, files: Files) -> None:
        flt = TimelineFilter(interface="demo:host/io", function="write", start=100)
        with TraceStore(files.long_a, readonly=True) as store:
            html = trace_page(store, store.trace(1), source="a.db", flt=flt, limits=PageLimits(events=10))
        assert rows(html) == list(range(102, 142, 4))
        assert "Showing 10 of 475 matching events from #100" in html
        assert '<option value="demo:host/io" selected>' in html

    def test_failures_only(self, files: Files) -> None:
        with TraceStore(files.hostile, readonly=True) as store:
            html = trace_page(store, store.trace(1), source="h.db", flt=TimelineFilter(failures=True))
        assert rows(html) == [2, 3]
        assert html.count('class="k-import fail"') == 1
        assert html.count('class="k-return fail"') == 1

    def test_hostile_strings_are_text(self, files: Files) -> None:
        with TraceStore(files.hostile, readonly=True) as store:
            html = trace_page(store, store.trace(1), source="<h>.db")
        assert scripts(html) == 1  # the page's own
        assert "<img" not in html
        assert "<svg" not in html
        assert "<b " not in html
        h1 = re.search(r"<h1>(.*?)</h1>", html)
        assert h1 is not None
        assert unescape(h1.group(1)) == f"trace 1 {HOSTILE_LABEL!r}"
        names = {unescape(n) for n in re.findall(r'<span class="badge">\w+</span>([^<]*)</td>', html)}
        assert f"{HOSTILE_INTERFACE}.{HOSTILE_FUNCTION}" in names
        assert HOSTILE_FUNCTION in names
        assert "&lt;/pre&gt;&lt;/td&gt;&lt;script&gt;" in html  # the string value
        assert HOSTILE_VALUE not in html

    def test_tampered_trace(self, files: Files, tmp_path: Path) -> None:
        path = tmp_path / "t.db"
        shutil.copy(files.long_a, path)
        tamper(path, 1, 37)
        with TraceStore(path, readonly=True) as store:
            html = trace_page(store, store.trace(1), source="t.db")
        assert '<span class="verdict bad">TAMPERED at event #37</span>' in html
        assert '<tr class="stop"><td colspan="7">reading stopped: ' in html
        assert all(seq < 37 for seq in rows(html))


class TestDiffPage:
    """Aligned events, the first divergence, value paths, bounds."""

    def test_identical(self, files: Files) -> None:
        with TraceStore(files.bug, readonly=True) as store:
            a = store.trace(1)
            html = diff_page(a, a, diff_traces(a, a), source_a="x#1", source_b="x#1")
        assert "identical" in html
        assert 'id="first-divergence"' not in html
        assert html.count('class="c-equal"') == 14

    def test_first_divergence(self, files: Files) -> None:
        with TraceStore(files.bug, readonly=True) as store:
            a, b = store.trace(1), store.trace(2)
            result = diff_traces(a, b)
            html = diff_page(a, b, result, source_a="bug.db#1", source_b="bug.db#2")
        assert "different: 8 changed, 0 inserted, 0 removed, 6 equal" in html
        first = re.search(r'<tr class="c-changed first" id="first-divergence">(.*?)</tr>', html)
        assert first is not None
        assert "demo:host/clock.now" in first.group(1)
        assert "changed import demo:host/clock.now (a #2, b #2): output" in html
        assert "1700000000000000000u64" in html
        assert "1700000000001000000u64" in html
        assert html.count('<td class="path">(root)</td>') == 1  # the first divergence's path
        assert len(re.findall(r'<tr class="c-(changed|equal)[^>]*><td class="seq">', html)) == 14

    def test_bounded_with_the_divergence_neighbourhood(self, files: Files) -> None:
        with TraceStore(files.long_a, readonly=True) as sa, TraceStore(files.long_b, readonly=True) as sb:
            a, b = sa.trace(1), sb.trace(1)
            html = diff_page(
                a, b, diff_traces(a, b), source_a="a", source_b="b",
                limits=PageLimits(events=100, context=5),
            )  # fmt: skip
        shown = re.findall(r'<td class="seq"><a href="#aev-(\d+)">', html)
        assert [int(s) for s in shown] == [*range(100), *range(1196, 1207)]
        gaps = re.findall(r'<tr class="gap"><td colspan="7">… ([\d,]+) rows left out: ([^…]*)…', html)
        assert gaps == [("1,096", "1,096 equal pairs "), ("794", "793 equal pairs, 1 change ")]
        assert "Showing 111 of 2,001 aligned rows" in html
        assert 'id="first-divergence"' in html
        assert 'id="aev-1201"' in html

    def test_alignment_stops_at_the_last_listed_change(self, files: Files) -> None:
        with TraceStore(files.long_a, readonly=True) as sa, TraceStore(files.long_b, readonly=True) as sb:
            a, b = sa.trace(1), sb.trace(1)
            html = diff_page(a, b, diff_traces(a, b, max_changes=1), source_a="a", source_b="b")
        assert "the alignment stops after the 1 listed changes of 2" in html

    @pytest.mark.parametrize("max_changes", [1, 2, 100])
    def test_aligned_rows_walk_both_traces_in_order(self, files: Files, max_changes: int) -> None:
        with TraceStore(files.long_a, readonly=True) as sa, TraceStore(files.long_b, readonly=True) as sb:
            a, b = sa.trace(1), sb.trace(1)
            result = diff_traces(a, b, max_changes=max_changes)
            got = list(aligned_rows(a, b, result, [(0, 10_000)]))
        a_seqs = [r.a.seq for r in got if r.a is not None]
        b_seqs = [r.b.seq for r in got if r.b is not None]
        end = len(a_seqs)
        assert a_seqs == list(range(end))
        assert b_seqs == list(range(len(b_seqs)))
        if max_changes >= 2:
            assert (end, len(b_seqs)) == (2000, 2001)
        for row in got:  # equal rows pair the same call
            if row.change is None:
                assert row.a is not None
                assert row.b is not None
                assert (row.a.name, row.a.input, row.a.output) == (row.b.name, row.b.input, row.b.output)
        assert [r.change.change for r in got if r.change is not None][:2] == ["changed", "inserted"][:max_changes]
