"""The CLI on a composition's trace: play each package alone (--package, --module),
show and info name the packages, diff compares package by package."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from packr_replay import api
from packr_replay.runtime import CompositionBuilder, DemoHost
from tests.replay.test_composition import CALLS, TRIPLER

from .conftest import GUESTS, Invoke


def _composition(doubler: Path | str) -> CompositionBuilder:
    return (
        CompositionBuilder()
        .add_package("doubler", doubler)
        .add_package("actor", GUESTS / "host_actor.wasm")
        .add_host(DemoHost())
        .wire("actor", "math", "double", "doubler", "transform")
    )


@pytest.fixture
def comp(tmp_path: Path) -> Path:
    path = tmp_path / "comp.db"
    api.record_composition(_composition(GUESTS / "echo.wasm"), CALLS, store=path, label="comp")
    return path


class TestPlay:
    """play on a composition's trace."""

    def test_every_package_alone(self, cli: Invoke, comp: Path) -> None:
        run = cli("play", comp)
        assert run.code == 0, run.err
        assert "package doubler alone: reproduced (4 of 4 events)" in run.out
        assert "package actor alone: reproduced (7 of 7 events)" in run.out
        assert "#2 transform → 10s64" in run.out

    def test_one_package_alone(self, cli: Invoke, comp: Path) -> None:
        run = cli("play", comp, "--package", "actor")
        assert run.code == 0, run.err
        assert run.out.startswith("replaying package actor alone, of trace 1 'comp'")
        assert "#0 process → 11s64" in run.out
        assert "transform" not in run.out

    def test_a_new_build_of_one_package(self, cli: Invoke, comp: Path, tmp_path: Path) -> None:
        build = tmp_path / "tripler.wat"
        build.write_text(TRIPLER)
        run = cli("play", comp, "--package", "doubler", "--module", build)
        assert run.code == 1
        assert "export 'transform' returned a different value" in run.out
        assert "expected: #3 return transform -> 10s64" in run.out
        assert "actual:   return transform -> 15s64" in run.out

    def test_json(self, cli: Invoke, comp: Path) -> None:
        out = json.loads(cli("play", comp, "--json").out)
        assert out["reproduced"] is True
        assert list(out["packages"]) == ["doubler", "actor"]
        assert out["packages"]["doubler"]["events_replayed"] == 4
        one = json.loads(cli("play", comp, "-p", "doubler", "--json").out)
        assert (one["package"], one["packages"], one["events_total"]) == ("doubler", {}, 4)

    def test_errors(self, cli: Invoke, comp: Path, tmp_path: Path) -> None:
        run = cli("play", comp, "--package", "nowhere")
        assert run.code == 2
        assert "has no package 'nowhere' (it has doubler, actor)" in run.err
        build = tmp_path / "tripler.wat"
        build.write_text(TRIPLER)
        assert "a new build replays one package" in cli("play", comp, "--module", build).err

    def test_installed_executable(
        self, sh: Callable[..., subprocess.CompletedProcess[str]], comp: Path
    ) -> None:
        done = sh("play", comp, "--package", "doubler")
        assert done.returncode == 0, done.stderr
        assert "reproduced: 2 export call(s), 4 event(s)" in done.stdout
        saved = sh("play", comp, "--save")
        assert saved.returncode == 0, saved.stderr
        assert "saved the replay run as trace 2" in saved.stdout
        diff = sh("diff", f"{comp}#1", f"{comp}#2")
        assert diff.returncode == 0, diff.stdout + diff.stderr
        assert "identical: 11 events" in diff.stdout


class TestInspect:
    """show and info name each event's package and the composition's packages."""

    def test_show_names_the_package(self, cli: Invoke, comp: Path) -> None:
        out = cli("show", f"{comp}#comp", "--limit", "0").out
        assert "doubler: transform" in out
        assert "actor: math.double" in out
        event = json.loads(cli("show", f"{comp}#comp", "2", "--json").out)["event"]
        assert event["package"] == "doubler"
        assert "package   doubler" in cli("show", f"{comp}#comp", "2").out

    def test_info_lists_packages_and_wires(self, cli: Invoke, comp: Path) -> None:
        out = cli("info", f"{comp}#comp").out
        assert "package doubler: module echo" in out
        assert "package actor: module host_actor" in out
        assert "wire actor: math.double → doubler.transform" in out
        data = json.loads(cli("info", f"{comp}#comp", "--json").out)
        assert [p["name"] for p in data["packages"]] == ["doubler", "actor"]
        assert data["wires"] == [["actor", "math", "double", "doubler", "transform"]]


class TestDiff:
    """diff aligns two compositions' traces per package."""

    def test_per_package(self, cli: Invoke, comp: Path, tmp_path: Path) -> None:
        build = tmp_path / "tripler.wat"
        build.write_text(TRIPLER)
        api.record_composition(_composition(build), CALLS, store=comp, label="tripled")
        run = cli("diff", f"{comp}#comp", f"{comp}#tripled")
        assert run.code == 1
        assert "differing: doubler, actor" in run.out
        assert "doubler: return transform" in run.out
        data = json.loads(cli("diff", f"{comp}#comp", f"{comp}#tripled", "--json").out)
        assert data["calls"]["actor: import math.double"]["changed"] == 1
