"""Decoder limits: packr 0.7's defaults plus the expansion bound packr lacks."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["DEFAULT_LIMITS", "Limits"]


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds checked by ``decode`` before it allocates.

    The first four are packr's ``Limits`` with packr 0.7's defaults and are checked
    exactly where packr checks them. ``max_decoded_nodes`` is ours: a buffer may share
    subtrees (a DAG), and a 40-level diamond of 41 nodes expands to 2**40 nodes; packr
    would exhaust memory, we stop with ``InvalidEncoding`` once the expanded value has
    more nodes than this (``None`` means ``max_node_count``).
    """

    max_buffer_size: int = 256 * 1024 * 1024
    max_node_count: int = 10_000_000
    max_payload_size: int = 128 * 1024 * 1024
    max_sequence_len: int = 128 * 1024 * 1024
    max_decoded_nodes: int | None = field(default=None)

    @property
    def decoded_node_budget(self) -> int:
        return self.max_node_count if self.max_decoded_nodes is None else self.max_decoded_nodes


DEFAULT_LIMITS = Limits()
