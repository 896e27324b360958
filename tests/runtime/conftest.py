"""Fixtures for the runtime tests: a runtime with a small fuel budget and WAT guests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from packr_replay.errors import HostFunctionError
from packr_replay.runtime import Instance, Module, Runtime
from packr_replay.runtime.demo import example_guest

from . import guests
from .guests import Guest

Load = Callable[[str], Module]

#: Enough for every well-behaved test guest, small enough that a spinning guest stops
#: in milliseconds.
TEST_FUEL = 20_000_000


@pytest.fixture(scope="session")
def runtime() -> Runtime:
    return Runtime(fuel=TEST_FUEL)


@pytest.fixture(scope="session")
def load(runtime: Runtime) -> Callable[[str], Module]:
    """Compile WAT text once per session (compilation dominates test time)."""
    cache: dict[str, Module] = {}

    def load(wat: str) -> Module:
        module = cache.get(wat)
        if module is None:
            module = cache[wat] = runtime.load_module(wat)
        return module

    return load


@pytest.fixture
def echo(load: Callable[[str], Module]) -> Module:
    return load(guests.ECHO)


@pytest.fixture
def errors() -> list[HostFunctionError]:
    """A list that collects what the error handler reports (use ``errors.append``)."""
    return []


@pytest.fixture
def plain(load: Load) -> Instance:
    """Plain (non-packr) exports: add, add64, sum_bytes, reverse, ..."""
    return load(guests.PLAIN).instantiate()


@pytest.fixture
def hostile(load: Load) -> Instance:
    """Exports that spin, trap, or return whatever ptr/len/status the host plants."""
    return load(guests.HOSTILE_EXPORTS).instantiate()


@pytest.fixture
def fixed_base(load: Load) -> Module:
    """A guest shaped like spec §9's fixed-base assets."""
    return load(guests.fixed_base_guest())


@pytest.fixture(scope="session")
def example(runtime: Runtime) -> Callable[[str], Module]:
    """Load a built example guest by name (skips when it is not built)."""
    cache: dict[str, Module] = {}

    def get(name: str) -> Module:
        if name not in cache:
            try:
                path = example_guest(name)
            except FileNotFoundError as exc:
                pytest.skip(str(exc))
            cache[name] = runtime.load_module(path)
        return cache[name]

    return get


@pytest.fixture
def guest(load: Load) -> Guest:
    """A typed_guest with an identity import, recording errors and calls."""
    return Guest(load)


@pytest.fixture(autouse=True)
def _both_import_paths(import_path: str) -> str:
    """Every test here runs on the C trampoline and on the Python path."""
    return import_path
