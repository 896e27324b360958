"""What one instance's store may hold: wasmtime's store limits, over the whole store.

wasmtime limits each linear memory and each table on its own, so a guest with three
memories, or four tables, would get three or four times the limit. Here the memory
limit is the instance's total: each memory gets its share, and the number of
memories, tables and instances is held to what the module declares (memories and
tables it imports or defines; one instance). Tables take a quarter of the memory
limit at 8 bytes an element, and at least :data:`MIN_TABLE_ELEMENTS` each, which is
far more than a packr guest's function table ever holds.
"""

from __future__ import annotations

from dataclasses import dataclass

import wasmtime

__all__ = ["MIN_TABLE_ELEMENTS", "StoreLimits", "store_limits"]

MIN_TABLE_ELEMENTS = 65536
_TABLE_SHARE = 4  # tables may use up to 1/4 of the memory limit
_TABLE_ELEMENT_BYTES = 8


@dataclass(frozen=True, slots=True)
class StoreLimits:
    """wasmtime's ``Store.set_limits`` arguments (``-1``: no limit)."""

    memory_size: int  # bytes, per memory
    table_elements: int  # per table
    instances: int
    tables: int
    memories: int

    def apply(self, store: wasmtime.Store) -> None:
        store.set_limits(
            memory_size=self.memory_size,
            table_elements=self.table_elements,
            instances=self.instances,
            tables=self.tables,
            memories=self.memories,
        )


def store_limits(memory_limit: int | None, memories: int, tables: int) -> StoreLimits:
    """The limits for an instance of a module with ``memories`` memories and ``tables``
    tables, all of them together under ``memory_limit`` bytes (``None``: only the
    counts are held)."""
    if memory_limit is None:
        memory_size = table_elements = -1
    else:
        memory_size = memory_limit // max(memories, 1)
        budget = memory_limit // _TABLE_SHARE // _TABLE_ELEMENT_BYTES
        table_elements = max(budget // max(tables, 1), MIN_TABLE_ELEMENTS)
    return StoreLimits(memory_size, table_elements, 1, tables, memories)
