"""The pages in a real browser: headless Chromium (the system's, driven by Playwright)
against Datasette served on loopback with the plugin, and against the files
``show --html`` and ``diff --html`` write. One browser and one server for them all.

They look at what a person sees: the timeline's rows, values rendered as packr text,
the highlighted first divergence, filters that hide or fetch rows, and a hostile
trace's markup shown as text with none of it run. Each page is saved as a screenshot
(see ``browser.py`` for where).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from packr_replay.cli import main

from .browser import (
    CHROMIUM_ARGS,
    chromium,
    datasette_server,
    save_screenshot,
    screenshot_dir,
    unavailable,
)
from .conftest import Files
from .traces import (
    CONTROL_TEXT,
    HOSTILE_ERROR,
    HOSTILE_FUNCTION,
    HOSTILE_HOST,
    HOSTILE_INTERFACE,
    HOSTILE_LABEL,
    HOSTILE_VALUE,
)

HIGHLIGHT = "rgb(255, 241, 168)"  # the first divergence's row (markup.CSS: --hi)


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One Chromium for all the browser tests (they are this module), with a fresh
    profile of its own. Playwright's sync API keeps an event loop marked running on
    this thread while it is started, so it is stopped before other modules' asyncio
    tests run."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        unavailable("playwright is not installed (pip install -e '.[test]')")
    executable = chromium()
    if executable is None:
        unavailable("no Chromium on this machine (Debian: apt-get install -y chromium)")
    manager = sync_playwright().start()
    try:
        profile = tmp_path_factory.mktemp("chromium-profile")
        try:
            ctx = manager.chromium.launch_persistent_context(
                str(profile),
                executable_path=executable,
                headless=True,
                args=CHROMIUM_ARGS,
                viewport={"width": 1280, "height": 860},
            )
        except Error as exc:
            unavailable(f"Chromium at {executable} did not start: {exc}")
        yield ctx
        ctx.close()
    finally:
        manager.stop()


@pytest.fixture
def page(context: Any) -> Iterator[Any]:
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    tab.close()
    assert errors == []  # no script error on any page


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return screenshot_dir(tmp_path_factory)


@pytest.fixture(scope="module")
def server(files: Files, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("datasette") / "datasette.log"
    with datasette_server([files.bug, files.hostile, files.long_a, files.long_b], log) as url:
        yield url


@pytest.fixture(scope="session")
def html_files(files: Files, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The files the CLI writes (through its entry point)."""
    root = tmp_path_factory.mktemp("html")
    out = {name: root / f"{name}.html" for name in ("trace", "diff", "hostile", "long")}
    with contextlib.chdir(files.bug.parent):  # the pages name the files as given
        assert main(["show", "bug.db#first", "--html", str(out["trace"])]) == 0
        assert main(["diff", "bug.db#first", "bug.db#second", "--html", str(out["diff"])]) == 1
        assert main(["show", "hostile.db", "--html", str(out["hostile"])]) == 0
        assert main(["diff", "long_a.db", "long_b.db", "--html", str(out["long"])]) == 1
    return out


def rows(page: Any) -> Any:
    return page.locator("table.timeline tbody tr[data-seq]")


def visible_seqs(page: Any) -> list[int]:
    return [
        int(s)
        for s in page.eval_on_selector_all(
            "table.timeline tbody tr[data-seq]",
            "rs => rs.filter(r => r.offsetParent !== null).map(r => r.dataset.seq)",
        )
    ]


def assert_not_run(page: Any) -> None:
    """Nothing the trace carried ran or became an element."""
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.locator("script", has_text="__pwned").count() == 0
    assert page.locator("[onerror], [onload], [onmouseover]").count() == 0


