"""What a corpus check found: counts, the first divergence of each trace grouped by
where replay parted from the recording, and, against a baseline build, only the
traces whose verdict changed.

The text summary is plain strings (the CLI escapes and colours them); ``to_json`` is the
same content as data. Neither depends on which executor ran the traces: results are in
corpus order, whatever order they finished in.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .model import Outcome, TraceResult, Verdict

__all__ = ["Change", "CheckReport"]

_TITLES = {
    Verdict.REPRODUCED: "reproduced",
    Verdict.DIVERGED: "diverged",
    Verdict.REFUSED: "refused",
    Verdict.OVER_CAPS: "over caps",
    Verdict.CRASHED: "crashed",
}


@dataclass(slots=True)
class Change:
    """One trace whose verdict differs between the baseline and the new build."""

    before: TraceResult
    after: TraceResult

    @property
    def kind(self) -> str:
        """``regressed`` (reproduced with the baseline only), ``fixed`` (with the new
        build only) or ``changed`` (neither reproduced, but they failed differently)."""
        if self.before.reproduced:
            return "regressed"
        if self.after.reproduced:
            return "fixed"
        return "changed"

    def to_dict(self) -> dict[str, Any]:
        after = self.after.to_dict()
        return {
            "change": self.kind,
            **{k: after[k] for k in ("file", "trace", "uuid", "label", "module", "events")},
            "before": {"build": self.before.job.build, **self.before.outcome.to_dict()},
            "after": {"build": self.after.job.build, **self.after.outcome.to_dict()},
        }


def _signature(outcome: Outcome) -> tuple[Any, ...]:
    if outcome.verdict is Verdict.DIVERGED:
        return (outcome.verdict, outcome.parted, outcome.seq)
    return (outcome.verdict,)


@dataclass
class CheckReport:
    """The result of :func:`~packr_replay.corpus.check`.

    ``results`` holds every trace replayed against the build(s) under test, in corpus
    order; ``baseline`` the same traces against the baseline build(s) when one was
    given. ``planned`` counts the traces the check set out to replay; after an
    interruption (``interrupted``) the results hold only the finished ones.
    """

    results: list[TraceResult]
    baseline: list[TraceResult] | None = None
    planned: int = 0
    files: int = 0
    builds: list[str] = field(default_factory=list)
    baseline_builds: list[str] = field(default_factory=list)
    executor: str = ""
    elapsed_s: float = 0.0
    interrupted: bool = False

    # -------------------------------------------------------------- verdicts

    def counts(self, results: list[TraceResult] | None = None) -> dict[str, int]:
        counts = {str(v): 0 for v in Verdict}
        for r in self.results if results is None else results:
            counts[str(r.verdict)] += 1
        return counts

    def by_verdict(self, verdict: Verdict) -> list[TraceResult]:
        return [r for r in self.results if r.verdict is verdict]

    def groups(self) -> dict[tuple[str, str], list[TraceResult]]:
        """Diverged traces grouped by (export, where they parted), largest group first."""
        groups: dict[tuple[str, str], list[TraceResult]] = {}
        for r in self.by_verdict(Verdict.DIVERGED):
            key = (r.outcome.export or "(no export call)", r.outcome.parted or "?")
            groups.setdefault(key, []).append(r)
        return dict(sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])))

    def changes(self) -> list[Change]:
        """Traces whose verdict changed from the baseline (empty without one)."""
        if self.baseline is None:
            return []
        before = {(r.job.file, r.job.trace_id): r for r in self.baseline}
        out = []
        for after in self.results:
            old = before.get((after.job.file, after.job.trace_id))
            if old is not None and _signature(old.outcome) != _signature(after.outcome):
                out.append(Change(old, after))
        return out

    @property
    def ok(self) -> bool:
        """Nothing to fail a CI job for: every trace reproduced (against a baseline:
        none regressed)."""
        if self.baseline is not None:
            return not any(c.kind == "regressed" for c in self.changes())
        return bool(self.results) and all(r.reproduced for r in self.results)

    @property
    def exit_code(self) -> int:
        """0 ok, 1 a trace did not reproduce (against a baseline: one regressed)."""
        return 0 if self.ok else 1

    # ------------------------------------------------------------------ text

    def summary_lines(self, limit: int = 10) -> Iterator[str]:
        """The summary as plain lines, at most ``limit`` traces per section."""
        yield self._headline()
        if self.baseline is not None:
            yield from self._change_lines(limit)
            return
        for verdict in Verdict:
            n = self.counts()[str(verdict)]
            yield f"  {_TITLES[verdict] + ':':<12}{n:>7}"
        groups = self.groups()
        if groups:
            yield "diverged (the first divergence of each, by export and the call where it parted):"
            for (export, parted), members in groups.items():
                yield f"  {export} › {parted}: {len(members)} trace(s)"
                yield from _listed(members, limit, "    ", lambda r: r.outcome.detail)
        for verdict in (Verdict.REFUSED, Verdict.OVER_CAPS, Verdict.CRASHED):
            members = self.by_verdict(verdict)
            if members:
                yield f"{_TITLES[verdict]}:"
                yield from _listed(members, limit, "  ", lambda r: r.outcome.detail)
        if self.interrupted:
            yield f"interrupted: {len(self.results)} of {self.planned} trace(s) checked"

    def _headline(self) -> str:
        against = ", ".join(self.builds) if self.builds else "their recorded modules"
        what = f"{self.planned} trace(s) in {self.files} file(s) against {against}"
        if self.baseline is not None:
            base = ", ".join(self.baseline_builds) or "their recorded modules"
            what += f" and the baseline {base}"
        return f"checked {what} ({self.executor}, {self.elapsed_s:.1f} s)"

    def _change_lines(self, limit: int) -> Iterator[str]:
        changes = self.changes()
        kinds = {k: [c for c in changes if c.kind == k] for k in ("regressed", "fixed", "changed")}
        unchanged = len(self.results) - len(changes)
        yield (
            f"  {len(changes)} verdict(s) changed ({len(kinds['regressed'])} regressed, "
            f"{len(kinds['fixed'])} fixed, {len(kinds['changed'])} otherwise), "
            f"{unchanged} unchanged"
        )
        titles = {
            "regressed": "regressed (reproduced with the baseline, not with the new build):",
            "fixed": "fixed (reproduced with the new build, not with the baseline):",
            "changed": "changed (reproduced with neither, but failed differently):",
        }
        for kind, members in kinds.items():
            if members:
                yield titles[kind]
                for c in members[:limit]:
                    yield f"  {c.after.name}: {_change_text(c)}"
                if len(members) > limit:
                    yield f"  … and {len(members) - limit} more (--json lists every change)"
        if self.interrupted:
            yield f"interrupted: {len(self.results)} of {self.planned} trace(s) checked"

    def summary(self, limit: int = 10) -> str:
        return "\n".join(self.summary_lines(limit))

    # ------------------------------------------------------------------ data

    def to_json(self) -> dict[str, Any]:
        """The report as data (shape in docs/cli-json.md)."""
        doc: dict[str, Any] = {
            "ok": self.ok,
            "exit_code": self.exit_code,
            "planned": self.planned,
            "checked": len(self.results),
            "files": self.files,
            "builds": self.builds,
            "interrupted": self.interrupted,
            "executor": self.executor,
            "elapsed_s": self.elapsed_s,
            "counts": self.counts(),
            "groups": [
                {"export": export, "parted": parted, "traces": [r.name for r in members]}
                for (export, parted), members in self.groups().items()
            ],
            "traces": [r.to_dict() for r in self.results],
            "baseline": None,
        }
        if self.baseline is not None:
            doc["baseline"] = {
                "builds": self.baseline_builds,
                "counts": self.counts(self.baseline),
                "changes": [c.to_dict() for c in self.changes()],
            }
        return doc


def _change_text(change: Change) -> str:
    before, after = change.before.outcome, change.after.outcome
    text = f"{_TITLES[before.verdict]} → {_TITLES[after.verdict]}"
    detail = after.detail if not change.after.reproduced else before.detail
    return f"{text}: {detail}" if detail else text


def _listed(members: list[TraceResult], limit: int, indent: str, text: Any) -> Iterator[str]:
    for r in members[:limit]:
        yield f"{indent}{r.name}: {text(r)}"
    if len(members) > limit:
        yield f"{indent}… and {len(members) - limit} more (--json lists every trace)"
