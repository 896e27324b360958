"""``CompositionBuilder``: packr's composition tests, on the example guests.

packr's ``tests/composition.rs`` composes its ``adder`` (imports ``math.double``) with its
``doubler``; here ``host_actor`` (imports ``math.double``, returns ``2n + 1``) is the
adder and ``echo``'s ``transform`` (doubles every s64) the doubler.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from packr_replay.abi import S64, List, String, Tuple, Value, ValueType, decode, encode
from packr_replay.errors import GuestTimeout, HostFunctionError, MetadataError, PackageNotFound
from packr_replay.runtime import (
    CallInterceptor,
    CompositionBuilder,
    DemoHost,
    ExportCall,
    ImportCall,
    Runtime,
)

GUESTS = Path(__file__).resolve().parents[2] / "examples" / "guests"
ECHO, HOST_ACTOR = GUESTS / "echo.wasm", GUESTS / "host_actor.wasm"


def log_host(builder: CompositionBuilder) -> CompositionBuilder:
    """host_actor's other import, ``theater:simple/runtime.log``, as a typed host function."""
    return builder.add_host_function_typed("theater:simple/runtime", "log", lambda v: Tuple())


def composed() -> CompositionBuilder:
    return log_host(
        CompositionBuilder()
        .add_package("doubler", ECHO)
        .add_package("adder", HOST_ACTOR)
        .wire("adder", "math", "double", "doubler", "transform")
    )


class TestPackrComposition:
    """packr 0.7.0's composition.rs, one test each."""

    def test_composition_doubler_alone(self) -> None:
        comp = CompositionBuilder().add_package("doubler", ECHO).build()
        assert comp.call("doubler", "transform", S64(5)) == S64(10)

    def test_composition_adder_with_doubler(self) -> None:
        assert composed().build().call("adder", "process", S64(5)) == S64(11)

    def test_composition_multiple_calls(self) -> None:
        comp = composed().build()
        for n, expected in [(0, 1), (1, 3), (5, 11), (10, 21), (100, 201)]:
            assert comp.call("adder", "process", S64(n)) == S64(expected)

    def test_composition_list_packages(self) -> None:
        assert composed().build().packages() == ["doubler", "adder"]

    def test_composition_call_both_packages(self) -> None:
        comp = composed().build()
        assert comp.call("doubler", "transform", S64(7)) == S64(14)
        assert comp.call("adder", "process", S64(7)) == S64(15)

    def test_composition_negative_numbers(self) -> None:
        assert composed().build().call("adder", "process", S64(-5)) == S64(-9)

    def test_adder_metadata_with_imports(self) -> None:
        """type_metadata.rs: a package's metadata read through the composition."""
        meta = composed().build().types("adder")
        assert [(f.interface, f.name) for f in meta.imports] == [
            ("theater:simple/runtime", "log"),
            ("math", "double"),
        ]
        assert [f.name for f in meta.exports] == ["process"]
        with pytest.raises(MetadataError) as info:
            composed().build().types("nowhere")
        assert info.value.kind == "NotFound"


class TestHostFunctions:
    """add_host_function (CGRF bytes) and add_host_function_typed (values)."""

    def test_raw_bytes_host_function(self) -> None:
        seen: list[bytes] = []

        def double(data: bytes) -> bytes:
            seen.append(data)
            value = decode(data)
            return encode(S64(2 * value.value))  # type: ignore[attr-defined]

        comp = log_host(
            CompositionBuilder()
            .add_package("adder", HOST_ACTOR)
            .add_host_function("math", "double", double)
        ).build()
        assert comp.call("adder", "process", S64(4)) == S64(9)
        assert seen == [encode(S64(4))]

    def test_any_host_serves_every_package(self) -> None:
        """Beyond packr: a whole host (DemoHost) for every package; a wire wins over
        the host's function of the same name."""
        comp = (
            CompositionBuilder()
            .add_package("doubler", ECHO)
            .add_package("adder", HOST_ACTOR)
            .add_host(DemoHost())
            .build()
        )
        assert comp.call("adder", "process", S64(5)) == S64(11)  # DemoHost's math.double
        wired = (
            CompositionBuilder()
            .add_package("tripler", _tripler())
            .add_package("adder", HOST_ACTOR)
            .add_host(DemoHost())
            .wire("adder", "math", "double", "tripler", "transform")
            .build()
        )
        assert wired.call("adder", "process", S64(5)) == S64(16)

    def test_a_failing_host_function_fails_the_import(self) -> None:
        errors: list[HostFunctionError] = []

        def broken(value: Value) -> Value:
            raise RuntimeError("no doubling today")

        comp = log_host(
            CompositionBuilder(Runtime(fuel=2_000_000))
            .add_package("adder", HOST_ACTOR)
            .add_host_function_typed("math", "double", broken)
        ).build(on_error=errors.append)
        with pytest.raises(GuestTimeout):  # a packr guest spins after a failed import
            comp.call("adder", "process", S64(1))
        assert [(e.function, e.kind) for e in errors] == [("double", "Handler")]
        assert "no doubling today" in errors[0].message


