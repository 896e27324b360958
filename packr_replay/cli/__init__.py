"""Command line (placeholder until the CLI lands): ``packr-replay --version`` and
``packr-replay roundtrip TEXT``."""

from __future__ import annotations

import sys

from .._version import __version__


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "--version":
        print(f"packr-replay {__version__}")
        return 0
    if len(args) == 2 and args[0] == "roundtrip":
        from ..abi import decode, encode, parse_value

        value = parse_value(args[1])
        data = encode(value)
        print(f"value: {value}\ncgrf:  {data.hex()}\nback:  {decode(data)}")
        return 0
    print("usage: packr-replay --version | packr-replay roundtrip TEXT", file=sys.stderr)
    return 2
