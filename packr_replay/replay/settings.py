"""The run settings a trace was recorded with, read back from its metadata.

A replay must run the guest under the same budget, memory cap and reply convention as
the recording, or it reproduces a different run. The metadata comes from a file that
may have been edited or forged, so every value is checked here, once, and a bad one is
a :class:`TraceFormatError` naming the trace and the key, never a ``TypeError`` from
deep inside wasmtime.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..errors import TraceFormatError
from ..runtime import DEFAULT_FUEL, ReplyMode, Runtime
from ..runtime.engine import ON_HOST_ERROR

__all__ = ["DEFAULT_SCRATCH_CAPACITY", "LEGACY_SCRATCH_CAPACITY", "RunSettings", "settings_meta"]

DEFAULT_SCRATCH_CAPACITY: int | None = None
"""No cap on a host's scratch reply, as packr 0.7.0."""
LEGACY_SCRATCH_CAPACITY = 32768
"""The cap a trace whose metadata does not say was recorded under (the old default)."""
_UNSET: Any = object()


@dataclass(frozen=True)
class RunSettings:
    """How the recorded run was configured (``None`` limits: none)."""

    reply: ReplyMode = ReplyMode.SCRATCH
    fuel: int | None = DEFAULT_FUEL
    timeout: float | None = None
    memory_limit: int | None = None
    scratch_capacity: int | None = LEGACY_SCRATCH_CAPACITY
    redacted: tuple[str, ...] = ()
    on_host_error: str = "status"  # what a failed typed import did: -1, or a trap

    @classmethod
    def from_meta(
        cls, meta: dict[str, Any] | None, trace: str = "trace", base: RunSettings | None = None
    ) -> RunSettings:
        """Read and check the settings; a key a trace lacks (an older recorder) keeps
        ``base``'s value (default: the defaults above), except the scratch cap, which
        older recorders always had: 32 KiB."""
        meta = meta or {}
        base = base or cls()
        where = f"{trace}: metadata"
        reply = meta.get("reply", _UNSET)
        if reply is _UNSET:
            reply_mode = base.reply
        elif isinstance(reply, str) and reply in ReplyMode._value2member_map_:
            reply_mode = ReplyMode(reply)
        else:
            modes = ", ".join(repr(str(m)) for m in ReplyMode)
            raise TraceFormatError(f"{where} 'reply' is {reply!r}; expected one of {modes}")
        redacted = meta.get("redacted") or []
        if not isinstance(redacted, list) or not all(isinstance(r, str) for r in redacted):
            raise TraceFormatError(f"{where} 'redacted' is {redacted!r}; expected a list of names")
        fuel = _limit(meta, "fuel", base.fuel, where)
        on_host_error = meta.get("on_host_error", base.on_host_error)
        if on_host_error not in ON_HOST_ERROR:
            raise TraceFormatError(
                f"{where} 'on_host_error' is {on_host_error!r}; expected 'status' or 'trap'"
            )
        return cls(
            reply=reply_mode,
            fuel=fuel or None,  # 0 is "no limit", as for the runtime and --fuel
            timeout=_seconds(meta, "timeout", base.timeout, where),
            memory_limit=_limit(meta, "memory_limit", base.memory_limit, where),
            # (a trace that does not say was recorded when 32 KiB was the default)
            scratch_capacity=_limit(meta, "scratch_capacity", LEGACY_SCRATCH_CAPACITY, where),
            redacted=tuple(redacted),
            on_host_error=str(on_host_error),
        )

    @classmethod
    def of_runtime(cls, runtime: Runtime) -> RunSettings:
        """The defaults ``runtime`` gives its instances."""
        return cls(
            fuel=runtime.fuel,
            timeout=runtime.timeout,
            memory_limit=runtime.memory_limit,
            scratch_capacity=runtime.scratch_capacity,
            on_host_error=runtime.on_host_error,
        )

    def runtime(self, *, debug_info: bool = False, multi_memory: bool = False) -> Runtime:
        """A runtime whose defaults are these settings."""
        return Runtime(
            fuel=self.fuel,
            timeout=self.timeout,
            memory_limit=self.memory_limit,
            scratch_capacity=self.scratch_capacity,
            debug_info=debug_info,
            multi_memory=multi_memory,
            on_host_error=self.on_host_error,
        )


def settings_meta(
    runtime: Runtime, reply: ReplyMode | str, raw_imports: str = "recorded"
) -> dict[str, Any]:
    """The metadata a recorder writes so that :meth:`RunSettings.from_meta` reads it back.

    Limits are written even when ``None`` (unlimited), so a replay does not fall back to
    a default the recording did not have.
    """
    return {
        "fuel": runtime.fuel,
        "timeout": runtime.timeout,
        "memory_limit": runtime.memory_limit,
        "reply": str(ReplyMode(reply)),
        "scratch_capacity": runtime.scratch_capacity,
        "on_host_error": runtime.on_host_error,
        # "recorded": raw imports (func_raw) are raw events, which a replay serves;
        # "host" (or no key, an older recorder): a replay needs a host for them again.
        "raw_imports": raw_imports,
    }


def _limit(meta: dict[str, Any], key: str, default: int | None, where: str) -> int | None:
    value = meta.get(key, _UNSET)
    if value is _UNSET:
        return default
    if value is None or (type(value) is int and value >= 0):
        return value
    raise TraceFormatError(f"{where} {key!r} is {value!r}; expected a non-negative integer or nil")


def _seconds(meta: dict[str, Any], key: str, default: float | None, where: str) -> float | None:
    value = meta.get(key, _UNSET)
    if value is _UNSET:
        return default
    if value is None:
        return None
    if type(value) in (int, float) and math.isfinite(value) and value > 0:
        return float(value)
    raise TraceFormatError(f"{where} {key!r} is {value!r}; expected a positive number of seconds or nil")
