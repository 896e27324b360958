"""Fixtures for the runtime tests: a runtime with a small fuel budget and WAT guests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from packr_replay.errors import HostFunctionError
from packr_replay.runtime import Module, Runtime

from . import guests

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
