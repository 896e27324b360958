"""Regression checks over a corpus of traces: which recorded runs does a new build of a
guest no longer reproduce? (``packr-replay check``)

::

    from packr_replay.corpus import check, write_junit

    report = check(["tests/traces", "bugs/*.db"], module="build/guest.wasm", jobs=4)
    print(report.summary())
    write_junit(report, "check.xml")
    raise SystemExit(report.exit_code)

Traces run in worker processes (:class:`LocalPool`) or on a Dask cluster
(``check(..., dask="tcp://scheduler:8786")``, the ``packr-replay[dask]`` extra); a trace
that crashes or hangs its worker is reported and the run goes on.
"""

from .check import CheckInterrupted, Executor, check
from .collect import SELECT_FIELDS, Builds, Selection, collect, find_stores
from .junit import junit_xml, write_junit
from .model import Outcome, TraceJob, TraceResult, Verdict
from .pool import LocalPool, default_jobs
from .replay import Checker
from .report import Change, CheckReport

__all__ = [
    "SELECT_FIELDS",
    "Builds",
    "Change",
    "CheckInterrupted",
    "CheckReport",
    "Checker",
    "Executor",
    "LocalPool",
    "Outcome",
    "Selection",
    "TraceJob",
    "TraceResult",
    "Verdict",
    "check",
    "collect",
    "default_jobs",
    "find_stores",
    "junit_xml",
    "write_junit",
]
