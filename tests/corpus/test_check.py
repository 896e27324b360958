"""``packr_replay.corpus.check``: a corpus where traces reproduce, diverge, are refused,
run over caps, hang and crash their worker, checked on local worker processes."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from packr_replay import api
from packr_replay.abi import String
from packr_replay.corpus import (
    Builds,
    CheckInterrupted,
    CheckReport,
    TraceResult,
    Verdict,
    check,
    junit_xml,
)
from packr_replay.errors import CorpusError, HostSpecError, ModuleLoadError
from packr_replay.replay import ReplayCaps
from packr_replay.runtime.demo import DemoHost, example_guest

from .conftest import MIXED_TIME_LIMIT


def _by_label(report: CheckReport) -> dict[str | None, TraceResult]:
    return {r.job.label: r for r in report.results}


class TestMixedCorpus:
    """Every kind of outcome in one run, each trace counted once."""

    def test_counts(self, mixed: CheckReport) -> None:
        assert mixed.counts() == {"reproduced": 4, "diverged": 2, "refused": 1,
                                  "over_caps": 2, "crashed": 1}  # fmt: skip
        assert mixed.planned == len(mixed.results) == 10
        assert mixed.exit_code == 1
        assert not mixed.ok
        assert not mixed.interrupted

    def test_each_trace_once_in_corpus_order(self, mixed: CheckReport) -> None:
        names = [(Path(r.job.file).name, r.job.trace_id) for r in mixed.results]
        assert names == [("actor.db", 1), ("actor.db", 2), ("actor.db", 3), ("clock.db", 1),
                         ("clock.db", 2), ("clock.db", 3), ("junk.db", 0), ("kv.db", 1),
                         ("kv.db", 2), ("spin.db", 1)]  # fmt: skip

    def test_a_crashed_worker_costs_only_its_trace(self, mixed: CheckReport) -> None:
        by = _by_label(mixed)
        crash = by["crash"].outcome
        assert crash.verdict is Verdict.CRASHED
        assert "worker process died (killed by SIGKILL)" in crash.detail
        assert by["fine"].verdict is Verdict.REPRODUCED  # same file, same build

    def test_a_hung_worker_is_killed_at_the_time_cap(self, mixed: CheckReport) -> None:
        hang = _by_label(mixed)["hang"].outcome
        assert hang.verdict is Verdict.OVER_CAPS
        assert hang.cap == "time"
        assert f"time cap of {MIXED_TIME_LIMIT:g} s" in hang.detail
        assert MIXED_TIME_LIMIT <= hang.duration_s < MIXED_TIME_LIMIT + 5

    def test_fuel_cap(self, mixed: CheckReport) -> None:
        spin = _by_label(mixed)["spin"].outcome
        assert spin.verdict is Verdict.OVER_CAPS
        assert spin.cap == "fuel"
        assert "(the recording did not)" in spin.detail

    def test_divergences_grouped_by_export_and_import(self, mixed: CheckReport) -> None:
        groups = mixed.groups()
        assert list(groups) == [("run", "import t:host/kv.get")]
        members = groups[("run", "import t:host/kv.get")]
        assert [r.job.label for r in members] == ["kv-0", "kv-1"]
        assert all(r.outcome.seq == 1 for r in members)
        assert members[0].outcome.detail.startswith("replay diverged at event #1")
        assert "t:host/kv.put" in (members[0].outcome.report or "")

    def test_bad_file_refused(self, mixed: CheckReport) -> None:
        junk = next(r for r in mixed.results if r.job.file.endswith("junk.db"))
        assert junk.verdict is Verdict.REFUSED
        assert junk.name.endswith("junk.db")
        assert junk.outcome.detail.startswith("bad file:")

    def test_summary_text(self, mixed: CheckReport) -> None:
        text = mixed.summary()
        assert "run › import t:host/kv.get: 2 trace(s)" in text
        for section in ("refused:", "over caps:", "crashed:"):
            assert f"\n{section}\n" in text

    def test_json(self, mixed: CheckReport) -> None:
        doc = mixed.to_json()
        assert doc["counts"]["crashed"] == 1
        assert doc["exit_code"] == 1
        assert doc["groups"][0]["parted"] == "import t:host/kv.get"
        crash = next(t for t in doc["traces"] if t["label"] == "crash")
        assert crash["verdict"] == "crashed"
        assert crash["trace"] == 2
        assert crash["module"] == "actor"

    def test_junit(self, mixed: CheckReport) -> None:
        root = ET.fromstring(junit_xml(mixed))
        suite = root.find("testsuite")
        assert suite is not None
        assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("10", "4", "2")
        cases = suite.findall("testcase")
        assert len(cases) == 10
        crash = next(c for c in cases if c.get("name") == "#2 crash")
        error = crash.find("error")
        assert error is not None
        assert error.get("type") == "crashed"
        assert sum(1 for c in cases if not list(c)) == 4  # reproduced: no child


class TestSelection:
    """Choosing traces and builds."""

    def test_labels(self, lab: Path) -> None:
        report = check([lab / "corpus"], labels=["clock-*", "fine"], jobs=1)
        traces = [r for r in report.results if r.job.trace_id]
        assert sorted(r.job.label or "" for r in traces) == ["clock-0", "clock-1", "clock-2", "fine"]
        assert all(r.reproduced for r in traces if r.job.label != "fine")
        fine = next(r for r in traces if r.job.label == "fine")  # its raw import needs --host
        assert fine.verdict is Verdict.REFUSED
        assert "provide it with a host" in fine.outcome.detail
        # a file that cannot be read cannot be filtered either: it is reported
        assert [r.verdict for r in report.results if not r.job.trace_id] == [Verdict.REFUSED]

    def test_select_fields(self, lab: Path) -> None:
        report = check([lab / "corpus" / "nested"], select=["module=kv", "label=*-1"], jobs=1)
        assert [r.job.label for r in report.results] == ["kv-1"]
        assert report.ok

    def test_bad_select(self, lab: Path) -> None:
        with pytest.raises(CorpusError, match="FIELD=PATTERN"):
            check([lab / "corpus"], select=["colour=red"])

    def test_nothing_selected(self, lab: Path) -> None:
        with pytest.raises(CorpusError, match="no trace"):
            check([lab / "corpus" / "clock.db"], labels=["nope"])

    def test_unknown_module_name(self, lab: Path) -> None:
        with pytest.raises(CorpusError, match="no selected trace was recorded with module 'kvv'"):
            check([lab / "corpus"], module=[f"kvv={lab / 'guests' / 'kv2' / 'kv.wat'}"])

    def test_paths_and_globs(self, lab: Path) -> None:
        with pytest.raises(CorpusError, match="no such file or directory"):
            check([lab / "missing.db"])
        with pytest.raises(CorpusError, match="matches no trace file"):
            check([str(lab / "corpus" / "*.nothing")])
        report = check([str(lab / "corpus" / "**" / "kv.db"), lab / "corpus" / "nested"], jobs=1)
        assert [r.job.label for r in report.results] == ["kv-0", "kv-1"]  # each file once

    def test_build_that_does_not_compile(self, lab: Path) -> None:
        bad = lab / "bad.wasm"
        bad.write_bytes(b"\0asm\x01\0\0\0garbage")
        with pytest.raises(ModuleLoadError):
            check([lab / "corpus" / "clock.db"], module=str(bad))

    def test_bad_host_spec(self, lab: Path) -> None:
        with pytest.raises(HostSpecError):
            check([lab / "corpus" / "clock.db"], hosts=["nowhere.py:register"])

    def test_builds_parse(self, tmp_path: Path) -> None:
        a, b = tmp_path / "a.wasm", tmp_path / "b=c.wasm"
        a.write_bytes(b""), b.write_bytes(b"")
        assert Builds.parse([str(a)]).default == str(a)
        assert Builds.parse([f"x={a}"]).by_name == {"x": str(a)}
        assert Builds.parse([str(b)]).default == str(b)  # an existing path wins over NAME=
        with pytest.raises(CorpusError, match="given twice"):
            Builds.parse([str(a), str(a)])
        with pytest.raises(CorpusError, match="no such file"):
            Builds.parse(["x=nothing.wasm"])


class TestBaseline:
    """--baseline: only changed verdicts, exit 1 only for a regression."""

    def test_regression(self, lab: Path) -> None:
        guests = lab / "guests"
        report = check([lab / "corpus" / "nested", lab / "corpus" / "clock.db"],
                       module=[f"kv={guests / 'kv2' / 'kv.wat'}"],
                       baseline=[f"kv={guests / 'kv' / 'kv.wat'}"], jobs=2)  # fmt: skip
        changes = report.changes()
        assert [(c.kind, c.after.job.label) for c in changes] == [
            ("regressed", "kv-0"), ("regressed", "kv-1")]  # fmt: skip
        assert report.exit_code == 1
        assert len(report.results) == len(report.baseline or []) == 5
        assert "2 verdict(s) changed (2 regressed, 0 fixed, 0 otherwise), 3 unchanged" in report.summary()
        root = ET.fromstring(junit_xml(report))
        failures = root.findall("testsuite/testcase/failure")
        assert [f.get("type") for f in failures] == ["regressed", "regressed"]
        assert root.find("testsuite").get("failures") == "2"  # type: ignore[union-attr]
        doc = report.to_json()
        assert doc["baseline"]["changes"][0]["before"]["verdict"] == "reproduced"
        assert doc["baseline"]["changes"][0]["after"]["verdict"] == "diverged"

    def test_fix_is_not_a_failure(self, lab: Path) -> None:
        guests = lab / "guests"
        report = check([lab / "corpus" / "nested"], module=[f"kv={guests / 'kv' / 'kv.wat'}"],
                       baseline=[f"kv={guests / 'kv2' / 'kv.wat'}"], jobs=1)  # fmt: skip
        assert [c.kind for c in report.changes()] == ["fixed", "fixed"]
        assert report.exit_code == 0

    def test_unchanged_failures_are_not_reported(self, lab: Path) -> None:
        guests = lab / "guests"
        kv2 = f"kv={guests / 'kv2' / 'kv.wat'}"
        report = check([lab / "corpus" / "nested"], module=[kv2], baseline=[kv2], jobs=1)
        assert report.changes() == []
        assert report.exit_code == 0
        assert report.counts()["diverged"] == 2


class TestProgressAndInterrupts:
    """on_start / on_result, and Ctrl-C."""

    def test_callbacks(self, lab: Path) -> None:
        started: list[int] = []
        seen: list[TraceResult] = []
        report = check([lab / "corpus" / "clock.db"], jobs=2, on_start=started.append,
                       on_result=seen.append)  # fmt: skip
        assert started == [3]
        assert sorted(r.job.trace_id for r in seen) == [1, 2, 3]
        assert report.results == sorted(seen, key=lambda r: r.job.trace_id)

    def test_interrupt_reports_what_finished(self, lab: Path) -> None:
        def stop_after_first(result: TraceResult) -> None:
            raise KeyboardInterrupt

        with pytest.raises(CheckInterrupted) as info:
            check([lab / "corpus" / "clock.db"], jobs=1, on_result=stop_after_first)
        report = info.value.report
        assert report.interrupted
        assert report.planned == 3
        assert len(report.results) == 1
        assert report.results[0].reproduced
        assert "interrupted: 1 of 3 trace(s) checked" in report.summary()


    def test_a_signal_is_an_interrupt_like_any_other(self, lab: Path) -> None:
        """SIGINT (SIGTERM alike) goes through the shared handling: the check raises an
        :class:`Interrupted` naming the signal and what finished, its workers gone."""
        import os
        import signal

        from packr_replay.errors import Interrupted

        def signal_after_first(result: TraceResult) -> None:
            os.kill(os.getpid(), signal.SIGINT)

        before, handler = _children(os.getpid()), signal.getsignal(signal.SIGINT)
        with pytest.raises(CheckInterrupted) as info:
            check([lab / "corpus" / "clock.db"], jobs=1, on_result=signal_after_first)
        stop = info.value
        assert isinstance(stop, Interrupted)
        assert (stop.signal, stop.exit_code) == (signal.SIGINT, 130)
        assert str(stop) == "interrupted by SIGINT: 1 of 3 trace(s) were checked"
        assert stop.report.interrupted
        assert len(stop.report.results) == 1
        assert signal.getsignal(signal.SIGINT) is handler  # put back
        assert _children(os.getpid()) <= before  # the workers are gone


def _children(pid: int) -> set[int]:
    """Live child processes of ``pid``."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                state, parent = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
            except (OSError, ValueError):
                continue
            if int(parent) == pid and state != "Z":
                found.add(int(entry.name))
    return found


