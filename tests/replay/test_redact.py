"""Redaction: placeholders of the same type, and the bundle hook that applies them."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

from hypothesis import given, settings

from packr_replay import api
from packr_replay.abi import (
    F64,
    S32,
    U64,
    EncodedValue,
    Flags,
    List,
    Option,
    Record,
    Result,
    String,
    Tuple,
    Value,
    ValueType,
    Variant,
    decode,
    encode,
    parse_value,
)
from packr_replay.replay import redact_value, redactor
from packr_replay.replay.redact import PLACEHOLDER, matches_any
from packr_replay.runtime import Module
from packr_replay.storage import TraceStore
from packr_replay.storage.model import Event, EventKind
from tests.conftest import ONE_IMPORT_PATH
from tests.replay.conftest import demo_host
from tests.strategies import values


def shape(value: Value) -> list[object]:
    """Everything about a value but its data: kinds, declared types, names, lengths."""
    out: list[object] = []
    stack = [value]
    while stack:
        v = stack.pop()
        out.append(type(v).__name__)
        if isinstance(v, List):
            out += [v.elem_type, len(v.items)]
            stack.extend(v.items)
        elif isinstance(v, Tuple):
            out.append(len(v.items))
            stack.extend(v.items)
        elif isinstance(v, Record):
            out += [v.type_name, v.field_names]
            stack.extend(f for _, f in v.fields)
        elif isinstance(v, Variant):
            out += [v.type_name, v.case_name, v.tag, len(v.payload)]
            stack.extend(v.payload)
        elif isinstance(v, Option):
            out += [v.inner_type, v.value is None]
            stack.extend([] if v.value is None else [v.value])
        elif isinstance(v, Result):
            out += [v.ok_type, v.err_type, v.is_err]
            stack.append(v.value)
    return out


def strings(value: Value) -> list[str]:
    found, stack = [], [value]
    while stack:
        v = stack.pop()
        if isinstance(v, String):
            found.append(v.value)
        elif isinstance(v, (List, Tuple)):
            stack.extend(v.items)
        elif isinstance(v, Record):
            stack.extend(f for _, f in v.fields)
        elif isinstance(v, Variant):
            stack.extend(v.payload)
        elif isinstance(v, (Option, Result)) and v.value is not None:
            stack.append(v.value)
    return found


@ONE_IMPORT_PATH
class TestRedactValue:
    """Same type, no data."""

    def test_scalars(self) -> None:
        assert redact_value(String("hunter2")) == String(PLACEHOLDER)
        assert redact_value(U64(17)) == U64(0)
        assert redact_value(F64(3.5)) == F64(0.0)
        assert redact_value(Flags(5)) == Flags(0)

    def test_compound_keeps_shape(self) -> None:
        value = parse_value(
            'cfg{user: some<string>("ada"), keys: [1s32, 2s32], r: err<u8, string>("x"), '
            'v: v::c("secret", 9u64)}'
        )
        redacted = redact_value(value)
        assert str(redacted) == (
            'cfg{user: some<string>("<redacted>"), keys: [0s32, 0s32], '
            'r: err<u8, string>("<redacted>"), v: v::c("<redacted>", 0u64)}'
        )
        assert redact_value(EncodedValue(encode(value))) == redacted

    @settings(max_examples=200, deadline=None)
    @given(values)
    def test_any_value(self, value: Value) -> None:
        redacted = redact_value(value)
        assert shape(redacted) == shape(value)
        assert set(strings(redacted)) <= {PLACEHOLDER}
        assert decode(encode(redacted)) == redacted  # still valid CGRF of that type
        assert redact_value(redacted) == redacted

    def test_deep(self) -> None:
        value: Value = String("x")
        for _ in range(100_000):
            value = Option(ValueType.STRING, value) if isinstance(value, String) else Tuple(value)
        redacted = redact_value(value)
        assert shape(redacted) == shape(value)

    def test_option_none_stays_none(self) -> None:
        assert redact_value(Option(ValueType.S32, None)) == Option(ValueType.S32, None)
        assert redact_value(Option(ValueType.S32, S32(4))) == Option(ValueType.S32, S32(0))


@ONE_IMPORT_PATH
class TestRedactor:
    """The bundle hook: which events, and what it gives back."""

    def _event(self, kind: EventKind, interface: str, function: str, data: bytes | None) -> Event:
        return Event(0, 1, kind, interface, function, data, data)

    def test_matching_imports_only(self) -> None:
        data = encode(String("secret"))
        hook = redactor(["demo:host/env.*"])
        got = hook(self._event(EventKind.IMPORT, "demo:host/env", "get", data))
        assert got is not None
        assert [decode(b) for b in got if b is not None] == [String(PLACEHOLDER)] * 2
        assert hook(self._event(EventKind.IMPORT, "demo:host/clock", "now", data)) is None
        assert hook(self._event(EventKind.EXPORT, "", "env", data)) is None

    def test_undecodable_and_missing_bytes(self) -> None:
        hook = redactor(["a.b"])
        event = Event(0, 1, EventKind.IMPORT, "a", "b", b"not cgrf", None)
        assert hook(event) == (encode(String(PLACEHOLDER)), None)

    def test_patterns(self) -> None:
        assert matches_any("demo:host/env.get", ["demo:host/env.get"])
        assert matches_any("demo:host/env.get", ["*.get"])
        assert not matches_any("demo:host/env.get", ["demo:host/env"])


class TestBundle:
    """Redacted bundles replay: placeholders served and reported."""

    def _record(self, guest: Callable[[str], Module], db: Path) -> None:
        api.record(guest("clock_actor"), [("run", String("Ada"))], host=demo_host(), store=db)

    def test_redacted_logs_still_reproduce(self, guest: Callable[[str], Module], db: Path, tmp_path: Path) -> None:
        self._record(guest, db)
        out = tmp_path / "bundle.db"
        with TraceStore(db) as store:
            store.bundle(1, out, redact=redactor(["demo:host/log.*"]))
        with TraceStore(out) as bundle:
            info = bundle.traces()[0]
            assert info.meta["redacted"] == ["demo:host/log.write"]
            logs = list(bundle.trace(info.id).events(function="write"))
            assert [decode(e.input or b"") for e in logs] == [String(PLACEHOLDER)] * 2
        report = api.replay(out)
        assert report.reproduced, report.summary()
        assert report.redacted_served == [1, 5]

    def test_redacted_reply_the_guest_uses_diverges_with_a_note(
        self, guest: Callable[[str], Module], db: Path, tmp_path: Path
    ) -> None:
        self._record(guest, db)
        out = tmp_path / "bundle.db"
        with TraceStore(db) as store:
            store.bundle(1, out, redact=redactor(["demo:host/env.get"]))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            report = api.replay(out)
        assert not report.reproduced
        assert report.redacted_served == [4]
        assert "redacted call(s) were served" in str(report.divergence)
