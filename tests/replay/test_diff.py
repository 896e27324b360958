"""Value diffs with paths, and trace diffs with alignment."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from packr_replay import api
from packr_replay.abi import (
    F64,
    S64,
    UNIT,
    Bool,
    List,
    Option,
    Record,
    Result,
    String,
    Tuple,
    Value,
    ValueType,
)
from packr_replay.replay import Change, EventChange, diff_values
from packr_replay.replay.tracediff import diff_traces
from packr_replay.runtime import Module, Runtime
from packr_replay.storage import EventKind, MemoryTrace
from tests.conftest import ONE_IMPORT_PATH

from .conftest import caller_wat, demo_host


@ONE_IMPORT_PATH
class TestDiffValues:
    """Where two values part, with packr's equality."""

    def test_equal_values_have_no_differences(self) -> None:
        v = Record("r", [("a", List(ValueType.S64, [S64(1)])), ("b", Option(ValueType.STRING))])
        assert diff_values(v, v) == []

    def test_record_field_paths(self) -> None:
        a = Record("r", [("x", S64(1)), ("inner", Record("i", [("y", String("a"))]))])
        b = Record("r", [("x", S64(1)), ("inner", Record("i", [("y", String("b"))]))])
        assert [str(d) for d in diff_values(a, b)] == ['.inner.y: "a" → "b"']

    def test_non_identifier_and_duplicate_fields_use_indices(self) -> None:
        a = Record("r", [("a b", S64(1)), ("d", S64(1)), ("d", S64(2))])
        b = Record("r", [("a b", S64(0)), ("d", S64(1)), ("d", S64(3))])
        assert [d.path for d in diff_values(a, b)] == [".fields[0]", ".fields[2]"]

    def test_list_insertions_and_removals(self) -> None:
        t = ValueType.S64
        a = List(ValueType.STRING, [String("a"), String("b"), String("c")])
        b = List(ValueType.STRING, [String("a"), String("x"), String("b"), String("c")])
        assert [str(d) for d in diff_values(a, b)] == ['[1]: inserted "x"']
        c = List(t, [S64(1), S64(2)])
        d = List(t, [S64(1)])
        assert [str(x) for x in diff_values(c, d)] == ["[1]: removed 2s64"]

    def test_declared_types_kinds_and_nan(self) -> None:
        changes = diff_values(List(ValueType.U8, []), List(ValueType.S8, []))
        assert [(d.change, d.a, d.b) for d in changes] == [(Change.TYPE, "list<u8>", "list<s8>")]
        assert diff_values(S64(1), String("1"))[0].change is Change.KIND
        nan = F64(float("nan"))
        assert len(diff_values(nan, nan)) == 1  # NaN != NaN, as in packr
        assert diff_values(F64(0.0), F64(-0.0)) == []
        ok = Result(ValueType.S64, ValueType.STRING, S64(1))
        err = Result(ValueType.S64, ValueType.STRING, String("e"), is_err=True)
        assert diff_values(ok, err)[0].change is Change.CASE

    def test_limit_bounds_the_report(self) -> None:
        a = List(ValueType.STRING, [String(str(i)) for i in range(1000)])
        b = List(ValueType.STRING, [String(str(-i)) for i in range(1000)])
        assert len(diff_values(a, b, limit=10)) == 10

    @pytest.mark.parametrize("depth", [100_000, pytest.param(1_000_000, marks=pytest.mark.slow)])
    def test_million_deep(self, depth: int) -> None:
        """Iterative: 100 times the recursion limit in CI, a million with ``--slow``."""
        a: Value = S64(1)
        b: Value = S64(2)
        for _ in range(depth):
            a, b = Tuple(a), Tuple(b)
        [d] = diff_values(a, b)
        assert d.path.count("[0]") == depth

    @settings(max_examples=200, deadline=None)
    @given(st.recursive(
        st.one_of(st.integers(-5, 5).map(S64), st.text(max_size=3).map(String), st.booleans().map(Bool)),
        lambda kids: st.lists(kids, max_size=4).map(lambda xs: Tuple(*xs)),
        max_leaves=20,
    ), st.data())
    def test_empty_diff_iff_equal(self, a: Value, data: st.DataObject) -> None:
        b = data.draw(st.sampled_from([a, Tuple(a), S64(0), UNIT]))
        assert (diff_values(a, b) == []) == (a == b)


