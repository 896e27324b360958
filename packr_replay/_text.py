"""Text from a trace made safe for a terminal: every character that is not printable
(control characters such as ESC, C1 codes, bidirectional overrides, line breaks) is
shown as its escape (``\\x1b``, ``\\u202e``, ``\\n``) instead of acting on the terminal.

A trace is written by a stranger, and its labels, names, error strings and values
reach people's terminals through every command: ``printable`` is for one-line fields,
``printable_lines`` for text we lay out over several lines ourselves, ``json_safe`` for
JSON documents (it only rewrites characters inside strings as ``\\uXXXX``, so the JSON
decodes to exactly the same data). Imports nothing: every layer may use it.
"""

from __future__ import annotations

import re

__all__ = ["json_safe", "printable", "printable_lines"]

_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(ch: str) -> str:
    return _ESCAPES.get(ch) or ch.encode("unicode_escape").decode("ascii")


def printable(text: str) -> str:
    """``text`` with every non-printable character escaped (``"a\\x1b[2J"`` shows as
    ``a\\x1b[2J``, ``"x\\ny"`` as ``x\\ny``)."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else _escape(ch) for ch in text)


def printable_lines(text: str) -> str:
    """Like :func:`printable`, but keeps line breaks (``\\n``) as they are."""
    return "\n".join(printable(line) for line in text.split("\n"))


_JSON_UNSAFE = re.compile(r"[^\x20-\x7e\n]")


def json_safe(document: str) -> str:
    """A JSON document whose non-ASCII characters that are not printable are written
    as ``\\uXXXX`` escapes (the same JSON value; ``json.dumps`` escapes C0 itself)."""
    if document.isascii():
        return document
    return _JSON_UNSAFE.sub(_json_escape, document)


def _json_escape(match: re.Match[str]) -> str:
    ch = match.group()
    if ch.isprintable():
        return ch
    code = ord(ch)
    if code > 0xFFFF:
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return f"\\u{code:04x}"
