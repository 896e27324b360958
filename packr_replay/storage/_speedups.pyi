"""Types of the optional C accelerator (``_speedups.c``); see ``_accel`` for its use."""

from collections.abc import Iterable
from typing import Any

CONTRACT: int
RECORD_VIEW: Any

class LazyRecord:
    def __len__(self) -> int: ...
    def __getitem__(self, i: int) -> Any: ...

def configure(config: dict[str, Any], /) -> None: ...
def pack_chain(
    rows: Iterable[tuple[Any, ...]], first_seq: int, head: bytes, /
) -> tuple[bytes, bytes, int]: ...
def pack_rows(
    rows: Iterable[tuple[Any, ...]], first_seq: int, /
) -> tuple[bytes, bytes, int]: ...
def hash_records(buf: bytearray, lens: bytes, head: bytes, /) -> bytes: ...
def decode_segment(
    data: bytes,
    first_seq: int,
    count: int,
    prev: bytes | None = None,
    trace_id: object = None,
    /,
) -> Iterable[tuple[tuple[Any, ...], bytes]]: ...
def decode_segment_lazy(
    data: bytes, first_seq: int, count: int, prev: bytes, trace_id: object = None, /
) -> Iterable[tuple[tuple[Any, ...], bytes]]: ...
