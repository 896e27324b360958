"""How a page links and how much it shows: the two things that differ between a
self-contained file (links are anchors inside it, size is bounded) and a served
page (links go to other pages, filters run on the server)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .markup import ValueLimits

__all__ = ["Links", "PageLimits", "TimelineFilter"]


@dataclass(frozen=True, slots=True)
class PageLimits:
    """``events``: timeline rows on a page (the first ones; a file says what it left
    out). ``context``: aligned rows kept on each side of a diff's first divergence.
    ``budget``: characters of whole values embedded in a file, after which events keep
    their one-line previews only."""

    events: int = 500
    context: int = 25
    budget: int = 4_000_000
    values: ValueLimits = field(default_factory=ValueLimits)


@dataclass(frozen=True, slots=True)
class TimelineFilter:
    """Which events a timeline lists (all filters AND; ``None``: any)."""

    interface: str | None = None
    function: str | None = None
    failures: bool = False
    start: int = 0

    def __call__(self, interface: str, function: str, outcome: str) -> bool:
        return (
            (self.interface is None or interface == self.interface)
            and (self.function is None or function == self.function)
            and (not self.failures or outcome != "ok")
        )

    @property
    def active(self) -> bool:
        return self.interface is not None or self.function is not None or self.failures


class Links:
    """Links of a self-contained file: every event links to its values further down
    the same page, and filters run in the page's script. A server subclasses this."""

    #: Filters are submitted to the server (which lists matching events) instead of
    #: hiding rows in the page.
    server = False

    def event(self, trace_id: int, seq: int, side: str = "") -> str:
        """Where an event's full values are (``side``: ``a``/``b`` on a diff page)."""
        return f"#{side}ev-{seq}"

    def trace(self, trace_id: int) -> str | None:
        """A trace's own page, if there is one."""
        return None

    def timeline(self, trace_id: int, flt: TimelineFilter) -> str | None:
        """The timeline page with ``flt`` applied (a server's next page)."""
        return None

    def embeds_values(self) -> bool:
        """Whole values are written into the page (a file) rather than linked."""
        return not self.server
