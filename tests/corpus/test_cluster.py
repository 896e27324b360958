"""``check(dask=ADDRESS)``: the same check on a dask.distributed LocalCluster (two
worker processes on loopback): identical outputs, a worker killed mid-run, a task that
kills every worker it runs on."""

from __future__ import annotations

import os
import re
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dask
import pytest
from distributed import Client, LocalCluster

from packr_replay.corpus import CheckReport, TraceResult, Verdict, check, junit_xml
from packr_replay.corpus.cluster import DaskExecutor
from packr_replay.errors import CorpusError

from .conftest import MIXED_TIME_LIMIT, run_mixed


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    """Two worker processes, one thread each, on loopback; a task that kills its worker
    twice is given up on (allowed-failures 1) so that test stays quick."""
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 1}),
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                     dashboard_address=":0") as c,
    ):  # fmt: skip
        yield c


@pytest.fixture(scope="module")
def lab_copy(_corpus_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    lab = tmp_path_factory.mktemp("cluster") / "lab"
    shutil.copytree(_corpus_template, lab)
    return lab


def _data(report: CheckReport) -> dict[str, Any]:
    """The JSON document without what is measured (times) or names the executor."""
    doc = report.to_json()
    doc.pop("executor"), doc.pop("elapsed_s")
    for trace in doc["traces"]:
        trace.pop("duration_s")
    return doc


class TestSameOutputs:
    """Summary, JSON and JUnit are the same whichever executor ran."""

    def test_mixed_corpus(
        self, cluster: LocalCluster, mixed_lab: Path, mixed: CheckReport
    ) -> None:
        remote = run_mixed(mixed_lab, dask=cluster.scheduler_address, jobs=None)
        local = mixed
        assert remote.counts() == {"reproduced": 4, "diverged": 2, "refused": 1,
                                   "over_caps": 2, "crashed": 1}  # fmt: skip
        assert _data(remote) == _data(local)
        assert list(remote.summary_lines())[1:] == list(local.summary_lines())[1:]
        times = re.compile(rb' time="[0-9.]+"')
        assert times.sub(b"", junit_xml(remote)) == times.sub(b"", junit_xml(local))
        assert remote.executor == f"dask cluster at {cluster.scheduler_address}"
        hang = next(r for r in remote.results if r.job.label == "hang")
        assert hang.outcome.duration_s >= MIXED_TIME_LIMIT


class TestWorkerDeaths:
    """Workers that die mid-run: tasks retried or reported, none counted twice."""

    def test_worker_killed_mid_run(self, cluster: LocalCluster, lab_copy: Path) -> None:
        with Client(cluster) as client:
            pids = client.run(os.getpid)
            killed: list[int] = []

            def kill_one(result: TraceResult) -> None:
                if not killed:  # the other traces are in flight: 0.3 s each
                    victim = sorted(pids.values())[0]
                    os.kill(victim, signal.SIGKILL)
                    killed.append(victim)

            executor = DaskExecutor(client, hosts=[f"{lab_copy / 'nasty.py'}:register"])
            report = check([lab_copy / "slow"], labels=["slow-*"], executor=executor,
                           on_result=kill_one)  # fmt: skip
            assert killed
            labels = [r.job.label for r in report.results]
            assert labels == [f"slow-{i}" for i in range(8)]  # each once, in order
            assert all(r.verdict is Verdict.REPRODUCED for r in report.results)
            client.wait_for_workers(2, timeout=60)  # the nanny restarted it

    def test_task_that_kills_every_worker_is_reported(
        self, cluster: LocalCluster, lab_copy: Path
    ) -> None:
        report = check([lab_copy / "slow"], labels=["killer", "slow-0"],
                       hosts=[f"{lab_copy / 'nasty.py'}:register"],
                       dask=cluster.scheduler_address)  # fmt: skip
        by = {r.job.label: r for r in report.results}
        assert by["killer"].verdict is Verdict.CRASHED
        assert "KilledWorker" in by["killer"].outcome.detail
        assert by["slow-0"].reproduced
        with Client(cluster) as client:
            client.wait_for_workers(2, timeout=60)


def test_workers_leave_no_scratch_folders(
    lab_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shipped builds and traces live in each worker's Dask directory: gone with the cluster."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))  # the workers' tempfile folder
    with (
        dask.config.set({"temporary-directory": str(scratch)}),
        LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                     dashboard_address=":0") as c,
    ):  # fmt: skip
        report = check([lab_copy / "slow"], labels=["slow-0"], dask=c.scheduler_address,
                       module=[f"actor={lab_copy / 'guests' / 'actor' / 'actor.wat'}"],
                       hosts=[f"{lab_copy / 'nasty.py'}:register"])  # fmt: skip
        assert [r.verdict for r in report.results] == [Verdict.REPRODUCED]
        assert list(scratch.rglob("packr-check-builds-*"))  # the build was shipped there
    assert not list(scratch.rglob("packr-check-*"))


def test_unreachable_scheduler() -> None:
    with pytest.raises(CorpusError, match="cannot reach the scheduler"):
        DaskExecutor("tcp://127.0.0.1:9", connect_timeout=0.5)
