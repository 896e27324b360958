"""Loading the package's optional C accelerators, one rule for all of them.

``abi._speedups`` (the CGRF codec) and ``storage._speedups`` (the segment record codec)
are optional extensions: each is used only when it imports, carries the contract
number its Python module expects (a stale editable build is refused), and takes its
configuration. ``PACKR_REPLAY_PURE_PYTHON=1`` forces pure Python everywhere; the
extensions are then not imported.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from types import ModuleType
from typing import Any

__all__ = ["PURE_PYTHON", "bind", "import_accelerator"]

PURE_PYTHON: bool = os.environ.get("PACKR_REPLAY_PURE_PYTHON", "") not in ("", "0")


def import_accelerator(package: str, contract: int) -> tuple[ModuleType | None, str | None]:
    """Import ``package._speedups``: ``(module, None)`` or ``(None, why not)``."""
    if PURE_PYTHON:
        return None, "PACKR_REPLAY_PURE_PYTHON is set"
    try:
        module = importlib.import_module(f"{package}._speedups")
    except ImportError as exc:
        return None, f"the C extension is not built or cannot load ({exc})"
    if getattr(module, "CONTRACT", None) != contract:
        return None, "the C extension is stale (built from another _speedups.c): reinstall"
    return module, None


def bind(
    speedups: ModuleType | None,
    module_name: str,
    python: dict[str, Callable[..., Any]],
    config: dict[str, Any] | None = None,
) -> dict[str, Callable[..., Any]]:
    """The implementations to bind in ``module_name``: the C ones when ``speedups`` is
    loaded, else ``python``'s.

    Each Python implementation is handed to the extension as ``py_<name>`` (what the C
    function falls back to), with ``config``. The C functions report ``module_name``
    as their module, so pickles and reprs name the public function.
    """
    if speedups is None:
        return dict(python)
    speedups.configure({**(config or {}), **{f"py_{name}": fn for name, fn in python.items()}})
    chosen: dict[str, Callable[..., Any]] = {}
    for name in python:
        fn = getattr(speedups, name)
        fn.__module__ = module_name
        chosen[name] = fn
    return chosen
