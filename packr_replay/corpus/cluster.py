"""The Dask executor: a corpus check on an existing ``dask.distributed`` cluster
(``packr-replay check --dask ADDRESS``; ``pip install 'packr-replay[dask]'``).

The only module that imports dask. Each task is one trace, shipped as bundle bytes (the
trace and its module in a self-contained file, see :func:`~packr_replay.storage.bundle`),
so workers need no shared filesystem; a build under test is scattered to every worker
once. On the worker the trace is replayed by the same code as locally: a
:class:`~.pool.LocalPool` of one replay process per worker thread, so a trace that
crashes or hangs kills that process (reported ``crashed`` or ``over_caps``, as locally)
and never the Dask worker. A Dask worker that dies anyway (killed, out of memory) is
Dask's business: its tasks are retried elsewhere, and a task that keeps killing workers
ends as ``KilledWorker``, reported ``crashed``. Each trace's outcome is counted once.

Dask moves task arguments with pickle: the cluster is part of the trusted side. The
trace itself travels as opaque bytes and is opened on the worker as the untrusted file
it is.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import tempfile
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import CorpusError, PackrReplayError, StoreError
from .model import Outcome, TraceJob, Verdict
from .pool import LocalPool, caps_data

if TYPE_CHECKING:
    from ..replay.caps import ReplayCaps

__all__ = ["DaskExecutor", "check_bundle"]

_WINDOW_PER_THREAD = 4  # tasks in flight per worker thread: bundles are made as they go
_BUNDLE_THREADS = 2  # threads making bundles on the coordinator


def _client_class() -> Any:
    try:
        from distributed import Client
    except ImportError as exc:
        raise CorpusError(
            f"--dask needs dask.distributed ({exc}); install it with: "
            "pip install 'packr-replay[dask]'"
        ) from None
    return Client


class DaskExecutor:
    """Runs jobs on the cluster at ``address`` (or on a ``distributed.Client``)."""

    def __init__(
        self,
        address: Any,
        *,
        hosts: Sequence[str] = (),
        caps: ReplayCaps | None = None,
        connect_timeout: float = 30.0,
    ) -> None:
        client_class = _client_class()
        self._own = not isinstance(address, client_class)
        if self._own:
            try:
                self.client = client_class(address, timeout=connect_timeout)
            except (OSError, TimeoutError) as exc:
                raise CorpusError(f"--dask {address}: cannot reach the scheduler: {exc}") from None
        else:
            self.client = address
        self.address = str(self.client.scheduler.address)
        self.hosts = list(hosts)
        self.caps = caps_data(caps)
        self.retried = 0

    def describe(self) -> str:
        return f"dask cluster at {self.address}"

    def close(self) -> None:
        if self._own:
            self.client.close()

    def _threads(self) -> int:
        return max(1, int(sum(self.client.nthreads().values())))

    def run(self, jobs: Iterable[TraceJob], on_outcome: Callable[[TraceJob, Outcome], None]) -> None:
        """Ship every job, report each outcome as it comes back (on this thread).

        Bundles are made ahead by a few threads (SQLite works outside the GIL), at most
        a window of them, so making them overlaps with the cluster's work."""
        from distributed import as_completed

        todo = list(jobs)
        builds = self._scatter_builds(todo)
        prefix = f"packr-check-{uuid.uuid4().hex[:12]}"
        window = _WINDOW_PER_THREAD * self._threads()
        running: dict[Any, TraceJob] = {}
        bundler = _Bundler()
        makers = ThreadPoolExecutor(_BUNDLE_THREADS, thread_name_prefix="packr-check-bundle")
        pending = iter(enumerate(todo))
        ahead: deque[tuple[int, TraceJob, Future[bytes]]] = deque()
        done = as_completed()  # type: ignore[no-untyped-call]

        def prefetch() -> None:
            while len(ahead) < window:
                item = next(pending, None)
                if item is None:
                    return
                index, job = item
                ahead.append((index, job, makers.submit(bundler.bundle, job)))

        def submit_more() -> None:
            prefetch()
            while len(running) < window and ahead:
                index, job, made = ahead.popleft()
                prefetch()
                try:
                    data = made.result()
                except PackrReplayError as exc:
                    on_outcome(job, _shipping_refused(exc))
                    continue
                future = self.client.submit(
                    check_bundle, job.to_dict(), data, builds.get(job.build or ""),
                    self.hosts, self.caps, key=f"{prefix}-{index}", pure=False,
                )  # fmt: skip
                running[future] = job
                done.add(future)  # type: ignore[no-untyped-call]

        try:
            submit_more()
            while running:
                future = next(done)
                job = running.pop(future)
                on_outcome(job, self._outcome(future))
                future.release()
                submit_more()
        except BaseException:
            for future in running:
                future.cancel()
            raise
        finally:
            for _, _, made in ahead:
                made.cancel()
            makers.shutdown(wait=True)
            bundler.close()
            for future in builds.values():
                future.release()

    def _scatter_builds(self, jobs: list[TraceJob]) -> dict[str, Any]:
        """Each build's bytes, sent to every worker once."""
        futures = {}
        for path in sorted({j.build for j in jobs if j.build is not None}):
            data = Path(path).read_bytes()
            futures[path] = self.client.scatter(data, broadcast=True, hash=True)
        return futures

    def _outcome(self, future: Any) -> Outcome:
        status = future.status
        if status == "finished":
            return Outcome.from_dict(future.result())
        try:
            exc = future.exception()
        except BaseException as error:  # cancelled
            exc = error
        name = type(exc).__name__
        if name == "KilledWorker":
            detail = "the Dask workers running it died each time it was tried (KilledWorker)"
        else:
            detail = f"the task failed on the cluster: {name}: {exc}"
        return Outcome(Verdict.CRASHED, detail, report=f"{detail}\n{exc!r}")


