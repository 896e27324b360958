"""Child processes for the reliability suites: ``python -m tests.reliability.children``.

Commands (each prints ``ready <trace id>`` once recording has begun, when it records):

* ``record-forever DB GUEST`` records ``GUEST`` (``bench``: one endless ``calls(n)``;
  ``clock_actor``: endless ``run`` calls) through ``api.record_run`` into ``DB`` until
  it is killed.
* ``record DB GUEST N LABEL [GO]`` records ``N`` calls (bench: one ``calls(N)``;
  clock_actor: ``N`` ``run`` calls, each flushed at its return) and exits; with ``GO``,
  it waits after ``ready`` until that file exists (to start several together).
* ``fork JOB...`` imports everything once, then forks one child per ``JOB`` (a
  command and its arguments joined by ``;``), so several recorders start without
  paying Python's start-up and imports each; prints ``ready INDEX PID`` for each child
  as it begins recording and ``exit INDEX STATUS`` as each ends (STATUS: exit code, or
  minus the signal that killed it).
* ``long DB PHASE N`` one phase of the long-trace suite (``record``, ``replay``,
  ``diff``, ``show``), printing JSON with its seconds and the process's peak RSS.
"""

from __future__ import annotations

import itertools
import json
import os
import resource
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from packr_replay import api
from packr_replay.abi import S64, UNIT, String, Value
from packr_replay.runtime import Runtime
from packr_replay.runtime.demo import DemoHost, example_guest

#: Enough fuel for a million bench calls (the default budget is per export call).
FUEL = 10**13


def _host(seed: int = 0) -> DemoHost:
    dice = itertools.count(seed)
    clock = itertools.count(1_700_000_000_000_000_000, 1000)
    return DemoHost(environ={"USER": "ada"}, clock=lambda: next(clock),
                    randbelow=lambda b: next(dice) % b)  # fmt: skip


def _calls(guest: str, n: int | None) -> Iterator[tuple[str, Value]]:
    if guest == "bench":
        yield "calls", S64(n if n is not None else 10**12)
        return
    for i in itertools.count():
        if n is not None and i >= n:
            return
        yield "run", String(f"n{i}") if i % 3 else UNIT


#: What ``record`` prints when it starts recording (``fork`` children add their index).
READY = ["ready"]


def record(db: str, guest: str, n: int | None, label: str, go: str | None = None) -> None:
    runtime = Runtime(fuel=FUEL)
    module = runtime.load_module(example_guest(guest))

    def announced() -> Iterator[tuple[str, Value]]:
        sys.stdout.flush()
        os.write(1, (" ".join(READY) + "\n").encode())  # one write: siblings share the pipe
        if go is not None:
            deadline = time.monotonic() + 120
            while not os.path.exists(go):
                if time.monotonic() > deadline:
                    raise SystemExit(f"{go} never appeared")
                time.sleep(0.002)
        yield from _calls(guest, n)

    api.record_run(module, announced(), host=_host(), store=db, label=label)


def _peak_mb() -> float:
    """Peak RSS of this process image: VmHWM (``ru_maxrss`` would include the parent's
    peak, which Linux carries across fork and exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def long_phase(db: str, phase: str, n: int) -> dict[str, Any]:
    """One phase over the long trace(s) in ``db``: ``record`` writes trace ``long`` with
    ``calls(n)`` (n + 2 events); ``replay`` replays it, saving the replay run as a trace
    of its own; ``diff`` compares the recording with that replay run; ``show`` runs the
    CLI's ``show --limit 20`` and ``verify`` on the file."""
    t0 = time.perf_counter()
    out: dict[str, Any] = {"phase": phase}
    if phase == "record":
        runtime = Runtime(fuel=FUEL)
        module = runtime.load_module(example_guest("bench"))
        result = api.record_run(module, [("calls", S64(n))], host=_host(), store=db,
                                label="long")  # fmt: skip
        out["events"] = result.events
    elif phase == "replay":
        report = api.replay(db, "long", save=True)
        out.update(reproduced=report.reproduced, events=report.events_replayed,
                   saved=report.saved_trace)  # fmt: skip
    elif phase == "diff":
        d = api.diff(f"{db}#long", f"{db}#replay of long")
        out.update(identical=d.identical, events=d.events_a, summary=d.summary())
    elif phase == "show":
        from packr_replay.cli import main

        codes = [main(["show", f"{db}#long", "--limit", "20"]),
                 main(["show", f"{db}#long", str(n // 2)]),
                 main(["verify", db])]  # fmt: skip
        out["codes"] = codes
    else:
        raise SystemExit(f"unknown phase {phase}")
    out["seconds"] = time.perf_counter() - t0
    out["peak_rss_mb"] = _peak_mb()
    return out


def fork(jobs: list[list[str]]) -> int:
    """Run each job in a forked child of this (threadless, fully imported) process."""
    import threading

    assert threading.active_count() == 1, "fork only from a process without threads"
    pids = {}
    for index, job in enumerate(jobs):
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:  # the child
            code = 1
            try:
                READY[:] = ["ready", str(index), str(os.getpid())]
                code = main(job)
            except BaseException:
                import traceback

                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        pids[pid] = index
    while pids:
        pid, status = os.wait()
        print(f"exit {pids.pop(pid)} {os.waitstatus_to_exitcode(status)}", flush=True)
    return 0


def main(argv: list[str]) -> int:
    command, *args = argv
    if command == "fork":
        return fork([job.split(";") for job in args])
    if command == "record-forever":
        record(args[0], args[1], None, "victim")
    elif command == "record":
        record(args[0], args[1], int(args[2]), args[3], args[4] if len(args) > 4 else None)
    elif command == "long":
        result = long_phase(args[0], args[1], int(args[2]))
        print("RESULT " + json.dumps(result), flush=True)
    elif command == "baseline":
        import packr_replay.cli  # noqa: F401  (what every phase imports)

        print("RESULT " + json.dumps({"peak_rss_mb": _peak_mb()}), flush=True)
    else:
        raise SystemExit(f"unknown command {command}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
