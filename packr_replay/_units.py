"""Replay caps and sizes as people write them (``--max-memory 1GiB``, ``--max-time
none``): shared by the CLI's and the pytest plugin's cap options and the replay's
messages; imports nothing, so option parsing stays quick."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["human_size", "parse_caps", "parse_size"]

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1000, "kib": 1 << 10, "m": 1 << 20, "mb": 1000**2,
          "mib": 1 << 20, "g": 1 << 30, "gb": 1000**3, "gib": 1 << 30}  # fmt: skip


def parse_size(text: str) -> int:
    """``"1GiB"``, ``"512MiB"``, ``"64M"``, ``"1000000"`` as bytes (``ValueError``)."""
    raw = text.strip().lower().replace(" ", "").replace("_", "")
    number = raw.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = raw[len(number) :]
    if unit not in _UNITS or not number:
        raise ValueError(f"{text!r} is not a size (bytes, or with KiB, MiB, GiB, KB, MB, GB)")
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"{text!r} is not a size (bytes, or with KiB, MiB, GiB, KB, MB, GB)") from None
    if not math.isfinite(value) or int(value * _UNITS[unit]) < 1:
        raise ValueError(f"{text!r} is not a positive size")
    return int(value * _UNITS[unit])


def human_size(n: int) -> str:
    """``1 GiB``, ``1.5 MiB``, ``100 bytes``."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.4g} {unit}"
    return f"{n} bytes"


def _lifted(text: str) -> bool:
    return text.strip().lower() in ("none", "unlimited")


def parse_caps(
    fuel: str | None, time: str | None, memory: str | None, after_end: str | None = None
) -> dict[str, Any]:
    """Cap options as ``ReplayCaps`` keywords (an option not given keeps its default;
    ``none`` lifts the cap); ``ValueError`` naming the option for anything else."""
    caps: dict[str, Any] = {}
    if fuel is not None:
        if _lifted(fuel):
            caps["fuel"] = None
        else:
            try:
                caps["fuel"] = int(fuel.replace("_", ""))
            except ValueError:
                caps["fuel"] = 0
            if caps["fuel"] < 1:
                raise ValueError(f"max-fuel {fuel}: expected a positive number of instructions or 'none'")
    for key, option, text in (("time", "max-time", time), ("after_end", "max-time-after-end", after_end)):
        if text is None:
            continue
        if _lifted(text):
            caps[key] = None
            continue
        try:
            seconds = float(text.strip().rstrip("s"))
        except ValueError:
            seconds = math.nan
        if not math.isfinite(seconds) or seconds <= 0:
            raise ValueError(f"{option} {text}: expected a positive number of seconds or 'none'")
        caps[key] = seconds
    if memory is not None:
        if _lifted(memory):
            caps["memory"] = None
        else:
            try:
                caps["memory"] = parse_size(memory)
            except ValueError as exc:
                raise ValueError(f"max-memory: {exc}") from None
    return caps
