"""Deleting traces: what keeps a re-recorded trace file from growing run after run.

A trace's segments and index rows go with it (``ON DELETE CASCADE``), replays of it
keep their uuid link but lose the row link (``ON DELETE SET NULL``), and modules no
trace ran any more are dropped, so a file stays a complete, minimal bug report.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..errors import StoreError
from .model import TraceStatus
from .sqlite import translate_errors

if TYPE_CHECKING:
    from .store import TraceRef, TraceStore

__all__ = ["delete_traces"]


def delete_traces(store: TraceStore, refs: Iterable[TraceRef], *, vacuum: bool = False) -> int:
    """Delete traces (ids, uuids or labels: a label means its newest trace); returns
    how many went. A trace a live recorder is still writing is refused. ``vacuum``
    also gives the freed pages back to the file system."""
    if store.readonly:
        raise StoreError(f"{store.path} is open read-only; deleting traces writes to it")
    infos = {info.id: info for info in (store.trace(ref).info for ref in refs)}
    for info in infos.values():
        if info.status is TraceStatus.RECORDING:
            raise StoreError(f"trace {info.id} in {store.path} is still being recorded")
    if not infos:
        return 0
    db = store.db
    with translate_errors(store.path):
        db.execute("BEGIN IMMEDIATE")
        try:
            db.conn.executemany("DELETE FROM traces WHERE id = ?", [(i,) for i in infos])
            db.execute(
                "DELETE FROM modules WHERE sha256 NOT IN "
                "(SELECT module_sha256 FROM traces WHERE module_sha256 IS NOT NULL "
                "UNION SELECT module_sha256 FROM trace_packages WHERE module_sha256 IS NOT NULL)"
            )
            db.execute("COMMIT")
        except BaseException:
            db.rollback()
            raise
        if vacuum:
            db.vacuum()
    return len(infos)