class TestDatasette:
    """The plugin's pages, served by ``datasette`` on loopback."""

    def test_trace_page(self, page: Any, server: str, shots: Path) -> None:
        page.goto(f"{server}/-/packr/bug/trace/1")
        assert rows(page).count() == 14
        assert page.locator("h1").inner_text() == "trace 1 'first'"
        assert "hash chain intact" in page.locator("dl.meta").inner_text()
        row = rows(page).nth(2).inner_text()
        assert "demo:host/clock.now" in row
        assert "1700000000000000000u64" in row
        export = rows(page).nth(6)
        assert "report{greeting: \"Hello, Ada\"" in export.inner_text()
        indent = [
            page.locator(f"#row-{seq} td.name").evaluate("e => getComputedStyle(e).paddingLeft")
            for seq in (0, 1)
        ]
        assert float(indent[0][:-2]) < float(indent[1][:-2])  # imports nest under exports
        save_screenshot(page, shots, "datasette-trace.png", doc=True)

    def test_filters_fetch_matching_events(self, page: Any, server: str) -> None:
        page.goto(f"{server}/-/packr/bug/trace/2")
        with page.expect_navigation():
            page.select_option("select[name=interface]", "demo:host/log")
        assert "interface=demo%3Ahost%2Flog" in page.url
        assert visible_seqs(page) == [1, 5, 8, 12]
        with page.expect_navigation():
            page.select_option("select[name=interface]", "")
        with page.expect_navigation():
            page.select_option("select[name=function]", "now")
        assert visible_seqs(page) == [2, 9]

    def test_event_links_to_its_full_value(self, page: Any, server: str, shots: Path) -> None:
        page.goto(f"{server}/-/packr/bug/trace/1")
        with page.expect_navigation():
            page.click("#row-6 td.seq a")
        assert page.url.endswith("/-/packr/bug/trace/1/event/6")
        text = page.locator("pre.value").nth(1).inner_text()
        assert text.splitlines()[:2] == ["report{", '  greeting: "Hello, Ada",']
        save_screenshot(page, shots, "datasette-event.png", doc=True)

    def test_diff_page(self, page: Any, server: str, shots: Path) -> None:
        page.goto(f"{server}/-/packr/bug")
        page.select_option("select[name=a]", "1")
        page.select_option("select[name=b]", "2")
        with page.expect_navigation():
            page.click("form button[type=submit]")
        first = page.locator("#first-divergence")
        assert "demo:host/clock.now" in first.inner_text()
        background = first.locator("td").nth(1).evaluate("e => getComputedStyle(e).backgroundColor")
        assert background == HIGHLIGHT
        box = page.locator("#divergence").inner_text()
        assert "changed import demo:host/clock.now (a #2, b #2): output" in box
        assert "1700000000000000000u64" in box
        assert "1700000000001000000u64" in box
        assert page.locator("table.aligned tbody tr.c-changed").count() == 8
        save_screenshot(page, shots, "datasette-diff.png", doc=True)

    def test_values_in_a_query(self, page: Any, server: str, shots: Path) -> None:
        sql = (
            "with recursive s(seq) as (select 0 union all select seq + 1 from s where seq < 13) "
            "select seq, packr_input(1, seq) as input, packr_output(1, seq) as output from s"
        )
        page.goto(f"{server}/bug?sql={quote(sql)}")
        cells = page.locator("td.col-output .packr-value")
        assert cells.count() == 12  # exports have no output
        assert cells.nth(1).inner_text() == "1700000000000000000u64"
        assert page.locator("td.col-input .packr-value").first.inner_text() == '"Ada"'
        save_screenshot(page, shots, "datasette-query.png", doc=True)

    def test_hostile_trace(self, page: Any, server: str, shots: Path) -> None:
        page.goto(f"{server}/-/packr/hostile/trace/1")
        assert_not_run(page)
        assert page.locator("h1").inner_text() == f"trace 1 {HOSTILE_LABEL!r}"
        assert HOSTILE_HOST in page.locator("dl.meta").inner_text()
        names = rows(page).locator("td.name").all_inner_texts()
        assert any(f"{HOSTILE_INTERFACE}.{HOSTILE_FUNCTION}" in n for n in names)
        assert f'"{HOSTILE_VALUE}"' in rows(page).nth(0).inner_text()
        assert HOSTILE_ERROR in rows(page).nth(2).inner_text()
        assert "\\u{1b}[31malert" in rows(page).nth(1).inner_text()  # control characters shown
        options = page.locator("select[name=interface] option").all_inner_texts()
        assert f"{HOSTILE_INTERFACE} (2)" in options
        save_screenshot(page, shots, "datasette-hostile.png")
        for path in ("/-/packr/hostile", "/-/packr/hostile/trace/1/event/1",
                     "/hostile?sql=select+packr_input(1,+1)+as+v,+packr_output(1,+1)+as+w"):  # fmt: skip
            page.goto(server + path)
            assert_not_run(page)
        assert f'"{HOSTILE_VALUE}"' in page.locator("td.col-v").inner_text()
        assert CONTROL_TEXT not in page.locator("td.col-w").inner_text()


