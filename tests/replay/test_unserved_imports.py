"""Imports that fail before the host can serve them (the input pointer/length cannot be
read from guest memory, or the length is over the buffer limit) are recorded with no
input; replay consumes that recorded failure and catches a run that fails differently.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from packr_replay import api
from packr_replay.abi import S32, S64, UNIT, Value, encode
from packr_replay.errors import ReplayDivergence, TraceExhausted
from packr_replay.replay import Recorder, Replayer, ReplayReport
from packr_replay.runtime import Runtime
from packr_replay.storage import EventKind, MemoryTrace, Outcome, TraceStore

PAGE = 65536
GOOD = encode(S64(3))
#: A CGRF S32 at 0x3000 whose payload (at 0x3018) ``run`` patches with the statuses.
S32_AT = 0x3000


def guest(calls: list[tuple[str, int, int]]) -> str:
    """Export ``run`` calls ``t:host/f.<name>(ptr, len, ...)`` for each of ``calls`` in
    order (the guest's memory is one page; a good S64 input sits at 0x1100) and
    returns the sum of the statuses as S32: never traps on -1, so a failed import
    leaves the run intact."""
    names = sorted({name for name, *_ in calls} | {"a"})
    imports = "\n".join(
        f'  (import "t:host/f" "{n}" (func ${n} (param i32 i32 i32 i32) (result i32)))'
        for n in names
    )
    body = "\n".join(
        f"    (local.set $sum (i32.add (local.get $sum) (call ${name} (i32.const {ptr}) "
        f"(i32.const {length}) (i32.const 200) (i32.const 300))))"
        for name, ptr, length in calls
    )
    esc = "".join(f"\\{b:02x}" for b in GOOD)
    s32 = "".join(f"\\{b:02x}" for b in encode(S32(0)))
    return f"""(module
{imports}
  (memory (export "memory") 1 1)
  (data (i32.const 0x1100) "{esc}")
  (data (i32.const {S32_AT}) "{s32}")
  (func (export "run") (param i32 i32) (param $opp i32) (param $olp i32) (result i32)
    (local $sum i32)
{body}
    (i32.store (i32.const {S32_AT + 0x18}) (local.get $sum))
    (i32.store (local.get $opp) (i32.const {S32_AT}))
    (i32.store (local.get $olp) (i32.const {len(encode(S32(0)))}))
    (i32.const 0)))"""


def ident_host(seen: list[Value]) -> Callable[[Any], None]:
    def ident(ctx: Any, v: Value) -> Value:
        seen.append(v)
        return v

    def build(builder: Any) -> None:
        iface = builder.interface("t:host/f")
        for name in ("a", "b"):
            iface.func_typed(name, ident)

    return build


OOB = ("a", PAGE - 4, 32)  # straddles the end of memory
GOOD_CALL = ("a", 0x1100, len(GOOD))


def record(runtime: Runtime, db: Path, calls: list[tuple[str, int, int]]) -> api.RecordResult:
    return api.record_run(runtime.load_module(guest(calls)), [("run", UNIT)], host=ident_host([]), store=db)


def replay(runtime: Runtime, db: Path, calls: list[tuple[str, int, int]], **kw: Any) -> ReplayReport:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the replayed module differs from the recorded one
        return api.replay(db, module=runtime.load_module(guest(calls)), **kw)


class TestReproduced:
    @pytest.mark.parametrize(
        "bad",
        [
            pytest.param(OOB, id="straddles_end"),
            pytest.param(("a", PAGE, 1), id="just_past_end"),
            pytest.param(("a", -1, 8), id="negative_ptr"),
            pytest.param(("a", 0x1100, -1), id="negative_len"),
            pytest.param(("a", 0, 2**31 - 1), id="len_2gib"),
        ],
    )
    def test_recorded_unreadable_input_replays(
        self, runtime: Runtime, db: Path, bad: tuple[str, int, int]
    ) -> None:
        calls = [GOOD_CALL, bad, GOOD_CALL]
        recorded = record(runtime, db, calls)
        assert recorded.results[0].output is not None
        assert recorded.results[0].output.value == S32(-1)  # 0 + -1 + 0
        with TraceStore(db) as store:
            imports = list(store.trace(1).events(kind=EventKind.IMPORT))
        failed = imports[1]
        assert (failed.outcome, failed.error_kind, failed.status) == (Outcome.IMPORT_ERROR, "Decode", -1)
        assert failed.input is None  # nothing could be read
        assert (failed.error or "").startswith(("Memory error:", "Decoding error:"))

        seen: list[Value] = []
        report = api.replay(db, host=ident_host(seen))
        assert report.reproduced, report.summary()
        assert report.events_replayed == recorded.events
        assert [e.output.data for e in report.exports if e.output is not None] == [
            r.output.data for r in recorded.results if r.output is not None
        ]
        assert seen == []  # served from the trace, no handler ran

    def test_saved_replay_chains_the_recorder(self, runtime: Runtime, db: Path) -> None:
        """``save=True`` wraps the replayer and a recorder in a Chain: both hear of the
        unserved failure, and the saved replay holds it as the original does."""
        record(runtime, db, [GOOD_CALL, OOB, GOOD_CALL])
        report = api.replay(db, 1, save=True)
        assert report.reproduced, report.summary()
        with TraceStore(db) as store:
            original, saved = (list(store.trace(t).events(kind=EventKind.IMPORT)) for t in (1, 2))
        assert [(e.input, e.outcome, e.error) for e in saved] == [
            (e.input, e.outcome, e.error) for e in original
        ]

    def test_in_memory_replayer(self, runtime: Runtime) -> None:
        module = runtime.load_module(guest([OOB, GOOD_CALL]))
        trace = MemoryTrace()
        inst = module.instantiate(ident_host([]), interceptor=Recorder(trace))
        out = inst.call_with_value("run", UNIT)
        trace.finish()
        replayer = Replayer(trace)
        inst2 = module.instantiate(ident_host([]), interceptor=replayer)
        replayer.bind(inst2)
        assert inst2.call_with_value("run", UNIT) == out
        assert replayer.replayed == len(trace)

    def test_decoding_replayer_consumes_an_undecodable_input(self, runtime: Runtime) -> None:
        """With ``decode_inputs`` the runtime fails garbage input before asking the
        replayer too: the recorded Decode failure (with its input bytes) is consumed."""

        class DecodingReplayer(Replayer):
            decode_inputs = True

        garbage = ("a", 0x1100, len(GOOD) - 1)  # truncated CGRF
        module = runtime.load_module(guest([garbage, GOOD_CALL]))
        trace = MemoryTrace()
        out = module.instantiate(ident_host([]), interceptor=Recorder(trace)).call_with_value("run", UNIT)
        trace.finish()
        replayer = DecodingReplayer(trace)
        inst = module.instantiate(ident_host([]), interceptor=replayer)
        assert inst.call_with_value("run", UNIT) == out
        assert replayer.replayed == len(trace)


class TestDiverged:
    def test_different_failure_is_a_divergence(self, runtime: Runtime, db: Path) -> None:
        record(runtime, db, [GOOD_CALL, OOB])
        report = replay(runtime, db, [GOOD_CALL, ("a", 0, 2**31 - 1)])  # too large instead
        div = report.divergence
        assert div is not None
        assert not report.reproduced
        assert div.seq == 2
        assert div.failed_matchers == ["error"]
        text = str(div)
        assert "replay diverged at event #2 inside export 'run' (call 1)" in text
        assert "import t:host/f.a failed with a different error" in text
        assert "Memory error:" in text
        assert "Buffer too large" in text

    def test_failure_where_the_recording_succeeded(self, runtime: Runtime, db: Path) -> None:
        record(runtime, db, [GOOD_CALL, GOOD_CALL])
        div = replay(runtime, db, [GOOD_CALL, OOB]).divergence
        assert div is not None
        assert div.seq == 2
        assert div.failed_matchers == ["input"]  # recorded bytes, now nothing readable
        # Matching on the name only, the outcome is what differs.
        div = replay(runtime, db, [GOOD_CALL, OOB], match_on=("kind", "interface", "function")).divergence
        assert div is not None
        assert div.failed_matchers == ["outcome"]
        assert "import t:host/f.a failed before the host could serve it" in str(div)
        assert "succeeded when recorded" in str(div)

    def test_other_function(self, runtime: Runtime, db: Path) -> None:
        record(runtime, db, [OOB])
        div = replay(runtime, db, [("b", PAGE - 4, 32)]).divergence
        assert div is not None
        assert div.failed_matchers == ["function"]
        assert "expected: #1 import t:host/f.a(-) failed: Decode: Memory error:" in str(div)

    def test_readable_where_the_recording_was_not(self, runtime: Runtime, db: Path) -> None:
        record(runtime, db, [OOB])
        div = replay(runtime, db, [GOOD_CALL]).divergence
        assert div is not None
        assert div.failed_matchers == ["input"]

    def test_unserved_failure_past_the_trace(self, runtime: Runtime, db: Path) -> None:
        record(runtime, db, [GOOD_CALL])
        report = replay(runtime, db, [GOOD_CALL, OOB])
        assert isinstance(report.divergence, TraceExhausted)
        assert "more calls than recorded" in str(report.divergence)
        assert isinstance(report.divergence, ReplayDivergence)
