"""Which segment record codec runs: the C accelerator (``_speedups``) or pure Python.

Chosen once, at import, as the CGRF codec's is (:mod:`packr_replay.abi._accel`):
``chain.pack_chain`` and ``codec.decode_segment`` are the C functions when the
optional extension is built, else the Python ones (``py_pack_chain``,
``py_decode_segment``). The C code packs and decodes the plain, regular case and hands
everything else to the Python implementation, so both give the same bytes, records and
errors.

``PACKR_REPLAY_PURE_PYTHON=1`` forces pure Python; the extension is then not imported.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from types import ModuleType
from typing import Any

__all__ = ["ACCELERATED", "PURE_PYTHON", "UNAVAILABLE_REASON", "select", "speedups"]

PURE_PYTHON: bool = os.environ.get("PACKR_REPLAY_PURE_PYTHON", "") not in ("", "0")

#: The rules of chain.py/codec.py that _speedups.c follows, numbered: bump it here and in
#: _speedups.c (``CONTRACT``) together when they change, so a stale build is not used.
CONTRACT = 2


def load() -> tuple[ModuleType | None, str | None]:
    """Import the extension: ``(module, None)`` or ``(None, why not)``."""
    try:
        module = importlib.import_module(f"{__package__}._speedups")
    except ImportError as exc:
        return None, f"the C extension is not built or cannot load ({exc})"
    if getattr(module, "CONTRACT", None) != CONTRACT:
        return None, "the C extension is stale (built from another _speedups.c): reinstall"
    return module, None


speedups: ModuleType | None
UNAVAILABLE_REASON: str | None
if PURE_PYTHON:
    speedups, UNAVAILABLE_REASON = None, "PACKR_REPLAY_PURE_PYTHON is set"
else:
    speedups, UNAVAILABLE_REASON = load()

#: True when pack_chain/decode_segment run the C accelerator (Python as the fallback).
ACCELERATED: bool = speedups is not None


def select(
    module_name: str, config: dict[str, Any], **python: Callable[..., Any]
) -> dict[str, Callable[..., Any]]:
    """The implementations to bind in ``module_name``: C ones when accelerated.

    ``config`` goes to the extension's ``configure`` with each Python implementation in
    ``python`` added as ``py_<name>`` (what the C function defers to). The C functions
    report ``module_name`` as their module, like the Python ones they stand for.
    """
    if speedups is None:
        return dict(python)
    speedups.configure({**config, **{f"py_{name}": fn for name, fn in python.items()}})
    chosen: dict[str, Callable[..., Any]] = {}
    for name in python:
        fn = getattr(speedups, name)
        fn.__module__ = module_name
        chosen[name] = fn
    return chosen
