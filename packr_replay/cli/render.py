"""Rendering for the commands: rich consoles, value previews, tables, and the ``--json``
shapes (documented in ``docs/cli-json.md``; fields are only ever added).

Everything here turns library objects into text or plain JSON data; nothing here
computes a result.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import IO, TYPE_CHECKING, Any, cast

from .._text import json_safe, printable, printable_lines
from ..abi import AbiError, EncodedValue, Value
from ..abi.text import format_value, preview_bytes

if TYPE_CHECKING:  # rich, the replay and storage layers load when output is made
    from rich.console import Console
    from rich.table import Table

    from ..replay import Difference, ReplayDivergence, TraceChange, TraceDiff
    from ..replay.matchers import CallKey
    from ..storage import Event, TraceInfo

#: Console width when the output is not a terminal (and $COLUMNS does not say).
PIPE_WIDTH = 160

__all__ = [
    "MAX_SHOWN_NODES",
    "LazyProgress",
    "call_key_json",
    "difference_json",
    "divergence_json",
    "emit_json",
    "err",
    "escape",
    "escape_lines",
    "event_json",
    "event_line",
    "human_bytes",
    "human_seconds",
    "json_text",
    "jsonable",
    "out",
    "preview",
    "progress_bar",
    "too_large",
    "trace_change_json",
    "trace_diff_json",
    "trace_json",
    "trace_title",
    "traces_table",
    "value_fields",
    "value_json",
]


def escape(text: str) -> str:
    """``text`` (one line, from a trace or a user) with rich markup escaped and every
    control character shown as its escape, to print it through a console as is."""
    from rich.markup import escape as rich_escape

    return rich_escape(printable(text))


def escape_lines(text: str) -> str:
    """Like :func:`escape` for text laid out over several lines (reports, values)."""
    from rich.markup import escape as rich_escape

    return rich_escape(printable_lines(text))


#: What a guarded console passes through as is: text, line breaks, and the colour
#: codes (SGR) rich itself writes on a terminal. Anything else that is not printable
#: is escaped, whichever way it got into the output.
_SGR = re.compile(r"\x1b\[[0-9;]*m")


class _Guard:
    """A console's file that escapes every control character rich did not write: the
    last line of defence if trace text reached ``print`` without :func:`escape`."""

    def __init__(self, file: Any) -> None:
        self._file = file

    def write(self, text: str) -> int:
        if not text.isprintable():
            parts = _SGR.split(text)
            codes = _SGR.findall(text)
            text = printable_lines(parts[0]) + "".join(
                code + printable_lines(part) for code, part in zip(codes, parts[1:], strict=True)
            )
        return int(self._file.write(text))

    def __getattr__(self, name: str) -> Any:  # flush, isatty, fileno, encoding...
        return getattr(self._file, name)


def _console(file: Any, *, guarded: bool = True) -> Console:
    from rich.console import Console

    target = cast("IO[str]", _Guard(file)) if guarded else file
    console = Console(file=target, highlight=False, soft_wrap=True)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = PIPE_WIDTH  # tables in a pipe or a file: do not squeeze to 80
    return console


def out() -> Console:
    """A console on the current stdout (created per use: tests swap ``sys.stdout``)."""
    return _console(sys.stdout)


def err() -> Console:
    """A console on the current stderr, for progress, notes and narration beside data."""
    return _console(sys.stderr)


def progress_bar(lead: str, text: str | None = None, *, eta: bool = False) -> Any:
    """A transient rich progress bar on stderr: ``lead``, the bar, done/total, ``text``
    (both column templates: rich markup, ``{task.description}``), the time elapsed and,
    with ``eta``, the time left. Its console is not guarded (rich writes its own cursor
    codes), so trace text in a description must go through :func:`escape`."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns: list[Any] = [TextColumn(lead), BarColumn(), MofNCompleteColumn()]
    if text is not None:
        columns.append(TextColumn(text))
    columns.append(TimeElapsedColumn())
    if eta:
        columns += [TextColumn("eta"), TimeRemainingColumn()]
    return Progress(*columns, console=_console(sys.stderr, guarded=False), transient=True)


