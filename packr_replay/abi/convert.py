"""Pleasant construction: plain Python objects to packr Values and back.

Two directions, both iterative (a value nested a million levels deep converts without
touching the recursion limit):

* **To a Value**: :func:`from_python` (alias :func:`to_value`) converts an object to a
  declared :class:`ValueType`, or infers the obvious type when none is given
  (``int`` → ``s64``, ``float`` → ``f64``, ``str`` → ``string``, ``bytes`` →
  ``list<u8>``, a homogeneous ``list`` → ``list<T>``, ``tuple`` → ``tuple<...>``,
  a dataclass → its record). Integers are range-checked; every error is a
  :class:`ConversionError` naming the path inside the value (``$.points[2].x``).
* **Back to Python**: :func:`to_python` gives an untyped rendering; :func:`from_value`
  converts to a Python type annotation (``list[s64]``, ``Point | None``, a dataclass).

packr's ``#[derive(GraphValue)]`` has two Python counterparts:

* any ``@dataclass`` is a record: type name = class name (or ``__packr_name__``),
  fields in declaration order (rename one with ``field(metadata={"packr_name": ...})``),
  field types from annotations. ``int`` has no width, so annotate with the aliases
  exported here (``s64``, ``u8``, ...) or ``Annotated[int, ValueType.U16]``;
* a :class:`TaggedUnion` subclass is a variant: ``circle = case(f64)`` declares a
  case, tags are declaration indices, ``Shape.circle(1.5)`` builds one. A plain
  ``enum.Enum`` is a payload-less variant.

What :func:`to_python` gives:

* ``Bool``, integers, ``Flags`` → ``bool`` / ``int``; ``F32``/``F64`` → ``float`` (the
  Value's ``.bits`` keep exact NaNs); ``Char``, ``String`` → ``str``;
* ``List`` → ``list``, also for ``list<u8>``, for uniformity (``List.to_bytes()`` gives
  bytes); ``Tuple`` → ``tuple`` (unit is ``()``);
* ``Option`` → the inner value or ``None`` (so ``some(none)`` is ``None`` too);
* ``Result`` → :class:`Ok` / :class:`Err`;
* ``Record`` → ``dict`` in field order (the first of duplicate names wins);
* ``Variant`` → :class:`Tagged` (case name, payload tuple, tag, type name).

Types follow packr's Rust conventions (spec §1.2): ``None`` as a return type is
``()`` (``tuple<>``), a ``dict[K, V]`` is ``list<tuple<K, V>>`` in key order, a
``set[T]`` is a sorted ``list<T>``, and a dynamic :class:`Value` is typed ``string``.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import enum
import operator
import sys
import types as pytypes
import typing
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Annotated, Any, ClassVar, Generic, TypeVar

from ..errors import ConversionError
from .types import PRIMITIVE_TYPES, Kind, ValueType
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
    UNIT,
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
    infer_type,
)

__all__ = [
    "Err",
    "Ok",
    "Tagged",
    "TaggedUnion",
    "case",
    "char",
    "f32",
    "f64",
    "flags",
    "from_python",
    "from_value",
    "packr_name",
    "s8",
    "s16",
    "s32",
    "s64",
    "to_python",
    "to_value",
    "u8",
    "u16",
    "u32",
    "u64",
    "value_type_of",
]

_T = TypeVar("_T")
_E = TypeVar("_E")
_TU = TypeVar("_TU", bound="TaggedUnion")

# ------------------------------------------------------------- width aliases

u8 = Annotated[int, ValueType.U8]
u16 = Annotated[int, ValueType.U16]
u32 = Annotated[int, ValueType.U32]
u64 = Annotated[int, ValueType.U64]
s8 = Annotated[int, ValueType.S8]
s16 = Annotated[int, ValueType.S16]
s32 = Annotated[int, ValueType.S32]
s64 = Annotated[int, ValueType.S64]
f32 = Annotated[float, ValueType.F32]
f64 = Annotated[float, ValueType.F64]
char = Annotated[str, ValueType.CHAR]
flags = Annotated[int, ValueType.FLAGS]

# --------------------------------------------------------- python renderings


@dataclasses.dataclass(frozen=True, slots=True)
class Ok(Generic[_T]):
    """The ok arm of a ``Result``; annotate results as ``Ok[A] | Err[B]``."""

    value: _T


@dataclasses.dataclass(frozen=True, slots=True)
class Err(Generic[_E]):
    """The err arm of a ``Result``."""

    value: _E


@dataclasses.dataclass(frozen=True, slots=True)
class Tagged:
    """An untyped variant: what :func:`to_python` makes of a ``Variant``.

    Tag and case name are independent on the wire, so both are kept. As input,
    ``type_name=None`` takes the name from the declared type.
    """

    case: str
    payload: tuple[Any, ...] = ()
    tag: int = 0
    type_name: str | None = None


# ----------------------------------------------------------------- variants


class _Case:
    """A case declared in a :class:`TaggedUnion` body; see :func:`case`."""

    __slots__ = ("attr", "name", "payload", "resolved", "tag")

    def __init__(self, payload: tuple[Any, ...], name: str | None, tag: int | None) -> None:
        self.payload = payload
        self.name = name
        self.tag = tag
        self.attr = ""
        # The payload annotations with forward references evaluated (on first use: a
        # case may name its own union, which does not exist yet while its body runs).
        self.resolved: tuple[Any, ...] | None = None

    def __set_name__(self, owner: type, attr: str) -> None:
        self.attr = attr

    def __get__(self, obj: object, owner: type[_TU]) -> Callable[..., _TU]:
        return partial(owner._make, self)


def case(*payload: Any, name: str | None = None, tag: int | None = None) -> Any:
    """Declare a variant case in a :class:`TaggedUnion` body.

    ``payload`` lists the types of the payload values (packr's ``Case(A, B)``); none
    means a case without payload. ``name`` overrides the case name (packr uses the Rust
    variant name, e.g. ``"Circle"``) and ``tag`` the declaration index.

    A payload type may refer to the union being declared, or to a class defined later
    in its module, by name in a string, alone or inside a type: ``case("Expr",
    "Expr")`` (Rust's ``Add(Box<Expr>, Box<Expr>)``; a ``Box`` is transparent),
    ``case(list["Tree"])``, ``case(tuple["Sexp", s64])``, ``case("Tree | None")``.
    Names resolve on first use, against the union itself and its module's globals.
    """
    if tag is not None and (type(tag) is not int or not 0 <= tag <= 0xFFFF_FFFF):
        raise ValueError(f"a variant tag is a u32, got {tag!r}")
    return _Case(payload, name, tag)


class TaggedUnion:
    """Base of variant classes, packr's derived enums::

        class Shape(TaggedUnion):
            circle = case(f64)           # tag 0, payload [f64]
            rect = case(f64, f64)        # tag 1, payload [f64, f64]
            point = case()               # tag 2, no payload

        Shape.circle(1.5)  →  Variant("Shape", "circle", 0, [F64(1.5)])

    Instances have ``case`` (name), ``tag`` and ``payload`` (a tuple) and compare by
    all three. The variant's type name is the class name or ``__packr_name__``.
    """

    __slots__ = ("case", "payload", "tag")
    __match_args__ = ("case", "payload")
    __cases__: ClassVar[tuple[_Case, ...]] = ()
    __cases_by_tag__: ClassVar[dict[int, _Case]] = {}

    case: str
    tag: int
    payload: tuple[Any, ...]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cases = [v for v in vars(cls).values() if isinstance(v, _Case)]
        by_tag: dict[int, _Case] = {}
        for index, spec in enumerate(cases):
            if spec.attr in TaggedUnion.__slots__:
                raise TypeError(f"{cls.__name__}: case name {spec.attr!r} is reserved")
            spec.tag = index if spec.tag is None else spec.tag
            spec.name = spec.attr if spec.name is None else spec.name
            if spec.tag in by_tag:
                raise TypeError(f"{cls.__name__}: two cases have tag {spec.tag}")
            by_tag[spec.tag] = spec
        if cases:
            cls.__cases__ = tuple(cases)
            cls.__cases_by_tag__ = by_tag

    @classmethod
    def _make(cls: type[_TU], spec: _Case, *payload: Any) -> _TU:
        if len(payload) != len(spec.payload):
            raise TypeError(
                f"{cls.__name__}.{spec.attr} takes {len(spec.payload)} payload "
                f"value(s), got {len(payload)}"
            )
        obj = object.__new__(cls)
        obj.case = spec.name or ""
        obj.tag = spec.tag or 0
        obj.payload = payload
        return obj

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TaggedUnion) or type(other) is not type(self):
            return NotImplemented
        return (self.tag, self.case, self.payload) == (other.tag, other.case, other.payload)

    def __hash__(self) -> int:
        return hash((type(self), self.tag, self.case, self.payload))

    def __repr__(self) -> str:
        args = ", ".join(map(repr, self.payload))
        return f"{type(self).__name__}.{self.case}({args})"


def packr_name(cls: type) -> str:
    """The packr type name of a dataclass, TaggedUnion or Enum: ``__packr_name__`` or
    the class name (packr uses the Rust type name)."""
    name = cls.__dict__.get("__packr_name__", cls.__name__)
    if type(name) is not str:
        raise ConversionError(f"{cls.__name__}.__packr_name__ must be a str, got {name!r}")
    return name


# ------------------------------------------------------------------ schemas


@dataclasses.dataclass(frozen=True, slots=True)
class _Field:
    attr: str
    wire: str
    annotation: Any
    vtype: ValueType
    init: bool


@dataclasses.dataclass(frozen=True, slots=True)
class _RecordSchema:
    name: str
    fields: tuple[_Field, ...]


_record_schemas: dict[type, _RecordSchema] = {}
_case_types: dict[tuple[type, str], tuple[ValueType, ...]] = {}


def _hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls, localns={cls.__name__: cls}, include_extras=True)
    except Exception as exc:
        raise ConversionError(f"cannot resolve the annotations of {cls.__name__}: {exc}") from exc


def _record_schema(cls: type) -> _RecordSchema:
    schema = _record_schemas.get(cls)
    if schema is None:
        hints = _hints(cls)
        fields = []
        for f in dataclasses.fields(cls):
            annotation = hints.get(f.name, f.type)
            try:
                vt = value_type_of(annotation)
            except ConversionError as exc:
                raise ConversionError(f"{cls.__name__}.{f.name}: {exc}") from None
            wire = f.metadata.get("packr_name", f.name)
            fields.append(_Field(f.name, wire, annotation, vt, f.init))
        schema = _RecordSchema(packr_name(cls), tuple(fields))
        _record_schemas[cls] = schema
    return schema


def case_payload(cls: type, spec: _Case) -> tuple[Any, ...]:
    """The payload annotations of ``cls``'s case ``spec``, forward references resolved.

    Resolved once, on first use, with :func:`typing.get_type_hints` (strings, and
    strings nested in ``list["T"]``-style generics) against the union class's own name
    and its module's globals, so a union can contain itself as packr's recursive enums
    do (``enum Tree { Leaf(i64), Node(Vec<Tree>) }``).
    """
    resolved = spec.resolved
    if resolved is None:
        resolved = spec.payload
        if any(_has_forward_ref(t) for t in resolved):
            holder = type("_Payload", (), {})
            holder.__annotations__ = {f"p{i}": t for i, t in enumerate(resolved)}
            module = sys.modules.get(cls.__module__)
            globalns = dict(vars(module)) if module is not None else {}
            try:
                hints = typing.get_type_hints(
                    holder, globalns=globalns, localns={cls.__name__: cls}, include_extras=True
                )
            except Exception as exc:
                raise ConversionError(
                    f"{cls.__name__}.{spec.attr}: cannot resolve the payload types "
                    f"{list(resolved)!r}: {exc}"
                ) from None
            resolved = tuple(hints[f"p{i}"] for i in range(len(resolved)))
        spec.resolved = resolved
    return resolved


def _has_forward_ref(annotation: Any) -> bool:
    """Whether a string or ``ForwardRef`` hides anywhere in ``annotation``."""
    stack = [annotation]
    while stack:
        a = stack.pop()
        if isinstance(a, (str, typing.ForwardRef)):
            return True
        if typing.get_origin(a) is Annotated:
            stack.append(a.__origin__)
        else:
            stack.extend(typing.get_args(a))
    return False


def _case_payload_types(cls: type, spec: _Case) -> tuple[ValueType, ...]:
    key = (cls, spec.attr)
    found = _case_types.get(key)
    if found is None:
        payload = case_payload(cls, spec)
        try:
            found = tuple(value_type_of(t) for t in payload)
        except ConversionError as exc:
            raise ConversionError(f"{cls.__name__}.{spec.attr}: {exc}") from None
        _case_types[key] = found
    return found


# Ok, Err and Tagged are dataclasses too, but they render results and variants.
_RENDERINGS = (Ok, Err, Tagged)


def _is_dataclass_type(obj: Any) -> bool:
    return (
        isinstance(obj, type) and dataclasses.is_dataclass(obj) and not issubclass(obj, _RENDERINGS)
    )


def _is_dataclass_instance(obj: Any) -> bool:
    return (
        dataclasses.is_dataclass(obj)
        and not isinstance(obj, type)
        and not isinstance(obj, _RENDERINGS)
    )


# ------------------------------------------------------------ value_type_of

_SCALAR_TYPES: dict[Any, ValueType] = {
    bool: ValueType.BOOL,
    float: ValueType.F64,
    str: ValueType.STRING,
    bytes: ValueType.list(ValueType.U8),
    bytearray: ValueType.list(ValueType.U8),
    type(None): ValueType.UNIT,
    None: ValueType.UNIT,
    Value: ValueType.STRING,
}
_VALUE_CLASS_TYPES: dict[type, ValueType] = {
    cls: PRIMITIVE_TYPES[cls.KIND]
    for cls in (Bool, U8, U16, U32, U64, S8, S16, S32, S64, F32, F64, Char, String, Flags)
}
_LIST_ORIGINS = (list, cabc.Sequence, cabc.MutableSequence, cabc.Iterable, cabc.Collection)
_SET_ORIGINS = (set, frozenset, cabc.Set, cabc.MutableSet)
_DICT_ORIGINS = (dict, cabc.Mapping, cabc.MutableMapping)


def _union_args(annotation: Any) -> tuple[Any, ...] | None:
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is pytypes.UnionType:
        return typing.get_args(annotation)
    return None


def _split_union(args: tuple[Any, ...]) -> tuple[bool, Any, Any, list[Any]]:
    """(has None, Ok arg, Err arg, other members) of a Union's members."""
    has_none = False
    ok: Any = None
    err: Any = None
    rest: list[Any] = []
    for a in args:
        origin = typing.get_origin(a)
        if a is type(None):
            has_none = True
        elif origin is Ok or a is Ok:
            ok = a
        elif origin is Err or a is Err:
            err = a
        else:
            rest.append(a)
    return has_none, ok, err, rest


def _arm(annotation: Any) -> Any:
    args = typing.get_args(annotation)
    if len(args) != 1:
        raise ConversionError(f"{annotation!r} needs its value type, e.g. Ok[s64] | Err[str]")
    return args[0]


def value_type_of(annotation: Any) -> ValueType:
    """The packr ``ValueType`` of a Python type annotation.

    Supported: ``bool``, ``float`` (f64), ``str``, ``bytes`` (``list<u8>``), ``None``
    (``()``), the width aliases (``s64``, ``u8``, ``f32``, ``char``, ``flags``, ... or
    any ``Annotated[T, ValueType]``), ``list[T]``, ``set[T]``, ``dict[K, V]``
    (``list<tuple<K, V>>``), ``tuple[A, B]``, ``tuple[T, ...]`` (``list<T>``),
    ``T | None`` (``option<T>``), ``Ok[A] | Err[B]`` (``result<A, B>``), dataclasses
    (records), :class:`TaggedUnion` and ``Enum`` classes (variants), ``Value``
    (``string``: packr's static type of a dynamic value) and primitive Value classes.
    A bare ``int`` is refused: packr needs a width.
    """
    if isinstance(annotation, ValueType):
        return annotation
    if typing.get_origin(annotation) is Annotated:
        for meta in annotation.__metadata__:
            if isinstance(meta, ValueType):
                return meta
        return value_type_of(annotation.__origin__)
    try:
        scalar = _SCALAR_TYPES.get(annotation)
    except TypeError:  # unhashable annotation objects
        scalar = None
    if scalar is not None:
        return scalar
    if annotation is int:
        raise ConversionError(
            "int has no width: annotate with s64, u32, ... or Annotated[int, ValueType.S64]"
        )
    if isinstance(annotation, type):
        if annotation in _VALUE_CLASS_TYPES:
            return _VALUE_CLASS_TYPES[annotation]
        if _is_dataclass_type(annotation):
            return ValueType.record(packr_name(annotation))
        if issubclass(annotation, (TaggedUnion, enum.Enum)):
            return ValueType.variant(packr_name(annotation))
    supertype = getattr(annotation, "__supertype__", None)
    if supertype is not None:  # typing.NewType
        return value_type_of(supertype)
    members = _union_args(annotation)
    if members is not None:
        has_none, ok, err, rest = _split_union(members)
        if (ok is None) != (err is None) or (ok is not None and rest):
            raise ConversionError(f"a result is annotated Ok[A] | Err[B], got {annotation!r}")
        if ok is not None:
            inner = ValueType.result(value_type_of(_arm(ok)), value_type_of(_arm(err)))
        elif len(rest) == 1:
            inner = value_type_of(rest[0])
        else:
            raise ConversionError(f"packr has no untagged unions: {annotation!r}")
        return ValueType.option(inner) if has_none else inner
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return ValueType.list(value_type_of(args[0]))
        if args == ((),):  # typing.Tuple[()]
            return ValueType.UNIT
        return ValueType.tuple(*(value_type_of(a) for a in args))
    if origin in _LIST_ORIGINS or origin in _SET_ORIGINS:
        if len(args) != 1:
            raise ConversionError(f"{annotation!r} needs an element type")
        return ValueType.list(value_type_of(args[0]))
    if origin in _DICT_ORIGINS:
        if len(args) != 2:
            raise ConversionError(f"{annotation!r} needs key and value types")
        return ValueType.list(ValueType.tuple(value_type_of(args[0]), value_type_of(args[1])))
    if annotation in (list, tuple, set, frozenset, dict):
        raise ConversionError(f"{annotation.__name__} needs its item types, e.g. list[s64]")
    raise ConversionError(f"no packr type for annotation {annotation!r}")


# ------------------------------------------------------------------- paths

# A path is a linked list (parent, segment) rendered only when an error is raised, so
# deep conversions do not build long strings; int segments are indices.
_Path = tuple[Any, str | int] | None


def _render(path: _Path, keep: int = 12) -> str:
    parts: list[str] = []
    while path is not None:
        path, seg = path
        parts.append(f"[{seg}]" if isinstance(seg, int) else seg)
    parts.reverse()
    if len(parts) > 2 * keep:  # a million-deep path would make a useless message
        hidden = len(parts) - 2 * keep
        parts = [*parts[:keep], f"...({hidden} more)...", *parts[-keep:]]
    return "$" + "".join(parts)


def _fail(path: _Path, message: str) -> ConversionError:
    return ConversionError(f"{_render(path)}: {message}")


def _describe(obj: Any) -> str:
    text = repr(obj)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(obj).__name__} {text}"


# ----------------------------------------------------------- from_python

_INT_CLASSES: dict[int, type[Any]] = {
    Kind.U8: U8,
    Kind.U16: U16,
    Kind.U32: U32,
    Kind.U64: U64,
    Kind.S8: S8,
    Kind.S16: S16,
    Kind.S32: S32,
    Kind.S64: S64,
    Kind.FLAGS: Flags,
}
_BYTES_LIKE = (bytes, bytearray, memoryview)


def _primitive_items(items: list[Any], elem: ValueType, path: _Path) -> list[Value]:
    cls = _INT_CLASSES.get(elem.tag)
    out: list[Value] = []
    append = out.append
    if cls is not None:  # the common bulk case, without re-validation per item
        lo, hi, new = cls.MIN, cls.MAX, object.__new__
        for i, x in enumerate(items):
            if type(x) is int and lo <= x <= hi:
                v = new(cls)
                v.value = x
                append(v)
            else:
                append(_expand_to_value(x, elem, (path, i)))
        return out
    for i, x in enumerate(items):
        append(_expand_to_value(x, elem, (path, i)))
    return out


def _primitive(obj: Any, vtype: ValueType, path: _Path) -> Value:
    """A primitive of the declared type (``obj`` is not a Value here)."""
    tag = vtype.tag
    if tag == Kind.BOOL:
        if type(obj) is bool:
            return Bool(obj)
        raise _fail(path, f"expected a bool, got {_describe(obj)}")
    cls = _INT_CLASSES.get(tag)
    if cls is not None:
        if isinstance(obj, bool):
            raise _fail(path, f"expected an int for {vtype}, got bool {obj!r}")
        try:
            n = operator.index(obj)
        except TypeError:
            raise _fail(path, f"expected an int for {vtype}, got {_describe(obj)}") from None
        if not cls.MIN <= n <= cls.MAX:
            raise _fail(path, f"{n} is out of range for {vtype} [{cls.MIN}, {cls.MAX}]")
        return cls(n)  # type: ignore[no-any-return]
    if tag == Kind.F32 or tag == Kind.F64:
        if isinstance(obj, (int, float)) and not isinstance(obj, bool):
            try:
                x = float(obj)
            except OverflowError:
                raise _fail(path, f"{obj} is too large for {vtype}") from None
            return F32(x) if tag == Kind.F32 else F64(x)
        raise _fail(path, f"expected a float for {vtype}, got {_describe(obj)}")
    if tag == Kind.CHAR:
        if isinstance(obj, str) and len(obj) == 1:
            try:
                return Char(str(obj))
            except ValueError as exc:
                raise _fail(path, str(exc)) from None
        raise _fail(path, f"expected a one-character str for char, got {_describe(obj)}")
    # STRING
    if isinstance(obj, str):
        try:
            return String(str(obj))
        except ValueError as exc:
            raise _fail(path, str(exc)) from None
    raise _fail(path, f"expected a str, got {_describe(obj)}")


_Task = tuple[Any, Any, _Path]


class _Build:
    """A compound being converted: ``make`` combines its converted ``children``."""

    __slots__ = ("children", "count", "make", "path")

    def __init__(
        self, make: Callable[[list[Any]], Any], children: Sequence[_Task], path: _Path
    ) -> None:
        self.make = make
        self.children: Sequence[_Task] | None = children
        self.count = len(children)
        self.path = path


def _run(first: _Task, expand: Callable[[Any, Any, _Path], Any]) -> Any:
    """Drive a post-order conversion with an explicit stack.

    ``expand(obj, spec, path)`` returns a finished result, or a :class:`_Build` whose
    children are ``(obj, spec, path)`` tasks.
    """
    out: list[Any] = []
    stack: list[_Task | _Build] = [first]
    pop, push, extend = stack.pop, stack.append, stack.extend
    while stack:
        task = pop()
        if isinstance(task, _Build):
            n = task.count
            kids = out[len(out) - n :] if n else []
            if n:
                del out[len(out) - n :]
            try:
                out.append(task.make(kids))
            except ConversionError:
                raise
            except (TypeError, ValueError, OverflowError) as exc:
                raise _fail(task.path, str(exc)) from None
            continue
        obj, spec, path = task
        result = expand(obj, spec, path)
        if type(result) is _Build:
            push(result)
            extend(reversed(result.children))  # type: ignore[arg-type]
            result.children = None  # the stack holds them now
        else:
            out.append(result)
    return out[0]


def from_python(obj: Any, vtype: ValueType | None = None) -> Value:
    """Convert ``obj`` to a Value of the declared type, or of its inferred type.

    A :class:`Value` is accepted as is where the declared type is its own type or
    ``string`` (packr's type for dynamic values). Raises :class:`ConversionError`
    with the path of the offending part.
    """
    if vtype is not None and not isinstance(vtype, ValueType):
        raise TypeError(f"from_python takes a ValueType, got {type(vtype).__name__}")
    result: Value = _run((obj, vtype, None), _expand_to_value)
    return result


#: ``to_value(obj)`` reads better for dataclasses; it is :func:`from_python`.
to_value = from_python


def _expand_to_value(obj: Any, vtype: ValueType | None, path: _Path) -> Any:
    if isinstance(obj, Value):
        if vtype is None or vtype.tag == Kind.STRING or infer_type(obj) == vtype:
            return obj
        raise _fail(path, f"a {infer_type(obj)} Value where {vtype} is declared")
    if vtype is None:
        return _expand_inferred(obj, path)
    if vtype.is_primitive:
        return _primitive(obj, vtype, path)
    tag = vtype.tag
    if tag == Kind.LIST:
        return _expand_list(obj, vtype.args[0], path)
    if tag == Kind.OPTION:
        inner = vtype.args[0]
        if obj is None:
            return Option(inner, None)
        return _Build(lambda k: Option(inner, k[0]), [(obj, inner, path)], path)
    if tag == Kind.RESULT:
        return _expand_result(obj, vtype, path)
    if tag == Kind.TUPLE:
        types = vtype.args
        if obj is None and not types:
            return UNIT
        if not isinstance(obj, (tuple, list)):
            raise _fail(path, f"expected a tuple for {vtype}, got {_describe(obj)}")
        if len(obj) != len(types):
            raise _fail(path, f"expected {len(types)} items for {vtype}, got {len(obj)}")
        kids = [(x, t, (path, i)) for i, (x, t) in enumerate(zip(obj, types, strict=True))]
        return _Build(Tuple.from_items, kids, path)
    if tag == Kind.RECORD:
        return _expand_record(obj, vtype.name or "", path)
    return _expand_variant(obj, vtype.name or "", path)


def _expand_list(obj: Any, elem: ValueType, path: _Path) -> Any:
    if isinstance(obj, _BYTES_LIKE):
        if elem.tag != Kind.U8:
            raise _fail(path, f"bytes convert to list<u8>, not list<{elem}>")
        return List.from_bytes(obj)
    if isinstance(obj, (str, Value)) or _is_dataclass_instance(obj):
        raise _fail(path, f"expected a list for list<{elem}>, got {_describe(obj)}")
    if isinstance(obj, Mapping):
        if elem.tag != Kind.TUPLE or len(elem.args) != 2:
            raise _fail(path, f"a dict converts to list<tuple<K, V>>, not list<{elem}>")
        items: list[Any] = _sorted(list(obj.items()), path, key=lambda kv: kv[0])
    elif isinstance(obj, (set, frozenset)):
        items = _sorted(list(obj), path)
    else:
        try:
            items = list(obj)
        except TypeError:
            raise _fail(path, f"expected a list for list<{elem}>, got {_describe(obj)}") from None
    if elem.is_primitive:  # no nesting: convert in place, no tasks
        return List(elem, _primitive_items(items, elem, path))
    kids = [(x, elem, (path, i)) for i, x in enumerate(items)]
    return _Build(lambda k: List(elem, k), kids, path)


def _sorted(items: list[Any], path: _Path, key: Callable[[Any], Any] | None = None) -> list[Any]:
    # packr's BTreeMap/BTreeSet conventions: entries in key order.
    try:
        return sorted(items, key=key)
    except TypeError as exc:
        raise _fail(path, f"cannot order the keys: {exc}") from None


def _expand_result(obj: Any, vtype: ValueType, path: _Path) -> Any:
    ok_t, err_t = vtype.args
    if isinstance(obj, Ok):
        is_err, inner = False, obj.value
    elif isinstance(obj, Err):
        is_err, inner = True, obj.value
    elif isinstance(obj, tuple) and len(obj) == 2 and obj[0] in ("ok", "err"):
        is_err, inner = obj[0] == "err", obj[1]
    else:
        raise _fail(path, f"expected Ok(...) or Err(...) for {vtype}, got {_describe(obj)}")
    arm = (path, ".err" if is_err else ".ok")
    return _Build(
        lambda k: Result(ok_t, err_t, k[0], is_err=is_err),
        [(inner, err_t if is_err else ok_t, arm)],
        path,
    )


def _expand_record(obj: Any, name: str | None, path: _Path) -> Any:
    """A dataclass instance, or (with a declared name) a mapping of field values."""
    kids: list[_Task]
    if _is_dataclass_instance(obj):
        schema = _record_schema(type(obj))
        if name is not None and schema.name != name:
            raise _fail(
                path,
                f"a {type(obj).__name__} is record {schema.name!r}, not {name!r} "
                "(set __packr_name__ to rename it)",
            )
        wires = [f.wire for f in schema.fields]
        kids = [(getattr(obj, f.attr), f.vtype, (path, f".{f.wire}")) for f in schema.fields]
        return _Build(partial(_make_record, schema.name, wires), kids, path)
    if name is not None and isinstance(obj, Mapping):
        keys = list(obj)
        for key in keys:
            if type(key) is not str:
                raise _fail(path, f"record field names are str, got {_describe(key)}")
        kids = [(obj[key], None, (path, f".{key}")) for key in keys]
        return _Build(partial(_make_record, name, keys), kids, path)
    raise _fail(path, f"expected a dataclass or dict for record {name!r}, got {_describe(obj)}")


def _make_record(name: str, wires: list[str], kids: list[Value]) -> Record:
    return Record(name, list(zip(wires, kids, strict=True)))


def _make_variant(type_name: str, case_name: str, tag: int, kids: list[Value]) -> Variant:
    return Variant(type_name, case_name, tag, kids)


def _checked_name(path: _Path, what: str, actual: str, declared: str | None) -> str:
    if declared is not None and actual != declared:
        raise _fail(path, f"a {what} is variant {actual!r}, not {declared!r}")
    return actual


def _expand_variant(obj: Any, name: str | None, path: _Path) -> Any:
    kids: list[_Task]
    if isinstance(obj, TaggedUnion):
        union = type(obj)
        type_name = _checked_name(path, union.__name__, packr_name(union), name)
        spec = union.__cases_by_tag__[obj.tag]
        types = _case_payload_types(union, spec)
        kids = [
            (x, t, (path, f".{obj.case}[{i}]"))
            for i, (x, t) in enumerate(zip(obj.payload, types, strict=True))
        ]
        make = partial(_make_variant, type_name, obj.case, obj.tag)
        return _Build(make, kids, path)
    if isinstance(obj, enum.Enum):
        members = list(type(obj))
        type_name = _checked_name(path, type(obj).__name__, packr_name(type(obj)), name)
        return Variant(type_name, obj.name, members.index(obj))
    if isinstance(obj, Tagged):
        if obj.type_name is None:
            type_name = name or ""
        else:
            type_name = _checked_name(path, "Tagged", obj.type_name, name)
        case_name, tag = obj.case, obj.tag
        if type(case_name) is not str or type(tag) is not int or not 0 <= tag <= 0xFFFF_FFFF:
            raise _fail(path, f"bad Tagged case/tag: {obj.case!r}, {obj.tag!r}")
        kids = [(x, None, (path, f".{case_name}[{i}]")) for i, x in enumerate(obj.payload)]
        return _Build(partial(_make_variant, type_name, case_name, tag), kids, path)
    raise _fail(
        path, f"expected a TaggedUnion, Enum or Tagged for variant {name!r}, got {_describe(obj)}"
    )


def _expand_inferred(obj: Any, path: _Path) -> Any:
    """The obvious type for an undeclared object."""
    if type(obj) is tuple:  # checked first: nesting is what makes values deep
        return _Build(Tuple.from_items, [(x, None, (path, i)) for i, x in enumerate(obj)], path)
    if isinstance(obj, bool):
        return Bool(obj)
    if isinstance(obj, int):
        if not S64.MIN <= obj <= S64.MAX:
            raise _fail(path, f"{obj} does not fit s64 (the type inferred for int); declare a type")
        return S64(int(obj))
    if isinstance(obj, float):
        return F64(obj)
    if isinstance(obj, str):
        return _primitive(obj, ValueType.STRING, path)
    if isinstance(obj, _BYTES_LIKE):
        return List.from_bytes(obj)
    if isinstance(obj, tuple):
        kids = [(x, None, (path, i)) for i, x in enumerate(obj)]
        return _Build(Tuple.from_items, kids, path)
    if isinstance(obj, (list, set, frozenset)):
        items = list(obj) if isinstance(obj, list) else _sorted(list(obj), path)
        if not items:
            raise _fail(path, "cannot infer the element type of an empty list; declare a type")
        kids = [(x, None, (path, i)) for i, x in enumerate(items)]
        return _Build(partial(_homogeneous, path), kids, path)
    if _is_dataclass_instance(obj):
        return _expand_record(obj, None, path)
    if isinstance(obj, (TaggedUnion, enum.Enum, Tagged)):
        return _expand_variant(obj, None, path)
    if obj is None:
        raise _fail(path, "None has no packr type on its own; declare option<T> or tuple<>")
    if isinstance(obj, (Ok, Err)):
        raise _fail(path, "a result needs both arm types; declare result<O, E>")
    if isinstance(obj, Mapping):
        raise _fail(path, "a dict could be a record or a map; declare its type")
    raise _fail(path, f"no packr type for {_describe(obj)}")


def _homogeneous(path: _Path, items: list[Value]) -> List:
    elem = infer_type(items[0])
    for i, item in enumerate(items):
        t = infer_type(item)
        if t != elem:
            raise _fail((path, i), f"list items differ in type: {elem} and {t}")
    return List(elem, items)


# ------------------------------------------------------------- to_python


def to_python(value: Value) -> Any:
    """An untyped plain-Python rendering (see the module docstring for the mapping)."""
    return _run((value, None, None), _expand_to_python)


def _expand_to_python(v: Any, _spec: Any, path: _Path) -> Any:
    cls = type(v)
    if cls is String or cls is Char or cls is Bool or cls in _INT_CLASSES.values():
        return v.value
    if cls is F32 or cls is F64:
        return v.value
    if cls is List:
        if all(type(x) not in _COMPOUND_CLASSES for x in v.items):  # flat: no tasks
            return [x.value for x in v.items]
        return _Build(list, [(x, None, path) for x in v.items], path)
    if cls is Tuple:
        return _Build(tuple, [(x, None, path) for x in v.items], path)
    if cls is Option:
        if v.value is None:
            return None
        return _Build(_first, [(v.value, None, path)], path)
    if cls is Result:
        arm = Err if v.is_err else Ok
        return _Build(lambda k: arm(k[0]), [(v.value, None, path)], path)
    if cls is Record:
        names = [n for n, _ in v.fields]
        return _Build(partial(_first_wins, names), [(x, None, path) for _, x in v.fields], path)
    if cls is Variant:
        t, c, tag = v.type_name, v.case_name, v.tag
        return _Build(
            lambda k: Tagged(c, tuple(k), tag, t), [(x, None, path) for x in v.payload], path
        )
    raise TypeError(f"to_python takes a Value, got {type(v).__name__}")


_COMPOUND_CLASSES = frozenset({List, Tuple, Option, Result, Record, Variant})


def _first(kids: list[Any]) -> Any:
    return kids[0]


def _first_wins(names: list[str], kids: list[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, x in zip(names, kids, strict=True):
        out.setdefault(name, x)
    return out


# -------------------------------------------------------------- from_value

# Specs: small tuples describing how to read a Value into a Python annotation.
_Spec = tuple[Any, ...]
_spec_cache: dict[Any, _Spec] = {}


def _spec_of(annotation: Any) -> _Spec:
    try:
        cached = _spec_cache.get(annotation)
    except TypeError:
        return _make_spec(annotation)
    if cached is None:
        cached = _make_spec(annotation)
        _spec_cache[annotation] = cached
    return cached


def _make_spec(a: Any) -> _Spec:
    if a is Any or a is object:
        return ("any",)
    if a is None or a is type(None):
        return ("none",)
    if typing.get_origin(a) is Annotated:
        base = _spec_of(a.__origin__)
        vts = [m for m in a.__metadata__ if isinstance(m, ValueType)]
        if vts and vts[0].is_primitive:
            return ("prim", vts[0])
        return base
    if isinstance(a, ValueType):
        return ("prim", a) if a.is_primitive else ("any",)
    if a is bool:
        return ("prim", ValueType.BOOL)
    if a is int:
        return ("int",)
    if a is float:
        return ("float",)
    if a is str:
        return ("prim", ValueType.STRING)
    if a is bytes or a is bytearray:
        return ("bytes", a)
    if isinstance(a, type):
        if issubclass(a, Value):
            return ("value", a)
        if _is_dataclass_type(a):
            return ("record", a)
        if issubclass(a, TaggedUnion):
            return ("variant", a)
        if issubclass(a, enum.Enum):
            return ("enum", a)
    supertype = getattr(a, "__supertype__", None)
    if supertype is not None:
        return _spec_of(supertype)
    members = _union_args(a)
    if members is not None:
        has_none, ok, err, rest = _split_union(members)
        if ok is not None and err is not None and not rest:
            inner: _Spec = ("result", _arm(ok), _arm(err))
        elif ok is None and err is None and len(rest) == 1:
            inner = _spec_of(rest[0])
        else:
            raise ConversionError(f"cannot read a Value as {a!r}")
        return ("option", inner) if has_none else inner
    origin = typing.get_origin(a)
    args = typing.get_args(a)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return ("list", args[0], tuple)
        if args == ((),):
            return ("tuple", ())
        return ("tuple", args)
    if origin in _LIST_ORIGINS and len(args) == 1:
        return ("list", args[0], list)
    if origin in _SET_ORIGINS and len(args) == 1:
        return ("list", args[0], frozenset if origin is frozenset else set)
    if origin in _DICT_ORIGINS and len(args) == 2:
        return ("dict", args[0], args[1])
    raise ConversionError(f"cannot read a Value as {a!r}")


def from_value(value: Value, annotation: Any) -> Any:
    """Read ``value`` as the Python type ``annotation`` (a class or typing form).

    The inverse of :func:`to_value` for dataclasses, :class:`TaggedUnion`, ``Enum``
    and the annotations :func:`value_type_of` accepts. Like packr, records are matched
    by field name and must have exactly the declared fields, variants dispatch on the
    tag, and a legacy ``result::ok/err`` variant is read as a result. ``None`` reads
    any value as ``None`` (packr ignores the reply of a ``-> ()`` import); ``Any``
    gives :func:`to_python`.
    """
    if not isinstance(value, Value):
        raise TypeError(f"from_value takes a Value, got {type(value).__name__}")
    return _run((value, _spec_of(annotation), None), _expand_from_value)


def _kind_name(v: Value) -> str:
    t = infer_type(v)
    if t.tag == Kind.RECORD or t.tag == Kind.VARIANT:
        return f"{t.kind.name.lower()} {t.name!r}"
    return str(t)


def _expand_from_value(v: Any, spec: Any, path: _Path) -> Any:
    if type(spec) is not tuple:
        spec = _spec_of(spec)
    kind = spec[0]
    cls = type(v)
    if kind == "prim":
        want: ValueType = spec[1]
        if want.tag != cls.KIND:
            raise _fail(path, f"expected {want}, got {_kind_name(v)}")
        return v.value
    if kind == "int":
        if cls not in _INT_CLASSES.values() or cls is Flags:
            raise _fail(path, f"expected an integer, got {_kind_name(v)}")
        return v.value
    if kind == "float":
        if cls is not F32 and cls is not F64:
            raise _fail(path, f"expected f32 or f64, got {_kind_name(v)}")
        return v.value
    if kind == "any":
        return to_python(v)
    if kind == "none":
        return None
    if kind == "value":
        if not isinstance(v, spec[1]):
            raise _fail(path, f"expected a {spec[1].__name__} Value, got {_kind_name(v)}")
        return v
    if kind == "bytes":
        if cls is not List or any(type(x) is not U8 for x in v.items):
            raise _fail(path, f"expected list<u8>, got {_kind_name(v)}")
        return spec[1](x.value for x in v.items)
    if kind == "list":
        if cls is not List:
            raise _fail(path, f"expected a list, got {_kind_name(v)}")
        elem, container = spec[1], spec[2]
        kids = [(x, elem, (path, i)) for i, x in enumerate(v.items)]
        return _Build(container, kids, path)
    if kind == "tuple":
        types = spec[1]
        if cls is not Tuple:
            raise _fail(path, f"expected a tuple, got {_kind_name(v)}")
        if len(v.items) != len(types):
            raise _fail(path, f"expected {len(types)} tuple items, got {len(v.items)}")
        kids = [(x, t, (path, i)) for i, (x, t) in enumerate(zip(v.items, types, strict=True))]
        return _Build(tuple, kids, path)
    if kind == "dict":
        return _dict_from_value(v, spec[1], spec[2], path)
    if kind == "option":
        if cls is not Option:
            raise _fail(path, f"expected an option, got {_kind_name(v)}")
        if v.value is None:
            return None
        return _Build(_first, [(v.value, spec[1], path)], path)
    if kind == "result":
        return _result_from_value(v, spec[1], spec[2], path)
    if kind == "record":
        return _record_from_value(v, spec[1], path)
    if kind == "variant":
        return _union_from_value(v, spec[1], path)
    # enum
    enum_cls = spec[1]
    if cls is not Variant:
        raise _fail(path, f"expected variant {packr_name(enum_cls)}, got {_kind_name(v)}")
    members = list(enum_cls)
    if v.tag >= len(members):
        raise _fail(path, f"{enum_cls.__name__} has no case with tag {v.tag}")
    if v.payload:
        raise _fail(path, f"{enum_cls.__name__}.{members[v.tag].name} takes no payload")
    return members[v.tag]


def _dict_from_value(v: Any, key_t: Any, val_t: Any, path: _Path) -> Any:
    if type(v) is Record:
        names = [n for n, _ in v.fields]
        kids = [(x, val_t, (path, f".{n}")) for n, x in v.fields]
        return _Build(lambda k: dict(zip(names, k, strict=True)), kids, path)
    if type(v) is not List:
        raise _fail(path, f"expected list<tuple<K, V>> or a record, got {_kind_name(v)}")
    kids = []
    for i, item in enumerate(v.items):
        if type(item) is not Tuple or len(item.items) != 2:
            raise _fail((path, i), f"expected a (key, value) tuple, got {_kind_name(item)}")
        kids.append((item.items[0], key_t, (path, f"[{i}][0]")))
        kids.append((item.items[1], val_t, (path, f"[{i}][1]")))
    return _Build(_pairs_to_dict, kids, path)


def _pairs_to_dict(kids: list[Any]) -> dict[Any, Any]:
    return dict(zip(kids[::2], kids[1::2], strict=True))


def _result_from_value(v: Any, ok_t: Any, err_t: Any, path: _Path) -> Any:
    if type(v) is Result:
        is_err, inner = v.is_err, v.value
    elif type(v) is Variant and v.tag in (0, 1) and len(v.payload) == 1:
        # Legacy form some guests send: result::ok(v) / result::err(v), tag 0 / 1.
        is_err, inner = v.tag == 1, v.payload[0]
    else:
        raise _fail(path, f"expected a result, got {_kind_name(v)}")
    arm = Err if is_err else Ok
    arm_path = (path, ".err" if is_err else ".ok")
    return _Build(lambda k: arm(k[0]), [(inner, err_t if is_err else ok_t, arm_path)], path)


def _record_from_value(v: Any, cls: type, path: _Path) -> Any:
    schema = _record_schema(cls)
    if type(v) is not Record:
        raise _fail(path, f"expected record {schema.name}, got {_kind_name(v)}")
    if len(v.fields) != len(schema.fields):
        raise _fail(
            path,
            f"record {schema.name} has {len(schema.fields)} fields, the value has "
            f"{len(v.fields)}: {list(v.field_names)}",
        )
    kids = []
    for f in schema.fields:
        x = v.get(f.wire)
        if x is None:
            raise _fail(path, f"missing field {f.wire!r} of record {schema.name}")
        kids.append((x, f.annotation, (path, f".{f.wire}")))
    return _Build(partial(_build_dataclass, cls, schema), kids, path)


def _build_dataclass(cls: type, schema: _RecordSchema, kids: list[Any]) -> Any:
    kwargs = {f.attr: x for f, x in zip(schema.fields, kids, strict=True) if f.init}
    obj = cls(**kwargs)
    for f, x in zip(schema.fields, kids, strict=True):
        if not f.init:
            object.__setattr__(obj, f.attr, x)
    return obj


def _union_from_value(v: Any, cls: type[TaggedUnion], path: _Path) -> Any:
    if type(v) is not Variant:
        raise _fail(path, f"expected variant {packr_name(cls)}, got {_kind_name(v)}")
    spec = cls.__cases_by_tag__.get(v.tag)
    if spec is None:
        raise _fail(path, f"{cls.__name__} has no case with tag {v.tag}")
    if len(v.payload) != len(spec.payload):
        raise _fail(
            path,
            f"{cls.__name__}.{spec.attr} takes {len(spec.payload)} payload value(s), "
            f"got {len(v.payload)}",
        )
    kids = [
        (x, t, (path, f".{spec.name}[{i}]"))
        for i, (x, t) in enumerate(zip(v.payload, case_payload(cls, spec), strict=True))
    ]
    return _Build(lambda k: cls._make(spec, *k), kids, path)
