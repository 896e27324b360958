"""Declaring host functions: packr's ``HostLinkerBuilder`` / ``InterfaceBuilder`` API.

A builder only *describes* the host (which functions, which types, which error handler
and interceptor); :meth:`Module.instantiate` turns the description into wasmtime
definitions bound to one instance. That split lets one host description serve many
instances and lets instantiation list every missing import at once.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..abi import Value, ValueType
from ..errors import GuestMemoryError, HostFunctionError
from .interceptor import CallInterceptor

if TYPE_CHECKING:
    from .instance import Instance
    from .memory import GuestMemory

__all__ = [
    "AsyncCtx",
    "Ctx",
    "DefaultHostProvider",
    "ErrorHandler",
    "HostFunctionProvider",
    "HostLinkerBuilder",
    "HostSpec",
    "InterfaceBuilder",
    "RawFunction",
    "ReplyMode",
    "TypedFunction",
    "log_host_error",
]

ErrorHandler = Callable[[HostFunctionError], None]

#: Where host-function errors go when no error handler is set.
logger = logging.getLogger("packr_replay.runtime")


def log_host_error(error: HostFunctionError) -> None:
    """The default error handler: packr prints a failed host function on stderr; this
    logs it at ERROR on the ``packr_replay.runtime`` logger, which shows on stderr
    until logging is configured, and can be turned off like any logger
    (``logging.getLogger("packr_replay.runtime").setLevel(logging.CRITICAL)``)."""
    logger.error("%s", error)


#: The wasm signature of every typed import and export.
PACKR_SIGNATURE = (("i32", "i32", "i32", "i32"), ("i32",))


class ReplyMode(StrEnum):
    """Where a typed import's reply goes (spec §3.3, §3.5)."""

    SCRATCH = "scratch"  # 16 KiB + 8 in guest memory, status 0: safe for every guest version
    GUEST_ALLOC = "guest"  # a buffer from the guest's __pack_alloc, status 1: packr >= 0.8


class Ctx:
    """What a host function sees: the store state and the calling instance's memory.

    ``data`` is the state given to ``instantiate(state=...)``. ``caller`` is the calling
    :class:`Instance` (its exports, memory and metadata).
    """

    __slots__ = ("data", "function", "instance", "interface")

    def __init__(self, instance: Instance, data: Any) -> None:
        self.instance = instance
        self.data = data
        self.interface = ""
        self.function = ""

    @property
    def caller(self) -> Instance:
        return self.instance

    @property
    def memory(self) -> GuestMemory:
        return self.instance.memory

    def read_bytes(self, ptr: int, length: int) -> bytes:
        return self.memory.read(ptr, length)

    def write_bytes(self, ptr: int, data: bytes) -> None:
        self.memory.write(ptr, data)

    def read_value(self, ptr: int, length: int) -> Value:
        """Decode the CGRF value at ``[ptr, ptr+length)``."""
        from ..abi import decode

        return decode(self.memory.read(ptr, length))

    def write_value_at(self, ptr: int, capacity: int, value: Value) -> int:
        """Encode ``value`` at ``ptr`` and return its length; a value needing more than
        ``capacity`` bytes raises :class:`GuestMemoryError` (packr's ``MemoryError``)."""
        from ..abi import encode

        data = encode(value)
        if len(data) > capacity:
            raise GuestMemoryError(
                f"output buffer too small: need {len(data)} bytes, have {capacity} capacity"
            )
        self.memory.write(ptr, data)
        return len(data)

    def write_value(self, value: Value) -> tuple[int, int]:
        """packr's legacy writer: ``value`` at ``OUTPUT_BUFFER_OFFSET`` (16 KiB), at most
        ``OUTPUT_BUFFER_CAPACITY`` bytes; returns ``(ptr, len)``. Prefer
        :meth:`write_value_at` (this overwrites the export result slots)."""
        from .layout import OUTPUT_BUFFER_CAPACITY, OUTPUT_BUFFER_OFFSET

        return OUTPUT_BUFFER_OFFSET, self.write_value_at(
            OUTPUT_BUFFER_OFFSET, OUTPUT_BUFFER_CAPACITY, value
        )

    def read_string(self, ptr: int, length: int) -> str:
        """Raw UTF-8 text (not CGRF), as packr's legacy ``host.log`` reads it."""
        return self.memory.read(ptr, length).decode("utf-8")

    def alloc(self, size: int) -> int:
        """A guest-owned buffer from the guest's ``__pack_alloc`` (0 if it has none)."""
        return self.instance.guest_alloc(size)


class AsyncCtx(Ctx):
    """The context of an async host function: a *shallow copy* of the store state.

    packr clones the store state into the async context, so changes a handler makes to
    ``data`` itself are discarded (shared containers inside it stay shared).
    """

    __slots__ = ()