class TestWiring:
    """Wired calls, their failures, and the errors of a wrong composition."""

    def test_a_wired_callee_error_fails_the_callers_import(self) -> None:
        errors: list[HostFunctionError] = []
        comp = log_host(
            CompositionBuilder(Runtime(fuel=2_000_000))
            .add_package("doubler", _tripler(fail=True))
            .add_package("adder", HOST_ACTOR)
            .wire("adder", "math", "double", "doubler", "transform")
        ).build(on_error=errors.append)
        with pytest.raises(GuestTimeout):
            comp.call("adder", "process", S64(1))
        (error,) = errors
        assert (error.interface, error.function) == ("math", "double")
        assert "GuestError" in error.message
        assert "no" in error.message

    def test_unknown_packages_are_refused(self) -> None:
        with pytest.raises(PackageNotFound, match="Package 'nowhere' not found"):
            CompositionBuilder().add_package("a", ECHO).wire("a", "m", "f", "nowhere", "g").build()
        with pytest.raises(PackageNotFound):
            CompositionBuilder().add_package("a", ECHO).build().call("b", "echo", S64(1))
        with pytest.raises(ValueError, match="added twice"):
            CompositionBuilder().add_package("a", ECHO).add_package("a", ECHO)
        with pytest.raises(ValueError, match="wired twice"):
            (
                CompositionBuilder()
                .add_package("a", ECHO)
                .add_package("b", HOST_ACTOR)
                .wire("b", "math", "double", "a", "transform")
                .wire("b", "math", "double", "a", "echo")
                .build()
            )

    def test_each_package_gets_its_interceptor(self) -> None:
        class Log(CallInterceptor):
            def __init__(self, name: str, seen: list[str]) -> None:
                self.name, self.seen = name, seen

            async def import_completed(self, call: ImportCall) -> None:
                self.seen.append(f"{self.name} import {call.interface}.{call.function}")

            async def export_completed(self, call: ExportCall) -> None:
                self.seen.append(f"{self.name} export {call.function}")

        seen: list[str] = []
        comp = composed().build(interceptors=lambda name: Log(name, seen))
        comp.call("adder", "process", S64(2))
        assert seen == [
            "adder import theater:simple/runtime.log",
            "doubler export transform",  # the wired call, as the callee saw it ...
            "adder import math.double",  # ... and as the caller saw it
            "adder export process",
        ]

    def test_values_cross_exactly(self) -> None:
        comp = composed().build()
        value = List(ValueType.STRING, [String("é"), String("")])
        assert comp.call_raw("doubler", "echo", encode(value)).data == encode(value)


def _tripler(*, fail: bool = False) -> str:
    """A package exporting ``transform``: 3n for an s64 (or an export error)."""
    body = (
        """(i32.store (local.get 2) (i32.const 2048)) (i32.store (local.get 3) (i32.const 2))
        (i32.const -1)"""
        if fail
        else """(i64.store (i32.const 4120) (i64.mul (i64.load (i32.add (local.get 0) (i32.const 24))) (i64.const 3)))
        (memory.copy (i32.const 4096) (local.get 0) (i32.const 24))
        (i32.store (local.get 2) (i32.const 4096)) (i32.store (local.get 3) (i32.const 32))
        (i32.const 0)"""
    )
    return f"""(module (memory (export "memory") 1)
      (data (i32.const 2048) "no")
      (func (export "transform") (param i32 i32 i32 i32) (result i32) {body}))"""
