"""Host specs: naming a host as text, so it can travel on a command line or to a worker
process (``packr-replay play --host``, ``packr-replay check --host``, the corpus workers).

A spec is one of:

* ``demo`` -- the built-in :class:`~packr_replay.runtime.DemoHost` (the example guests'
  host functions);
* ``path/to/file.py:NAME`` -- ``NAME`` from a Python file, loaded as a module of its own;
* ``package.module:NAME`` -- ``NAME`` from an importable module.

``NAME`` may be a function taking the :class:`HostLinkerBuilder` (it registers host
functions; if it returns a provider, that is registered too), a function of no
arguments returning a provider (or a list of them), a ``HostFunctionProvider`` object,
or a provider class (instantiated with no arguments). A spec that names no host is a
:class:`~packr_replay.errors.HostSpecError`.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from .errors import HostSpecError

if TYPE_CHECKING:  # the runtime (wasmtime) loads when a host is resolved
    from .runtime import HostFunctionProvider, HostLinkerBuilder

    #: One resolved host: a function taking the builder, or a provider.
    Host = Callable[[HostLinkerBuilder], Any] | HostFunctionProvider

__all__ = ["Host", "resolve_host", "resolve_hosts"]


def _fail(spec: object, message: str) -> NoReturn:
    raise HostSpecError(str(spec), message)


def _load_file(path: Path) -> Any:
    if not path.is_file():
        _fail(path, "no such file")
    # Named after the file when that name is free, so traces record "myhost:register".
    name = path.stem
    if not name.isidentifier() or name in sys.modules:
        name = f"packr_replay_host_{abs(hash(str(path.resolve()))):x}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        _fail(path, "cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look modules up by name
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        _fail(path, f"importing it failed: {type(exc).__name__}: {exc}")
    return module


def _load_module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        _fail(name, f"cannot import it: {exc}")


def _is_file_spec(target: str) -> bool:
    return target.endswith(".py") or "/" in target or os.sep in target


def _required_params(fn: Any) -> int:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return 1
    return sum(
        1
        for p in sig.parameters.values()
        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    )


def _as_host(obj: Any, spec: str) -> list[Host]:
    """Turn the named object into a host (see the module docstring)."""
    from .runtime import HostFunctionProvider

    if inspect.isclass(obj):
        if not callable(getattr(obj, "register", None)):
            _fail(spec, f"class {obj.__name__} has no register(builder) method")
        try:
            instance = obj()
        except TypeError as exc:
            _fail(spec, f"cannot create {obj.__name__}() with no arguments: {exc}")
        return _as_host(instance, spec)
    if isinstance(obj, HostFunctionProvider):
        return [obj]
    if callable(obj):
        if _required_params(obj) == 0:
            made = obj()
            if isinstance(made, HostFunctionProvider) or callable(made):
                return [made]
            if isinstance(made, list | tuple):
                return [h for item in made for h in _as_host(item, spec)]
            _fail(
                spec,
                f"it returned {type(made).__name__}, not a host (return a "
                "HostFunctionProvider, or take the HostLinkerBuilder as an argument)",
            )

        def register(builder: HostLinkerBuilder) -> None:
            returned = obj(builder)
            if returned is not None and returned is not builder:
                builder.apply(returned)

        register.__qualname__ = getattr(obj, "__qualname__", spec)
        register.__module__ = getattr(obj, "__module__", None) or spec
        return [register]
    _fail(
        spec,
        f"{type(obj).__name__} is not a host (give a function taking the "
        "HostLinkerBuilder, a HostFunctionProvider, or a function returning one)",
    )


def resolve_host(spec: str) -> list[Host]:
    """One host spec as hosts (see the module docstring)."""
    if spec == "demo":
        from .runtime import DemoHost

        return [DemoHost()]
    target, sep, attr = spec.rpartition(":")
    if not sep or not target or not attr:
        _fail(spec, "expected 'demo', 'path/to/file.py:function' or 'package.module:function'")
    module = _load_file(Path(target)) if _is_file_spec(target) else _load_module(target)
    try:
        obj = getattr(module, attr)
    except AttributeError:
        _fail(spec, f"{target} has no attribute {attr!r}")
    return _as_host(obj, spec)


def resolve_hosts(specs: Iterable[str]) -> list[Host]:
    """Every spec, resolved, in order."""
    return [host for spec in specs for host in resolve_host(spec)]
