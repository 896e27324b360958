"""Declaring and implementing a host interface in one place (packr's ``InterfaceImpl``).

packr's host writes an interface once, as Rust closures, and gets both the host
functions and the interface's structural hash (spec §6.3) from the same declaration,
so the two can never drift apart. The Python counterpart reads each handler's type
annotations (or explicit ``params=`` / ``returns=``) and derives:

* the typed host functions registered with a :class:`HostLinkerBuilder`
  (:class:`InterfaceImpl` is a :class:`HostFunctionProvider`), and
* one :class:`~packr_replay.abi.metadata.FunctionSig` per function, hence the
  interface hash a guest importing the interface embeds::

    kv = interface_from_impl("kv:store/kv", {"get": get, "set": set_, "delete": delete})
    kv.hash().hex()                  # compare with a guest's import-hashes
    module.instantiate(kv)           # registers the three functions

Conventions follow packr's ``InterfaceImpl``: the first handler parameter is the
context and not part of the signature; a ``None`` return declares no results; an
unannotated parameter or return (or one annotated ``Value``) is the dynamic ``value``
type; dataclasses and :class:`~packr_replay.abi.convert.TaggedUnion` classes are
inlined structurally, as guests inline named types.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import enum
import inspect
import types as pytypes
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from ..abi import EncodedValue, Value, ValueType
from ..abi.types import Kind

if TYPE_CHECKING:
    from ..abi.metadata import FunctionSig, TypeDesc
    from .host import HostLinkerBuilder

__all__ = ["InterfaceFunction", "InterfaceImpl", "interface_from_impl", "type_desc_of"]

#: What ``params=`` / ``returns=`` / ``ok=`` / ``err=`` accept: a metadata TypeDesc,
#: a ValueType, or a Python annotation (``s64``, ``list[str]``, a dataclass, ...).
TypeSpec = Any


@dataclass(frozen=True, slots=True)
class InterfaceFunction:
    """One declared-and-implemented function of an :class:`InterfaceImpl`."""

    name: str
    handler: Callable[..., Any]
    params: tuple[tuple[str, TypeDesc], ...]
    results: tuple[TypeDesc, ...]
    is_async: bool
    #: ``(ok, err)`` for a ``func_result`` function (the handler raises ``HostErr``).
    result_types: tuple[TypeDesc, TypeDesc] | None
    #: explicit conversion types for the builder, or ``None`` to use annotations
    param_types: tuple[ValueType | None, ...] | None
    return_type: ValueType | None

    def signature(self, interface: str) -> FunctionSig:
        from ..abi.metadata import FunctionSig, ParamSig

        return FunctionSig(
            interface, self.name, tuple(ParamSig(n, t) for n, t in self.params), self.results
        )


class InterfaceImpl:
    """An interface's declaration and implementation, registered and hashed together.

    Add functions with :meth:`func` (sync or ``async def``, detected) and
    :meth:`func_result` (``Result<ok, err>``; raise ``HostErr`` for the error arm).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.functions: dict[str, InterfaceFunction] = {}

    # ------------------------------------------------------------- declaring

    def func(
        self,
        name: str,
        handler: Callable[..., Any] | None = None,
        *,
        params: Sequence[TypeSpec] | None = None,
        returns: TypeSpec | None = None,
    ) -> Any:
        """Declare and implement ``name``; usable as a decorator.

        Types come from the handler's annotations unless ``params`` (one spec per
        parameter after ``ctx``) or ``returns`` are given.
        """

        def add(fn: Callable[..., Any]) -> Callable[..., Any]:
            self._add(name, fn, params, returns, None)
            return fn

        return add(handler) if handler is not None else add

    def func_result(
        self,
        name: str,
        handler: Callable[..., Any] | None = None,
        *,
        ok: TypeSpec,
        err: TypeSpec,
        params: Sequence[TypeSpec] | None = None,
    ) -> Any:
        """A function returning ``result<ok, err>``: return the ok value or raise
        ``HostErr(err_value)`` (packr's ``func_typed_result``)."""

        def add(fn: Callable[..., Any]) -> Callable[..., Any]:
            self._add(name, fn, params, None, (ok, err))
            return fn

        return add(handler) if handler is not None else add

    def _add(
        self,
        name: str,
        fn: Callable[..., Any],
        params: Sequence[TypeSpec] | None,
        returns: TypeSpec | None,
        result: tuple[TypeSpec, TypeSpec] | None,
    ) -> None:
        from ..abi.metadata import TypeDesc

        if name in self.functions:
            raise ValueError(f"{self.name}.{name} is declared twice")
        names, hints = _handler_params(fn)
        if params is not None:
            params = list(params)
            if len(params) != len(names):
                raise TypeError(
                    f"{self.name}.{name}: params= lists {len(params)} types, the handler "
                    f"takes {len(names)} parameters after ctx"
                )
            specs: list[Any] = params
        else:
            specs = [hints.get(n, inspect.Parameter.empty) for n in names]
        param_descs = tuple((n, _desc_or_value(s)) for n, s in zip(names, specs, strict=True))

        ret = returns if returns is not None else hints.get("return", inspect.Parameter.empty)
        result_types: tuple[TypeDesc, TypeDesc] | None = None
        if result is not None:
            result_types = (type_desc_of(result[0]), type_desc_of(result[1]))
            results: tuple[TypeDesc, ...] = (TypeDesc.result(*result_types),)
        elif ret is None or ret is type(None):
            results = ()  # packr: a `()` return declares no results
        else:
            results = (_desc_or_value(ret),)

        # Explicit types are handed to the builder; otherwise it reads the same
        # annotations itself.
        param_types: tuple[ValueType | None, ...] | None = None
        return_type: ValueType | None = None
        if params is not None or returns is not None:
            param_types = tuple(_value_type_or_none(s) for s in specs)
            if result is None:
                unit = ret is None or ret is type(None)
                return_type = ValueType.UNIT if unit else _value_type_or_none(ret)
        self.functions[name] = InterfaceFunction(
            name,
            fn,
            param_descs,
            results,
            inspect.iscoroutinefunction(fn),
            result_types,
            param_types,
            return_type,
        )

    # --------------------------------------------------------------- hashing

    def signatures(self) -> tuple[FunctionSig, ...]:
        """The declared signatures, in declaration order (interface = this name)."""
        return tuple(f.signature(self.name) for f in self.functions.values())

    def function_hash(self, name: str) -> bytes | None:
        """The §6.3 hash of one function's signature (names excluded), by packr's
        host-side rule as its ``InterfaceImpl`` computes it: a type named without its
        structure (a ``ValueType`` record) hashes as ``SHA-256("ref:" + name)``, where a
        guest would embed ``HASH_SELF_REF``; fully resolved signatures agree."""
        fn = self.functions.get(name)
        return None if fn is None else fn.signature(self.name).host_hash()

    def hash(self) -> bytes:
        """The interface hash (§6.3): every function bound by name, in name order."""
        found = self.hash_subset(list(self.functions))
        assert found is not None
        return found

    def hash_subset(self, names: Iterable[str]) -> bytes | None:
        """The hash of the interface restricted to ``names`` (what a guest importing
        only those functions embeds); ``None`` if one of them is not declared."""
        from ..abi.hashing import hash_interface

        bindings = []
        for name in names:
            fn = self.functions.get(name)
            if fn is None:
                return None
            bindings.append((name, fn.signature(self.name).host_hash()))
        bindings.sort(key=lambda pair: pair[0])
        return hash_interface(self.name, [], bindings)

    def matches(self, metadata: Any) -> bool | None:
        """Whether a guest's declared import hash for this interface equals the hash
        of the functions it imports from it; ``None`` when the guest does not import
        this interface. ``metadata`` is a ``PackageMetadata`` (``module.types()``)."""
        imported = [f.name for f in metadata.imports if f.interface == self.name]
        declared = next((h for h in metadata.import_hashes if h.name == self.name), None)
        if not imported or declared is None:
            return None
        return bool(self.hash_subset(imported) == declared.hash)

    # ----------------------------------------------------------- registering

    def register(self, builder: HostLinkerBuilder) -> None:
        """Register every function as a typed import of this interface."""
        iface = builder.interface(self.name)
        for fn in self.functions.values():
            params = fn.param_types
            if fn.result_types is not None:
                ok, err = (t.to_value_type() for t in fn.result_types)
                result_fn = iface.func_async_result if fn.is_async else iface.func_typed_result
                result_fn(fn.name, fn.handler, ok=ok, err=err, params=params)
            else:
                typed_fn = iface.func_async if fn.is_async else iface.func_typed
                typed_fn(fn.name, fn.handler, params=params, returns=fn.return_type)

    def __repr__(self) -> str:
        return f"<InterfaceImpl {self.name} ({', '.join(self.functions)})>"


