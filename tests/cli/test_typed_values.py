"""Values typed the way the guest declares them, and the round trip: record → show →
record again gives identical input bytes, through the text ``show`` prints and through
the typed JSON form ``--json`` prints, on every example guest and on a guest with
packr's own ``sexpr`` package interface (``evaluate(expr)``, ``cons`` of a tuple)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from packr_replay.abi import EncodedValue, Variant, decode
from packr_replay.abi.metadata import FunctionSig, PackageMetadata, ParamSig, TypeDesc
from packr_replay.storage import TraceStore
from tests.cli.conftest import GUESTS, Invoke

# packr's sexpr package (spec, wasm_execution): ``evaluate`` over an ``expr`` variant
# (sym 0, num 1, float 2, bool 4, nil 5, cons 6 holding a Tuple([head, tail]), err 7),
# ``self`` written as ``value`` in its metadata. The guest below declares exactly that
# and echoes its input, so the recorded bytes show what the CLI sent. (The package as
# packr builds it declares only ``value``: UNDECLARED_SEXPR, TestUndeclaredVariants.)
EXPR = TypeDesc.variant(
    "expr",
    [
        ("sym", TypeDesc.STRING),
        ("num", TypeDesc.S64),
        ("float", TypeDesc.F64),
        ("str", TypeDesc.STRING),
        ("bool", TypeDesc.BOOL),
        ("nil", None),
        ("cons", TypeDesc.tuple(TypeDesc.VALUE, TypeDesc.VALUE)),
        ("err", TypeDesc.STRING),
    ],
)
PACKR_SEXPR = PackageMetadata.build(
    exports=[FunctionSig("", "evaluate", (ParamSig("expr", EXPR),), (EXPR,))]
)


# The sexpr package as packr builds it (v0.7.0's sexpr_package.wasm) declares no types:
# ``evaluate(expr: value) -> value``, so nothing gives its case names their tags.
UNDECLARED_SEXPR = PackageMetadata.build(
    exports=[FunctionSig("", "evaluate", (ParamSig("expr", TypeDesc.VALUE),), (TypeDesc.VALUE,))]
)


def packr_sexpr_wat(meta: PackageMetadata = PACKR_SEXPR) -> str:
    blob = meta.to_bytes()
    data = "".join(f"\\{b:02x}" for b in blob)
    return f"""(module
  (memory (export "memory") 2)
  (data (i32.const 0x10000) "{data}")
  (func (export "__pack_types") (param $opp i32) (param $olp i32) (result i32)
    (i32.store (local.get $opp) (i32.const 0x10000))
    (i32.store (local.get $olp) (i32.const {len(blob)}))
    (i32.const 0))
  (func (export "evaluate") (param $p i32) (param $n i32) (param $opp i32) (param $olp i32)
    (result i32)
    (i32.store (local.get $opp) (local.get $p))
    (i32.store (local.get $olp) (local.get $n))
    (i32.const 0)))
