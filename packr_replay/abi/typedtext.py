"""Value text read the way a guest declares its types (its ``__pack_types``).

packr's text format drops what the declaration knows: variants print as ``T::case``
without their tag (``parse_value`` gives every variant tag 0), numbers carry a suffix
and records carry no field types. :func:`parse_typed` reads value text against a
:class:`~.metadata.TypeDesc` instead:

* variant case names resolve to their declared tags (``sexpr::num(1)``, ``::num(1)``
  or just ``num(1)``); a case whose declared payload is ``tuple<A, B>`` takes either
  one tuple or two values (``put("k", "v")``), as written;
* numbers take their declared width (``5`` for a ``u8``, ``1s32`` for an ``s64``;
  out of range is an error), floats also read ``NaN``/``inf``/``-inf``;
* records are checked field by field (missing, unknown and repeated fields are errors)
  and come out in declared order; ``some(x)``/``none``/``ok(x)``/``err(x)`` and
  ``[]`` need no type annotation where the declaration gives it;
* ``value`` (packr's dynamic type, also what guests write for ``self``) is read as
  packr text, except that a named record or variant the package declares (``sexpr::…``)
  is read as declared, and a bare case name resolves in the nearest enclosing variant.

Every error is a :class:`~packr_replay.errors.TypedParseError` naming the path in the
value (``expr.lst[2].num``), the expected type and the position. Text that is already
packr's exact Display of a value of the declared type parses back to that value, which
is what makes ``show`` and ``--json`` text paste back into ``--call``. Parsing runs in
two iterative passes (syntax, then types), so nesting depth is not limited by Python's
recursion limit.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..errors import ParseError, TypedParseError
from . import textsyntax as syn
from .metadata import FunctionSig, PackageMetadata, TypeDesc, wasm_export_candidates
from .parse import _checked_input, _error, _Fail, _parse_f32, _parse_f64, _parse_int, parse_value
from .types import Kind, ValueType
from .values import (
    F32,
    F64,
    S8,
    S16,
    S32,
    S64,
    U8,
    U16,
    U32,
    U64,
    Bool,
    Char,
    Flags,
    List,
    Option,
    Record,
    Result,
    String,
    Tuple,
    Value,
    Variant,
)

__all__ = ["declared_input", "export_signature", "named_types", "parse_arguments", "parse_typed"]

Types = PackageMetadata | Iterable[TypeDesc] | Mapping[str, TypeDesc]


def named_types(types: Types) -> dict[str, TypeDesc]:
    """The named records and variants a package declares (inlined anywhere in its
    signatures), by name: what ``T::case`` and ``T{…}`` in a ``value`` position mean.
    The first declaration of a name wins."""
    if isinstance(types, Mapping):
        roots: list[TypeDesc] = list(types.values())
    elif isinstance(types, PackageMetadata):
        roots = [
            t
            for sig in (*types.imports, *types.exports)
            for t in (*(p.type for p in sig.params), *sig.results)
        ]
    else:
        roots = list(types)
    found: dict[str, TypeDesc] = {}
    stack = list(reversed(roots))
    seen: set[int] = set()
    while stack:
        d = stack.pop()
        if id(d) in seen:
            continue
        seen.add(id(d))
        if d.kind in ("record", "variant") and d.name and d.name not in found:
            found[d.name] = d
        kids = [*d.args, *(t for _, t in d.fields), *(t for _, t in d.cases if t is not None)]
        stack.extend(reversed(kids))
    return found


def export_signature(meta: PackageMetadata, export: str) -> FunctionSig | None:
    """The declared signature of wasm export ``export`` (``name`` or ``interface.name``)."""
    for sig in meta.exports:
        if export in wasm_export_candidates(sig):
            return sig
    return None


def declared_input(sig: FunctionSig) -> TypeDesc:
    """The type of an export's input value: ``unit`` for no parameters, the parameter's
    type for one, a tuple of them for more (packr's argument convention, spec §7)."""
    if not sig.params:
        return TypeDesc.UNIT
    if len(sig.params) == 1:
        return sig.params[0].type
    return TypeDesc.tuple(*(p.type for p in sig.params))


def parse_arguments(text: str, sig: FunctionSig, types: Types | None = None) -> Value:
    """An export's input from the text of its arguments, typed by its signature: one
    parameter's value, or a tuple ``(a, b)`` for several; errors name the parameter."""
    scope = named_types(types if types is not None else [declared_input(sig)])
    if len(sig.params) == 1:
        return _parse(text, declared_input(sig), scope, sig.params[0].name, None)
    return _parse(text, declared_input(sig), scope, "", [p.name for p in sig.params])


def parse_typed(text: str, type: TypeDesc, types: Types = (), *, name: str = "") -> Value:
    """Read value text as ``type`` (see the module docstring). ``types`` adds named types
    a ``value`` position may name (a package's :func:`named_types`) to the ones inside
    ``type``; ``name`` is the root of the paths in errors."""
    scope = named_types(types) if types else {}
    for key, d in named_types([type]).items():
        scope.setdefault(key, d)
    return _parse(text, type, scope, name, None)


def _parse(
    text: str, root: TypeDesc, scope: Mapping[str, TypeDesc], name: str, params: list[str] | None
) -> Value:
    _checked_input(text)
    if root.kind == "value" and not scope:
        return parse_value(text)  # nothing declared to resolve: packr's parser, exactly
    path = None if not name else (name, None)
    # The trees hold a few objects per node and nothing cyclic: the collector's passes
    # over a million-node tree would double the time and find nothing.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _Typer(text, scope, params).run(syn.parse_syntax(text), root, path)
    finally:
        if collecting:
            gc.enable()


# A path in the value, innermost segment first, shared by siblings (rendered only for
# an error): ("expr", None), (".lst", …), ("[2]", …). The enclosing named types, the
# same way (a type re-entered directly is not stacked again, so recursion stays flat).
Path = tuple[str, Any] | None
Enclosing = tuple[TypeDesc, Any] | None
Node = list[Any]


def render_path(path: Path) -> str:
    parts = []
    while path is not None:
        parts.append(path[0])
        path = path[1]
    text = "".join(reversed(parts))
    return text[1:] if text.startswith(".") else text


def _enter(enclosing: Enclosing, desc: TypeDesc) -> Enclosing:
    return enclosing if enclosing is not None and enclosing[0] is desc else (desc, enclosing)


def _chain(enclosing: Enclosing) -> Iterable[TypeDesc]:
    while enclosing is not None:
        yield enclosing[0]
        enclosing = enclosing[1]


_INTS: dict[str, Any] = {
    "u8": U8, "u16": U16, "u32": U32, "u64": U64, "s8": S8, "s16": S16, "s32": S32, "s64": S64,
}  # fmt: skip
_PRIMS: dict[str, ValueType] = {
    "bool": ValueType.BOOL, "u8": ValueType.U8, "u16": ValueType.U16, "u32": ValueType.U32,
    "u64": ValueType.U64, "s8": ValueType.S8, "s16": ValueType.S16, "s32": ValueType.S32,
    "s64": ValueType.S64, "f32": ValueType.F32, "f64": ValueType.F64, "char": ValueType.CHAR,
    "string": ValueType.STRING, "flags": ValueType.FLAGS,
}  # fmt: skip
_INT_SUFFIXES = frozenset(_INTS)
_FLOAT_WORDS = {"NaN": float("nan"), "inf": float("inf"), "-inf": float("-inf")}
_WRAPPERS = ("some", "none", "ok", "err")
_BUILD = object()  # marks a work item that builds a compound from its finished children

Build = Callable[[list[Value]], Value]
Kid = tuple[Node, "TypeDesc | None", Path, Enclosing]


class _Typer:
    """Pass 2: a syntax tree and a declared type become a Value, iteratively.

    Work items are ``(node, desc, path, enclosing)`` (``desc`` ``None``: dynamic) or
    ``(_BUILD, build, count)``; finished values collect on ``out``.
    """

    def __init__(self, text: str, scope: Mapping[str, TypeDesc], params: list[str] | None) -> None:
        self.text = text
        self.scope = scope
        self.params = params  # the argument names, when the root is the argument tuple
        self.out: list[Value] = []
        self.work: list[Any] = []

    def run(self, tree: Node, root: TypeDesc, path: Path) -> Value:
        out, work = self.out, self.work
        work.append((tree, root, path, None))
        while work:
            item = work.pop()
            if item[0] is _BUILD:
                _, build, count = item
                kids = out[len(out) - count :] if count else []
                if count:
                    del out[len(out) - count :]
                out.append(build(kids))
            else:
                self.visit(*item)
        return out[0]

    def later(self, build: Build, kids: list[Kid]) -> None:
        """Type ``kids`` (in order), then ``build`` the compound from their values."""
        self.work.append((_BUILD, build, len(kids)))
        self.work.extend(reversed(kids))

    # ------------------------------------------------------------------ errors

    def fail(
        self, node: Node, path: Path, message: str, expected: TypeDesc | str | None = None
    ) -> TypedParseError:
        position = _error(self.text, node[syn.START], message).position
        shown = "" if expected is None else str(expected)
        return TypedParseError(message, position, render_path(path), shown)

    def mismatch(self, node: Node, path: Path, desc: TypeDesc) -> TypedParseError:
        span = self.text[node[syn.START] : node[syn.END]]
        shown = span if len(span) <= 40 else span[:37] + "..."
        return self.fail(node, path, f"expected {desc}, got {shown}", desc)

    # ------------------------------------------------------------------ dispatch

    def resolve(self, desc: TypeDesc) -> TypeDesc | None:
        """Follow a ``ref`` to the named type it names; ``None`` for an unknown one."""
        return self.scope.get(desc.name) if desc.kind == "ref" else desc

    def visit(self, node: Node, desc: TypeDesc | None, path: Path, enc: Enclosing) -> None:
        if desc is not None:
            desc = self.resolve(desc)
        if desc is None or desc.kind == "value":
            self.dynamic(node, path, enc)
            return
        kind, nk = desc.kind, node[syn.KIND]
        out = self.out
        if kind in _INTS:
            out.append(self.integer(node, path, desc))
        elif kind in ("f32", "f64"):
            out.append(self.floating(node, path, desc))
        elif kind in ("bool", "string", "char"):
            want = {"bool": syn.BOOL, "string": syn.STR, "char": syn.CHAR}[kind]
            if nk != want:
                raise self.mismatch(node, path, desc)
            make = {"bool": Bool, "string": String, "char": Char}[kind]
            out.append(make(node[syn.A]))
        elif kind == "flags":
            if nk == syn.FLAGS:
                out.append(Flags(node[syn.A]))
            elif nk == syn.NUM and node[syn.B] is None and node[syn.A].lstrip("-").isdigit():
                out.append(Flags(self.ranged(node, path, desc, 0, Flags.MAX)))
            else:
                raise self.mismatch(node, path, desc)
        elif kind in ("tuple", "unit"):
            self.on_tuple(node, desc, path, enc)
        elif kind == "list":
            self.on_list(node, desc, path, enc)
        elif kind == "option":
            self.on_option(node, desc, path, enc)
        elif kind == "result":
            self.on_result(node, desc, path, enc)
        elif kind == "record":
            self.on_record(node, desc, path, enc)
        else:
            self.on_variant(node, desc, path, enc)

    # ------------------------------------------------------------------ numbers

    def ranged(self, node: Node, path: Path, desc: TypeDesc, lo: int, hi: int) -> int:
        try:
            return _parse_int(node[syn.A], lo, hi)
        except _Fail:
            message = f"{node[syn.A]} does not fit {desc} ({lo} to {hi})"
            raise self.fail(node, path, message, desc) from None

    def integer(self, node: Node, path: Path, desc: TypeDesc) -> Value:
        if node[syn.KIND] != syn.NUM or "." in node[syn.A] or node[syn.B] in ("f32", "f64"):
            raise self.mismatch(node, path, desc)
        cls = _INTS[desc.kind]
        value: Value = cls(self.ranged(node, path, desc, cls.MIN, cls.MAX))
        return value

    def floating(self, node: Node, path: Path, desc: TypeDesc) -> Value:
        make = F32 if desc.kind == "f32" else F64
        if node[syn.KIND] == syn.WORD:
            return make(_FLOAT_WORDS[node[syn.A]])
        if node[syn.KIND] != syn.NUM or node[syn.B] in _INT_SUFFIXES:
            raise self.mismatch(node, path, desc)
        try:
            return _parse_f32(node[syn.A]) if make is F32 else _parse_f64(node[syn.A])
        except _Fail:
            raise self.mismatch(node, path, desc) from None

    # ------------------------------------------------------------------ declared types

    def vtype(self, desc: TypeDesc) -> ValueType | None:
        """The ValueType values of ``desc`` carry, or ``None`` where it is dynamic."""
        out: list[ValueType | None] = []
        work: list[tuple[TypeDesc, bool]] = [(desc, False)]
        while work:
            d, done = work.pop()
            r = self.resolve(d)
            if r is None or r.kind == "value":
                out.append(None)
            elif r.kind in _PRIMS:
                out.append(_PRIMS[r.kind])
            elif r.kind == "unit":
                out.append(ValueType.UNIT)
            elif r.kind == "record":
                out.append(ValueType.record(r.name))
            elif r.kind == "variant":
                out.append(ValueType.variant(r.name))
            elif not done:
                work.append((r, True))
                work.extend((a, False) for a in reversed(r.args))
            else:
                n = len(r.args)
                args = out[len(out) - n :] if n else []
                if n:
                    del out[len(out) - n :]
                known = [a for a in args if a is not None]
                if len(known) < n:
                    out.append(None)
                elif r.kind == "list":
                    out.append(ValueType.list(known[0]))
                elif r.kind == "option":
                    out.append(ValueType.option(known[0]))
                elif r.kind == "result":
                    out.append(ValueType.result(known[0], known[1]))
                else:
                    out.append(ValueType.tuple(*known))
        return out[0]

    def retype(self, vt: ValueType) -> ValueType:
        """An annotation as written (``[]<sexpr>``): a name the package declares as a
        variant becomes a variant type (packr's parser makes every name a record)."""
        if vt.tag == Kind.RECORD:
            d = self.scope.get(vt.name or "")
            return ValueType.variant(d.name) if d is not None and d.kind == "variant" else vt
        if not vt.args:
            return vt
        return ValueType(vt.tag, vt.name, tuple(self.retype(a) for a in vt.args))

    def fallback(self, enc: Enclosing) -> ValueType:
        """The type of a dynamic part that neither the declaration nor the text gives:
        the enclosing named type (``value`` is how guests write ``self``), else packr's
        dynamic ``string``."""
        for d in _chain(enc):
            if d.name:
                return (
                    ValueType.variant(d.name) if d.kind == "variant" else ValueType.record(d.name)
                )
        return ValueType.STRING

    def container_type(
        self, desc: TypeDesc, annot: ValueType | None, node: Node, path: Path
    ) -> ValueType | None:
        """A list's element / an option's inner / a result arm's type: as declared (an
        annotation in the text must agree), as annotated where the declaration is
        dynamic, else ``None`` (the caller infers it)."""
        declared = self.vtype(desc)
        if annot is None:
            return declared
        written = self.retype(annot)
        if declared is not None and str(written) != str(declared):
            raise self.fail(node, path, f"expected {desc}, the text says {written}", desc)
        return declared if declared is not None else written

    # ------------------------------------------------------------------ compounds

    def on_tuple(self, node: Node, desc: TypeDesc, path: Path, enc: Enclosing) -> None:
        items = list(desc.args) if desc.kind == "tuple" else []
        if node[syn.KIND] != syn.TUPLE:
            raise self.mismatch(node, path, desc)
        got = node[syn.A]
        params, self.params = (self.params if path is None else None), None
        if len(got) != len(items):
            what = "arguments" if params is not None else "items"
            message = f"expected {desc} ({len(items)} {what}), got {len(got)}"
            raise self.fail(node, path, message, desc)
        paths: list[Path] = (
            [(p, None) for p in params] if params is not None
            else [(f".{i}", path) for i in range(len(items))]
        )  # fmt: skip
        self.later(
            Tuple.from_items,
            [(kid, d, p, enc) for kid, d, p in zip(got, items, paths, strict=True)],
        )

    def on_list(self, node: Node, desc: TypeDesc, path: Path, enc: Enclosing) -> None:
        if node[syn.KIND] != syn.LIST:
            raise self.mismatch(node, path, desc)
        elem = desc.args[0]
        declared = self.container_type(elem, node[syn.B], node, path)

        def build(values: list[Value]) -> Value:
            et = declared
            if et is None:
                et = values[0].infer_type() if values else self.fallback(enc)
            return List(et, values)

        self.later(build, [(k, elem, (f"[{i}]", path), enc) for i, k in enumerate(node[syn.A])])

    def on_option(self, node: Node, desc: TypeDesc, path: Path, enc: Enclosing) -> None:
        if node[syn.KIND] != syn.NAMED or node[syn.A] is not None or node[syn.B] not in (
            "some", "none"
        ):  # fmt: skip
            raise self.mismatch(node, path, desc)
        inner = desc.args[0]
        annot = node[syn.D][0] if node[syn.D] else None
        declared = self.container_type(inner, annot, node, path)
        kids = node[syn.C]
        if node[syn.B] == "none":
            if kids:
                raise self.fail(node, path, "none takes no value", desc)
            empty = Option(declared if declared is not None else self.fallback(enc))
            self.later(lambda _: empty, [])
            return
        if not kids or len(kids) != 1:
            raise self.fail(node, path, "some takes one value: some(x)", desc)

        def build(values: list[Value]) -> Value:
            return Option(declared if declared is not None else values[0].infer_type(), values[0])

        self.later(build, [(kids[0], inner, (".some", path), enc)])

    def on_result(self, node: Node, desc: TypeDesc, path: Path, enc: Enclosing) -> None:
        case = node[syn.B]
        if node[syn.KIND] != syn.NAMED or node[syn.A] is not None or case not in ("ok", "err"):
            raise self.mismatch(node, path, desc)
        is_err = case == "err"
        ok_d, err_d = desc.args
        annot = node[syn.D] or [None, None]
        ok_t = self.container_type(ok_d, annot[0], node, path)
        err_t = self.container_type(err_d, annot[1], node, path)
        kids = node[syn.C]
        if not kids or len(kids) != 1:
            raise self.fail(node, path, f"{case} takes one value: {case}(x)", desc)

        def build(values: list[Value]) -> Value:
            v = values[0]
            o = ok_t if ok_t is not None else (ValueType.STRING if is_err else v.infer_type())
            e = err_t if err_t is not None else (v.infer_type() if is_err else ValueType.STRING)
            return Result(o, e, v, is_err=is_err)

        self.later(build, [(kids[0], err_d if is_err else ok_d, (f".{case}", path), enc)])

    def on_record(self, node: Node, desc: TypeDesc, path: Path, enc: Enclosing) -> None:
        if node[syn.KIND] != syn.RECORD:
            raise self.mismatch(node, path, desc)
        written = node[syn.A]
        if written and desc.name and written != desc.name:
            message = f"expected record {desc.name}, got record {written}"
            raise self.fail(node, path, message, desc)
        fields = dict(desc.fields)
        given: dict[str, Node] = {}
        for field, kid in zip(node[syn.B], node[syn.C], strict=True):
            where = (f".{field}", path)
            if field in given:
                raise self.fail(kid, where, f"field {field!r} is given twice", desc)
            if field not in fields:
                names = ", ".join(fields) or "none"
                message = f"record {desc} has no field {field!r} (its fields: {names})"
                raise self.fail(kid, where, message, desc)
            given[field] = kid
        missing = [f for f in fields if f not in given]
        if missing:
            what = ", ".join(f"{f} ({fields[f]})" for f in missing)
            raise self.fail(node, path, f"record {desc} is missing field(s) {what}", desc)
        order = [f for f, _ in desc.fields]
        # ``{…}`` and ``name{…}`` both take the declared name: there is no shorter way
        # to write a record, and guests' records are named.
        type_name = desc.name or written
        inner = _enter(enc, desc) if desc.name else enc

        def build(values: list[Value]) -> Value:
            return Record(type_name, list(zip(order, values, strict=True)))

        self.later(build, [(given[f], fields[f], (f".{f}", path), inner) for f in order])

    def on_variant(self, node: Node, desc: TypeDesc, path: Path, enc: Enclosing) -> None:
        if node[syn.KIND] != syn.NAMED or node[syn.D] is not None:
            raise self.mismatch(node, path, desc)
        written, case, kids = node[syn.A], node[syn.B], node[syn.C]
        if written and desc.name and written != desc.name:
            message = f"expected variant {desc.name}, got {written}::{case}"
            raise self.fail(node, path, message, desc)
        cases = [name for name, _ in desc.cases]
        if case not in cases:
            listed = ", ".join(cases) or "none"
            message = f"variant {desc} has no case {case!r} (its cases: {listed})"
            raise self.fail(node, path, message, desc)
        tag = cases.index(case)
        payload_d = desc.cases[tag][1]
        here = (f".{case}", path)
        # A bare case takes the declared type name; ``::case`` is packr's text for a
        # variant whose type name is empty, and stays so.
        type_name = desc.name if written is None else written
        inner = _enter(enc, desc)
        if payload_d is None or payload_d.kind == "unit":
            if kids:
                raise self.fail(node, here, f"case {case} of {desc} takes no payload", desc)
            empty = Variant(type_name, case, tag)
            self.later(lambda _: empty, [])
            return
        if not kids:
            message = f"case {case} of {desc} takes a payload ({payload_d}): {case}(...)"
            raise self.fail(node, here, message, desc)
        resolved = self.resolve(payload_d)
        parts: list[Kid]
        if len(kids) == 1:
            parts = [(kids[0], payload_d, here, inner)]
        elif resolved is not None and resolved.kind == "tuple" and len(resolved.args) == len(kids):
            # a tuple payload written as its items: several payload values on the wire
            parts = [
                (k, d, (f".{i}", here), inner)
                for i, (k, d) in enumerate(zip(kids, resolved.args, strict=True))
            ]
        else:
            message = f"case {case} of {desc} takes one value ({payload_d}), got {len(kids)}"
            raise self.fail(node, here, message, desc)
        self.later(lambda values: Variant(type_name, case, tag, values), parts)

    # ------------------------------------------------------------------ dynamic

    def dynamic(self, node: Node, path: Path, enc: Enclosing) -> None:
        """A ``value`` position: packr's text, except for what the package declares."""
        nk = node[syn.KIND]
        if not node[syn.NAMES]:
            if nk == syn.WORD:
                message = (
                    f"{node[syn.A]} is read only where a float is declared; here (declared "
                    "value) write it with packr's float syntax"
                )
                raise self.fail(node, path, message, "value")
            self.out.append(self.packr(node, path))
        elif nk == syn.RECORD:
            d = self.scope.get(node[syn.A]) if node[syn.A] else None
            if d is not None and d.kind == "record":
                self.on_record(node, d, path, enc)
                return
            type_name, names = node[syn.A], node[syn.B]
            self.later(
                lambda values: Record(type_name, list(zip(names, values, strict=True))),
                [(k, None, (f".{f}", path), enc) for f, k in zip(names, node[syn.C], strict=True)],
            )
        elif nk == syn.TUPLE:
            self.later(
                Tuple.from_items,
                [(k, None, (f".{i}", path), enc) for i, k in enumerate(node[syn.A])],
            )
        elif nk == syn.LIST:
            annot = None if node[syn.B] is None else self.retype(node[syn.B])

            def build(values: list[Value]) -> Value:
                et = values[0].infer_type() if values else annot  # packr: the first item's
                return List(et if et is not None else self.fallback(enc), values)

            self.later(build, [(k, None, (f"[{i}]", path), enc) for i, k in enumerate(node[syn.A])])
        else:
            self.dynamic_named(node, path, enc)

    def dynamic_named(self, node: Node, path: Path, enc: Enclosing) -> None:
        type_name, case, annots = node[syn.A], node[syn.B], node[syn.D]
        kids = node[syn.C] or []
        if type_name:
            d = self.scope.get(type_name)
            if d is not None and d.kind == "variant":
                self.on_variant(node, d, path, enc)
                return
        elif annots is None:  # ``case(…)`` / ``::case(…)``: the nearest variant that has it
            for d in _chain(enc):
                if d.kind == "variant" and any(c == case for c, _ in d.cases):
                    self.on_variant(node, d, path, enc)
                    return
        if type_name is None and case in _WRAPPERS:
            if annots is None:
                how = {"some": "some<T>(x)", "none": "none<T>", "ok": "ok<O, E>(x)"}
                message = (
                    f"{case} needs its type here (declared value): {how.get(case, 'err<O, E>(x)')}"
                )
                raise self.fail(node, path, message, "value")
            types = [self.retype(a) for a in annots]
            if case == "none":
                empty = Option(types[0])
                self.later(lambda _: empty, [])
            elif case == "some":
                self.later(
                    lambda v: Option(types[0], v[0]), [(kids[0], None, (".some", path), enc)]
                )
            else:
                is_err = case == "err"
                self.later(
                    lambda v: Result(types[0], types[1], v[0], is_err=is_err),
                    [(kids[0], None, (f".{case}", path), enc)],
                )
            return
        if type_name is None:
            message = (
                f"unexpected identifier '{case}' (expected {{ or ::; no variant declared "
                f"here has a case {case!r})"
            )
            raise self.fail(node, path, message, "value")
        name = type_name
        self.later(
            lambda values: Variant(name, case, 0, values),
            [(k, None, (f".{case}", path), enc) for k in kids],
        )

    def packr(self, node: Node, path: Path) -> Value:
        """A subtree with nothing to resolve: packr's parser on its span, exactly."""
        start, end = node[syn.START], node[syn.END]
        try:
            return parse_value(self.text[start:end])
        except ParseError as exc:
            offset = start if self.text.isascii() else len(self.text[:start].encode("utf-8"))
            hint = ""
            if "missing type suffix" in exc.message:
                hint = " (this part is declared value, so numbers carry their type)"
            raise TypedParseError(
                exc.message + hint, offset + exc.position, render_path(path), "value"
            ) from None
