"""DemoHost against the example guests in ``examples/guests/`` (skipped when the built
modules are absent)."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest

from packr_replay.abi import (
    F64,
    S64,
    U64,
    Bool,
    List,
    Option,
    Record,
    String,
    Tuple,
    Value,
    ValueType,
    Variant,
)
from packr_replay.errors import (
    GuestError,
    GuestMemoryError,
    GuestTimeout,
    GuestTrap,
    HostFunctionError,
    InvalidGuestOutput,
)
from packr_replay.runtime import Instance, Module, ReplyMode
from packr_replay.runtime.demo import EXAMPLE_GUESTS, SEXPR, DemoHost, example_guest, sexpr

from . import guests

Load = Callable[[str], Module]

NAMES = list(EXAMPLE_GUESTS)


def fixed_host(**kwargs: object) -> DemoHost:
    """A DemoHost with deterministic time, randomness and environment."""
    return DemoHost(
        clock=lambda: 1_700_000_000_000_000_000,
        randbelow=lambda bound: 7 % bound,
        environ={"USER": "ada"},
        **kwargs,  # type: ignore[arg-type]
    )


def sym(name: str) -> Variant:
    return sexpr("sym", String(name))


def num(n: int) -> Variant:
    return sexpr("num", S64(n))


def lst(*items: Value) -> Variant:
    return sexpr("lst", List(SEXPR, list(items)))


class TestExampleGuest:
    """Finding the built example guests."""

    def test_unknown_name(self) -> None:
        with pytest.raises(ValueError, match="no example guest 'nope'"):
            example_guest("nope")

    def test_paths(self, example: Callable[[str], Module]) -> None:
        example("echo")  # skips when not built
        assert example_guest("echo").name == "echo.wasm"


class TestHashes:
    """Every interface DemoHost implements hashes as the guests declare it."""

    @pytest.mark.parametrize("name", NAMES)
    def test_declared_hashes_match(self, example: Callable[[str], Module], name: str) -> None:
        module = example(name)
        checked = DemoHost().check(module)
        assert all(checked.values()), checked
        imported = {i.module for i in module.imports if i.kind == "func"}
        hosted = {i.name for i in DemoHost().interfaces}
        assert set(checked) == imported & hosted

    @pytest.mark.parametrize("name", NAMES)
    def test_links(self, example: Callable[[str], Module], name: str) -> None:
        example(name).instantiate(DemoHost())


class TestClockActor:
    """demo:host log/clock/random/env: the nondeterministic actor."""

    def test_report(self, example: Callable[[str], Module]) -> None:
        host = fixed_host()
        out = example("clock_actor").instantiate(host).call_with_value("run", String("bob"))
        assert out == Record(
            "report",
            [
                ("greeting", String("Hello, bob")),
                ("time", U64(1_700_000_000_000_000_000)),
                ("roll", U64(7)),
                ("user", Option(ValueType.STRING, String("ada"))),
                ("lucky", Bool(True)),
            ],
        )
        assert host.logs == ["clock-actor: run bob", "clock-actor: rolled 7"]
        assert host.calls["demo:host/log.write"] == 2
        assert host.calls["demo:host/clock.now"] == 1

    def test_default_name_and_missing_env(self, example: Callable[[str], Module]) -> None:
        host = DemoHost(environ={}, randbelow=lambda bound: 3)
        out = example("clock_actor").instantiate(host).call_with_value("run", Tuple())
        assert isinstance(out, Record)
        fields = dict(out.fields)
        assert fields["greeting"] == String("Hello, world")
        assert fields["user"] == Option(ValueType.STRING)
        assert fields["lucky"] == Bool(False)

    def test_real_sources(
        self, example: Callable[[str], Module], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("USER", "grace")
        inst = example("clock_actor").instantiate(DemoHost())
        rolls = set()
        for _ in range(30):
            out = inst.call_with_value("run", String("x"))
            assert isinstance(out, Record)
            fields = dict(out.fields)
            roll = fields["roll"]
            assert isinstance(roll, U64)
            assert 0 <= roll.value < 10
            rolls.add(roll.value)
            assert fields["user"] == Option(ValueType.STRING, String("grace"))
            time_ns = fields["time"]
            assert isinstance(time_ns, U64)
            assert time_ns.value > 1_600_000_000 * 10**9
        assert len(rolls) > 1  # OS randomness

    def test_print_logs(self, example: Callable[[str], Module]) -> None:
        stream = io.StringIO()
        host = fixed_host(print_logs=True, stream=stream)
        example("clock_actor").instantiate(host).call_with_value("run", String("eve"))
        assert stream.getvalue().splitlines() == [
            "[guest] clock-actor: run eve",
            "[guest] clock-actor: rolled 7",
        ]

    def test_random_bound_zero_is_a_handler_error(self, load: Load) -> None:
        errors: list[HostFunctionError] = []
        inst = load(guests.typed_guest(("demo:host/random", "next"))).instantiate(
            DemoHost(), on_error=errors.append
        )
        assert inst.call_with_value("next", U64(1)) == U64(0)
        with pytest.raises(GuestError):
            inst.call_with_value("next", U64(0))
        assert [e.kind for e in errors] == ["Handler"]

    def test_bad_input_is_export_error(self, example: Callable[[str], Module]) -> None:
        with pytest.raises(GuestError, match="expected a string name"):
            example("clock_actor").instantiate(fixed_host()).call_with_value("run", S64(1))


class TestSexpr:
    """sexpr:host/env.lookup: the symbol table."""

    @pytest.fixture
    def sx(self, example: Callable[[str], Module]) -> Instance:
        return example("sexpr").instantiate(DemoHost())

    def test_symbols(self, sx: Instance) -> None:
        assert sx.call_with_value("eval", lst(sym("+"), sym("answer"), num(1))) == num(43)
        out = sx.call_with_value("eval", lst(sym("*"), sym("pi"), num(2)))
        assert out == sexpr("float", F64(6.283185307179586))
        assert sx.call_with_value("eval", sym("greeting")) == sexpr("str", String("hello"))

    def test_unbound(self, sx: Instance) -> None:
        assert sx.call_with_value("eval", sym("nope")) == sexpr(
            "err", String("unbound symbol: nope")
        )

    def test_custom_symbols(self, example: Callable[[str], Module]) -> None:
        inst = example("sexpr").instantiate(DemoHost(symbols={"x": num(5)}))
        assert inst.call_with_value("eval", lst(sym("*"), sym("x"), sym("x"))) == num(25)
        assert inst.call_with_value("eval", sym("pi")) == sexpr("err", String("unbound symbol: pi"))

    def test_spec_examples(self, sx: Instance) -> None:
        expr = lst(sym("*"), lst(sym("+"), num(2), num(3)), lst(sym("-"), num(10), num(4)))
        assert sx.call_with_value("eval", expr) == num(30)
        assert sx.call_with_value("eval", lst(sym("<"), num(5), num(10))) == sexpr(
            "bool", Bool(True)
        )


class TestKvActor:
    """kv:store/kv over an in-memory dict."""

    @staticmethod
    def request(case: str, tag: int, *payload: str) -> Variant:
        return Variant("request", case, tag, [String(p) for p in payload])

    def test_session(self, example: Callable[[str], Module]) -> None:
        host = DemoHost(kv={"other/k": "untouched"})
        inst = example("kv_actor").instantiate(host)
        assert (
            inst.call_with_value("init", Record("config", [("namespace", String("ns"))])) == Tuple()
        )
        put = inst.call_with_value("handle", self.request("put", 1, "k", "v"))
        assert put == Variant("response", "ok", 1)
        assert host.kv == {"other/k": "untouched", "ns/k": "v"}
        got = inst.call_with_value("handle", self.request("get", 0, "k"))
        assert got == Variant("response", "value", 0, [Option(ValueType.STRING, String("v"))])
        assert inst.call_with_value("handle", self.request("delete", 2, "k")) == Variant(
            "response", "ok", 1
        )
        assert inst.call_with_value("handle", self.request("delete", 2, "k")) == Variant(
            "response", "error", 3, [String("not found: k")]
        )
        assert inst.call_with_value("handle", Variant("request", "count", 3)) == Variant(
            "response", "count", 2, [U64(5)]
        )
        assert host.kv == {"other/k": "untouched"}


class TestHostActor:
    """The fixed-base guest: env.memory, pack:alloc, log and math.double."""

    @pytest.mark.parametrize("reply", [ReplyMode.SCRATCH, ReplyMode.GUEST_ALLOC])
    def test_process(self, example: Callable[[str], Module], reply: ReplyMode) -> None:
        host = DemoHost()
        inst = example("host_actor").instantiate(host, reply=reply)
        assert inst.call_with_value("process", S64(5)) == S64(11)
        assert inst.call_with_value("process", Tuple(S64(20))) == S64(41)
        assert inst.call_with_value("process", String("pass")) == String("pass")
        assert host.logs == ["host-actor: processing"] * 3
        assert host.calls["math.double"] == 2

    def test_metadata(self, example: Callable[[str], Module]) -> None:
        module = example("host_actor")
        inst = module.instantiate(DemoHost())
        assert module.types() == inst.types()
        assert [str(f) for f in module.types().imports] == [
            "theater:simple/runtime.log(msg: string)",
            "math.double(n: s64) -> s64",
        ]


class TestBench:
    """bench:host/math.inc (typed) and bench:host/raw.noop (raw)."""

    def test_calls(self, example: Callable[[str], Module]) -> None:
        inst = example("bench").instantiate(DemoHost())
        assert inst.call_with_value("calls", S64(100)) == S64(5050)
        assert inst.call_with_value("raw_calls", S64(100)) == S64(4950)
        assert inst.call_with_value("nothing", S64(0)) == Tuple()


HOSTILE = {
    "trap": (GuestTrap, "unreachable"),
    "spin": (GuestTimeout, "fuel"),
    "fail": (GuestError, "something went wrong"),
    "garbage_out": (InvalidGuestOutput, "Invalid magic"),
    "bad_out_ptr": (GuestMemoryError, "outside guest memory"),
    "huge_out_len": (GuestMemoryError, "buffer limit"),
    "import_garbage": (GuestTimeout, "import_garbage"),
    "import_oob": (GuestTimeout, "import_oob"),
    "import_bad_slots": (GuestTimeout, "import_bad_slots"),
    "recurse": (GuestTrap, "out of bounds"),
}

HOSTILE_IMPORT_ERRORS = {
    "import_garbage": "Decode",
    "import_oob": "Decode",
    "import_bad_slots": "MemoryWrite",
}


class TestHostile:
    """Every misbehaving export ends in a typed error; the host survives."""

    @pytest.mark.parametrize("export", list(HOSTILE))
    def test_typed_error(self, example: Callable[[str], Module], export: str) -> None:
        errors: list[HostFunctionError] = []
        inst = example("hostile").instantiate(DemoHost(), on_error=errors.append)
        error, text = HOSTILE[export]
        with pytest.raises(error, match=text) as info:
            inst.call_with_value(export, S64(1))
        kind = HOSTILE_IMPORT_ERRORS.get(export)
        assert [e.kind for e in errors] == ([kind] if kind else [])
        if kind:
            # the spin that follows a failed import names that failure as its cause
            assert info.value.__cause__ is errors[0]
        if export != "recurse":
            # still usable afterwards (a trap in the middle of the shadow stack leaves
            # the guest's stack pointer wherever it was: that instance is done for)
            assert inst.call_with_value("import_echo", String("ok")) == String("ok")

    def test_grow_until_limit(self, example: Callable[[str], Module]) -> None:
        inst = example("hostile").instantiate(DemoHost(), memory_limit=64 * 1024 * 1024)
        with pytest.raises(GuestError, match=r"memory\.grow failed"):
            inst.call_with_value("grow", S64(1))
        assert inst.memory.size <= 64 * 1024 * 1024

    @pytest.mark.parametrize("reply", [ReplyMode.SCRATCH, ReplyMode.GUEST_ALLOC])
    def test_import_echo(self, example: Callable[[str], Module], reply: ReplyMode) -> None:
        inst = example("hostile").instantiate(DemoHost(), reply=reply)
        value = List(ValueType.STRING, [String("a"), String("b")])
        assert inst.call_with_value("import_echo", value) == value


class TestEchoGuest:
    """The echo package: metadata (spec §8 type_metadata) and transform."""

    def test_metadata(self, example: Callable[[str], Module]) -> None:
        module = example("echo")
        static, dynamic = module.types(), module.instantiate().types()
        assert static == dynamic
        assert static.imports == ()
        assert [str(f) for f in static.exports] == [
            "echo(input: value) -> value",
            "transform(input: value) -> value",
        ]

    def test_transform(self, example: Callable[[str], Module]) -> None:
        inst = example("echo").instantiate()
        assert inst.call_with_value("transform", S64(21)) == S64(42)
        nested = List(ValueType.STRING, [S64(1), Variant("v", "c", 0, [S64(2)]), String("s")])
        assert inst.call_with_value("transform", nested) == List(
            ValueType.STRING, [S64(2), Variant("v", "c", 0, [S64(4)]), String("s")]
        )
        assert inst.call_with_value("echo", nested) == nested
