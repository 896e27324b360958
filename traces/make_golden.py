"""Write the golden trace files for the current trace-store format.

    python traces/make_golden.py            # traces/format-N.db, traces/examples-format-N.db
    python traces/make_golden.py --out DIR  # somewhere else, e.g. to look at them

Golden files are written once per format version and never changed afterwards (the
tests open every one of them with the current code), so existing files are left alone
unless ``--force`` is given. Both files are recorded against hosts with a fixed clock,
fixed dice and a fixed ``$USER``, so a regenerated file holds the same calls and values
(only uuids, timestamps and durations differ):

* ``format-N.db``: one trace labelled ``golden``: ``clock_actor`` called with ``"Ada"``,
  ``()`` and ``"Grace"``.
* ``examples-format-N.db``: one trace per example guest, labelled with the guest's
  name, exercising its imports, exports and failures (see ``SCENARIOS``); from format 4
  on also a composition's trace, labelled ``composition`` (see ``COMPOSITION_CALLS``).
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from collections.abc import Callable
from pathlib import Path

from packr_replay import api
from packr_replay.abi import (
    F64,
    S32,
    S64,
    U32,
    UNIT,
    List,
    Option,
    Record,
    String,
    Tuple,
    Value,
    ValueType,
    Variant,
)
from packr_replay.runtime import CompositionBuilder
from packr_replay.runtime.demo import DemoHost, example_guest, sexpr
from packr_replay.storage import TRACE_FORMAT_VERSION, TraceStore

HERE = Path(__file__).resolve().parent

Calls = list[tuple[str, Value]]


def fixed_host() -> DemoHost:
    """The demo host with a clock ticking 1 µs per call from 2023-11-14, dice rolling
    3, 4, 5, ..., random bytes 7, 8, 9, ... and ``USER=golden``."""
    clock = itertools.count(1_700_000_000_000_000_000, 1000)
    dice = itertools.count(3)
    return DemoHost(
        environ={"USER": "golden"},
        clock=lambda: next(clock),
        randbelow=lambda n: next(dice) % n,
        randbytes=lambda n: bytes(range(7, 7 + n)),
    )


def _sym(name: str) -> Variant:
    return sexpr("sym", String(name))


def _form(*items: Value) -> Variant:
    """An S-expression list ``(a b c)``."""
    return sexpr("lst", List(ValueType.variant("sexpr"), items))


def _request(case: str, tag: int, *payload: str) -> Variant:
    return Variant("request", case, tag, [String(p) for p in payload])


#: What each example guest is called with in ``examples-format-N.db``.
SCENARIOS: dict[str, Callable[[], Calls]] = {
    "clock_actor": lambda: [("run", String("Ada")), ("run", UNIT), ("run", S32(1))],
    "sexpr": lambda: [
        ("eval", _form(sexpr("sym", String("+")), _sym("answer"), sexpr("num", S64(1)))),
        ("eval", _form(sexpr("sym", String("*")), _sym("pi"), sexpr("float", F64(2.0)))),
        ("eval", _sym("unbound")),
    ],
    "kv_actor": lambda: [
        ("init", Record("config", [("namespace", String("golden"))])),
        ("handle", _request("put", 1, "k", "v")),
        ("handle", _request("get", 0, "k")),
        ("handle", _request("delete", 2, "k")),
        ("handle", _request("delete", 2, "k")),
        ("handle", _request("count", 3)),
    ],
    "host_actor": lambda: [
        ("process", S64(20)),
        ("process", Tuple(S64(-4))),
        ("process", String("x")),
    ],
    "echo": lambda: [
        ("echo", Record("point", [("x", S32(1)), ("tags", List(ValueType.STRING, [String("a")]))])),
        ("transform", List(ValueType.S64, [S64(1), S64(-2)])),
        ("transform", Option(ValueType.S64, S64(21))),
    ],
    "hostile": lambda: [
        ("import_echo", S32(5)),
        ("fail", UNIT),
        ("trap", UNIT),
        ("garbage_out", UNIT),
    ],
    "bench": lambda: [("calls", S64(10)), ("nothing", UNIT)],
    # (from format 5: raw imports recorded, with the host's writes to guest memory)
    "logger": lambda: [("process", S64(42)), ("token", U32(6)), ("process", String("hi"))],
}

GOLDEN_CALLS: Calls = [("run", String("Ada")), ("run", UNIT), ("run", String("Grace"))]

#: The composition in ``examples-format-N.db`` (format 4 on): host_actor's ``math.double``
#: import wired to echo's ``transform`` export, its log served by the host; calls name
#: the package they go to, and include a wired call, a direct call into the callee, an
#: input host_actor does not double, and a failing export.
COMPOSITION_CALLS: list[tuple[str, str, Value | bytes]] = [
    ("actor", "process", S64(20)),
    ("doubler", "transform", List(ValueType.S64, [S64(1), S64(-2)])),
    ("actor", "process", Tuple(S64(-4))),
    ("actor", "process", String("x")),
    ("doubler", "echo", b"not CGRF"),
]


def golden_composition() -> CompositionBuilder:
    return (
        CompositionBuilder()
        .add_package("doubler", example_guest("echo"))
        .add_package("actor", example_guest("host_actor"))
        .add_host(fixed_host())
        .wire("actor", "math", "double", "doubler", "transform")
    )


def _finish(path: Path) -> None:
    """Index the events (when the format has an index), then make the file one compact
    file with no -wal/-shm companions, as a bundle is."""
    with TraceStore(path) as store:
        try:
            from packr_replay.storage import index_all
        except ImportError:  # formats before 2 have no event index
            pass
        else:
            index_all(store)
        store.db.vacuum()
        store.db.execute("PRAGMA journal_mode=DELETE")


def _write(dest: Path, record: Callable[[Path], None], force: bool) -> None:
    if dest.exists() and not force:
        print(f"{dest}: exists, left alone (golden files never change; --force to rewrite)")
        return
    partial = dest.with_name(f".{dest.name}.partial")
    for leftover in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm")):
        leftover.unlink(missing_ok=True)
    record(partial)
    _finish(partial)
    os.replace(partial, dest)
    print(f"{dest}: written")


def write_golden(path: Path) -> None:
    api.record_run(
        example_guest("clock_actor"), GOLDEN_CALLS, host=fixed_host(), store=path, label="golden"
    )


def write_examples(path: Path) -> None:
    for guest, calls in SCENARIOS.items():
        api.record_run(example_guest(guest), calls(), host=fixed_host(), store=path, label=guest)
    api.record_composition(golden_composition(), COMPOSITION_CALLS, store=path, label="composition")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE, help="directory to write to")
    parser.add_argument("--force", action="store_true", help="rewrite existing files")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    n = TRACE_FORMAT_VERSION
    _write(args.out / f"format-{n}.db", write_golden, args.force)
    _write(args.out / f"examples-format-{n}.db", write_examples, args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