# ------------------------------------------------------------------ definitions


@dataclass(slots=True)
class RawFunction:
    """``func_raw``: any wasm signature, no decoding, no interception (spec §3.6)."""

    module: str
    name: str
    params: tuple[str, ...]
    results: tuple[str, ...]
    handler: Callable[..., Any]

    @property
    def signature(self) -> str:
        return f"({', '.join(self.params)}) -> ({', '.join(self.results)})"


@dataclass(slots=True)
class TypedFunction:
    """A typed import: CGRF in, CGRF out, 4-i32 calling convention (spec §3.2–3.5).

    ``params``: ``None`` passes the input ``Value`` as is; a ``ValueType`` converts it to
    plain Python; a sequence of types expects a tuple and passes its items as separate
    arguments. ``returns``: ``None`` expects the handler to return a ``Value``; a type
    converts the handler's plain result. ``result_types`` (ok, err) marks a
    ``func_typed_result`` function: the handler's return (or :class:`HostErr` raise)
    becomes a ``Result`` value with both declared types.
    """

    module: str
    name: str
    handler: Callable[..., Any]
    params: ValueType | tuple[ValueType | None, ...] | None = None
    returns: ValueType | None = None
    result_types: tuple[ValueType, ValueType] | None = None
    is_async: bool = False
    doc: str = ""
    spread: bool = field(default=False)
    #: Python annotations the handler declared for its parameters (read with
    #: ``abi.convert.from_value``, so a dataclass parameter receives a dataclass);
    #: ``None`` when the types came from ``params=``.
    param_hints: tuple[Any, ...] | None = None
    #: The builder's interceptor and error handler when ``interface()`` was called
    #: (packr captures both there); ``instantiate(interceptor=, on_error=)`` overrides.
    interceptor: CallInterceptor | None = None
    error_handler: ErrorHandler | None = None

    @property
    def signature(self) -> str:
        return "(i32, i32, i32, i32) -> (i32)"


class HostErr(Exception):
    """Raise from a ``func_typed_result`` handler to return ``Err(value)``."""

    def __init__(self, value: Any) -> None:
        super().__init__(value)
        self.value = value


class InterfaceBuilder:
    """Registers the functions of one import module (packr's interface path)."""

    def __init__(self, builder: HostLinkerBuilder, name: str) -> None:
        self._builder = builder
        self.name = name
        # packr's scope: the error handler and interceptor in force when interface() was
        # called serve every typed function registered through this builder.
        self.error_handler = builder.error_handler
        self.interceptor = builder.interceptor

    def func_raw(
        self,
        name: str,
        handler: Callable[..., Any] | None = None,
        *,
        params: Sequence[str] = (),
        results: Sequence[str] = (),
    ) -> Any:
        """A plain wasm function: ``handler(ctx, *wasm_args)``; types are "i32"/"i64"/"f32"/"f64"."""

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            for t in (*params, *results):
                if t not in ("i32", "i64", "f32", "f64"):
                    raise ValueError(f"unsupported raw wasm type {t!r}")
            self._builder._add(RawFunction(self.name, name, tuple(params), tuple(results), fn))
            return fn

        return register(handler) if handler is not None else register

    def func_typed(
        self,
        name: str,
        handler: Callable[..., Any] | None = None,
        *,
        params: ValueType | Sequence[ValueType | None] | None = None,
        returns: ValueType | None = None,
    ) -> Any:
        """A typed import ``handler(ctx, input)``; usable as a decorator.

        Without ``params``/``returns`` the handler's annotations decide: a parameter
        annotated ``Value`` (or not at all) receives the Value; one annotated with a
        plain type (``int`` with a width via ``Annotated``, ``str``, a dataclass, ...) is
        converted; likewise for the return annotation.
        """
        return self._typed(name, handler, params, returns, None, False)

    def func_typed_result(
        self,
        name: str,
        handler: Callable[..., Any] | None = None,
        *,
        ok: ValueType,
        err: ValueType,
        params: ValueType | Sequence[ValueType | None] | None = None,
    ) -> Any:
        """A typed import returning ``Result<ok, err>``: return the ok value, or raise
        ``HostErr(err_value)``; both declared types are always carried (spec §3.4)."""
        return self._typed(name, handler, params, None, (ok, err), False)

    def func_async(
        self,
        name: str,
        handler: Callable[..., Any] | None = None,
        *,
        params: ValueType | Sequence[ValueType | None] | None = None,
        returns: ValueType | None = None,
    ) -> Any:
        """An ``async def`` typed import; works from both sync and async export calls."""
        return self._typed(name, handler, params, returns, None, True)

    def func_async_result(
        self,
        name: str,
        handler: Callable[..., Any] | None = None,
        *,
        ok: ValueType,
        err: ValueType,
        params: ValueType | Sequence[ValueType | None] | None = None,
    ) -> Any:
        return self._typed(name, handler, params, None, (ok, err), True)

    def _typed(
        self,
        name: str,
        handler: Callable[..., Any] | None,
        params: ValueType | Sequence[ValueType | None] | None,
        returns: ValueType | None,
        result_types: tuple[ValueType, ValueType] | None,
        is_async: bool,
    ) -> Any:
        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            if is_async and not inspect.iscoroutinefunction(fn):
                raise TypeError(f"{self.name}.{name}: func_async needs an async def handler")
            p: ValueType | tuple[ValueType | None, ...] | None
            r = returns
            hints: tuple[Any, ...] | None = None
            if params is None and returns is None:
                p, r, hints = _types_from_annotations(fn, result=result_types is not None)
            elif params is None:
                # returns= only: a handler taking nothing but ctx gets the unit input.
                p = () if _positional_count(fn) == 0 else None
            elif isinstance(params, ValueType):
                p = params
            else:
                p = tuple(params)
                if len(p) == 1:  # one parameter travels unwrapped (spec §7.1)
                    p = p[0]
            spread = p is not None and not isinstance(p, ValueType)
            self._builder._add(
                TypedFunction(
                    self.name,
                    name,
                    fn,
                    p,
                    r,
                    result_types,
                    is_async,
                    inspect.getdoc(fn) or "",
                    spread,
                    hints,
                    self.interceptor,
                    self.error_handler,
                )
            )
            return fn

        return register(handler) if handler is not None else register


