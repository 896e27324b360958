"""HTML building blocks: escaping, values as packr text, and the page shell.

Everything a trace holds (labels, interface and function names, error messages,
string values, metadata) is written by whoever made the file, so every piece of it
goes through :func:`esc`; control and bidi-override characters are shown as
``\\u{..}`` rather than written raw. The page shell carries its own CSS and script
and a Content-Security-Policy that allows exactly those two (by hash) and nothing
from the network, so a script that got into the page anyway would not run, and the
file opens the same anywhere.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from collections.abc import Iterable
from dataclasses import dataclass

from ..abi import AbiError, Limits, decode
from ..abi.pretty import iter_pretty_lines
from ..abi.text import format_value

__all__ = [
    "FULL_LIMITS",
    "PREVIEW_LIMITS",
    "ValueLimits",
    "esc",
    "full_value",
    "page",
    "preview_value",
]

PREVIEW_LIMITS = Limits(
    max_buffer_size=1024 * 1024, max_node_count=100_000, max_decoded_nodes=100_000
)
"""A preview decodes at most 1 MiB and 100k nodes; a larger value shows its size and a
link to the whole."""

FULL_LIMITS = Limits(
    max_buffer_size=16 * 1024 * 1024, max_node_count=1_000_000, max_decoded_nodes=1_000_000
)
"""A value shown whole (the SQL functions' limits)."""


@dataclass(frozen=True, slots=True)
class ValueLimits:
    """How much of one value a page shows: ``preview`` characters in a row, ``full``
    characters of its indented form where it is shown whole."""

    preview: int = 120
    full: int = 20_000


_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _visible(match: re.Match[str]) -> str:
    return f'<span class="ctl">\\u{{{ord(match.group()):x}}}</span>'


def esc(text: object) -> str:
    """``text`` as HTML text: markup characters escaped (quotes too, so it is safe in
    attribute values), control and bidi characters made visible."""
    return _CONTROL.sub(_visible, html.escape(str(text), quote=True))


def _cut_note(shown: int, more_href: str | None) -> str:
    link = f' <a class="more" href="{esc(more_href)}">show all</a>' if more_href else ""
    return f'<span class="cut" title="cut at {shown} characters">…</span>{link}'


def preview_value(data: bytes | None, limit: int = 120, more_href: str | None = None) -> str:
    """A value as one line of packr text, at most ``limit`` characters, with a
    "show all" link to ``more_href`` when it was cut (or too large to preview)."""
    if data is None:
        return '<span class="none">-</span>'
    if len(data) > PREVIEW_LIMITS.max_buffer_size:
        link = f' <a class="more" href="{esc(more_href)}">show all</a>' if more_href else ""
        return f'<span class="big">&lt;{len(data):,} bytes&gt;</span>{link}'
    try:
        value = decode(data, PREVIEW_LIMITS)
    except AbiError as exc:
        return f'<span class="bad">&lt;{len(data)} bytes, not valid CGRF: {esc(exc)}&gt;</span>'
    text = format_value(value, limit=limit)
    if len(text) > limit:  # format_value cut it (and appended "...")
        return f'<span class="v">{esc(text[:limit])}</span>{_cut_note(limit, more_href)}'
    return f'<span class="v">{esc(text)}</span>'


def full_value(
    data: bytes | None, max_chars: int = 20_000, more_href: str | None = None, width: int = 100
) -> str:
    """A value whole, indented over lines (packr text), in a ``<pre>``; cut after
    ``max_chars`` characters with a note (and a link to ``more_href``)."""
    if data is None:
        return '<pre class="value none">-</pre>'
    try:
        value = decode(data, FULL_LIMITS)
    except AbiError as exc:
        hexed = data[:4096].hex()
        more = "…" if len(data) > 4096 else ""
        return (
            f'<p class="bad">{len(data):,} bytes, not valid CGRF: {esc(exc)}</p>'
            f'<pre class="value hex">{hexed}{more}</pre>'
        )
    lines: list[str] = []
    size = 0
    cut = False
    for line in iter_pretty_lines(value, width=width):
        if size + len(line) > max_chars:
            lines.append(line[: max(max_chars - size, 0)])
            cut = True
            break
        lines.append(line)
        size += len(line) + 1
    body = esc("\n".join(lines))
    note = ""
    if cut:
        link = f' <a class="more" href="{esc(more_href)}">show all</a>' if more_href else ""
        note = (
            f'<p class="cutnote">cut at {max_chars:,} characters of {len(data):,} encoded '
            f"bytes{link}</p>"
        )
    return f'<pre class="value">{body}</pre>{note}'


# ------------------------------------------------------------------ the shell

CSS = """
:root { --fg: #1d2330; --muted: #5c6677; --line: #d9dde5; --bg: #fff; --soft: #f4f6f9;
  --bad: #b3261e; --badbg: #fdecea; --ok: #1e7d32; --okbg: #e8f5e9; --warn: #8a5a00;
  --warnbg: #fff4d6; --hi: #fff1a8; --mono: ui-monospace, SFMono-Regular, Menlo, Consolas,
  "DejaVu Sans Mono", monospace; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--fg); background: var(--bg); margin: 0; }
header.top { background: #243b55; color: #fff; padding: .6em 1.2em; }
header.top a { color: #cfe3ff; }
header.top .brand { font-weight: 600; margin-right: 1em; }
main { padding: 1em 1.2em 3em; max-width: 1400px; }
h1 { font-size: 1.35em; margin: .2em 0 .6em; }
h2 { font-size: 1.1em; margin: 1.4em 0 .5em; }
code, pre, .mono, td.val, td.seq, td.name { font-family: var(--mono); font-size: 12.5px; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: .15em 1em; margin: 0; }
dl.meta dt { color: var(--muted); }
dl.meta dd { margin: 0; overflow-wrap: anywhere; }
.verdict { display: inline-block; padding: .05em .5em; border-radius: 3px; font-weight: 600; }
.verdict.ok { color: var(--ok); background: var(--okbg); }
.verdict.bad { color: var(--bad); background: var(--badbg); }
.note { color: var(--muted); margin: .6em 0; }
.leftout { color: var(--warn); background: var(--warnbg); padding: .4em .6em; border-radius: 3px; }
table.grid { border-collapse: collapse; width: 100%; margin: .4em 0; }
table.grid th { text-align: left; font-weight: 600; color: var(--muted); border-bottom: 2px solid var(--line);
  padding: .25em .5em; white-space: nowrap; }
table.grid td { border-bottom: 1px solid var(--line); padding: .2em .5em; vertical-align: top; }
td.seq, td.num { text-align: right; white-space: nowrap; }
td.val { overflow-wrap: anywhere; }
tr.k-export td, tr.k-return td { background: var(--soft); }
tr.k-export td.name, tr.k-return td.name { font-weight: 600; }
tr.fail td { background: var(--badbg); }
tr.fail td.outcome { color: var(--bad); font-weight: 600; }
tr.gap td { color: var(--warn); background: var(--warnbg); text-align: center; font-style: italic; }
tr.stop td { color: var(--bad); background: var(--badbg); font-weight: 600; }
.badge { display: inline-block; min-width: 4.2em; font-size: 11px; text-transform: uppercase;
  letter-spacing: .03em; color: var(--muted); }
table.grid td.d0 { padding-left: .5em; } table.grid td.d1 { padding-left: 1.9em; }
table.grid td.d2 { padding-left: 3.3em; } table.grid td.d3 { padding-left: 4.7em; }
table.grid td.d4 { padding-left: 6.1em; } table.grid td.d5 { padding-left: 7.5em; }
table.grid td.d6 { padding-left: 8.9em; } table.grid td.d7 { padding-left: 10.3em; }
table.grid td.d8 { padding-left: 11.7em; }
.none { color: var(--muted); }
.bad { color: var(--bad); }
.big { color: var(--warn); }
.cut { color: var(--muted); }
.ctl { color: var(--bad); background: var(--badbg); border-radius: 2px; }
a.more { font-family: system-ui, sans-serif; font-size: 11px; white-space: nowrap; }
pre.value { background: var(--soft); border: 1px solid var(--line); padding: .5em .7em;
  overflow-x: auto; white-space: pre-wrap; overflow-wrap: anywhere; margin: .3em 0; }
form.filters { display: flex; flex-wrap: wrap; gap: .6em 1.2em; align-items: center;
  background: var(--soft); padding: .5em .7em; border-radius: 4px; margin: .6em 0; }
form.filters label { color: var(--muted); }
form.filters select { font: inherit; max-width: 28em; }
#shown { color: var(--muted); }
tr.hidden { display: none; }
tr.c-equal td { }
tr.c-changed td { background: #fff8e1; }
tr.c-inserted td { background: var(--okbg); }
tr.c-removed td { background: var(--badbg); }
tr.first td { background: var(--hi); }
tr.first td:first-child { box-shadow: inset 4px 0 0 #e0a800; }
.divergence { border: 2px solid #e0a800; background: #fffbea; border-radius: 4px;
  padding: .6em .9em; margin: .6em 0; }
.divergence h2 { margin-top: 0; }
td.change { font-weight: 600; white-space: nowrap; }
td.path { font-family: var(--mono); font-size: 12.5px; }
section.event { border-top: 1px solid var(--line); padding: .3em 0; display: grid;
  grid-template-columns: 1fr 1fr; gap: 0 1em; }
section.event h3 { grid-column: 1 / -1; font-size: 1em; margin: .2em 0; font-family: var(--mono); }
section.event > p.bad { grid-column: 1 / -1; margin: 0; }
section.event .side p { margin: .1em 0; color: var(--muted); font-size: 12px; }
section.event:target { background: var(--hi); }
div.sides { display: flex; flex-wrap: wrap; gap: 0 3em; }
div.sides h2 { margin: .4em 0 .2em; }
td.name { min-width: 17em; overflow-wrap: anywhere; }
td.val { min-width: 14em; }
""".strip()

JS = """
(function () {
  var form = document.getElementById('filters');
  if (!form) return;
  var rows = Array.prototype.slice.call(document.querySelectorAll('tr[data-seq]'));
  var shown = document.getElementById('shown');
  function apply() {
    var iface = form.elements['interface'].value, fn = form.elements['function'].value;
    var failed = form.elements['failures'].checked, n = 0;
    rows.forEach(function (row) {
      var ok = (!iface || row.getAttribute('data-interface') === iface) &&
               (!fn || row.getAttribute('data-function') === fn) &&
               (!failed || row.getAttribute('data-failed') === '1');
      row.classList.toggle('hidden', !ok);
      if (ok) n++;
    });
    if (shown) shown.textContent = n + ' of ' + rows.length + ' events shown';
  }
  form.addEventListener('change', function () {
    if (form.getAttribute('data-mode') === 'server') form.submit(); else apply();
  });
  form.addEventListener('submit', function (e) {
    if (form.getAttribute('data-mode') !== 'server') { e.preventDefault(); apply(); }
  });
  if (form.getAttribute('data-mode') !== 'server') apply();
})();
""".strip()


def _hash(text: str) -> str:
    digest = hashlib.sha256(text.encode()).digest()
    return "'sha256-" + base64.b64encode(digest).decode() + "'"


_CSP = (
    f"default-src 'none'; style-src {_hash(CSS)}; script-src {_hash(JS)}; "
    "img-src data:; base-uri 'none'; form-action 'self'"
)


def page(title: str, body: str, nav: Iterable[tuple[str, str]] = ()) -> str:
    """A complete HTML document: ``title`` (plain text, escaped here) over ``body``
    (markup), with links ``nav`` (text, href) in the top bar."""
    links = " · ".join(f'<a href="{esc(href)}">{esc(text)}</a>' for text, href in nav)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head>\n"
        f'<body><header class="top"><span class="brand">packr-replay</span>{links}</header>\n'
        f"<main>\n{body}\n</main>\n<script>{JS}</script></body></html>\n"
    )