def _trace(*specs: tuple[str, str, Value, Value], module: str | None = None) -> MemoryTrace:
    trace = MemoryTrace(module_sha256=module)
    trace.append(1, EventKind.EXPORT, "", "run", b"")
    from packr_replay.abi import encode

    for iface, fn, inp, out in specs:
        trace.append(1, EventKind.IMPORT, iface, fn, encode(inp), encode(out), 0)
    trace.append(1, EventKind.RETURN, "", "run", None, b"", 0)
    trace.finish()
    return trace


class TestDiffTraces:
    """Trace diff: first divergence, alignment after insertions, summary."""

    def test_identical(self) -> None:
        a = _trace(("i", "f", S64(1), S64(2)))
        b = _trace(("i", "f", S64(1), S64(2)))
        d = diff_traces(a, b)
        assert d.identical
        assert d.equal == 3
        assert d.first is None

    def test_modules_that_differ_are_said_to(self) -> None:
        call = ("i", "f", S64(1), S64(2))
        same = diff_traces(_trace(call, module="a" * 64), _trace(call, module="a" * 64))
        assert (same.identical, same.modules_differ) == (True, False)
        assert same.summary() == "identical: 3 events"
        other = diff_traces(_trace(call, module="a" * 64), _trace(call, module="b" * 64))
        assert (other.identical, other.modules_differ) == (True, True)
        assert other.summary() == (
            "identical: 3 events; the modules differ (a ran sha256 aaaaaaaaaaaa, b ran bbbbbbbbbbbb)"
        )
        assert not diff_traces(_trace(call), _trace(call, module="b" * 64)).modules_differ

    def test_changed_output_is_explained(self) -> None:
        a = _trace(("i", "now", UNIT, S64(1)), ("i", "f", S64(1), S64(2)))
        b = _trace(("i", "now", UNIT, S64(9)), ("i", "f", S64(1), S64(2)))
        d = diff_traces(a, b)
        assert (d.changed, d.inserted, d.removed, d.equal) == (1, 0, 0, 3)
        assert d.first is not None
        assert d.first.change is EventChange.CHANGED
        assert [str(x) for x in d.first.output_diffs] == ["(root): 1s64 → 9s64"]
        assert d.calls["import i.now"].changed == 1

    def test_alignment_resynchronises_after_an_insertion(self) -> None:
        calls = [("i", f"f{k}", S64(k), S64(k)) for k in range(10)]
        a = _trace(*calls)
        b = _trace(*calls[:4], ("i", "extra", S64(0), S64(0)), *calls[4:])
        d = diff_traces(a, b)
        assert (d.changed, d.inserted, d.removed) == (0, 1, 0)
        assert d.first is not None
        assert d.first.b is not None
        assert d.first.b.function == "extra"
        back = diff_traces(b, a)
        assert (back.changed, back.inserted, back.removed) == (0, 0, 1)

    @pytest.mark.parametrize("extra", [1, 3])
    def test_one_trace_a_prefix_of_the_other(self, extra: int) -> None:
        calls = [("i", f"f{k}", S64(k), S64(k)) for k in range(6)]
        short, long = _trace(*calls[: 6 - extra]), _trace(*calls)
        d = diff_traces(short, long)
        assert (d.equal, d.changed, d.inserted, d.removed) == (d.events_a, 0, extra, 0)
        assert d.events_b == d.events_a + extra
        back = diff_traces(long, short)
        assert (back.equal, back.changed, back.inserted, back.removed) == (d.events_a, 0, 0, extra)

    def test_changes_before_and_after_an_insertion_are_all_counted(self) -> None:
        calls = [("i", f"f{k}", S64(k), S64(k)) for k in range(8)]
        changed = [("i", "f1", S64(1), S64(100))]
        a = _trace(*calls)
        b = _trace(calls[0], *changed, *calls[2:5], ("i", "extra", S64(0), S64(0)),
                   calls[5], ("i", "f6", S64(6), S64(600)), calls[7])  # fmt: skip
        d = diff_traces(a, b)
        assert (d.changed, d.inserted, d.removed) == (2, 1, 0)
        assert d.equal + d.changed + d.removed == d.events_a
        assert d.equal + d.changed + d.inserted == d.events_b
        assert d.first is not None
        assert d.first.change is EventChange.CHANGED
        assert [c.change for c in d.changes] == [EventChange.CHANGED, EventChange.INSERTED, EventChange.CHANGED]

    def test_traces_that_differ_from_the_first_event(self) -> None:
        a = _trace(("i", "f", S64(1), S64(2)))
        b = _trace(("j", "g", S64(1), S64(2)))
        d = diff_traces(a, b)
        assert d.equal == 2  # the export and its return
        assert (d.inserted, d.removed) == (1, 1)
        assert d.events_a == d.events_b == 3

    def test_real_runs_of_the_clock_actor(self, guest: Callable[[str], Module], tmp_path: Path) -> None:
        db = tmp_path / "t.db"
        for seed in (1, 2):
            api.record_run(guest("clock_actor"), [("run", String("Ada"))], host=demo_host(seed), store=db)
        d = api.diff(f"{db}#1", f"{db}#2")
        assert not d.identical
        assert d.calls["import demo:host/clock.now"].changed == 1
        assert api.diff(f"{db}#1", f"{db}#1").identical

    def test_real_runs_with_different_call_sequences(self, runtime: Runtime, tmp_path: Path) -> None:
        db = tmp_path / "t.db"
        host = _answer_all
        one = [("a", S64(1)), ("b", S64(2))]
        two = [("a", S64(1)), ("c", S64(7)), ("b", S64(2))]
        api.record_run(runtime.load_module(caller_wat(one)), [("run", UNIT)], host=host, store=db)
        api.record_run(runtime.load_module(caller_wat(two)), [("run", UNIT)], host=host, store=db)
        d = api.diff(f"{db}#1", f"{db}#2")
        assert (d.inserted, d.removed, d.changed) == (1, 0, 0)
        assert "inserted in b: #2 import t:host/f.c(7s64)" in str(d.first)