def interface_from_impl(
    name: str,
    impl: Mapping[str, Callable[..., Any]] | object,
    *,
    names: Mapping[str, str] | None = None,
) -> InterfaceImpl:
    """An :class:`InterfaceImpl` named ``name`` from an implementation.

    ``impl`` is a mapping of function names to handlers, or an object whose public
    methods are the handlers (method ``get_state`` implements ``get_state``; pass
    ``names={"get_state": "get-state"}`` for packr's dashed names). Each handler's
    annotations declare its types; ``async def`` handlers become async host functions.
    """
    if isinstance(impl, Mapping):
        items = list(impl.items())
    else:
        items = [
            (attr, getattr(impl, attr))
            for attr in dir(impl)
            if not attr.startswith("_") and callable(getattr(impl, attr))
        ]
        items = [(a, f) for a, f in items if inspect.ismethod(f) or inspect.isfunction(f)]
    out = InterfaceImpl(name)
    renames = dict(names or {})
    for attr, fn in items:
        out.func(renames.pop(attr, attr), fn)
    if renames:
        raise KeyError(f"names= renames functions that do not exist: {sorted(renames)}")
    return out


# ------------------------------------------------------------------ type descs


def _handler_params(fn: Callable[..., Any]) -> tuple[list[str], dict[str, Any]]:
    """Parameter names after ``ctx`` and the resolved annotations."""
    from .host import handler_annotations

    return handler_annotations(fn)


