"""``packr-replay diff``: exit 0 identical, 1 different; first divergence, paths, table."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import Invoke


def test_identical(cli: Invoke, recorded: Path) -> None:
    run = cli("diff", f"{recorded}#first", f"{recorded}#1")
    assert run.code == 0
    assert "identical: 14 events" in run.out


def test_different(cli: Invoke, recorded: Path) -> None:
    run = cli("diff", f"{recorded}#first", f"{recorded}#second")
    assert run.code == 1
    assert "different: 8 changed, 0 inserted, 0 removed, 6 equal" in run.out
    assert "first divergence\nchanged import demo:host/clock.now (a #2, b #2): output" in run.out
    assert "output (root): 1700000000000000000u64 → 1700000000001000000u64" in run.out
    assert "output .roll: 0u64 → 1u64" in run.out
    assert "per function" in run.out
    assert "import demo:host/random.next" in run.out


def test_limit(cli: Invoke, recorded: Path) -> None:
    run = cli("diff", f"{recorded}#first", f"{recorded}#second", "--limit", "2")
    assert "then (1 more of 8 changes)" in run.out
    assert "... 6 more (--limit N to see them)" in run.out


def test_json(cli: Invoke, recorded: Path) -> None:
    run = cli("diff", f"{recorded}#first", f"{recorded}#second", "--json", "-n", "3")
    data = json.loads(run.out)
    assert run.code == 1
    assert set(data) == {"a", "b", "identical", "summary", "modules_differ", "first", "changes",
                         "calls"}  # fmt: skip
    assert data["a"]["trace"]["label"] == "first"
    assert data["summary"] | {"text": ""} == {"events_a": 14, "events_b": 14, "equal": 6,
                                              "changed": 8, "inserted": 0, "removed": 0, "text": ""}  # fmt: skip
    first = data["first"]
    assert set(first) == {"change", "name", "a", "b", "fields", "input_differences",
                          "output_differences", "text"}  # fmt: skip
    assert first["output_differences"][0] == {
        "path": "", "change": "value", "a": "1700000000000000000u64",
        "b": "1700000000001000000u64",
        "text": "(root): 1700000000000000000u64 → 1700000000001000000u64",
    }  # fmt: skip
    assert len(data["changes"]) == 3
    assert data["calls"]["import demo:host/env.get"] == {"a": 2, "b": 2, "changed": 0,
                                                         "inserted": 0, "removed": 0}  # fmt: skip


def test_traces_in_two_files(cli: Invoke, recorded: Path, tmp_path: Path) -> None:
    other = tmp_path / "one.db"
    assert cli("export", f"{recorded}#first", "-o", tmp_path / "x.stream").code == 0
    assert cli("import", tmp_path / "x.stream", "-o", other).code == 0
    assert cli("diff", other, f"{recorded}#first").code == 0
    assert cli("diff", other, recorded).code == 1  # a file alone: its newest trace
