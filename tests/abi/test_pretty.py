"""``pretty_value``: indented packr text that still parses, for values of any depth."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from packr_replay.abi import (
    S32,
    U8,
    EncodedValue,
    List,
    Tuple,
    Value,
    ValueType,
    Variant,
    encode,
    parse_value,
)
from packr_replay.abi.pretty import MAX_INDENT_LEVELS, iter_pretty_lines, pretty_value
from packr_replay.errors import ParseError
from tests.strategies import values

REPORT = (
    'report{greeting: "Hello, Ada", time: 1795958634203240870u64, roll: 7u64, '
    'user: some<string>("ada"), xs: [(1s32, "aaaaaaaaaaaaaaaaaaaaaaaa"), '
    '(2s32, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb")], r: ok<u8, string>(3u8)}'
)


class TestLayout:
    """Where lines break and how they are indented."""

    def test_fits_on_one_line_stays_flat(self) -> None:
        value = parse_value(REPORT)
        assert pretty_value(value, width=1000) == str(value)

    def test_breaks_only_what_does_not_fit(self) -> None:
        assert pretty_value(parse_value(REPORT), width=60) == "\n".join([
            "report{",
            '  greeting: "Hello, Ada",',
            "  time: 1795958634203240870u64,",
            "  roll: 7u64,",
            '  user: some<string>("ada"),',
            "  xs: [",
            '    (1s32, "aaaaaaaaaaaaaaaaaaaaaaaa"),',
            '    (2s32, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb")',
            "  ],",
            "  r: ok<u8, string>(3u8)",
            "}",
        ])  # fmt: skip

    @pytest.mark.parametrize(
        ("text", "head", "close"),
        [
            ("(1s32, 2s32)", "(", ")"),
            ("[1s32, 2s32]", "[", "]"),
            ("v::c(1s32, 2s32)", "v::c(", ")"),
            ("some<s32>(1s32)", "some<s32>(", ")"),
            ("err<u8, s32>(1s32)", "err<u8, s32>(", ")"),
            ("r{a: 1s32, b: 2s32}", "r{", "}"),
        ],
    )
    def test_every_compound_opens_and_closes(self, text: str, head: str, close: str) -> None:
        lines = pretty_value(parse_value(text), width=4).splitlines()
        assert lines[0] == head
        assert lines[-1] == close
        assert all(line.startswith("  ") for line in lines[1:-1])

    def test_scalars_and_empty_compounds_are_one_line(self) -> None:
        for text in ('"a long string that does not fit"', "[]<u8>", "r{}", "()", "none<string>"):
            assert pretty_value(parse_value(text), width=4) == str(parse_value(text))

    def test_indent_width(self) -> None:
        lines = pretty_value(parse_value("[1s32, 2s32]"), width=4, indent=4).splitlines()
        assert lines[1] == "    1s32,"

    def test_encoded_values_are_accepted(self) -> None:
        value = parse_value(REPORT)
        assert pretty_value(EncodedValue(encode(value))) == pretty_value(value)

    def test_bad_arguments(self) -> None:
        with pytest.raises(ValueError, match="width"):
            pretty_value(S32(1), width=0)


class TestRoundTrip:
    """The output is packr text: it parses to what the one-line Display parses to."""

    @settings(max_examples=100, deadline=None)
    @given(values)
    def test_parses_like_display(self, value: Value) -> None:
        try:
            expected = parse_value(str(value))
        except ParseError:
            return  # odd names the text format cannot carry
        for width in (1, 20, 80):
            assert str(parse_value(pretty_value(value, width=width))) == str(expected)


class TestDepth:
    """No recursion, and output linear in the depth."""

    def test_deep_value(self) -> None:
        value: Value = S32(1)
        for i in range(20_000):
            value = Variant("v", "c", 0, [value, S32(i)]) if i % 2 else Tuple(value)
        text = pretty_value(value, width=40)
        assert str(parse_value(text)) == str(value)
        widest = max(len(line) - len(line.lstrip()) for line in text.splitlines())
        assert widest == 2 * MAX_INDENT_LEVELS

    def test_lines_are_produced_lazily(self) -> None:
        big = List(ValueType.U8, [U8(i % 256) for i in range(100_000)])
        lines = iter_pretty_lines(big, width=10)
        assert next(lines) == "["
        assert next(lines) == "  0u8,"