def _is_value_annotation(spec: Any) -> bool:
    """Unannotated, ``Value``, ``EncodedValue`` or ``Any``: the dynamic ``value``."""
    return spec is inspect.Parameter.empty or spec in (Value, EncodedValue, Any)


def _desc_or_value(spec: Any) -> TypeDesc:
    from ..abi.metadata import TypeDesc

    if _is_value_annotation(spec):
        return TypeDesc.VALUE
    return type_desc_of(spec)


def _value_type_or_none(spec: Any) -> ValueType | None:
    """The conversion type for the builder; ``None`` means "pass the Value"."""
    from ..abi.convert import value_type_of
    from ..abi.metadata import TypeDesc

    if _is_value_annotation(spec):
        return None
    if isinstance(spec, TypeDesc):
        return None if spec.kind == "value" else spec.to_value_type()
    return value_type_of(spec)


_LIST_ORIGINS: tuple[Any, ...] = (
    list, set, frozenset, cabc.Sequence, cabc.MutableSequence, cabc.Set, cabc.MutableSet,
)  # fmt: skip
_DICT_ORIGINS: tuple[Any, ...] = (dict, cabc.Mapping, cabc.MutableMapping)

_PRIMS_BY_TAG: dict[int, str] = {
    Kind.BOOL: "bool", Kind.U8: "u8", Kind.U16: "u16", Kind.U32: "u32", Kind.U64: "u64",
    Kind.S8: "s8", Kind.S16: "s16", Kind.S32: "s32", Kind.S64: "s64", Kind.F32: "f32",
    Kind.F64: "f64", Kind.CHAR: "char", Kind.STRING: "string", Kind.FLAGS: "flags",
}  # fmt: skip


