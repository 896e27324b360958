"""Escaping, values as text, and the page shell."""

from __future__ import annotations

import html as html_module
import re

import pytest

from packr_replay.abi import List, String, ValueType, encode
from packr_replay.html import esc, full_value, page, preview_value
from packr_replay.html.markup import PREVIEW_LIMITS


class TestEsc:
    """Text from a trace is text in the page."""

    @pytest.mark.parametrize(
        ("raw", "escaped"),
        [
            ("<script>", "&lt;script&gt;"),
            ('"x" & \'y\'', "&quot;x&quot; &amp; &#x27;y&#x27;"),
            ("a\x1bb", 'a<span class="ctl">\\u{1b}</span>b'),
            ("\u202eevil", '<span class="ctl">\\u{202e}</span>evil'),
            ("tab\tand\nnewline", "tab\tand\nnewline"),
        ],
    )
    def test_escapes(self, raw: str, escaped: str) -> None:
        assert esc(raw) == escaped

    def test_no_raw_angle_brackets_survive(self) -> None:
        text = esc("<img src=x onerror=alert(1)>" * 3 + "\x00\x7f\x9f")
        assert "<img" not in text
        assert "\x00" not in text
        assert "\x9f" not in text


class TestPreview:
    """One line of packr text, cut with a "show all" link."""

    def test_small_value_whole(self) -> None:
        assert preview_value(encode(String("<b>hi</b>"))) == (
            '<span class="v">&quot;&lt;b&gt;hi&lt;/b&gt;&quot;</span>'
        )

    def test_long_value_cut_with_link(self) -> None:
        html = preview_value(encode(String("x" * 500)), 40, "/whole?a=1&b=2")
        assert html.count("x") == 39  # the opening quote and 39 x's make 40 characters
        assert 'href="/whole?a=1&amp;b=2">show all</a>' in html

    def test_cut_without_a_link(self) -> None:
        html = preview_value(encode(String("x" * 500)), 40)
        assert "show all" not in html
        assert "…" in html

    def test_too_big_to_preview_is_not_decoded(self) -> None:
        data = encode(List(ValueType.STRING, [String("x" * 1000)] * (PREVIEW_LIMITS.max_buffer_size // 1000)))
        assert len(data) > PREVIEW_LIMITS.max_buffer_size
        html = preview_value(data, 40, "/all")
        assert f"&lt;{len(data):,} bytes&gt;" in html
        assert "show all" in html

    def test_not_cgrf(self) -> None:
        html = preview_value(b"<script>garbage")
        assert "not valid CGRF" in html
        assert "<script>" not in html

    def test_none(self) -> None:
        assert "-" in preview_value(None)


class TestFullValue:
    """A value whole, indented, bounded."""

    def test_pretty_and_escaped(self) -> None:
        html = full_value(encode(String("</pre><script>")))
        assert html.startswith('<pre class="value">')
        assert "&lt;/pre&gt;&lt;script&gt;" in html

    def test_cut_note(self) -> None:
        data = encode(List(ValueType.STRING, [String(f"item {i}") for i in range(2000)]))
        html = full_value(data, 1000, "/all")
        body = re.search(r"<pre[^>]*>(.*)</pre>", html, re.S)
        assert body is not None
        assert len(html_module.unescape(body.group(1))) <= 1000
        assert "cut at 1,000 characters" in html
        assert 'href="/all"' in html

    def test_invalid_shows_hex(self) -> None:
        html = full_value(b"\x00\x01zz")
        assert "not valid CGRF" in html
        assert "00017a7a" in html


class TestPage:
    """The shell: self-contained, with a policy that runs only its own script."""

    def test_nothing_from_the_network(self) -> None:
        html = page("t <x>", "<p>body</p>", [("home", "/a?b=1&c=2")])
        assert "<title>t &lt;x&gt;</title>" in html
        assert not re.search(r"(src|href)=\"(https?:)?//", html)
        assert 'href="/a?b=1&amp;c=2"' in html
        csp = re.search(r'Content-Security-Policy" content="([^"]+)"', html)
        assert csp is not None
        policy = csp.group(1)
        assert "default-src 'none'" in policy
        assert "unsafe-inline" not in policy
        assert "script-src 'sha256-" in policy
        assert "style-src 'sha256-" in policy
