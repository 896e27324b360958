"""The benchmark runner (``python -m bench``): a smoke run and its verdict logic.

The benchmarks themselves are not tests (they measure; BENCHMARKS.md has the figures);
this only checks that the runner runs a benchmark in a child process and writes a
report with the machine, the figures and their verdicts.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import runner
from bench.runner import Figure, Goal


class TestRunner:
    """``python -m bench --quick --only codec`` end to end (one child process)."""

    def test_quick_codec(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        code = runner.main(["--quick", "--only", "codec", "--out", str(tmp_path)])
        out = capsys.readouterr().out
        assert code == 0, out
        report = json.loads((tmp_path / "results.json").read_text())
        assert report["profile"] == "quick"
        assert list(report["benchmarks"]) == ["codec"]
        assert {f["number"] for f in report["figures"]} == {"6", "6b"}
        assert all(f["verdict"] != "error" for f in report["figures"])
        machine = report["machine"]
        assert machine["cpus"] >= 1
        assert all(machine[k] for k in ("sqlite", "wasmtime", "python"))
        assert len(machine["load_average_start"]) == 3
        md = (tmp_path / "BENCHMARKS.md").read_text()
        for text in ("# Benchmarks", "## Machine", "load average at start",
                     "python -m bench --quick --only codec", "| 6 | codec vs msgpack",
                     "≤ 5x", "## Notes", "not a measurement"):  # fmt: skip
            assert text in md, text
        assert "wrote" in out

    def test_unknown_benchmark(self, capsys: pytest.CaptureFixture[str]) -> None:
        with pytest.raises(SystemExit) as info:
            runner.main(["--only", "nonsense"])
        assert info.value.code == 2
        assert "unknown benchmark" in capsys.readouterr().err

    def test_every_benchmark_has_figures(self) -> None:
        assert set(runner.BENCHMARKS) == set(runner.FIGURES)
        assert set(runner.PROFILES) == {"quick", "default", "full"}
        assert runner.PROFILES["full"].diff_events == 1_000_000
        assert runner.PROFILES["full"].scaling_sizes[-1] == 1_000_000


class TestVerdicts:
    """A figure meets its goal by the median; the spread is flagged when it crosses."""

    @pytest.mark.parametrize(
        ("median", "low", "high", "goal", "verdict"),
        [
            (1.02, 1.00, 1.04, Goal("<=", 1.05, ""), "met"),
            (1.02, 1.00, 1.09, Goal("<=", 1.05, ""), "met (spread crosses)"),
            (1.10, 1.06, 1.20, Goal("<=", 1.05, ""), "missed"),
            (1.10, 1.01, 1.20, Goal("<=", 1.05, ""), "missed (spread crosses)"),
            (400_000, 350_000, 420_000, Goal(">=", 300_000, ""), "met"),
            (250_000, 200_000, 260_000, Goal(">=", 300_000, ""), "missed"),
            (3.0, None, None, None, "info"),
            (None, None, None, Goal("<=", 1, ""), "error"),
        ],
    )
    def test_verdict(
        self, median: float | None, low: float | None, high: float | None,
        goal: Goal | None, verdict: str,
    ) -> None:  # fmt: skip
        assert Figure("1", "t", "w", "x", median, low, high, goal).verdict == verdict

    def test_formats(self) -> None:
        assert runner.fmt(1.234, "x") == "1.23x"
        assert runner.fmt(312_345.6, "events/s") == "312,346/s"
        assert runner.fmt(None, "x") == "-"
        assert runner._size(1_000_000) == "1M"
        assert runner._size(20_000) == "20k"