def emit_json(data: Any) -> None:
    """One JSON document on stdout."""
    sys.stdout.write(json_text(data, indent=2) + "\n")


def json_text(data: Any, indent: int | None = None) -> str:
    """``data`` as JSON whose strings show no raw control character (see ``json_safe``)."""
    return json_safe(json.dumps(jsonable(data), indent=indent, ensure_ascii=False))


def jsonable(data: Any) -> Any:
    """Plain JSON data: bytes become hex, tuples lists, non-finite floats strings."""
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data).hex()
    if isinstance(data, Mapping):
        return {str(k): jsonable(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [jsonable(v) for v in data]
    if isinstance(data, float) and not math.isfinite(data):
        return str(data)
    return data


class LazyProgress:
    """A rich progress bar on stderr that appears only once work has taken a while
    (short runs print nothing) and only on a terminal.

    ``lines``: when stderr is not a terminal (piped, a CI log), a long run instead
    prints a one-line count every :attr:`line_interval` seconds, from
    :attr:`line_delay` seconds on, so a log shows it is alive and how far it got.
    """

    line_delay = 10.0
    line_interval = 10.0

    def __init__(
        self,
        description: str,
        total: int | None,
        *,
        enabled: bool = True,
        delay: float = 1.0,
        lines: bool = False,
    ) -> None:
        import time

        self._clock = time.monotonic
        self._start = self._clock()
        self.description = description
        self.total = total
        self.delay = delay
        terminal = err().is_terminal
        self.enabled = enabled and terminal
        self.lines = enabled and lines and not terminal
        self._next_line = self._start + self.line_delay
        self.done = 0
        self._progress: Any = None
        self._task: Any = None
        self._sampler: tuple[Any, Any] | None = None

    def _line(self) -> None:
        """The one-line count, at most every line_interval seconds."""
        now = self._clock()
        if now < self._next_line:
            return
        self._next_line = now + self.line_interval
        count = f"{self.done:,}"
        if self.total:
            count += f" of {self.total:,} ({100 * self.done // self.total}%)"
        print(f"{self.description}: {count}, {now - self._start:.0f} s", file=sys.stderr, flush=True)

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self.lines:
            self._line()
        if not self.enabled:
            return
        if self._progress is None:
            if self._clock() - self._start < self.delay:
                return
            self._progress = progress_bar("{task.description}")
            self._progress.start()
            self._task = self._progress.add_task(self.description, total=self.total)
        self._progress.update(self._task, completed=self.done)

    def follow(self, counter: Callable[[], int], interval: float = 0.1) -> None:
        """Advance to ``counter()`` every ``interval`` seconds from a thread of its own,
        until :meth:`stop`: the work reports nothing per item (a replay on its fast
        path), the bar samples how far it has got."""
        import threading

        stopped = threading.Event()

        def sample() -> None:
            while not stopped.wait(interval):
                self.advance(max(counter() - self.done, 0))

        self._sampler = (stopped, threading.Thread(target=sample, name="progress", daemon=True))
        self._sampler[1].start()

    def stop(self) -> None:
        sampler, self._sampler = self._sampler, None
        if sampler is not None:
            sampler[0].set()
            sampler[1].join()
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def __enter__(self) -> LazyProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ------------------------------------------------------------------ values


def preview(data: bytes | None, limit: int = 80) -> str:
    """A value as packr text cut to ``limit`` characters; ``-`` for no value."""
    return "-" if data is None else preview_bytes(data, limit)


#: Nodes a value may have written out to be shown in full (text or JSON). A few hundred
#: bytes of CGRF can share subtrees that expand to millions of nodes; such a value is
#: shown as a cut preview (text) or not at all with a ``*_error`` saying why (JSON).
MAX_SHOWN_NODES = 1_000_000


def too_large(value: Value) -> str | None:
    """Why ``value`` is not shown in full, or ``None`` when it may be."""
    from ..abi.values import count_nodes

    if count_nodes(value, MAX_SHOWN_NODES) <= MAX_SHOWN_NODES:
        return None
    return (
        f"not shown: it has more than {MAX_SHOWN_NODES:,} nodes written out (shared "
        "subtrees count each time they appear); read its bytes with the library or "
        "sql's packr_input/packr_output"
    )


def value_json(data: bytes | None) -> tuple[str | None, str | None]:
    """``(text, error)``: the full packr text of a value, or why it has none."""
    if data is None:
        return None, None
    try:
        value = EncodedValue(data).value
    except AbiError as exc:
        return None, f"not valid CGRF: {exc}"
    problem = too_large(value)
    if problem is not None:
        return None, problem
    return format_value(value), None


def value_fields(side: str, data: bytes | Value | None) -> dict[str, Any]:
    """``{side: text, side_value: typed JSON}`` for encoded bytes or a value, with
    ``side_error`` / ``side_value_error`` saying why a form is missing. The text is
    packr's; the typed JSON form (``abi.jsonvalue``) keeps tags and float bits, so it
    reads back into ``--calls`` exactly."""
    from ..abi.jsonvalue import TooDeep, value_to_json

    fields: dict[str, Any] = {side: None, f"{side}_value": None}
    if data is None:
        return fields
    try:
        value = data if isinstance(data, Value) else EncodedValue(data).value
    except AbiError as exc:
        fields[f"{side}_error"] = f"not valid CGRF: {exc}"
        return fields
    problem = too_large(value)
    if problem is not None:
        fields[f"{side}_error"] = problem
        return fields
    fields[side] = format_value(value)
    try:
        fields[f"{side}_value"] = value_to_json(value)
    except TooDeep as exc:
        fields[f"{side}_value_error"] = f"{exc}; the text form has it"
    return fields


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError  # pragma: no cover


def human_seconds(s: float) -> str:
    return f"{s * 1000:.0f} ms" if s < 1 else f"{s:.2f} s"


# ------------------------------------------------------------------ traces


def trace_title(info: TraceInfo) -> str:
    """``trace 3 'flaky'``."""
    return f"trace {info.id}" + (f" {info.label!r}" if info.label else "")


def status_text(info: TraceInfo) -> str:
    """The trace's status, with why it ended when it says (``incomplete
    (interrupted)``); escaped for the terminal (a file's text is untrusted)."""
    if info.end_reason:
        return f"{info.status} ({escape(info.end_reason)})"
    return str(info.status)


def trace_json(info: TraceInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "uuid": info.uuid,
        "label": info.label,
        "status": str(info.status),
        "end_reason": info.end_reason,
        "events": info.event_count,
        "created_at": info.created_at,
        "completed_at": info.completed_at,
        "host": info.host,
        "module_sha256": info.module_sha256,
        "replay_of": info.replay_of,
        "replay_of_uuid": info.replay_of_uuid,
        "tool_version": info.tool_version,
        "format_version": info.format_version,
        "head_hash": info.head_hash.hex() if info.head_hash is not None else None,
        "meta": jsonable(info.meta),
    }


def traces_table(infos: Iterable[TraceInfo], title: str | None = None) -> Table:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for name, justify in (
        ("id", "right"),
        ("label", "left"),
        ("status", "left"),
        ("events", "right"),
        ("created", "left"),
        ("host", "left"),
        ("replay of", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for info in infos:
        table.add_row(
            str(info.id),
            escape(info.label or ""),
            status_text(info),
            str(info.event_count),
            info.created_at[:19].replace("T", " "),
            escape(info.host or ""),
            "" if info.replay_of is None else str(info.replay_of),
        )
    return table


# ------------------------------------------------------------------ events


def event_json(event: Event) -> dict[str, Any]:
    data: dict[str, Any] = {
        "seq": event.seq,
        "call": event.call,
        "kind": str(event.kind),
        "interface": event.interface,
        "function": event.function,
        "name": event.name,
        "depth": event.depth,
        "status": event.status,
        "outcome": str(event.outcome),
        "error_kind": event.error_kind,
        "error": event.error,
        "duration_ns": event.duration_ns,
        "package": event.package,
    }
    for side, raw in (("input", event.input), ("output", event.output)):
        forms = value_fields(side, raw)
        data[side] = forms.pop(side)
        data[f"{side}_bytes"] = None if raw is None else len(raw)
        data.update(forms)
    return data


def event_line(event: Event, width: int, seq_width: int = 4, name_width: int = 28) -> str:
    """One row of ``show``'s event listing (rich markup, values escaped)."""
    name = event.name if event.package is None else f"{event.package}: {event.name}"
    head = f"{event.seq:>{seq_width}}  {event.call:>4}  {event.kind!s:<6}  {name:<{name_width}}  "
    room = max(width - len(head), 20)
    if event.kind == "export":
        body = preview(event.input, room)
    elif event.kind in ("import", "raw"):
        half = max(room // 2 - 2, 10)
        body = preview(event.input, half)
        if event.outcome == "ok":
            body += " → " + preview(event.output, max(room - len(body) - 3, 10))
        else:
            body += f" ✗ {event.error_kind}: {event.error}"
    elif event.outcome == "ok":
        body = "→ " + preview(event.output, room - 2)
    else:
        body = f"✗ {event.outcome} {event.error_kind}: {event.error}"
    style = {"export": "bold", "return": "bold"}.get(str(event.kind), "")
    failed = event.outcome != "ok"
    text = escape(head) + escape(body)
    if failed:
        return f"[red]{text}[/red]"
    return f"[{style}]{text}[/{style}]" if style else text


# ------------------------------------------------------------------ replay and diff


def difference_json(d: Difference) -> dict[str, Any]:
    return {"path": d.path, "change": str(d.change), "a": d.a, "b": d.b, "text": str(d)}


def call_key_json(key: CallKey | None) -> dict[str, Any] | None:
    if key is None:
        return None
    text, problem = value_json(key.input)
    data: dict[str, Any] = {
        "kind": key.kind,
        "interface": key.interface,
        "function": key.function,
        "name": key.name,
        "value": text,
    }
    if problem is not None:
        data["value_error"] = problem
    return data


def divergence_json(div: ReplayDivergence) -> dict[str, Any]:
    from ..replay.matchers import CallKey
    from ..storage import Event

    expected = div.expected if isinstance(div.expected, Event) else None
    actual = div.actual if isinstance(div.actual, CallKey) else None
    return {
        "seq": div.seq,
        "type": type(div).__name__,
        "report": div.report,
        "expected": None if expected is None else event_json(expected),
        "actual": call_key_json(actual),
        "differences": [difference_json(d) for d in div.differences],
        "failed_matchers": list(div.failed_matchers),
    }


def trace_change_json(change: TraceChange) -> dict[str, Any]:
    return {
        "change": str(change.change),
        "name": change.name,
        "a": None if change.a is None else event_json(change.a),
        "b": None if change.b is None else event_json(change.b),
        "fields": list(change.fields),
        "input_differences": [difference_json(d) for d in change.input_diffs],
        "output_differences": [difference_json(d) for d in change.output_diffs],
        "text": str(change),
    }


def trace_diff_json(diff: TraceDiff) -> dict[str, Any]:
    return {
        "identical": diff.identical,
        "summary": {
            "events_a": diff.events_a,
            "events_b": diff.events_b,
            "equal": diff.equal,
            "changed": diff.changed,
            "inserted": diff.inserted,
            "removed": diff.removed,
            "text": diff.summary(),
        },
        "modules_differ": diff.modules_differ,
        "first": None if diff.first is None else trace_change_json(diff.first),
        "changes": [trace_change_json(c) for c in diff.changes],
        "calls": {
            name: {
                "a": s.a,
                "b": s.b,
                "changed": s.changed,
                "inserted": s.inserted,
                "removed": s.removed,
            }
            for name, s in diff.calls.items()
        },
    }
