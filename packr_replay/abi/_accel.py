"""Which CGRF codec runs: the C accelerator (``_speedups``) or pure Python.

Chosen once, at import, as msgpack does: ``encode``, ``decode`` and ``decode_prefix``
are the C functions when the optional extension is built and accepts the value model,
else the Python ones (``py_encode``, ``py_decode``, ``py_decode_prefix``). The C code
handles the valid, ordinary case and hands everything else, every error included, to
the Python implementation, so both give the same results.

``PACKR_REPLAY_PURE_PYTHON=1`` forces pure Python; the extension is then not imported.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

from .._native import PURE_PYTHON, bind, import_accelerator
from .limits import DEFAULT_LIMITS, Limits
from .types import PRIMITIVE_TYPES, ValueType
from .values import _CLASS_BY_KIND, _U8_CACHE

__all__ = ["ACCELERATED", "PURE_PYTHON", "UNAVAILABLE_REASON", "speedups"]

#: The rules of encoder.py/decoder.py that _speedups.c follows, numbered: bump it here and
#: in _speedups.c (``CONTRACT``) together when they change, so a stale build is not used.
CONTRACT = 1


def load() -> tuple[ModuleType | None, str | None]:
    """Import and configure the extension: ``(module, None)`` or ``(None, why not)``."""
    _speedups, reason = import_accelerator(__package__ or "packr_replay.abi", CONTRACT)
    if _speedups is None:
        return None, reason
    try:
        _speedups.configure(
            {
                "classes": dict(_CLASS_BY_KIND),
                "value_type": ValueType,
                "primitive_types": dict(PRIMITIVE_TYPES),
                "unit_type": ValueType.UNIT,
                "u8_cache": _U8_CACHE,
                "limits_type": Limits,
                "default_limits": DEFAULT_LIMITS,
            }
        )
    except (TypeError, KeyError, AttributeError) as exc:
        # The value classes changed shape (no longer plain __slots__ classes): the C
        # code cannot build them safely, so it stays out of the way.
        return None, f"the C extension does not fit the value model ({exc})"
    return _speedups, None


speedups: ModuleType | None
UNAVAILABLE_REASON: str | None
speedups, UNAVAILABLE_REASON = load()

#: True when encode/decode run the C accelerator (with Python as the fallback).
ACCELERATED: bool = speedups is not None


def select(module_name: str, **python: Callable[..., Any]) -> dict[str, Callable[..., Any]]:
    """The implementations to bind in ``module_name``: C ones when accelerated (see
    :func:`packr_replay._native.bind`)."""
    return bind(speedups, module_name, python)
