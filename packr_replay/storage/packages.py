"""The package dimension of a composition's trace (trace format 4).

A composition (several packages wired together, recorded as one program) is recorded
as one trace: every event names its package (a 14th chain field) and the trace's
metadata says which packages there were, which module each ran and how they were
wired::

    meta["composition"] = {"packages": [[name, module_sha256], ...],
                           "wires": [[target, import_module, import_function,
                                      source, source_function], ...]}

The metadata is covered by the chain's genesis (format 3 on), so the list of packages
and their modules cannot be edited unnoticed. ``trace_packages`` (a table) is derived
from it when a trace is written or imported.

:class:`PackageTrace` is one package's events of such a trace, read as a trace of that
package alone: what replaying one package alone, and diffing per package, read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any, Protocol

from ..errors import StoreError, TraceFormatError
from .codec import RawRecord, event_from_record
from .model import Event, EventKind, ExportCall, TraceInfo
from .query import collect_exports, matcher

__all__ = [
    "Composition",
    "PackageInfo",
    "PackageTrace",
    "composition_from_meta",
    "composition_meta",
    "composition_of",
    "insert_packages",
]

_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class PackageInfo:
    """One package of a recorded composition and the module it ran."""

    name: str
    module_sha256: str | None


@dataclass(frozen=True, slots=True)
class Composition:
    """What a composition trace's metadata declares: packages (in the order they were
    added) and wires ``(target, import_module, import_function, source, source_function)``."""

    packages: tuple[PackageInfo, ...]
    wires: tuple[tuple[str, str, str, str, str], ...] = ()

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.packages]

    def package(self, name: str) -> PackageInfo | None:
        return next((p for p in self.packages if p.name == name), None)


def composition_meta(
    packages: Iterable[tuple[str, str | None]], wires: Iterable[tuple[str, str, str, str, str]] = ()
) -> dict[str, Any]:
    """The ``composition`` metadata entry a composition recorder writes."""
    return {
        "packages": [[name, sha] for name, sha in packages],
        "wires": [list(w) for w in wires],
    }


def composition_of(info: TraceInfo) -> Composition | None:
    """``info``'s composition, checked (``None`` for a trace of one guest).

    The metadata comes from a file; anything malformed is a :class:`TraceFormatError`
    naming the trace."""
    return composition_from_meta(info.meta, f"trace {info.id}")


def composition_from_meta(meta: object, trace: str) -> Composition | None:
    """The composition a trace's metadata declares, checked (see :func:`composition_of`)."""
    raw = meta.get("composition") if isinstance(meta, dict) else None
    if raw is None:
        return None
    where = f"{trace}: metadata 'composition'"
    if not isinstance(raw, dict) or not isinstance(raw.get("packages"), (list, tuple)):
        raise TraceFormatError(f"{where} is not a map with a 'packages' list")
    packages = []
    seen: set[str] = set()
    for item in raw["packages"]:
        if (
            not isinstance(item, (list, tuple))
            or len(item) != 2
            or not isinstance(item[0], str)
            or not item[0]
            or not (item[1] is None or (isinstance(item[1], str) and _SHA256.fullmatch(item[1])))
        ):
            raise TraceFormatError(f"{where}: a package is not [name, module sha256]: {item!r:.80}")
        if item[0] in seen:
            raise TraceFormatError(f"{where}: package {item[0]!r} is listed twice")
        seen.add(item[0])
        packages.append(PackageInfo(item[0], item[1]))
    if not packages:
        raise TraceFormatError(f"{where} lists no packages")
    wires = raw.get("wires", [])
    if not isinstance(wires, (list, tuple)) or not all(
        isinstance(w, (list, tuple)) and len(w) == 5 and all(isinstance(x, str) for x in w)
        for w in wires
    ):
        raise TraceFormatError(f"{where}: 'wires' is not a list of five names each")
    return Composition(tuple(packages), tuple((w[0], w[1], w[2], w[3], w[4]) for w in wires))


def insert_packages(db: Any, trace_id: int, meta: dict[str, Any], where: object) -> None:
    """Write ``trace_packages`` rows for a composition trace (the caller holds the
    transaction; the file is format 4 or later); every package's module must be
    stored already."""
    composition = composition_from_meta(meta, f"trace {trace_id}")
    if composition is None:
        return
    for package in composition.packages:
        sha = package.module_sha256
        if (
            sha is not None
            and db.execute("SELECT 1 FROM modules WHERE sha256 = ?", [sha]).fetchone() is None
        ):
            raise StoreError(
                f"{where} holds no module {sha} (package {package.name!r}); add_module it first"
            )
    for position, package in enumerate(composition.packages):
        db.execute(
            "INSERT INTO trace_packages (trace_id, position, name, module_sha256) "
            "VALUES (?, ?, ?, ?)",
            [trace_id, position, package.name, package.module_sha256],
        )


class _Records(Protocol):
    @property
    def info(self) -> TraceInfo: ...

    def records(self, start: int = 0) -> Iterator[RawRecord]: ...


class PackageTrace:
    """One package's events of a composition trace, as a trace of that package alone.

    Its records are the package's, in order, without the package field (13 fields, as
    a one-guest trace stores them); its ``info`` names the package's module. Seqs are
    the composition trace's. Reading checks the whole trace's chain as it goes, as
    reading any trace does. An event of the trace that names no package is a format
    error.
    """

    def __init__(self, trace: _Records, package: str) -> None:
        composition = composition_of(trace.info)
        if composition is None:
            raise TraceFormatError(f"trace {trace.info.id} is not a composition's trace")
        found = composition.package(package)
        if found is None:
            raise TraceFormatError(
                f"trace {trace.info.id} has no package {package!r} (it has "
                f"{', '.join(composition.names)})"
            )
        self.trace = trace
        self.package = package
        self.composition = composition
        self._info = replace(trace.info, module_sha256=found.module_sha256)
        self._count: int | None = None

    @property
    def info(self) -> TraceInfo:
        return self._info

    def records(self, start: int = 0) -> Iterator[RawRecord]:
        package = self.package
        trace_id = self.trace.info.id
        for fields, digest in self.trace.records(start):
            if len(fields) != 14:
                raise TraceFormatError(
                    f"trace {trace_id}: event {fields[0]} of a composition names no package"
                )
            if fields[13] == package:
                yield fields[:13], digest

    def __len__(self) -> int:
        if self._count is None:
            self._count = sum(1 for _ in self.records())
        return self._count

    def events(
        self,
        kind: EventKind | str | None = None,
        interface: str | None = None,
        function: str | None = None,
        call: int | None = None,
        start: int = 0,
    ) -> Iterator[Event]:
        match = matcher(kind, interface, function, call)
        for fields, digest in self.records(start):
            if match is None or match(fields):
                yield event_from_record(fields, digest)

    def event(self, seq: int) -> Event:
        for event in self.events(start=seq):
            if event.seq == seq:
                return event
            break
        raise IndexError(
            f"trace {self.trace.info.id} has no event {seq} in package {self.package!r}"
        )

    def exports(self) -> list[ExportCall]:
        return collect_exports(self.events())

    def __repr__(self) -> str:
        return f"<PackageTrace {self.package!r} of trace {self.trace.info.id}>"
