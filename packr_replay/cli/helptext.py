"""``--help`` as plain text: readable metavars, no rich.

typer's help goes through rich (and imports most of it, markdown included), and it
labels values by Python type (``<bool>``, ``<list[str]>``, ``<int range>``). Help is
read before anything else runs, so it is rendered here with click's plain formatter:
options read ``--label LABEL``, ``--max-rows N``, ``--mode [none|once|...]``, flags
carry no metavar, and the rich markup in docstrings (``[bold]...[/bold]``) is dropped.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["format_command_help", "metavar", "plain", "short_help", "usage_pieces"]

_MARKUP = re.compile(
    r"\[/?(?:bold|dim|italic|underline|red|green|yellow|blue|cyan|magenta)"
    r"(?: (?:bold|dim|italic|underline|red|green|yellow|blue|cyan|magenta))*\]|\[/\]"
)


def plain(text: str | None) -> str:
    """``text`` without rich markup tags."""
    return _MARKUP.sub("", text or "")


def metavar(param: Any) -> str | None:
    """The placeholder shown after an option (``None`` for a flag) or for an argument."""
    if param.metavar:
        return str(param.metavar)
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return None
    desc = param.type_descriptor
    is_argument = param.param_type_name == "argument"
    if desc.is_choice and desc.choices:
        return "[" + "|".join(str(c) for c in desc.choices) + "]"
    if is_argument:
        return str(param.name).upper()
    if desc.is_path:
        return {"file": "FILE", "directory": "DIR"}.get(desc.path_type, "PATH")
    annotation = desc.annotation
    element = getattr(annotation, "__args__", (annotation,))[0] if desc.is_list else annotation
    if element is int:
        return "N"
    if element is float:
        return "NUMBER"
    return str(param.name).upper()


def short_help(command: Any, limit: int) -> str:
    """The first sentence of a command's help, cut to ``limit`` characters."""
    text = plain(command.short_help or command.help).strip()
    first = " ".join(text.split("\n\n")[0].split())
    end = first.find(". ")
    if end != -1:
        first = first[: end + 1]
    return first if len(first) <= limit else first[: max(limit - 3, 1)].rstrip() + "..."


def _range(param: Any) -> str:
    low, high = getattr(param, "min", None), getattr(param, "max", None)
    if low is not None and high is not None:
        return f"{low} to {high}"
    if low is not None:
        return f"at least {low}"
    if high is not None:
        return f"at most {high}"
    return ""


def _default(param: Any) -> str:
    show = getattr(param, "show_default", None)
    if isinstance(show, str):
        return show
    default = param.default
    if not show or default is None or default is False or default == [] or callable(default):
        return ""
    if param.param_type_name == "argument" and not param.required and default == "":
        return ""
    return str(default)


def _row(param: Any) -> tuple[str, str] | None:
    if getattr(param, "hidden", False):
        return None
    shown = metavar(param)
    if param.param_type_name == "argument":
        head = shown or str(param.name).upper()
    else:
        shorts = [o for o in param.opts if not o.startswith("--")]
        longs = [o for o in param.opts if o.startswith("--")]
        head = ", ".join(shorts + longs + list(getattr(param, "secondary_opts", [])))
        if shown:
            head += f" {shown}"
    extra = []
    if (span := _range(param)) != "":
        extra.append(span)
    if (default := _default(param)) != "":
        extra.append(f"default: {default}")
    if param.required:
        extra.append("required")
    text = plain(param.help)
    if extra:
        text = f"{text}  [{'; '.join(extra)}]" if text else f"[{'; '.join(extra)}]"
    return head, text


def usage_pieces(command: Any, ctx: Any) -> list[str]:
    """``[OPTIONS] MODULE [SEQ]`` for the usage line."""
    pieces = (
        ["[OPTIONS]"] if any(p.param_type_name == "option" for p in command.get_params(ctx)) else []
    )
    for param in command.get_params(ctx):
        if param.param_type_name != "argument":
            continue
        name = metavar(param) or str(param.name).upper()
        if param.nargs != 1:
            name += "..."
        pieces.append(name if param.required else f"[{name}]")
    return pieces


def format_command_help(command: Any, ctx: Any, formatter: Any) -> None:
    """Write ``command``'s help (usage, text, arguments, options, subcommands)."""
    pieces = usage_pieces(command, ctx)
    commands = getattr(command, "commands", None)
    if commands is not None:
        pieces.append("COMMAND [ARGS]...")
    formatter.write_usage(ctx.command_path, " ".join(pieces))
    if command.help:
        formatter.write_paragraph()
        with formatter.indentation():
            formatter.write_text(plain(command.help))
    params = command.get_params(ctx)
    for title, kind in (("Arguments", "argument"), ("Options", "option")):
        rows = [r for p in params if p.param_type_name == kind and (r := _row(p)) is not None]
        if rows:
            with formatter.section(title):
                formatter.write_dl(rows)
    if commands:
        names = command.list_commands(ctx)
        limit = formatter.width - 6 - max(len(n) for n in names)
        rows = []
        for name in names:
            sub = command.get_command(ctx, name)
            if sub is None or sub.hidden:
                continue
            rows.append((name, short_help(sub, limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)
    if command.epilog:
        formatter.write_paragraph()
        with formatter.indentation():
            formatter.write_text(plain(command.epilog))