def _positional_count(fn: Callable[..., Any]) -> int:
    """Positional parameters after ``ctx`` (``*args`` counts as one)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return 1
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    params = [p for p in sig.parameters.values() if p.kind in kinds]
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in sig.parameters.values()):
        return max(1, len(params) - 1)
    return max(0, len(params) - 1)


def handler_annotations(fn: Callable[..., Any]) -> tuple[list[str], dict[str, Any]]:
    """Parameter names after ``ctx`` and their resolved annotations (plus ``return``).

    Each annotation is evaluated on its own, so one that cannot be resolved (``ctx:
    Ctx`` with ``Ctx`` imported only under ``TYPE_CHECKING``) does not hide the others.
    An annotation of a parameter that matters and cannot be resolved is an error:
    silently passing raw Values instead would surprise.
    """
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return [], {}
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    # Parameters with defaults are the handler's own (closures' ``x=x`` captures), not
    # parameters the guest passes.
    names = [
        p.name
        for p in sig.parameters.values()
        if p.kind in kinds and p.default is inspect.Parameter.empty
    ][1:]
    raw = inspect.get_annotations(fn)
    target = inspect.unwrap(getattr(fn, "__func__", fn))
    globalns = getattr(target, "__globals__", {})
    hints: dict[str, Any] = {}
    for name in [*names, "return"]:
        if name not in raw:
            continue
        hint = raw[name]
        if isinstance(hint, str):
            try:
                hint = eval(hint, globalns)
            except Exception as exc:
                where = "return" if name == "return" else f"parameter {name!r}"
                raise TypeError(
                    f"{getattr(fn, '__qualname__', fn)}: cannot resolve the annotation "
                    f"{raw[name]!r} of {where}: {exc}"
                ) from None
        hints[name] = hint
    return names, hints


def _types_from_annotations(
    fn: Callable[..., Any], *, result: bool
) -> tuple[
    ValueType | tuple[ValueType | None, ...] | None, ValueType | None, tuple[Any, ...] | None
]:
    """Conversion types from ``fn(ctx, x: T, ...) -> R`` annotations.

    Returns ``(params, returns, hints)``. A parameter annotated ``Value`` (or not
    annotated) receives the Value itself; a return annotated ``Value`` (or not
    annotated) must already be a Value. A handler taking only ``ctx`` gets ``()``
    params: packr sends ``Tuple([])`` for a function without parameters.
    """
    names, hints = handler_annotations(fn)
    params: list[ValueType | None] = []
    param_hints: list[Any] = []
    for name in names:
        hint = hints.get(name, inspect.Parameter.empty)
        plain = hint is not inspect.Parameter.empty and not _is_value_hint(hint)
        params.append(_value_type_of(hint) if plain else None)
        param_hints.append(hint if plain else None)
    returns: ValueType | None = None
    ret = hints.get("return", inspect.Parameter.empty)
    if not result and ret is not inspect.Parameter.empty and not _is_value_hint(ret):
        returns = ValueType.UNIT if ret is None or ret is type(None) else _value_type_of(ret)
    typed_hints = tuple(param_hints) if any(h is not None for h in param_hints) else None
    if not names:
        return (), returns, None
    if len(names) > 1:
        return tuple(params), returns, typed_hints
    return params[0], returns, typed_hints


def _is_value_hint(hint: Any) -> bool:
    from ..abi import EncodedValue

    return hint is Any or (isinstance(hint, type) and issubclass(hint, (Value, EncodedValue)))


def _value_type_of(hint: Any) -> ValueType:
    from ..abi.convert import value_type_of

    return value_type_of(hint)


@runtime_checkable
class HostFunctionProvider(Protocol):
    """An object that registers a group of host functions (packr's provider trait)."""

    def register(self, builder: HostLinkerBuilder) -> None: ...


#: What ``Module.instantiate(host=...)`` accepts.
HostSpec = (
    Callable[["HostLinkerBuilder"], Any]
    | HostFunctionProvider
    | Iterable[Callable[["HostLinkerBuilder"], Any] | HostFunctionProvider]
    | None
)


class HostLinkerBuilder:
    """Collects host functions, the error handler and the interceptor for a module."""

    def __init__(self) -> None:
        self.functions: dict[tuple[str, str], RawFunction | TypedFunction] = {}
        self.error_handler: ErrorHandler | None = None
        self.interceptor: CallInterceptor | None = None
        self.descriptions: list[str] = []

    def interface(self, name: str) -> InterfaceBuilder:
        """The builder for import module ``name`` (e.g. ``theater:simple/runtime``)."""
        return InterfaceBuilder(self, name)

    def register_provider(self, provider: HostFunctionProvider) -> HostLinkerBuilder:
        provider.register(self)
        self.descriptions.append(_describe(provider))
        return self

    def on_error(self, handler: ErrorHandler) -> HostLinkerBuilder:
        """Observe failed typed imports (the guest still gets status -1).

        As in packr, the handler is captured by each :meth:`interface` call made after
        this one: set it first. Without one, failures are logged (see
        :func:`log_host_error`).
        """
        self.error_handler = handler
        return self

    def set_interceptor(self, interceptor: CallInterceptor | None) -> HostLinkerBuilder:
        """Intercept the typed imports of interfaces created after this call (packr's
        scope: :meth:`interface` captures it). Export calls are intercepted only by
        ``instantiate(interceptor=...)`` or :meth:`Instance.set_interceptor`."""
        self.interceptor = interceptor
        return self

    def apply(self, host: HostSpec) -> HostLinkerBuilder:
        """Apply a host spec: a function taking the builder, a provider, or a list."""
        if host is None:
            return self
        if isinstance(host, HostFunctionProvider):
            return self.register_provider(host)
        if callable(host):
            host(self)
            self.descriptions.append(_describe(host))
            return self
        for item in host:
            self.apply(item)
        return self

    def _add(self, fn: RawFunction | TypedFunction) -> None:
        key = (fn.module, fn.name)
        if key in self.functions:
            raise ValueError(f"host function {fn.module}.{fn.name} is defined twice")
        self.functions[key] = fn

    def describe(self) -> str:
        """A one-line description of the host (recorded in traces)."""
        return ", ".join(self.descriptions) or "no host functions"


def _describe(obj: object) -> str:
    name = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    module = getattr(obj, "__module__", None) or type(obj).__module__
    return f"{module}:{name}"


# ---------------------------------------------------------- packr's "host" module


class DefaultHostProvider:
    """packr's legacy ``host`` module (spec §3.8): ``host.log`` and ``host.alloc``.

    ``log(ptr, len)`` appends raw UTF-8 (not CGRF) to ``logs`` (invalid UTF-8 is
    dropped); ``alloc(size)`` is a bump allocator starting at 48 KiB whose next offset
    is rounded up to a multiple of 8, with no bounds check, exactly as packr's.
    """

    ALLOC_START = 49152

    def __init__(self) -> None:
        self.logs: list[str] = []
        self.next_alloc = self.ALLOC_START

    def register(self, builder: HostLinkerBuilder) -> None:
        host = builder.interface("host")
        host.func_raw("log", self._log, params=("i32", "i32"))
        host.func_raw("alloc", self._alloc, params=("i32",), results=("i32",))

    def _log(self, ctx: Ctx, ptr: int, length: int) -> None:
        data = ctx.memory.read(ptr, length, "host.log")
        try:
            self.logs.append(data.decode("utf-8"))
        except UnicodeDecodeError:
            pass

    def _alloc(self, ctx: Ctx, size: int) -> int:
        current = self.next_alloc
        self.next_alloc = (current + (size & 0xFFFF_FFFF) + 7) & ~7
        return ((current + 2**31) % 2**32) - 2**31  # as a wasm i32

    def clear_logs(self) -> None:
        self.logs.clear()