def _shipping_refused(exc: BaseException) -> Outcome:
    """A trace the coordinator could not bundle: refused as a bad file, in the words of
    the error behind the bundle's refusal."""
    cause = exc.__cause__ if isinstance(exc.__cause__, PackrReplayError) else exc
    text = "; ".join(line.strip() for line in str(cause).splitlines() if line.strip())
    return Outcome(Verdict.REFUSED, f"bad file: {text}", report=str(cause))


class _Bundler:
    """Turns jobs into bundle bytes from several threads: each thread keeps the store it
    last read open (jobs come grouped by file), and bundles are written to a scratch
    directory in memory where there is one (they are read back at once and deleted)."""

    def __init__(self) -> None:
        shm = Path("/dev/shm")
        where = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
        self._tmp = tempfile.TemporaryDirectory(prefix="packr-check-ship-", dir=where)
        self._local = threading.local()
        self._stores: list[Any] = []
        self._lock = threading.Lock()

    def bundle(self, job: TraceJob) -> bytes:
        from ..storage import TraceStore

        store = getattr(self._local, "store", None)
        if store is None or str(store.path) != job.file:
            if store is not None:
                store.close()
            store = TraceStore(job.file, readonly=True, threads=True)  # closed by close()
            self._local.store = store
            with self._lock:
                self._stores.append(store)
        dest = Path(self._tmp.name) / f"{uuid.uuid4().hex}.db"
        try:
            store.bundle(job.trace_id, dest)
            return dest.read_bytes()
        finally:
            dest.unlink(missing_ok=True)

    def close(self) -> None:
        for store in self._stores:
            store.close()
        self._tmp.cleanup()


# ------------------------------------------------------------ on the worker

_local = threading.local()
_dirs: dict[str, str] = {}
_dirs_lock = threading.Lock()


def _scratch(kind: str) -> str:
    """This worker process's folder for shipped builds or traces: inside the Dask worker's
    own local directory, which Dask removes when the worker closes, so a cluster leaves no
    folders behind (outside a worker, a temporary folder removed at exit)."""
    with _dirs_lock:
        if kind not in _dirs:
            _dirs[kind] = tempfile.mkdtemp(prefix=f"packr-check-{kind}-", dir=_worker_dir())
            atexit.register(shutil.rmtree, _dirs[kind], ignore_errors=True)
        return _dirs[kind]


def _worker_dir() -> str | None:
    from distributed import get_worker

    try:
        return str(get_worker().local_directory)
    except ValueError:  # not running in a Dask worker
        return None


def _pool(hosts: list[str], caps: dict[str, Any] | None) -> LocalPool:
    """This worker thread's replay process (kept between tasks)."""
    from ..replay.caps import ReplayCaps

    key = (tuple(hosts), None if caps is None else tuple(sorted(caps.items())))
    pools: dict[Any, LocalPool] = getattr(_local, "pools", None) or {}
    _local.pools = pools
    if key not in pools:
        pools[key] = LocalPool(1, hosts=hosts, caps=None if caps is None else ReplayCaps(**caps))
    return pools[key]


def check_bundle(
    job_data: dict[str, Any],
    bundle: bytes,
    build: bytes | None,
    hosts: list[str],
    caps: dict[str, Any] | None,
) -> dict[str, Any]:
    """The task: replay the trace in ``bundle`` against ``build`` (``None``: the module
    in the bundle) and return the outcome as a dict."""
    job = TraceJob.from_dict(job_data)
    if build is not None:
        path = Path(_scratch("builds"), hashlib.sha256(build).hexdigest() + ".wasm")
        if not path.exists():
            partial = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
            partial.write_bytes(build)
            os.replace(partial, path)
        job = replace(job, build=str(path))
    trace = Path(_scratch("traces"), f"{uuid.uuid4().hex}.db")
    trace.write_bytes(bundle)
    try:
        if job.uuid is None:
            raise StoreError("a shipped trace needs its uuid")
        outcome = _pool(hosts, caps).check_one(job, (str(trace), job.uuid))
    finally:
        trace.unlink(missing_ok=True)
    return outcome.to_dict()
