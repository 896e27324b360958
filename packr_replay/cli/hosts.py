"""``--host SPEC`` on the command line: the library's host specs
(:mod:`packr_replay.hosts`) with their errors as one CLI line, and the check that a
guest's imports are all provided before a trace is started."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from .. import hosts as _hosts
from ..errors import HostSpecError
from .errors import fail

if TYPE_CHECKING:  # the runtime (wasmtime) loads when a host is resolved
    from ..hosts import Host
    from ..runtime import Module

__all__ = ["Host", "check_imports", "resolve_host", "resolve_hosts"]


def resolve_host(spec: str) -> list[Host]:
    """One ``--host`` spec as hosts (see :mod:`packr_replay.hosts`)."""
    try:
        return _hosts.resolve_host(spec)
    except HostSpecError as exc:
        fail(str(exc))


def resolve_hosts(specs: Iterable[str]) -> list[Host]:
    """Every ``--host`` spec, resolved, in order."""
    return [host for spec in specs for host in resolve_host(spec)]


def check_imports(module: Module, hosts: list[Host]) -> None:
    """Refuse a guest whose function imports the hosts do not all provide, before any
    trace is started (instantiation would say the same, but after creating one)."""
    from ..errors import LinkError
    from ..runtime import HostLinkerBuilder

    builder = HostLinkerBuilder().apply(hosts)
    missing = [
        (imp.module, imp.name, imp.signature)
        for imp in module.imports
        if imp.kind == "func"
        and (imp.module, imp.name) not in builder.functions
        and not (imp.module == "pack:alloc" and imp.name in ("alloc", "dealloc"))
    ]
    if missing:
        raise LinkError(missing)