"""


#: Calls for each example guest: (guest, needs the demo host, --call texts). Together
#: they cover every declared parameter type of the seven guests.
CASES: dict[str, tuple[str, bool, list[str]]] = {
    "clock_actor": ("clock_actor", True, ['run="Ada"', "run=()", "run"]),
    "sexpr": (
        "sexpr",
        True,
        [
            'eval=lst([sym("+"), num(1), num(-2), float(2.5)])',
            'eval=lst([sym("if"), bool(true), str("yes"), nil])',
            'eval=lst([sym("let"), lst([lst([sym("x"), num(7)])]), sym("x")])',
            'eval=sexpr::lst([sexpr::sym("*"), sexpr::num(6s64), ::num(7)])',
            'eval=err("boom")',
            "eval=lst([])",
            "eval=float(NaN)",
            'eval=sym("answer")',
        ],
    ),
    "kv_actor": (
        "kv_actor",
        True,
        [
            'init={namespace: "t"}',
            'handle=put("k", "v")',
            'handle=get("k")',
            'handle=request::delete("k")',
            "handle=count",
        ],
    ),
    "hostile": (
        "hostile",
        True,
        [
            'import_echo=("a", [1u8, 2u8], some<s32>(3s32))',
            "import_echo=point{x: 1.5f32, y: -0.0f64}",
            "fail=()",
        ],
    ),
    "echo": (
        "echo",
        False,
        [
            "echo=[1s64, 2s64]",
            "transform=(1s64, [2s64], some<s64>(3s64))",
            "echo='c'",
            "echo=flags(0x5)",
            "echo=ok<u8, string>(1u8)",
            "echo=[]<string>",
            'echo=e::c("x")',
        ],
    ),
    "bench": ("bench", True, ["calls=3", "calls=4s32", "nothing=[1s64]", "raw_calls=2"]),
    "host_actor": ("host_actor", True, ["process=5s64", "process=(7s64)"]),
}


def _inputs(path: Path) -> list[bytes]:
    with TraceStore(path, readonly=True) as store:
        (info,) = store.traces()
        return [e.input or b"" for e in store.trace(info.id).events(kind="export")]


def _exports(cli: Invoke, path: Path) -> list[dict[str, Any]]:
    run = cli("show", path, "--kind", "export", "--limit", "0", "--json")
    assert run.code == 0, run.err
    return list(json.loads(run.out)["events"])


def _record(cli: Invoke, guest: Path, host: bool, out: Path, *args: str | Path) -> None:
    run = cli("record", guest, *(["--host", "demo"] if host else []), *args, "-o", out, "-q")
    assert run.code in (0, 1), run.err  # 1: a call failed (hostile's fail), still recorded
    assert "packr-replay: error" not in run.err


def _round_trip(cli: Invoke, guest: Path, host: bool, calls: list[str], tmp: Path) -> None:
    first = tmp / "first.db"
    _record(cli, guest, host, first, *[a for c in calls for a in ("-c", c)])
    shown = _exports(cli, first)
    original = _inputs(first)
    assert len(shown) == len(original) == len(calls)
    # the text show prints, pasted back into --call
    again = tmp / "again.db"
    _record(cli, guest, host, again,
            *[a for e in shown for a in ("-c", f"{e['function']}={e['input']}")])  # fmt: skip
    assert _inputs(again) == original
    # the typed JSON form --json prints, as a --calls file
    lines = tmp / "calls.jsonl"
    lines.write_text("".join(
        json.dumps({"export": e["function"], "value": e["input_value"]}) + "\n" for e in shown
    ))  # fmt: skip
    exact = tmp / "exact.db"
    _record(cli, guest, host, exact, "--calls", lines)
    assert _inputs(exact) == original


class TestRoundTrip:
    """record → show → record again: identical input bytes."""

    @pytest.mark.parametrize("name", sorted(CASES))
    def test_example_guest(self, cli: Invoke, tmp_path: Path, name: str) -> None:
        guest, host, calls = CASES[name]
        _round_trip(cli, GUESTS / f"{guest}.wasm", host, calls, tmp_path)

    def test_packr_sexpr_package(self, cli: Invoke, tmp_path: Path) -> None:
        guest = tmp_path / "sexpr_pkg.wat"
        guest.write_text(packr_sexpr_wat())
        calls = [
            'evaluate=cons((sym("+"), cons((num(1), cons((num(2), cons((num(3), nil))))))))',
            'evaluate=expr::cons((expr::sym("car"), expr::cons((float(1.5), nil))))',
            "evaluate=bool(false)",
            'evaluate=err("x")',
        ]
        _round_trip(cli, guest, False, calls, tmp_path)
        value = decode(_inputs(tmp_path / "first.db")[0])
        assert isinstance(value, Variant)
        assert (value.case_name, value.tag) == ("cons", 6)
        head, tail = value.payload[0].items  # type: ignore[attr-defined]
        assert (head.case_name, head.tag) == ("sym", 0)
        assert (tail.payload[0].items[0].case_name, tail.payload[0].items[0].tag) == ("num", 1)
        assert str(value).startswith('expr::cons((expr::sym("+"), expr::cons((expr::num(1s64)')

    def test_pretty_text_of_show_seq(self, cli: Invoke, tmp_path: Path) -> None:
        """The indented value ``show FILE SEQ`` prints reads back too."""
        db = tmp_path / "kv.db"
        _record(cli, GUESTS / "kv_actor.wasm", True, db, "-c", 'init={namespace: "t"}',
                "-c", 'handle=put("a-rather-long-key-to-force-lines", "and a long value too")')  # fmt: skip
        text = cli("show", db, "2").out
        block = text.split("input (", 1)[1].split("\n", 1)[1].split("output", 1)[0]
        again = tmp_path / "again.db"
        _record(cli, GUESTS / "kv_actor.wasm", True, again, "-c", 'init={namespace: "t"}',
                "-c", f"handle={block}")  # fmt: skip
        assert _inputs(again) == _inputs(db)

    def test_json_keeps_what_text_cannot(self, cli: Invoke, tmp_path: Path) -> None:
        """Tags under a ``value`` parameter, NaN payloads, variant element types: the
        typed JSON form carries them through show --json into --calls."""
        values = [
            {"variant": {"type_name": "t", "case_name": "c", "tag": 3, "payload": [{"s64": 1}]}},
            {"f64": "7ff8000000000001"},
            {"list": {"elem_type": {"variant": "v"}, "items": []}},
        ]
        lines = tmp_path / "calls.jsonl"
        lines.write_text("".join(json.dumps({"export": "echo", "value": v}) + "\n" for v in values))
        first = tmp_path / "first.db"
        _record(cli, GUESTS / "echo.wasm", False, first, "--calls", lines)
        shown = _exports(cli, first)
        assert [e["input_value"] for e in shown] == values
        assert EncodedValue(_inputs(first)[0]).value.tag == 3  # type: ignore[attr-defined]


class TestDeclaredTypes:
    """--call values take the declaration's tags and widths; errors name field and type."""

    def test_case_names_get_their_tags(self, cli: Invoke, tmp_path: Path) -> None:
        db = tmp_path / "kv.db"
        run = cli("record", GUESTS / "kv_actor.wasm", "--host", "demo", "-c", 'init={namespace: "n"}',
                  "-c", 'handle=put("k", "v")', "-c", "handle=count", "-o", db, "--json")  # fmt: skip
        assert run.code == 0, run.err
        calls = json.loads(run.out)["calls"]
        assert calls[1]["input_value"]["variant"]["tag"] == 1
        assert calls[1]["output"] == "response::ok"  # the guest understood put
        assert calls[2]["output"] == "response::count(2u64)"

    def test_numbers_take_the_declared_width(self, cli: Invoke, tmp_path: Path) -> None:
        run = cli("record", GUESTS / "bench.wasm", "--host", "demo", "-c", "calls=10", "-c",
                  "calls=2s8", "-o", tmp_path / "b.db", "--json")  # fmt: skip
        assert run.code == 0, run.err
        assert [c["input"] for c in json.loads(run.out)["calls"]] == ["10s64", "2s64"]

    @pytest.mark.parametrize(
        ("guest", "call", "message"),
        [
            ("sexpr", 'eval=lst([sym("+"), num("x")])',
             'bad value text (declared eval(expr: sexpr) -> sexpr): expr.lst[1].num: expected '
             's64, got "x" (at position 19)'),
            ("kv_actor", 'init={name: "n"}',
             "config.name: record config has no field 'name' (its fields: namespace)"),
            ("kv_actor", "init={}", "config: record config is missing field(s) namespace (string)"),
            ("kv_actor", 'handle=gett("k")',
             "request: variant request has no case 'gett' (its cases: get, put, delete, count)"),
            ("kv_actor", 'handle=count("x")', "request.count: case count of request takes no payload"),
            ("bench", "calls=1.5", "n: expected s64, got 1.5"),
            ("bench", "calls=99999999999999999999",
             "n: 99999999999999999999 does not fit s64 (-9223372036854775808 to 9223372036854775807)"),
        ],
    )  # fmt: skip
    def test_errors_name_the_field_and_type(
        self, cli: Invoke, tmp_path: Path, guest: str, call: str, message: str
    ) -> None:
        run = cli("record", GUESTS / f"{guest}.wasm", "--host", "demo", "-c", call, "-o",
                  tmp_path / "t.db")  # fmt: skip
        assert run.code == 2
        assert message in run.err, run.err
        assert run.err.startswith(f"packr-replay: error: --call {call!r}: bad value text")
        assert not (tmp_path / "t.db").exists()

    def test_calls_file_errors_say_where(self, cli: Invoke, tmp_path: Path) -> None:
        lines = tmp_path / "c.jsonl"
        lines.write_text('{"export": "echo", "value": {"s64": "one"}}\n')
        run = cli("record", GUESTS / "echo.wasm", "--calls", lines, "-o", tmp_path / "t.db")
        assert run.code == 2
        assert (
            f"--calls {lines}:1: bad typed JSON value: (root): s64 takes a JSON integer" in run.err
        )


