"""Hostile guests, recorded AND replayed: the host survives every misbehaviour with a
typed error, the failure is in the trace, and replay reproduces it.

tests/runtime/test_hostile_imports.py checks each bad pointer, length and byte string
at the runtime level (no interceptor) and tests/examples/test_guests.py that each
hostile.wasm export misbehaves as documented; here every case runs through
``api.record_run`` into a trace store and back through replay:

* every export of ``examples/guests/hostile.wasm`` (the list is read from the module,
  so a new export without an expectation fails), under a fuel budget, and ``spin``
  and ``import_garbage`` also under a wall-clock timeout with no fuel;
* a WAT guest whose packr exports each call a typed import with one of the runtime
  issue's bad arguments (out-of-bounds, negative and 2 GiB input pointers and lengths,
  garbage CGRF, out slots outside memory) and return the status as ``S32``;
* memory growth until the memory limit refuses it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from packr_replay import api
from packr_replay.abi import S32, S64, UNIT, String, Value, encode
from packr_replay.errors import (
    GuestError,
    GuestMemoryError,
    GuestRuntimeError,
    GuestTimeout,
    GuestTrap,
    InvalidGuestOutput,
)
from packr_replay.replay import ReplayReport, replay_source
from packr_replay.runtime import Ctx, HostLinkerBuilder, Module, Runtime
from packr_replay.runtime.demo import DemoHost, example_guest
from packr_replay.runtime.host import HostSpec
from packr_replay.storage import Event, EventKind, Outcome, TraceStatus, TraceStore

from .conftest import Tally

FUEL = 50_000_000
MEMORY_LIMIT = 64 << 20

#: Every hostile.wasm export: (the error its call ends with, or None for success;
#: the import failure recorded on the way, if any).
HOSTILE: dict[str, tuple[type[GuestRuntimeError] | None, str | None]] = {
    "trap": (GuestTrap, None),
    "spin": (GuestTimeout, None),
    "fail": (GuestError, None),
    "garbage_out": (InvalidGuestOutput, None),
    "bad_out_ptr": (GuestMemoryError, None),
    "huge_out_len": (GuestMemoryError, None),
    "import_garbage": (GuestTimeout, "Decode"),
    "import_oob": (GuestTimeout, "Decode"),
    "import_bad_slots": (GuestTimeout, "MemoryWrite"),
    "import_echo": (None, None),
    "recurse": (GuestTrap, None),
    "grow": (GuestError, None),
}


@pytest.fixture(scope="module")
def hostile() -> Module:
    return Runtime(fuel=FUEL, memory_limit=MEMORY_LIMIT).load_module(example_guest("hostile"))


def packr_exports(module: Module) -> list[str]:
    return sorted(
        e.name for e in module.exports
        if e.kind == "func" and not e.name.startswith("__pack_")
    )  # fmt: skip


Recorded = tuple[Path, dict[str, api.RecordResult]]


def record_each(
    module: Module, cases: list[str], path: Path, host: Callable[[], HostSpec], then: str,
    then_value: Value,
) -> Recorded:
    """One trace per case in one file, labelled by the case: the case's export called
    with unit, then ``then(then_value)`` on the same instance."""
    with TraceStore(path, create=True) as store:
        results = {
            case: api.record_run(module, [(case, UNIT), (then, then_value)], host=host(),
                                 store=store, label=case)
            for case in cases
        }  # fmt: skip
    return path, results


def check_trace(path: Path, result: api.RecordResult, import_error: str | None) -> list[Event]:
    """The trace is complete and chain-valid, and records the import failure if any."""
    with TraceStore(path, readonly=True) as store:
        trace = store.trace(result.trace_id)
        assert trace.info.status is TraceStatus.COMPLETE
        assert store.verify(result.trace_id).ok
        events = list(trace.events())
    imports = [e for e in events if e.kind is EventKind.IMPORT]
    if import_error is not None:
        assert (imports[0].outcome, imports[0].error_kind) == (Outcome.IMPORT_ERROR, import_error)
    return events


def replay_case(path: Path, label: str, module: Module) -> ReplayReport:
    """Replay one trace with ``module`` (already compiled, under the recording's memory
    limit: a trace's meta keeps fuel and timeout but not the memory limit)."""
    with TraceStore(path, readonly=True) as store:
        return replay_source(store.trace(label), module)


@pytest.fixture(scope="module")
def hostile_file(hostile: Module, tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    path = tmp_path_factory.mktemp("hostile") / "hostile.db"
    return record_each(hostile, sorted(HOSTILE), path, DemoHost, "import_echo", S64(7))


class TestHostileExports:
    """Every hostile.wasm export through record and replay: typed errors, reproduced."""

    def test_expectations_cover_every_export(self, hostile: Module) -> None:
        assert packr_exports(hostile) == sorted(HOSTILE)

    @pytest.mark.parametrize("export", sorted(HOSTILE))
    def test_record(self, hostile: Module, hostile_file: Recorded, export: str, tally: Tally) -> None:
        path, results = hostile_file
        expected, import_error = HOSTILE[export]
        result = results[export]
        first, second = result.results
        if expected is None:
            assert first.error is None, first.error
        else:
            assert isinstance(first.error, expected), repr(first.error)
        check_trace(path, result, import_error)
        if export == "recurse":
            # the trap leaves the guest's shadow-stack pointer below 0: the instance is
            # spent (every later call traps too), but the host carries on
            assert isinstance(second.error, GuestTrap)
        else:
            assert second.error is None
            assert second.output is not None
            assert second.output.value == S64(7)  # the same instance still works
        # a fresh instance of the same module works after any of them
        fresh = hostile.instantiate(DemoHost())
        assert fresh.call_with_value("import_echo", S64(1)) == S64(1)
        tally.add(f"recorded {type(first.error).__name__}")

    @pytest.mark.parametrize("export", sorted(HOSTILE))
    def test_replay(self, hostile: Module, hostile_file: Recorded, export: str, tally: Tally) -> None:
        path, results = hostile_file
        report = replay_case(path, export, hostile)
        tally.add("reproduced" if report.reproduced else "diverged")
        assert report.reproduced, report.summary()
        assert report.events_replayed == results[export].events

    def test_api_replay(self, hostile_file: Recorded) -> None:
        """The public verb too (a fresh runtime from the trace's meta), on a few."""
        path, _ = hostile_file
        for export in ("trap", "spin", "garbage_out", "import_garbage"):
            report = api.replay(path, export)
            assert report.reproduced, report.summary()

    def test_wall_clock_timeout(self, tmp_path: Path) -> None:
        """No fuel, a 0.1 s deadline: spinning guests end with GuestTimeout, and replay
        (under the deadline kept in the trace's meta) ends them the same way."""
        module = Runtime(fuel=None, timeout=0.1).load_module(example_guest("hostile"))
        path = tmp_path / "timeout.db"
        result = api.record_run(
            module, [("spin", UNIT), ("import_garbage", UNIT), ("import_echo", S64(2))],
            host=DemoHost(), store=path,
        )  # fmt: skip
        spin, garbage, echo = result.results
        for r in (spin, garbage):
            assert isinstance(r.error, GuestTimeout)
            assert "0.1" in r.error.budget
        assert echo.output is not None
        assert echo.output.value == S64(2)
        check_trace(path, result, "Decode")
        report = api.replay(path)
        assert report.reproduced, report.summary()

    def test_garbage_export_input(self, hostile: Module, tmp_path: Path) -> None:
        """Bytes that are not CGRF as an export's input: the guest's decode error."""
        path = tmp_path / "garbage-in.db"
        result = api.record_run(hostile, [("import_echo", b"not CGRF at all")],
                                host=DemoHost(), store=path)  # fmt: skip
        assert isinstance(result.results[0].error, GuestError)
        assert "decode error" in str(result.results[0].error)
        assert replay_case(path, result.trace_id, hostile).reproduced  # type: ignore[arg-type]


class TestMemoryExhaustion:
    """A guest growing its memory until refused: a typed error, then business as usual."""

    def test_grow_under_a_limit(self) -> None:
        module = Runtime(fuel=FUEL, memory_limit=8 << 20).load_module(example_guest("hostile"))
        inst = module.instantiate(DemoHost())
        with pytest.raises(GuestError, match=r"memory.grow failed after growing \d+ pages"):
            inst.call_with_value("grow", UNIT)
        assert inst.memory.size == 8 << 20
        assert inst.call_with_value("import_echo", String("still here")) == String("still here")

    def test_api_replay_keeps_the_memory_limit(self, tmp_path: Path) -> None:
        path = tmp_path / "grow.db"
        module = Runtime(fuel=FUEL, memory_limit=8 << 20).load_module(example_guest("hostile"))
        api.record_run(module, [("grow", UNIT)], host=DemoHost(), store=path)
        assert api.replay(path).reproduced


# ------------------------------------------------------ bad import arguments

SIZE = 2 * 65536
GOOD = encode(S64(3))
DATA = {
    0x1000: b"garbage!garbage!",
    0x1100: GOOD,
    0x1200: GOOD[:-1],
    0x1300: GOOD + b"\0",
    0x1400: b"CGRF\x02\x00\x00\x00\xff\xff\xff\xff\x00\x00\x00\x00",
    0x1500: b"CGRF\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00",
    0x1600: b"CGRF",
}
#: name -> (in_ptr, in_len, out_ptr_ptr, out_len_ptr, the recorded error kind or None)
BAD_ARGUMENTS: dict[str, tuple[int, int, int, int, str | None]] = {
    "straddles_end": (SIZE - 4, 32, 8000, 8004, "Decode"),
    "just_past_end": (SIZE, 1, 8000, 8004, "Decode"),
    "negative_ptr": (-1, 32, 8000, 8004, "Decode"),
    "most_negative_ptr": (-(2**31), 16, 8000, 8004, "Decode"),
    "negative_len": (0x1100, -1, 8000, 8004, "Decode"),
    "len_2gib": (0, 2**31 - 1, 8000, 8004, "Decode"),
    "ptr_and_len_2gib": (2**31 - 1, 2**31 - 1, 8000, 8004, "Decode"),
    "mib_outside": (1 << 20, 1 << 20, 8000, 8004, "Decode"),
    "zero_len": (0x1100, 0, 8000, 8004, "Decode"),
    "garbage": (0x1000, 16, 8000, 8004, "Decode"),
    "magic_only": (0x1600, 4, 8000, 8004, "Decode"),
    "truncated": (0x1200, len(GOOD) - 1, 8000, 8004, "Decode"),
    "trailing_byte": (0x1300, len(GOOD) + 1, 8000, 8004, "Decode"),
    "four_billion_nodes": (0x1400, 16, 8000, 8004, "Decode"),
    "version_1": (0x1500, 16, 8000, 8004, "Decode"),
    "out_ptr_past_end": (0x1100, len(GOOD), SIZE, 8004, "MemoryWrite"),
    "out_len_straddles": (0x1100, len(GOOD), 8000, SIZE - 2, "MemoryWrite"),
    "out_ptr_negative": (0x1100, len(GOOD), -1, 8004, "MemoryWrite"),
    "out_len_negative": (0x1100, len(GOOD), 8000, -4, "MemoryWrite"),
    "slots_2gib": (0x1100, len(GOOD), 2**31, 2**31, "MemoryWrite"),
    "healthy": (0x1100, len(GOOD), 8000, 8004, None),
}


def wat_bytes(blob: bytes) -> str:
    return "".join(f"\\{b:02x}" for b in blob)


def bad_arguments_guest() -> str:
    """One packr export per case: call ``test.ident`` with the case's raw arguments and
    return ``S32(status)`` (a 28-byte CGRF buffer at 0x3000 with the status patched in)."""
    s32 = encode(S32(0))
    data = "\n".join(
        f'  (data (i32.const {addr}) "{wat_bytes(blob)}")'
        for addr, blob in {**DATA, 0x3000: s32}.items()
    )
    funcs = []
    for name, (p, n, opp, olp, _) in BAD_ARGUMENTS.items():
        funcs.append(f"""
  (func (export "{name}") (param i32 i32) (param $opp i32) (param $olp i32) (result i32)
    (i32.store (i32.const 0x3018)
      (call $ident (i32.const {p}) (i32.const {n}) (i32.const {opp}) (i32.const {olp})))
    (i32.store (local.get $opp) (i32.const 0x3000))
    (i32.store (local.get $olp) (i32.const {len(s32)}))
    (i32.const 0))""")
    return f"""
(module
  (import "test" "ident" (func $ident (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2 2)
{data}
{"".join(funcs)})"""


def ident_host(seen: list[Value]) -> Callable[[HostLinkerBuilder], None]:
    def register(b: HostLinkerBuilder) -> None:
        def ident(ctx: Ctx, v: Value) -> Value:
            seen.append(v)
            return v

        b.interface("test").func_typed("ident", ident)

    return register


@pytest.fixture(scope="module")
def bad_args_module() -> Module:
    return Runtime(fuel=FUEL).load_module(bad_arguments_guest())


@pytest.fixture(scope="module")
def bad_args_file(bad_args_module: Module, tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    path = tmp_path_factory.mktemp("bad-args") / "bad-args.db"
    return record_each(bad_args_module, list(BAD_ARGUMENTS), path, lambda: ident_host([]),
                       "healthy", UNIT)  # fmt: skip


class TestBadImportArguments:
    """Each bad pointer, length, slot or byte string, recorded and replayed."""

    @pytest.mark.parametrize("case", list(BAD_ARGUMENTS))
    def test_record(self, bad_args_file: Recorded, case: str, tally: Tally) -> None:
        path, results = bad_args_file
        *_, kind = BAD_ARGUMENTS[case]
        first, second = results[case].results
        assert first.error is None
        assert first.output is not None
        assert first.output.value == S32(-1 if kind else 0)
        assert second.error is None
        assert second.output is not None
        assert second.output.value == S32(0)  # the host is fine afterwards
        events = check_trace(path, results[case], kind)
        assert events[1].kind is EventKind.IMPORT
        assert events[1].error_kind == kind
        tally.add(f"recorded {kind or 'ok'}")

    def test_handler_runs_only_on_readable_input(self, bad_args_module: Module, tmp_path: Path) -> None:
        """A bad input never reaches the handler; a bad out slot fails after it ran."""
        for case, (*_, kind) in BAD_ARGUMENTS.items():
            seen: list[Value] = []
            inst = bad_args_module.instantiate(ident_host(seen))
            inst.call_with_value(case, UNIT)
            assert seen == ([S64(3)] if kind in (None, "MemoryWrite") else []), case

    @pytest.mark.parametrize("case", list(BAD_ARGUMENTS))
    def test_replay(
        self, bad_args_module: Module, bad_args_file: Recorded, case: str, tally: Tally
    ) -> None:
        path, results = bad_args_file
        report = replay_case(path, case, bad_args_module)
        tally.add("reproduced" if report.reproduced else "diverged")
        assert report.reproduced, report.summary()
        assert report.events_replayed == results[case].events
        outputs = [e.output.data for e in report.exports if e.output is not None]
        assert outputs == [r.output.data for r in results[case].results if r.output is not None]

    def test_api_replay(self, bad_args_file: Recorded) -> None:
        path, _ = bad_args_file
        for case in ("garbage", "zero_len", "out_ptr_negative", "healthy"):
            report = api.replay(path, case)
            assert report.reproduced, report.summary()
