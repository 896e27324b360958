"""The public surface: a curated ``__all__``, the protocols, and the layer boundary."""

from __future__ import annotations

import ast
from pathlib import Path

import packr_replay
import packr_replay.storage as storage
from packr_replay.storage import EventSink, EventSource, MemoryTrace, TraceStore


def isort_key(name: str) -> tuple[int, str]:
    """Constants, then classes, then functions (ruff's RUF022 order)."""
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


class TestPublicNames:
    """``packr_replay.storage.__all__`` is sorted, complete for the brief, and importable."""

    def test_sorted_and_resolvable(self) -> None:
        assert storage.__all__ == sorted(storage.__all__, key=isort_key)
        for name in storage.__all__:
            assert getattr(storage, name) is not None

    def test_promised_names(self) -> None:
        promised = {
            "TraceStore", "Trace", "TraceWriter", "Event", "EventKind", "Outcome", "TraceStatus",
            "TraceInfo", "TRACE_FORMAT_VERSION", "MemoryTrace", "EventSink", "EventSource",
        }  # fmt: skip
        assert promised <= set(storage.__all__)


class TestProtocols:
    """Both the SQLite and the memory implementations satisfy the replay layer's seam."""

    def test_sqlite(self, store: TraceStore) -> None:
        writer = store.begin_trace(None)
        assert isinstance(writer, EventSink)
        assert isinstance(store.trace(writer.trace_id), EventSource)
        writer.finish()

    def test_memory(self) -> None:
        memory = MemoryTrace()
        assert isinstance(memory, EventSink)
        assert isinstance(memory, EventSource)

    def test_memory_copy_of_a_stored_trace(self, store: TraceStore) -> None:
        from .util import write_events

        with store.begin_trace(None, label="x") as writer:
            write_events(writer, 20)
        stored = store.trace("x")
        memory = MemoryTrace.copy_of(stored)
        assert list(memory.events()) == list(stored.events())
        assert memory.info == stored.info
        assert memory.verify().ok


class TestLayerBoundary:
    """Only the storage layer imports sqlite3, sqlite_utils or msgpack."""

    def test_imports(self) -> None:
        root = Path(packr_replay.__file__).parent
        offenders = []
        for source in root.rglob("*.py"):
            if source.is_relative_to(root / "storage"):
                continue
            for node in ast.walk(ast.parse(source.read_text())):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                offenders += [
                    f"{source.relative_to(root)}: {n}"
                    for n in names
                    if n.split(".")[0] in {"sqlite3", "sqlite_utils", "msgpack"}
                ]
        assert offenders == []
