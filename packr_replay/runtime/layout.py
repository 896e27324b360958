"""packr's fixed guest-memory layout (spec §3.1), under packr's own names.

Exports get their result slots at 16 KiB; typed imports reply at 16 KiB + 8 (just
after the slots); an export's input goes to address 0 when the guest has no
``__pack_alloc``. ``OUTPUT_BUFFER_CAPACITY`` is packr's constant for the reply buffer:
packr 0.7.0 does not enforce it (nor does this runtime, unless asked with
``scratch_capacity``); ``Ctx.write_value`` (packr's legacy writer) does.
"""

from __future__ import annotations

__all__ = [
    "INPUT_BUFFER_OFFSET",
    "OUTPUT_BUFFER_CAPACITY",
    "OUTPUT_BUFFER_OFFSET",
    "RESULT_LEN_OFFSET",
    "RESULT_PTR_OFFSET",
    "SCRATCH_OFFSET",
]

INPUT_BUFFER_OFFSET = 0
"""Where an export's input is written when the guest has no ``__pack_alloc``."""
RESULT_PTR_OFFSET = 16 * 1024
"""The out-pointer slot the host passes to exports."""
RESULT_LEN_OFFSET = 16 * 1024 + 4
"""The out-length slot the host passes to exports."""
OUTPUT_BUFFER_OFFSET = 16 * 1024
"""The start of the host's output area (the two slots, then the reply)."""
OUTPUT_BUFFER_CAPACITY = 32 * 1024
"""packr's nominal capacity of the output area (enforced from packr 0.7.3 on)."""
SCRATCH_OFFSET = OUTPUT_BUFFER_OFFSET + 8
"""Where a typed import's reply is written (status 0): 16392."""
