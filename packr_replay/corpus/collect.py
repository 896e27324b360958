"""From a command line's CORPUS arguments to the list of traces to check.

CORPUS items are trace files, directories (walked recursively for SQLite files,
skipping hidden names such as ``.git``) and globs (``**`` recurses). Each store is
opened read-only once to list its traces; a file that cannot be opened becomes a
``refused`` result of its own rather than stopping the check. Traces are then filtered
(labels, ``FIELD=PATTERN`` selections) and paired with the build each one replays.
"""

from __future__ import annotations

import fnmatch
import glob
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CorpusError, PackrReplayError
from ..storage import TraceInfo, TraceStore
from ..storage.sqlite import SQLITE_MAGIC
from .model import Outcome, TraceJob, TraceResult, Verdict

__all__ = ["SELECT_FIELDS", "Builds", "Selection", "collect", "find_stores"]

#: The fields ``--select FIELD=PATTERN`` matches (shell-style patterns, case-sensitive).
SELECT_FIELDS = ("file", "id", "label", "module", "status", "host", "uuid")


@dataclass(frozen=True)
class Builds:
    """Which build replays which trace: ``default`` for every trace, or one per recorded
    module name (``--module clock_actor=new.wasm``); ``None``: the stored module."""

    default: str | None = None
    by_name: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, specs: Sequence[str] | str | None, option: str = "--module") -> Builds:
        """``PATH`` or ``NAME=PATH`` items; each path must exist."""
        if specs is None:
            return cls()
        if isinstance(specs, str | os.PathLike):
            specs = [os.fspath(specs)]
        default: str | None = None
        by_name: dict[str, str] = {}
        for spec in specs:
            spec = os.fspath(spec)
            name, sep, path = spec.partition("=")
            if not sep or Path(spec).exists():
                name, path = "", spec
            if not path:
                raise CorpusError(f"{option} {spec}: expected PATH or NAME=PATH")
            if not Path(path).is_file():
                raise CorpusError(f"{option} {spec}: {path}: no such file")
            if not name:
                if default is not None:
                    raise CorpusError(
                        f"{option} given twice without a module name ({default}, {path}); "
                        f"name the module: {option} NAME=PATH"
                    )
                default = path
            elif name in by_name:
                raise CorpusError(f"{option} {name}= given twice")
            else:
                by_name[name] = path
        return cls(default, by_name)

    def __bool__(self) -> bool:
        return self.default is not None or bool(self.by_name)

    def paths(self) -> list[str]:
        return sorted({p for p in (self.default, *self.by_name.values()) if p is not None})

    def for_module(self, name: str | None) -> str | None:
        if name is not None and name in self.by_name:
            return self.by_name[name]
        return self.default


@dataclass(frozen=True)
class Selection:
    """Which traces of the corpus to check: labels (any pattern matches) and
    ``FIELD=PATTERN`` items (every one must match)."""

    labels: tuple[str, ...] = ()
    where: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, labels: Iterable[str] = (), select: Iterable[str] = ()) -> Selection:
        where = []
        for item in select:
            key, sep, pattern = item.partition("=")
            if not sep or key not in SELECT_FIELDS:
                raise CorpusError(
                    f"--select {item}: expected FIELD=PATTERN with FIELD one of "
                    f"{', '.join(SELECT_FIELDS)}"
                )
            where.append((key, pattern))
        return cls(tuple(labels), tuple(where))

    def matches(self, file: str, info: TraceInfo, module: str | None) -> bool:
        if self.labels and not any(
            fnmatch.fnmatchcase(info.label or "", p) for p in self.labels
        ):
            return False
        values = {
            "file": file,
            "id": str(info.id),
            "label": info.label or "",
            "module": module or "",
            "status": str(info.status),
            "host": info.host or "",
            "uuid": info.uuid,
        }
        return all(fnmatch.fnmatchcase(values[k], p) for k, p in self.where)


def _is_sqlite(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
    except OSError:
        return False


def _walk(root: Path) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath, name)
            if not name.startswith(".") and _is_sqlite(path):
                found.append(path)
    return sorted(found)


def find_stores(corpus: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """The trace files CORPUS names, each once, in the order given (directories and globs
    sorted). A path or glob that names nothing is a :class:`CorpusError`."""
    seen: set[Path] = set()
    out: list[Path] = []
    for item in corpus:
        text = os.fspath(item)
        path = Path(text)
        if path.is_dir():
            found = _walk(path)
        elif path.exists():
            found = [path]
        elif glob.has_magic(text):
            found = []
            for match in sorted(glob.glob(text, recursive=True)):
                m = Path(match)
                found += _walk(m) if m.is_dir() else [m] if _is_sqlite(m) else []
            if not found:
                raise CorpusError(f"{text}: the pattern matches no trace file")
        else:
            raise CorpusError(f"{text}: no such file or directory")
        for p in found:
            key = p.resolve()
            if key not in seen:
                seen.add(key)
                out.append(p)
    return out


def collect(
    stores: Iterable[Path],
    *,
    selection: Selection | None = None,
    builds: Builds | None = None,
    baseline: Builds | None = None,
) -> tuple[list[TraceJob], list[TraceResult]]:
    """The jobs (every selected trace, against ``builds``, then against ``baseline``
    when given) and the ``refused`` results of files that could not be listed."""
    selection = selection or Selection()
    builds = builds or Builds()
    jobs: list[TraceJob] = []
    refused: list[TraceResult] = []
    used_names: set[str] = set()
    for path in stores:
        file = str(path)
        try:
            with TraceStore(path, readonly=True) as store:
                names = {m.sha256: m.name for m in store.modules()}
                infos = store.traces()
        except PackrReplayError as exc:
            job = TraceJob(file, 0, build=builds.for_module(None))
            refused.append(TraceResult(job, Outcome(Verdict.REFUSED, f"bad file: {_line(exc)}")))
            continue
        for info in infos:
            module = names.get(info.module_sha256 or "")
            if not selection.matches(file, info, module):
                continue
            if module is not None:
                used_names.add(module)
            base = TraceJob(file, info.id, info.uuid, info.label, module, str(info.status),
                            info.event_count)  # fmt: skip
            jobs.append(_with_build(base, builds.for_module(module), baseline=False))
    for given in (builds, baseline):
        unused = sorted(set(given.by_name) - used_names) if given else []
        if unused:
            raise CorpusError(
                f"no selected trace was recorded with module {', '.join(map(repr, unused))}; "
                f"recorded modules: {', '.join(sorted(used_names)) or 'none'}"
            )
    if baseline:
        jobs += [
            _with_build(j, baseline.for_module(j.module), baseline=True) for j in list(jobs)
        ]
    return jobs, refused


def _with_build(job: TraceJob, build: str | None, *, baseline: bool) -> TraceJob:
    return TraceJob(job.file, job.trace_id, job.uuid, job.label, job.module, job.status,
                    job.events, build, baseline)  # fmt: skip


def _line(exc: BaseException) -> str:
    return "; ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(
        exc
    ).__name__
