"""``packr-replay roundtrip``: a value through the Graph ABI and back (for checking
value text and seeing the CGRF bytes)."""

from __future__ import annotations

from typing import Annotated

import typer

from ..abi import decode, encode, parse_value
from ..abi.pretty import pretty_value
from . import render
from .common import JsonOpt

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    @app.command(no_args_is_help=True)
    def roundtrip(
        text: Annotated[
            str, typer.Argument(metavar="TEXT", help="A value in packr's text format.")
        ],
        pretty: Annotated[
            bool, typer.Option("--pretty", help="Also print the value indented.")
        ] = False,
        as_json: JsonOpt = False,
    ) -> None:
        """Parse a value, encode it as CGRF, decode it back, and print all three.

        Example: [bold]packr-replay roundtrip 'point{x: 1s32, y: [1u8, 2u8]}'[/bold]
        """
        value = parse_value(text)
        data = encode(value)
        back = decode(data)
        if as_json:
            render.emit_json(
                {
                    "value": str(value),
                    "cgrf": data.hex(),
                    "bytes": len(data),
                    "back": str(back),
                    "equal": back == value,
                }
            )
            return
        console = render.out()
        console.print(render.escape_lines(f"value: {value}\ncgrf:  {data.hex()}\nback:  {back}"))
        if pretty:
            console.print(render.escape_lines(pretty_value(value)))
