"""Fixtures for replay tests: example guests, a deterministic demo host, WAT callers."""

from __future__ import annotations

import importlib.resources
import itertools
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from packr_replay.abi import Value, encode
from packr_replay.runtime import Module, Runtime
from packr_replay.runtime.demo import DemoHost

#: Small enough that spinning guests stop in milliseconds.
TEST_FUEL = 50_000_000


@pytest.fixture(scope="session")
def runtime() -> Runtime:
    return Runtime(fuel=TEST_FUEL)


@pytest.fixture(scope="session")
def guest(runtime: Runtime) -> Callable[[str], Module]:
    """Load a bundled example guest by name (compiled once per session)."""
    cache: dict[str, Module] = {}

    def load(name: str) -> Module:
        if name not in cache:
            wasm = (importlib.resources.files("packr_replay.examples") / f"{name}.wasm").read_bytes()
            cache[name] = runtime.load_module(wasm, name=name)
        return cache[name]

    return load


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "traces.db"


def demo_host(seed: int = 0) -> DemoHost:
    """A DemoHost whose clock and randomness differ per ``seed`` but are reproducible."""
    clock = itertools.count(1_700_000_000_000_000_000 + seed * 1_000_000_007, 1000)
    rolls = itertools.count(seed)
    return DemoHost(
        environ={"USER": f"user{seed}"},
        clock=lambda: next(clock),
        randbelow=lambda n: next(rolls) % n,
    )


def caller_wat(calls: Sequence[tuple[str, Value]], *, extra_export: bool = False) -> str:
    """A guest whose export ``run`` makes the given typed import calls to interface
    ``t:host/f`` in order, then echoes its input. Every reply must be non-negative."""
    names = sorted({name for name, _ in calls})
    imports = "\n".join(
        f'  (import "t:host/f" "{n}" (func ${n} (param i32 i32 i32 i32) (result i32)))' for n in names
    )
    data, body = [], []
    offset = 1024
    for name, value in calls:
        blob = encode(value)
        escaped = "".join(f"\\{b:02x}" for b in blob)
        data.append(f'  (data (i32.const {offset}) "{escaped}")')
        body.append(
            f"    (if (i32.lt_s (call ${name} (i32.const {offset}) (i32.const {len(blob)}) "
            "(i32.const 200) (i32.const 300)) (i32.const 0)) (then unreachable))"
        )
        offset += len(blob) + 16
    extra = '  (func (export "unused") (result i32) (i32.const 7))' if extra_export else ""
    return f"""(module
{imports}
  (memory (export "memory") 2)
{chr(10).join(data)}
  (func (export "run") (param $p i32) (param $l i32) (param $opp i32) (param $olp i32) (result i32)
{chr(10).join(body)}
    (i32.store (local.get $opp) (local.get $p))
    (i32.store (local.get $olp) (local.get $l))
    (i32.const 0))
{extra}
)"""


@pytest.fixture(autouse=True)
def _both_import_paths(import_path: str) -> str:
    """Every test here runs on the C trampoline and on the Python path."""
    return import_path
