"""Trace files for the HTML and browser tests: two real runs of clock_actor, a
hostile trace (markup and script in every string a stranger controls), and a long
synthetic pair with a change and an insertion deep inside."""

from __future__ import annotations

import itertools
from pathlib import Path

from packr_replay import record
from packr_replay.abi import String, encode, parse_value
from packr_replay.runtime.demo import DemoHost, example_guest
from packr_replay.storage import EventKind, Outcome, TraceStore

#: Strings a hostile trace carries; each must appear on a page as text, never run.
HOSTILE_LABEL = "<img src=x onerror=\"window.__pwned='label'\">"
HOSTILE_INTERFACE = "<script>window.__pwned='interface'</script>"
HOSTILE_FUNCTION = "<img src=x onerror=window.__pwned='function'>"
HOSTILE_VALUE = "</pre></td><script>window.__pwned='value'</script>"
HOSTILE_ERROR = "<b onmouseover=\"window.__pwned='error'\">boom</b>"
HOSTILE_HOST = "\"><script>window.__pwned='host'</script>"
HOSTILE_META = {"<svg onload=window.__pwned='meta'>": "</dd><script>window.__pwned='meta'</script>"}
CONTROL_TEXT = "red \x1b[31malert\x1b[0m \u202eevil"


def record_clock(path: Path, seed: int, label: str) -> int:
    """clock_actor run twice (``run("Ada")``, ``run()``) with a deterministic host:
    two seeds record different clocks and dice, the same everything else."""
    clock = itertools.count(1_700_000_000_000_000_000 + seed * 1_000_000, 1000)
    dice = itertools.count(seed)
    host = DemoHost(
        environ={"USER": "ada"}, clock=lambda: next(clock), randbelow=lambda b: next(dice) % b
    )
    calls = [("run", parse_value('"Ada"')), ("run", parse_value("()"))]
    return record(example_guest("clock_actor"), calls, host=host, store=path, label=label)


def write_hostile(path: Path) -> int:
    """A trace whose label, host, metadata, names, values and errors are markup."""
    with TraceStore(path, create=True) as store, store.begin_trace(
        None, label=HOSTILE_LABEL, host=HOSTILE_HOST, meta=dict(HOSTILE_META)
    ) as w:
        w.append(1, EventKind.EXPORT, "", HOSTILE_FUNCTION, encode(String(HOSTILE_VALUE)))
        w.append(1, EventKind.IMPORT, HOSTILE_INTERFACE, HOSTILE_FUNCTION,
                 encode(String(HOSTILE_VALUE)), encode(String(CONTROL_TEXT)), status=0,
                 depth=1)  # fmt: skip
        w.append(1, EventKind.IMPORT, HOSTILE_INTERFACE, "fails", encode(String("x")),
                 None, status=-1, outcome=Outcome.IMPORT_ERROR, error_kind="Handler",
                 error=HOSTILE_ERROR, depth=1)  # fmt: skip
        w.append(1, EventKind.RETURN, "", HOSTILE_FUNCTION, None, None, status=-1,
                 outcome=Outcome.GUEST_ERROR, error_kind="guest", error=HOSTILE_ERROR)  # fmt: skip
        trace_id = w.trace_id
    return trace_id


def write_long(path: Path, n: int, label: str, *, change_at: int | None = None,
               insert_at: int | None = None) -> int:  # fmt: skip
    """``n`` events of export/import/import/return shape; ``change_at`` alters one
    import's output, ``insert_at`` adds one extra import before that position."""
    with TraceStore(path, create=True) as store, store.begin_trace(None, label=label) as w:
        i = 0
        while i < n:
            call = i // 4 + 1
            if insert_at is not None and i == insert_at:
                w.append(call, EventKind.IMPORT, "demo:host/extra", "ping",
                         encode(String("extra")), encode(String("pong")), status=0, depth=1)  # fmt: skip
            phase = i % 4
            if phase == 0:
                w.append(call, EventKind.EXPORT, "", "step", encode(String(f"call {call}")))
            elif phase == 3:
                w.append(call, EventKind.RETURN, "", "step", None, encode(String("done")),
                         status=0)  # fmt: skip
            else:
                out = f"reply {i}" + (" CHANGED" if i == change_at else "")
                w.append(call, EventKind.IMPORT, "demo:host/io", "read" if phase == 1 else "write",
                         encode(String(f"ask {i}")), encode(String(out)), status=0, depth=1)  # fmt: skip
            i += 1
        trace_id = w.trace_id
    return trace_id


def tamper(path: Path, trace_id: int, seq: int) -> None:
    """Flip one byte of event ``seq``'s stored input, as an editor of the file would."""
    from tests.storage.test_integrity import record_offsets, rewrite, segment_of

    first, data = segment_of(path, trace_id, seq)
    at, _ = record_offsets(data, first, seq)
    rewrite(path, trace_id, first, data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :])
