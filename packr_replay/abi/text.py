"""Placeholder: replaced by the text format module."""
from __future__ import annotations
from typing import Any

def format_value(value: Any, limit: int | None = None) -> str:
    return object.__repr__(value)
