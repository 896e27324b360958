"""JUnit XML for CI systems: each trace a test case.

``reproduced`` passes, ``diverged`` and ``over_caps`` are failures (the build did not
reproduce the recording), ``refused`` and ``crashed`` are errors (the trace could not be
checked). Against a baseline, only a regression fails (reproduced with the baseline,
not with the new build); every other trace passes, its verdicts in ``system-out``. Text from a trace (labels, names, values in reports) is untrusted: characters
XML 1.0 cannot carry are replaced, so a hostile label cannot break the file.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from .model import TraceResult, Verdict
from .report import Change, CheckReport

__all__ = ["junit_xml", "write_junit"]

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _clean(text: str) -> str:
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _case(parent: ET.Element, result: TraceResult, change: Change | None, baseline: bool) -> None:
    job, outcome = result.job, result.outcome
    name = f"#{job.trace_id}" + (f" {job.label}" if job.label else "") if job.trace_id else "(file)"
    case = ET.SubElement(
        parent,
        "testcase",
        classname=_clean(job.file),
        name=_clean(name + (" (baseline)" if job.baseline else "")),
        time=f"{outcome.duration_s:.3f}",
    )
    if baseline:
        if change is None:
            return
        kind = change.kind
        text = f"{kind}: {change.before.verdict} with the baseline, {change.after.verdict} now"
        if kind != "regressed":
            ET.SubElement(case, "system-out").text = _clean(text)
            return
        element = ET.SubElement(case, "failure", type="regressed", message=_clean(text))
        element.text = _clean(outcome.report or outcome.detail)
        return
    if result.reproduced:
        return
    tag = "failure" if outcome.verdict in (Verdict.DIVERGED, Verdict.OVER_CAPS) else "error"
    element = ET.SubElement(
        case, tag, type=str(outcome.verdict), message=_clean(outcome.detail)
    )
    element.text = _clean(outcome.report or outcome.detail)


def junit_xml(report: CheckReport, *, name: str = "packr-replay check") -> bytes:
    """The report as a JUnit XML document (one ``testsuite``, a ``testcase`` per trace)."""
    results = report.results
    counts = report.counts()
    failures = counts[str(Verdict.DIVERGED)] + counts[str(Verdict.OVER_CAPS)]
    errors = counts[str(Verdict.REFUSED)] + counts[str(Verdict.CRASHED)]
    baseline = report.baseline is not None
    changes = {(c.after.job.file, c.after.job.trace_id): c for c in report.changes()}
    if baseline:
        failures = sum(1 for c in changes.values() if c.kind == "regressed")
        errors = 0
    root = ET.Element("testsuites")
    suite = ET.SubElement(
        root,
        "testsuite",
        name=name,
        tests=str(len(results)),
        failures=str(failures),
        errors=str(errors),
        skipped="0",
        time=f"{sum(r.outcome.duration_s for r in results):.3f}",
    )
    for result in results:
        _case(suite, result, changes.get((result.job.file, result.job.trace_id)), baseline)
    ET.indent(root)
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data + b"\n"


def write_junit(report: CheckReport, path: str | os.PathLike[str]) -> Path:
    """Write :func:`junit_xml` to ``path`` (replaced atomically)."""
    dest = Path(path)
    partial = dest.with_name(f".{dest.name}.partial")
    partial.write_bytes(junit_xml(report))
    os.replace(partial, dest)
    return dest
