"""Matchers: small named predicates deciding whether a live call is a recorded one.

As in vcrpy, each matcher compares one aspect of two calls and lives in a registry, so
replay (``match_on=...``) and trace diff share one vocabulary, and a mismatch report can
say exactly which aspects failed. Register your own with :func:`register_matcher`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..abi import AbiError, EncodedValue

__all__ = [
    "DEFAULT_MATCH_ON",
    "MATCHERS",
    "CallKey",
    "Matcher",
    "failed_matchers",
    "register_matcher",
    "resolve_matchers",
]


@dataclass(frozen=True, slots=True)
class CallKey:
    """The parts of a call that matchers look at."""

    kind: str
    interface: str
    function: str
    input: bytes | None

    @property
    def name(self) -> str:
        return f"{self.interface}.{self.function}" if self.interface else self.function


Matcher = Callable[[CallKey, CallKey], bool]


def _kind(a: CallKey, b: CallKey) -> bool:
    return a.kind == b.kind


def _interface(a: CallKey, b: CallKey) -> bool:
    return a.interface == b.interface


def _function(a: CallKey, b: CallKey) -> bool:
    return a.function == b.function


def _input(a: CallKey, b: CallKey) -> bool:
    """Byte-identical CGRF input: the strict default."""
    return a.input == b.input


def _input_value(a: CallKey, b: CallKey) -> bool:
    """Equal decoded inputs (tolerates non-canonical encodings of the same value)."""
    if a.input == b.input:
        return True
    if a.input is None or b.input is None:
        return False
    try:
        return EncodedValue(a.input) == EncodedValue(b.input)
    except AbiError:
        return False


MATCHERS: dict[str, Matcher] = {
    "kind": _kind,
    "interface": _interface,
    "function": _function,
    "input": _input,
    "input_value": _input_value,
}

#: Strict positional replay: same kind, interface, function and exact input bytes.
DEFAULT_MATCH_ON: tuple[str, ...] = ("kind", "interface", "function", "input")


def register_matcher(name: str, matcher: Matcher) -> None:
    """Add a matcher usable in ``match_on`` by ``name``."""
    if not callable(matcher):
        raise TypeError("a matcher is a callable (recorded: CallKey, actual: CallKey) -> bool")
    MATCHERS[name] = matcher


def resolve_matchers(match_on: Iterable[str | Matcher]) -> list[tuple[str, Matcher]]:
    """Names or callables -> ``(name, matcher)`` pairs, failing early on unknown names."""
    out: list[tuple[str, Matcher]] = []
    for item in match_on:
        if isinstance(item, str):
            try:
                out.append((item, MATCHERS[item]))
            except KeyError:
                known = ", ".join(sorted(MATCHERS))
                raise ValueError(f"unknown matcher {item!r}; known: {known}") from None
        elif callable(item):
            out.append((getattr(item, "__name__", repr(item)), item))
        else:
            raise TypeError(f"match_on items are names or callables, got {item!r}")
    return out


def failed_matchers(
    matchers: list[tuple[str, Matcher]], recorded: CallKey, actual: CallKey
) -> list[str]:
    """Names of the matchers that reject ``actual`` as ``recorded``."""
    return [name for name, m in matchers if not m(recorded, actual)]
