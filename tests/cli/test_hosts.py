"""Resolving ``--host`` specs: demo, files, modules, and what a spec may name."""

from __future__ import annotations

from pathlib import Path

import pytest

from packr_replay.cli.errors import CliError
from packr_replay.cli.hosts import check_imports, resolve_host, resolve_hosts
from packr_replay.errors import LinkError
from packr_replay.runtime import DemoHost, HostLinkerBuilder, Runtime
from packr_replay.runtime.demo import example_guest

HOSTS = """
from packr_replay.runtime import DemoHost


def register(builder):
    builder.interface("t:host/f").func_typed("a", lambda ctx, v: v)


def make():
    return DemoHost()


def make_many():
    return [DemoHost(), register]


class Provider:
    def register(self, builder):
        builder.interface("t:host/f").func_typed("b", lambda ctx, v: v)


instance = Provider()
nothing = 42


def returns_provider(builder):
    return Provider()
"""


@pytest.fixture
def hosts_py(tmp_path: Path) -> Path:
    path = tmp_path / "hostdefs.py"
    path.write_text(HOSTS)
    return path


def _functions(spec: str) -> set[tuple[str, str]]:
    return set(HostLinkerBuilder().apply(resolve_host(spec)).functions)


class TestSpecs:
    """Each kind of thing a spec may name."""

    def test_demo(self) -> None:
        (host,) = resolve_host("demo")
        assert isinstance(host, DemoHost)

    def test_register_function(self, hosts_py: Path) -> None:
        assert _functions(f"{hosts_py}:register") == {("t:host/f", "a")}

    def test_provider_object_class_and_factory(self, hosts_py: Path) -> None:
        assert _functions(f"{hosts_py}:instance") == {("t:host/f", "b")}
        assert _functions(f"{hosts_py}:Provider") == {("t:host/f", "b")}
        assert ("demo:host/clock", "now") in _functions(f"{hosts_py}:make")
        many = _functions(f"{hosts_py}:make_many")
        assert ("t:host/f", "a") in many
        assert ("demo:host/clock", "now") in many

    def test_register_function_returning_a_provider(self, hosts_py: Path) -> None:
        assert _functions(f"{hosts_py}:returns_provider") == {("t:host/f", "b")}

    def test_module_spec(self) -> None:
        assert ("math", "double") in _functions("packr_replay.runtime.demo:DemoHost")

    def test_several(self, hosts_py: Path) -> None:
        assert len(resolve_hosts([f"{hosts_py}:register", f"{hosts_py}:instance"])) == 2


class TestBadSpecs:
    """One clear line for each mistake."""

    @pytest.mark.parametrize(
        ("spec", "message"),
        [
            ("nonsense", "expected 'demo', 'path/to/file.py:function'"),
            ("missing.py:register", "missing.py: no such file"),
            ("no_such_module_xyz:register", "cannot import it"),
            ("packr_replay.runtime.demo:nope", "has no attribute 'nope'"),
        ],
    )
    def test_messages(self, spec: str, message: str) -> None:
        with pytest.raises(CliError, match=message):
            resolve_host(spec)

    def test_not_a_host(self, hosts_py: Path) -> None:
        with pytest.raises(CliError, match="int is not a host"):
            resolve_host(f"{hosts_py}:nothing")

    def test_file_that_fails_to_import(self, tmp_path: Path) -> None:
        broken = tmp_path / "broken.py"
        broken.write_text("raise RuntimeError('boom')\n")
        with pytest.raises(CliError, match="importing it failed: RuntimeError: boom"):
            resolve_host(f"{broken}:register")


def test_check_imports_lists_what_is_missing() -> None:
    module = Runtime().load_module(example_guest("clock_actor"))
    check_imports(module, resolve_host("demo"))
    with pytest.raises(LinkError) as caught:
        check_imports(module, [])
    assert [name for _, name, _ in caught.value.missing] == ["write", "now", "next", "get"]
