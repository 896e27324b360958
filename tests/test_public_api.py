"""The curated public API: every ``__all__`` is sorted, complete and importable."""

from __future__ import annotations

import importlib
import re

import pytest

PACKAGES = [
    "packr_replay",
    "packr_replay.abi",
    "packr_replay.runtime",
    "packr_replay.replay",
    "packr_replay.storage",
    "packr_replay.html",
    "packr_replay.errors",
    "packr_replay.api",
]


def _isort_key(name: str) -> tuple[int, list[object]]:
    """isort/ruff order: CONSTANTS, then Classes, then functions; numbers compare as numbers."""
    natural: list[object] = [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]
    bare = name.strip("_")
    if bare.isupper() and len(bare) > 1:
        return (0, natural)
    return (1, natural) if bare[:1].isupper() else (2, natural)


@pytest.mark.parametrize("name", PACKAGES)
class TestAll:
    """Each package's ``__all__``."""

    def test_sorted_and_unique(self, name: str) -> None:
        exported = list(importlib.import_module(name).__all__)
        assert len(exported) == len(set(exported))
        assert exported == sorted(exported, key=_isort_key)

    def test_every_name_exists(self, name: str) -> None:
        module = importlib.import_module(name)
        missing = [n for n in module.__all__ if not hasattr(module, n)]
        assert missing == []


def test_design_names_are_public() -> None:
    """The names design.md promises (tests and users depend on them)."""
    abi, runtime, replay, storage = (
        importlib.import_module(f"packr_replay.{m}") for m in ("abi", "runtime", "replay", "storage")
    )

    for mod, names in (
        (abi, "encode decode parse_value Value ValueType Limits AbiError"),
        (runtime, "Runtime Module Instance HostLinkerBuilder InterfaceBuilder Ctx AsyncCtx "
                  "HostFunctionProvider HostFunctionError CallInterceptor"),
        (replay, "Recorder Replayer RecordMode ReplayDivergence TraceExhausted diff_values diff_traces"),
        (storage, "TraceStore Trace Event"),
    ):
        for n in names.split():
            assert n in mod.__all__, f"{mod.__name__}.{n}"
    import packr_replay

    for n in ("record", "replay", "diff"):
        assert callable(getattr(packr_replay, n))
