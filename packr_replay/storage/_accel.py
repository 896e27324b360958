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

from collections.abc import Callable
from types import ModuleType
from typing import Any

from .._native import PURE_PYTHON, bind, import_accelerator

__all__ = ["ACCELERATED", "PURE_PYTHON", "UNAVAILABLE_REASON", "select", "speedups"]

#: The rules of chain.py/codec.py that _speedups.c follows, numbered: bump it here and in
#: _speedups.c (``CONTRACT``) together when they change, so a stale build is not used.
CONTRACT = 3

speedups: ModuleType | None
UNAVAILABLE_REASON: str | None
speedups, UNAVAILABLE_REASON = import_accelerator(__package__ or "packr_replay.storage", CONTRACT)

#: True when pack_chain/decode_segment run the C accelerator (Python as the fallback).
ACCELERATED: bool = speedups is not None


def select(
    module_name: str, config: dict[str, Any], **python: Callable[..., Any]
) -> dict[str, Callable[..., Any]]:
    """The implementations to bind in ``module_name``: C ones when accelerated, given
    ``config`` (see :func:`packr_replay._native.bind`)."""
    return bind(speedups, module_name, python, config)
