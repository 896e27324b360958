"""Types of the optional C trampoline (``_speedups.c``); see ``native`` for its use."""

from typing import Any

CONTRACT: int
MODE_PYTHON: int
MODE_LIVE: int
MODE_RECORD: int
MODE_REPLAY: int

def configure(config: dict[str, Any], /) -> None: ...
def define(linker: int, functype: int, typed_import: TypedImport, /) -> int: ...

class ReplayFeed:
    pending: int
    served: int
    def __init__(self, kind_import: str, outcome_ok: str, refill: Any, view: Any = None) -> None: ...
    def load(self, records: list[Any], start: int, /) -> int: ...
    def take(self) -> int: ...

class RecordLog:
    def __init__(
        self,
        pending: list[Any],
        stack: list[Any],
        drain: Any,
        batch: int,
        max_delay: float,
        kind_import: str,
        outcome_ok: str,
    ) -> None: ...

class Host:
    mode: int
    native: int
    python: int
    def configure(self, mode: int, server: Any, guest_alloc: bool, scratch_cap: int | None, /) -> None: ...
    def set_memory(self, memory: bytes | None, /) -> None: ...

class TypedImport:
    def __init__(
        self,
        host: Host,
        interface: str,
        function: str,
        fallback: Any,
        call: Any,
        ctx: Any,
        failed: Any,
        write: Any,
    ) -> None: ...