def _answer_all(builder: object) -> None:
    iface = builder.interface("t:host/f")  # type: ignore[attr-defined]
    for name in "abc":
        iface.func_typed(name, lambda ctx, v: v)


def diamonds(levels: int, leaf: int = 1) -> bytes:
    """CGRF whose tuples each hold the level below twice: a few hundred bytes that
    expand to ``2 ** (levels + 1) - 1`` nodes written out."""
    import struct

    def node(kind: int, payload: bytes) -> bytes:
        return struct.pack("<BBHI", kind, 0, 0, len(payload)) + payload

    nodes = [node(0x03, struct.pack("<q", leaf))]
    nodes += [node(0x0B, struct.pack("<III", 2, i, i)) for i in range(levels)]
    body = b"".join(nodes)
    return struct.pack("<4sHHII", b"CGRF", 2, 0, len(nodes), len(nodes) - 1) + body


class TestExpandingValues:
    """A small DAG that expands to millions of nodes: its diff stops at a stated size
    and says so, instead of walking every path."""

    def test_diff_stops_and_says_so(self) -> None:
        import time

        from packr_replay.abi import EncodedValue
        from packr_replay.replay.diff import MAX_DIFF_NODES

        a, b = EncodedValue(diamonds(22)), EncodedValue(diamonds(22))  # 8.4M nodes each
        assert len(a.data) < 700
        t0 = time.perf_counter()
        diffs = diff_values(a, b, max_nodes=50_000)
        assert time.perf_counter() - t0 < 10
        assert [d.change for d in diffs] == [Change.STOPPED]
        assert "stopped after 50,000 nodes" in str(diffs[0])
        assert MAX_DIFF_NODES == 1_000_000
        differing = diff_values(a, EncodedValue(diamonds(22, leaf=2)), limit=3)
        assert [d.change for d in differing] == [Change.VALUE] * 3

    def test_equal_small_dags_compare_in_full(self) -> None:
        from packr_replay.abi import EncodedValue

        assert diff_values(EncodedValue(diamonds(8)), EncodedValue(diamonds(8))) == []
