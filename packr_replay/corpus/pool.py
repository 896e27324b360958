"""The local executor: traces replayed by a pool of worker processes on this machine.

Each worker (``python -m packr_replay.corpus.worker``) replays one trace at a time and
answers over a pipe, so the coordinator always knows which trace a worker holds. That
is what lets a bad trace cost only itself: a worker that dies (a crash in native code,
the OOM killer, a host function calling ``os._exit``) makes its trace ``crashed``, a
worker that does not answer within the time cap and a grace period (a host function
that blocks, where the replay's own deadline cannot interrupt it) is killed and its
trace is ``over_caps``; either way a fresh
worker takes its place and the run goes on. ``concurrent.futures`` cannot do this: a
dead worker breaks its whole pool, and a hung one cannot be stopped.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ..errors import CorpusError
from .model import Outcome, TraceJob, Verdict

if TYPE_CHECKING:
    from ..replay.caps import ReplayCaps

__all__ = ["LocalPool", "caps_data", "default_jobs", "kill_after"]
_STARTUP_TIMEOUT = 60.0  # a worker that cannot import packr_replay in this long is broken

#: A job, and where its trace is when not at ``job.file``/``job.trace_id``: (path, ref).
Task = tuple[TraceJob, tuple[str, str] | None]


def caps_data(caps: ReplayCaps | None) -> dict[str, Any] | None:
    """Caps as JSON for a worker (``None``: the defaults)."""
    if caps is None:
        return None
    return {"fuel": caps.fuel, "time": caps.time, "memory": caps.memory, "after_end": caps.after_end}


def kill_after(time_cap: float | None) -> float | None:
    """Seconds after which a worker still busy with one trace is killed: the time cap
    (which the replay enforces itself, inside the guest) plus a grace period for a
    replay stuck outside the guest."""
    if time_cap is None:
        return None
    return time_cap + min(5.0, max(1.0, time_cap / 4))


def default_jobs() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


@dataclass(eq=False)
class _Worker:
    proc: subprocess.Popen[bytes]
    stderr: IO[bytes]
    ready: bool = False
    task: Task | None = None
    started: float = 0.0
    buf: bytearray = field(default_factory=bytearray)


class LocalPool:
    """Worker processes replaying traces; use as a context manager (or :meth:`close`).

    ``jobs``: how many workers (default: the CPUs). ``hosts``: host specs for imports
    the traces do not serve. ``caps``: the limits each replay runs under (default
    ``ReplayCaps()``); a worker still busy with a trace a little after its time cap is
    killed.
    """

    def __init__(
        self,
        jobs: int | None = None,
        *,
        hosts: Sequence[str] = (),
        caps: ReplayCaps | None = None,
        python: str | None = None,
    ) -> None:
        if jobs is not None and jobs < 1:
            raise CorpusError(f"jobs must be at least 1 (got {jobs})")
        self.jobs = jobs or default_jobs()
        self.hosts = list(hosts)
        self.caps = caps
        self.time_cap = 60.0 if caps is None else caps.time  # ReplayCaps' default
        self.time_limit = kill_after(self.time_cap)
        self.python = python or sys.executable
        self._workers: list[_Worker] = []
        self._selector = selectors.DefaultSelector()
        self.crashes = 0
        self.kills = 0

    def __repr__(self) -> str:
        return f"<LocalPool {self.jobs} worker(s)>"

    def describe(self) -> str:
        return f"{self.jobs} local worker process(es)"

    # ------------------------------------------------------------ workers

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        here = str(Path(__file__).resolve().parents[2])  # the packr_replay this process runs
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [here, env.get("PYTHONPATH")]))
        return env

    def _spawn(self) -> _Worker:
        err = tempfile.TemporaryFile(prefix="packr-check-worker-")  # noqa: SIM115 - closed in _retire
        proc = subprocess.Popen(
            [self.python, "-m", "packr_replay.corpus.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            env=self._env(),
            start_new_session=True,  # Ctrl-C reaches the coordinator, which stops them
        )
        worker = _Worker(proc, err, started=time.monotonic())
        assert proc.stdin is not None and proc.stdout is not None
        os.set_blocking(proc.stdout.fileno(), False)
        self._selector.register(proc.stdout, selectors.EVENT_READ, worker)
        self._write(worker, {"hosts": self.hosts, "caps": caps_data(self.caps)})
        self._workers.append(worker)
        return worker

    def _write(self, worker: _Worker, message: dict[str, Any]) -> bool:
        assert worker.proc.stdin is not None
        try:
            worker.proc.stdin.write(json.dumps(message).encode() + b"\n")
            worker.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return False
        return True

    def _retire(self, worker: _Worker, *, kill: bool) -> int | None:
        """Stop a worker and forget it; its exit status."""
        with contextlib.suppress(KeyError, ValueError):
            assert worker.proc.stdout is not None
            self._selector.unregister(worker.proc.stdout)
        if worker in self._workers:
            self._workers.remove(worker)
        proc = worker.proc
        if kill:
            with contextlib.suppress(OSError):
                proc.kill()
        else:
            with contextlib.suppress(OSError):
                assert proc.stdin is not None
                proc.stdin.close()
        try:
            code = proc.wait(timeout=None if kill else 5)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        for stream in (proc.stdin, proc.stdout):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()
        return code

    def _stderr_tail(self, worker: _Worker, lines: int = 8) -> str:
        try:
            worker.stderr.seek(0, os.SEEK_END)
            size = worker.stderr.tell()
            worker.stderr.seek(max(0, size - 4096))
            text = worker.stderr.read().decode("utf-8", "replace")
        except OSError:
            return ""
        finally:
            with contextlib.suppress(OSError):
                worker.stderr.close()
        return "\n".join(text.strip().splitlines()[-lines:])

    def close(self) -> None:
        """Stop every worker (those busy are killed)."""
        for worker in list(self._workers):
            self._retire(worker, kill=worker.task is not None or not worker.ready)
            with contextlib.suppress(OSError):
                worker.stderr.close()

    def __enter__(self) -> LocalPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- running

    def run(
        self,
        jobs: Iterable[TraceJob | Task],
        on_outcome: Callable[[TraceJob, Outcome], None],
    ) -> None:
        """Replay every job, calling ``on_outcome`` as each finishes (in completion
        order, on this thread). Ctrl-C stops the workers and propagates."""
        pending: deque[Task] = deque(j if isinstance(j, tuple) else (j, None) for j in jobs)
        try:
            self._run(pending, on_outcome)
        except BaseException:
            self.close()
            raise

    def _run(self, pending: deque[Task], on_outcome: Callable[[TraceJob, Outcome], None]) -> None:
        while len(self._workers) < min(self.jobs, len(pending)):
            self._spawn()
        while pending or any(w.task is not None for w in self._workers):
            for worker in list(self._workers):
                if worker.ready and worker.task is None and pending:
                    task = pending.popleft()
                    worker.task, worker.started = task, time.monotonic()
                    job, where = task
                    path, ref = where if where is not None else (None, None)
                    if not self._write(worker, {"job": job.to_dict(), "path": path, "ref": ref}):
                        self._died(worker, on_outcome, pending)
            for key, _ in self._selector.select(self._wait()):
                self._read(key.data, on_outcome, pending)
            self._check_deadlines(on_outcome, pending)

    def _wait(self) -> float | None:
        now = time.monotonic()
        ends = []
        for w in self._workers:
            if not w.ready:
                ends.append(w.started + _STARTUP_TIMEOUT)
            elif w.task is not None and self.time_limit is not None:
                ends.append(w.started + self.time_limit)
        return max(0.0, min(ends) - now) if ends else None

    def _read(
        self, worker: _Worker, on_outcome: Callable[[TraceJob, Outcome], None], pending: deque[Task]
    ) -> None:
        assert worker.proc.stdout is not None
        try:
            chunk = os.read(worker.proc.stdout.fileno(), 1 << 16)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._died(worker, on_outcome, pending)
            return
        worker.buf += chunk
        while b"\n" in worker.buf:
            line, _, rest = bytes(worker.buf).partition(b"\n")
            worker.buf = bytearray(rest)
            self._message(worker, json.loads(line), on_outcome)

    def _message(
        self, worker: _Worker, message: dict[str, Any], on_outcome: Callable[[TraceJob, Outcome], None]
    ) -> None:
        if "error" in message:
            self._retire(worker, kill=True)
            raise CorpusError(f"a worker could not start: {message['error']}")
        if message.get("ready"):
            worker.ready = True
            return
        task, worker.task = worker.task, None
        if task is None:
            raise CorpusError(f"a worker answered with no trace in hand: {str(message)[:200]}")
        on_outcome(task[0], Outcome.from_dict(message["outcome"]))

    def _died(
        self, worker: _Worker, on_outcome: Callable[[TraceJob, Outcome], None], pending: deque[Task]
    ) -> None:
        code = self._retire(worker, kill=True)
        tail = self._stderr_tail(worker)
        if not worker.ready:
            raise CorpusError(
                f"a worker process exited before it was ready ({_status(code)})"
                + (f": {tail.splitlines()[-1]}" if tail else "")
            )
        task = worker.task
        if task is not None:
            self.crashes += 1
            detail = f"the worker process died ({_status(code)}) while replaying this trace"
            report = detail + (f"; its last output:\n{tail}" if tail else "")
            on_outcome(task[0], Outcome(Verdict.CRASHED, detail, report=report,
                                        duration_s=time.monotonic() - worker.started))  # fmt: skip
        if pending and len(self._workers) < self.jobs:
            self._spawn()

    def _check_deadlines(
        self, on_outcome: Callable[[TraceJob, Outcome], None], pending: deque[Task]
    ) -> None:
        now = time.monotonic()
        for worker in list(self._workers):
            if not worker.ready and now - worker.started > _STARTUP_TIMEOUT:
                self._retire(worker, kill=True)
                raise CorpusError(f"a worker did not start within {_STARTUP_TIMEOUT:.0f} s")
            task = worker.task
            if task is None or self.time_limit is None or now - worker.started < self.time_limit:
                continue
            self.kills += 1
            self._retire(worker, kill=True)
            with contextlib.suppress(OSError):
                worker.stderr.close()
            detail = (
                f"no result within the time cap of {self.time_cap:g} s (stuck outside the "
                f"guest, where the cap cannot interrupt it); its worker process was killed "
                f"after {self.time_limit:g} s"
            )
            on_outcome(task[0], Outcome(Verdict.OVER_CAPS, detail, cap="time", report=detail,
                                        duration_s=now - worker.started))  # fmt: skip
            if pending and len(self._workers) < self.jobs:
                self._spawn()

    def check_one(self, job: TraceJob, where: tuple[str, str] | None = None) -> Outcome:
        """Replay one job (the trace ``ref`` of the store at ``path`` when ``where`` is
        given) and return its outcome."""
        got: list[Outcome] = []
        self.run([(job, where)], lambda _, outcome: got.append(outcome))
        return got[0]


def _status(code: int | None) -> str:
    if code is None:
        return "status unknown"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"