class TestFiles:
    """The self-contained files, opened from disk with no server."""

    def test_trace_file(self, page: Any, html_files: dict[str, Path], shots: Path) -> None:
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(html_files["trace"].as_uri())
        assert requests == [html_files["trace"].as_uri()]  # nothing else is fetched
        assert rows(page).count() == 14
        assert page.locator("#shown").inner_text() == "14 of 14 events shown"
        assert "report{" in rows(page).nth(6).inner_text()
        page.click("#row-6 td.seq a")
        assert page.url.endswith("#ev-6")
        section = page.locator("section#ev-6")
        assert section.evaluate("e => getComputedStyle(e).backgroundColor") == HIGHLIGHT
        assert "lucky: false" in section.inner_text()
        page.goto(html_files["trace"].as_uri())
        save_screenshot(page, shots, "html-trace.png", doc=True)

    def test_filters_in_the_page(self, page: Any, html_files: dict[str, Path]) -> None:
        page.goto(html_files["trace"].as_uri())
        page.select_option("select[name=interface]", "demo:host/log")
        assert visible_seqs(page) == [1, 5, 8, 12]
        assert page.locator("#shown").inner_text() == "4 of 14 events shown"
        page.select_option("select[name=function]", "now")
        assert visible_seqs(page) == []
        page.select_option("select[name=interface]", "")
        assert visible_seqs(page) == [2, 9]
        assert page.url == html_files["trace"].as_uri()  # filtered in place, no request

    def test_diff_file(self, page: Any, html_files: dict[str, Path], shots: Path) -> None:
        page.goto(html_files["diff"].as_uri())
        assert "different: 8 changed" in page.locator("p.summary").inner_text()
        page.click("#divergence a")
        first = page.locator("#first-divergence")
        assert first.evaluate("e => getComputedStyle(e.cells[1]).backgroundColor") == HIGHLIGHT
        assert "1700000000000000000u64" in first.inner_text()
        assert page.locator("section#bev-2").count() == 1  # b's values, linked from the row
        page.goto(html_files["diff"].as_uri())
        save_screenshot(page, shots, "html-diff.png", doc=True)

    def test_long_diff_says_what_it_left_out(
        self, page: Any, html_files: dict[str, Path], shots: Path
    ) -> None:
        page.goto(html_files["long"].as_uri())
        assert re.match(
            r"Showing 551 of 2,001 aligned rows", page.locator("p.leftout").inner_text()
        )
        gaps = page.locator("tr.gap").all_inner_texts()
        assert [g.split(":")[0] for g in gaps] == ["… 676 rows left out", "… 774 rows left out"]
        page.locator("#first-divergence").scroll_into_view_if_needed()
        assert page.locator("#first-divergence").is_visible()
        save_screenshot(page, shots, "html-diff-long.png")

    def test_hostile_file(self, page: Any, html_files: dict[str, Path], shots: Path) -> None:
        page.goto(html_files["hostile"].as_uri())
        assert_not_run(page)
        assert page.locator("script").count() == 1  # the page's own
        assert page.locator("h1").inner_text() == f"trace 1 {HOSTILE_LABEL!r}"
        assert f'"{HOSTILE_VALUE}"' in page.locator("section#ev-0").inner_text()
        page.check("input[name=failures]")
        assert visible_seqs(page) == [2, 3]
        assert_not_run(page)
        save_screenshot(page, shots, "html-hostile.png", doc=True)


def test_screenshots_are_pictures(shots: Path, context: Any) -> None:
    """Runs last in this module: every saved screenshot is a PNG of the viewport."""
    pngs = sorted(shots.glob("*.png"))
    if not pngs:
        pytest.skip("no screenshots were taken in this run")
    for png in pngs:
        data = png.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert int.from_bytes(data[16:20], "big") == 1280