class TestNotAPackrGuest:
    """A module without __pack_types is recorded with a warning; its text is untyped."""

    def test_warning(self, cli: Invoke, tmp_path: Path) -> None:
        wat = tmp_path / "plain.wat"
        wat.write_text(
            '(module (memory (export "memory") 1) (func (export "run") (param i32 i32 i32 i32)'
            " (result i32) (i32.store (local.get 2) (local.get 0)) (i32.store (local.get 3)"
            " (local.get 1)) (i32.const 0)))"
        )
        run = cli("record", wat, "-c", "run=1s32", "-o", tmp_path / "t.db")
        assert run.code == 0
        assert run.err == (
            "warning: plain has no __pack_types: it does not look like a packr guest "
            "(values are read as plain packr text)\n"
        )

    def test_no_warning_for_packr_guests(self, cli: Invoke, tmp_path: Path) -> None:
        run = cli("record", GUESTS / "echo.wasm", "-c", "echo=1s32", "-o", tmp_path / "t.db")
        assert (run.code, run.err) == (0, "")


class TestUndeclaredVariants:
    """A variant in a part declared ``value`` whose type the guest does not declare: packr
    text gives it tag 0, and record says so, pointing at the typed JSON form."""

    def test_text_warns_and_json_keeps_the_tag(self, cli: Invoke, tmp_path: Path) -> None:
        guest = tmp_path / "sexpr_as_built.wat"
        guest.write_text(packr_sexpr_wat(UNDECLARED_SEXPR))
        run = cli("record", guest, "-c", "evaluate=expr::num(5s64)", "-o", tmp_path / "t.db")
        assert run.code == 0, run.err
        assert "warning: --call 'evaluate=expr::num(5s64)': expr::num is no variant" in run.err
        assert "typed JSON form with --calls" in run.err
        value = decode(_inputs(tmp_path / "t.db")[0])
        assert isinstance(value, Variant)
        assert value.tag == 0
        line = {"export": "evaluate", "value": {"variant": {
            "type_name": "expr", "case_name": "num", "tag": 1, "payload": [{"s64": 5}]}}}  # fmt: skip
        calls = tmp_path / "calls.jsonl"
        calls.write_text(json.dumps(line) + "\n")
        run = cli("record", guest, "--calls", calls, "-o", tmp_path / "j.db")
        assert (run.code, "warning" in run.err) == (0, False)
        value = decode(_inputs(tmp_path / "j.db")[0])
        assert isinstance(value, Variant)
        assert (value.case_name, value.tag) == ("num", 1)

    def test_declared_variants_do_not_warn(self, cli: Invoke, tmp_path: Path) -> None:
        guest = tmp_path / "sexpr_pkg.wat"
        guest.write_text(packr_sexpr_wat())
        run = cli("record", guest, "-c", 'evaluate=sym("x")', "-o", tmp_path / "t.db")
        assert (run.code, "warning" in run.err) == (0, False), run.err