def type_desc_of(spec: TypeSpec, _seen: tuple[type, ...] = ()) -> TypeDesc:
    """The metadata ``TypeDesc`` of a type spec (TypeDesc, ValueType or annotation).

    Dataclasses become records and TaggedUnion / Enum classes variants, inlined with
    their fields and cases; a class that refers back to itself becomes a ``ref``
    (hashed as guests hash recursion). A ``ValueType`` names records and variants
    without their structure, so those become ``ref``\\ s too.
    """
    from ..abi.convert import Err, Ok, TaggedUnion, case_payload, packr_name, value_type_of
    from ..abi.metadata import TypeDesc

    if isinstance(spec, TypeDesc):
        return spec
    if isinstance(spec, ValueType):
        return _desc_of_value_type(spec)
    if spec is None or spec is type(None):
        return TypeDesc.UNIT
    if _is_value_annotation(spec):
        return TypeDesc.VALUE
    origin: Any = typing.get_origin(spec)
    if origin is Annotated:
        for meta in spec.__metadata__:
            if isinstance(meta, (ValueType, TypeDesc)):
                return type_desc_of(meta, _seen)
        return type_desc_of(spec.__origin__, _seen)
    if isinstance(spec, type):
        if spec in _seen:
            return TypeDesc.ref(packr_name(spec))
        if dataclasses.is_dataclass(spec) and not issubclass(spec, (Ok, Err)):
            seen = (*_seen, spec)
            hints = typing.get_type_hints(spec, localns={spec.__name__: spec}, include_extras=True)
            fields = [
                (
                    f.metadata.get("packr_name", f.name),
                    type_desc_of(hints.get(f.name, f.type), seen),
                )
                for f in dataclasses.fields(spec)
            ]
            return TypeDesc.record(packr_name(spec), fields)
        if issubclass(spec, TaggedUnion):
            seen = (*_seen, spec)
            cases: list[tuple[str, TypeDesc | None]] = []
            for c in sorted(spec.__cases__, key=lambda c: c.tag or 0):
                payload = [type_desc_of(t, seen) for t in case_payload(spec, c)]
                desc = (
                    None
                    if not payload
                    else payload[0]
                    if len(payload) == 1
                    else TypeDesc.tuple(*payload)
                )
                cases.append((c.name or "", desc))
            return TypeDesc.variant(packr_name(spec), cases)
        if issubclass(spec, enum.Enum):
            return TypeDesc.enum(packr_name(spec), [m.name for m in spec])
    args = typing.get_args(spec)
    if origin is typing.Union or origin is pytypes.UnionType:
        has_none = type(None) in args
        rest = [a for a in args if a is not type(None)]
        oks = [a for a in rest if typing.get_origin(a) is Ok]
        errs = [a for a in rest if typing.get_origin(a) is Err]
        if len(oks) == 1 and len(errs) == 1 and len(rest) == 2:
            inner = TypeDesc.result(
                type_desc_of(typing.get_args(oks[0])[0], _seen),
                type_desc_of(typing.get_args(errs[0])[0], _seen),
            )
        elif len(rest) == 1:
            inner = type_desc_of(rest[0], _seen)
        else:
            return _desc_of_value_type(value_type_of(spec))  # raises a clear error
        return TypeDesc.option(inner) if has_none else inner
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return TypeDesc.list(type_desc_of(args[0], _seen))
        if args == ((),):
            return TypeDesc.tuple()
        return TypeDesc.tuple(*(type_desc_of(a, _seen) for a in args))
    if origin in _LIST_ORIGINS and len(args) == 1:
        return TypeDesc.list(type_desc_of(args[0], _seen))
    if origin in _DICT_ORIGINS and len(args) == 2:
        key, val = (type_desc_of(a, _seen) for a in args)
        return TypeDesc.list(TypeDesc.tuple(key, val))
    return _desc_of_value_type(value_type_of(spec))


def _desc_of_value_type(vtype: ValueType) -> TypeDesc:
    from ..abi.metadata import TypeDesc

    prim = _PRIMS_BY_TAG.get(vtype.tag)
    if prim is not None:
        return TypeDesc.primitive(prim)
    if vtype.tag == Kind.LIST:
        return TypeDesc.list(_desc_of_value_type(vtype.args[0]))
    if vtype.tag == Kind.OPTION:
        return TypeDesc.option(_desc_of_value_type(vtype.args[0]))
    if vtype.tag == Kind.RESULT:
        return TypeDesc.result(*(_desc_of_value_type(a) for a in vtype.args))
    if vtype.tag == Kind.TUPLE:
        return TypeDesc.tuple(*(_desc_of_value_type(a) for a in vtype.args))
    return TypeDesc.ref(vtype.name or "")
