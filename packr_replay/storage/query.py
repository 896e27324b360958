"""Filtering events and pairing export calls, shared by the SQLite and memory traces."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .model import Event, EventKind, ExportCall

__all__ = ["collect_exports", "matcher"]

Predicate = Any  # Callable[[tuple[Any, ...]], bool] | None, kept loose for speed


def matcher(
    kind: EventKind | str | None,
    interface: str | None,
    function: str | None,
    call: int | None,
) -> Predicate:
    """A predicate over chain-field tuples, or ``None`` when nothing is filtered.

    Filters are applied to the raw fields so events that do not match are never
    turned into :class:`Event` objects.
    """
    if kind is not None and str(kind) not in {str(k) for k in EventKind}:
        raise ValueError(f"unknown event kind {kind!r}")
    tests: list[tuple[int, object]] = [
        (index, value)
        for index, value in (
            (2, None if kind is None else str(kind)),
            (3, interface),
            (4, function),
            (1, call),
        )
        if value is not None
    ]
    if not tests:
        return None

    def match(fields: tuple[Any, ...]) -> bool:
        return all(fields[index] == value for index, value in tests)

    return match


def collect_exports(events: Iterable[Event]) -> list[ExportCall]:
    """Pair each ``export`` event with the ``return`` event of the same call."""
    starts: list[Event] = []
    ends: dict[int, Event] = {}
    for event in events:
        if event.kind is EventKind.EXPORT:
            starts.append(event)
        elif event.kind is EventKind.RETURN:
            ends.setdefault(event.call, event)
    return [ExportCall(start.call, start, ends.get(start.call)) for start in starts]