class TestUntrustedText:
    """Labels from a trace reach JUnit XML safely."""

    def test_control_characters_in_labels(self, tmp_path: Path) -> None:
        store = tmp_path / "evil.db"
        api.record_run(example_guest("clock_actor"), [("run", String("x"))], host=DemoHost(),
                       store=store, label="evil\x1b]0;pwned\x07\x00")  # fmt: skip
        report = check([store], jobs=1, module=str(example_guest("echo")))
        data = junit_xml(report)
        root = ET.fromstring(data)  # parses: nothing XML 1.0 forbids
        case = root.find("testsuite/testcase")
        assert case is not None
        assert case.get("name") == "#1 evil\\x1b]0;pwned\\x07\\x00"


class TestCaps:
    """The replay caps (ReplayCaps) reach every worker."""

    def test_fuel_cap_cuts_the_replay(self, lab: Path) -> None:
        report = check([lab / "corpus" / "clock.db"], caps=ReplayCaps(fuel=1000), jobs=1)
        assert report.counts()["over_caps"] == 3
        outcome = report.results[0].outcome
        assert outcome.cap == "fuel"
        assert "--max-fuel" in outcome.detail
        assert outcome.export == "run"

    def test_default_caps_reproduce(self, lab: Path) -> None:
        report = check([lab / "corpus" / "clock.db"], caps=ReplayCaps(), jobs=1)
        assert report.ok
