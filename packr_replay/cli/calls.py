"""Export calls from the command line: ``--call EXPORT[=VALUE]`` and ``--calls FILE``.

Calls are read in two steps. :func:`split_call` / :func:`read_calls_file` check the
syntax (before any guest is loaded, so a typo costs nothing); :func:`call_value` then
makes the value, typed by the guest's declared parameter types (its ``__pack_types``,
:mod:`packr_replay.abi.typedtext`) when it has them: case names get their tags,
numbers their declared width, records their fields checked. A ``--calls`` line may
instead carry the typed JSON form (``packr_replay.abi.jsonvalue``), which is exact.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..abi import UNIT, Value, parse_value
from ..errors import ConversionError, ParseError
from .errors import fail

if TYPE_CHECKING:
    from ..abi.metadata import PackageMetadata
    from ..runtime import Module

__all__ = ["Call", "PendingCall", "call_value", "declared_types", "read_calls_file", "split_call"]

Call = tuple[str, Value]


@dataclass(frozen=True, slots=True)
class PendingCall:
    """One call as given: the export, where it came from (for errors), and its value
    as packr text (``None``: unit) or in the typed JSON form."""

    export: str
    where: str
    text: str | None = None
    json: Any = None
    is_json: bool = False


def split_call(text: str) -> PendingCall:
    """``EXPORT`` (called with unit ``()``) or ``EXPORT=VALUE`` (packr text)."""
    name, sep, value_text = text.partition("=")
    name = name.strip()
    if not name:
        fail(f"--call {text!r}: no export name (expected EXPORT or EXPORT=VALUE)")
    return PendingCall(name, f"--call {text!r}", value_text if sep else None)


def read_calls_file(path: Path) -> list[PendingCall]:
    """JSON Lines, one call a line: ``{"export": "run", "value": "\\"Ada\\""}`` with the
    value as packr text, or as a typed JSON value (an object, as ``--json`` prints in
    ``input_value``); omit it for ``()``. Blank lines are skipped; ``-`` reads stdin."""
    if str(path) == "-":
        lines: Iterable[str] = sys.stdin.read().splitlines()
    else:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            fail(f"--calls {path}: {exc.strerror or exc}")
        except UnicodeDecodeError as exc:
            fail(f"--calls {path}: not UTF-8 text (byte {exc.start})")
    calls: list[PendingCall] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"--calls {path}:{number}"
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            fail(f"{where}: not JSON: {exc.msg}")
        except RecursionError:
            fail(f"{where}: JSON nested too deeply to read; give the value as packr text")
        if not isinstance(item, dict) or not isinstance(item.get("export"), str):
            fail(f'{where}: expected {{"export": NAME, "value": TEXT or typed JSON value}}')
        value = item.get("value")
        if value is None:
            calls.append(PendingCall(item["export"], where))
        elif isinstance(value, str):
            calls.append(PendingCall(item["export"], where, value))
        elif isinstance(value, dict):
            calls.append(PendingCall(item["export"], where, json=value, is_json=True))
        else:
            fail(
                f'{where}: "value" must be packr value text (a JSON string) or a typed JSON '
                'value (an object such as {"s64": 5})'
            )
    return calls


def declared_types(module: Module, warn: Any = None) -> PackageMetadata | None:
    """The guest's declared types, or ``None`` after a warning (through ``warn``, a
    function of one line) when it has none: such a guest does not look like packr's."""
    from ..errors import MetadataError

    try:
        return module.types()
    except MetadataError as exc:
        if warn is not None:
            if exc.kind == "NotFound":
                warn(
                    f"warning: {module.name} has no __pack_types: it does not look like a "
                    "packr guest (values are read as plain packr text)"
                )
            else:
                warn(
                    f"warning: {module.name}'s __pack_types cannot be read ({exc}); values "
                    "are read as plain packr text"
                )
        return None


def call_value(call: PendingCall, types: PackageMetadata | None, warn: Any = None) -> Value:
    """The value of ``call``: its typed JSON, or its text read as the export declares.
    ``warn`` (a function of one line) hears of variants the text could not give a tag."""
    if call.is_json:
        from ..abi.jsonvalue import value_from_json

        try:
            return value_from_json(call.json)
        except ConversionError as exc:
            fail(f"{call.where}: bad typed JSON value: {exc}")
        except RecursionError:
            fail(f"{call.where}: typed JSON value nested too deeply; give it as packr text")
    if call.text is None:
        return UNIT
    sig = None
    if types is not None:
        from ..abi.typedtext import export_signature

        sig = export_signature(types, call.export)
    try:
        if sig is None:
            return parse_value(call.text)
        from ..abi.typedtext import parse_arguments

        value = parse_arguments(call.text, sig, types)
    except ParseError as exc:
        declared = "" if sig is None else f" (declared {sig})"
        fail(f"{call.where}: bad value text{declared}: {exc}")
    if warn is not None:
        for type_name, case in _untagged_variants(value, types):
            warn(
                f"warning: {call.where}: {type_name}::{case} is no variant the guest declares "
                f"(it stands where {call.export} takes any value): packr text carries no tags, "
                "so it is sent with tag 0, as packr's parser reads it; to send its real tag, "
                "give the value in the typed JSON form with --calls (docs/cli-json.md)"
            )
    return value


def _untagged_variants(value: Value, types: PackageMetadata | None) -> list[tuple[str, str]]:
    """The (type, case) of each variant in ``value`` whose type the guest does not declare:
    packr text carries no tags, so those were read with tag 0 (at most three, in order)."""
    from ..abi.typedtext import named_types
    from ..abi.values import Variant, children

    declared = named_types(types) if types is not None else {}
    found: list[tuple[str, str]] = []
    stack = [value]
    while stack and len(found) < 3:
        v = stack.pop()
        if type(v) is Variant and v.tag == 0 and v.type_name not in declared:
            key = (v.type_name, v.case_name)
            if key not in found:
                found.append(key)
        stack.extend(reversed(children(v)))
    return found
