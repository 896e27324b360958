"""How a typed host function is called: its parameter and reply conversions, decided
once per function (a :class:`Plan`), and the closures the import path calls.

``call(ctx, value) -> Value`` is the one shape the import dispatcher sees; plain
functions of one primitive parameter get a closure with the conversions inlined,
everything else goes through :func:`invoke_handler`.
"""

from __future__ import annotations

import copy
import functools
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

from ..abi import (
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
    EncodedValue,
    Flags,
    Kind,
    Result,
    String,
    Tuple,
    Value,
    ValueType,
)
from ..abi.convert import from_python, from_value, to_python
from ..errors import PackrReplayError
from .host import AsyncCtx, Ctx, HostErr, TypedFunction

if TYPE_CHECKING:
    from .instance import Instance

__all__ = ["ConversionFailed", "Plan", "check_reply", "handler_call", "simple_call"]


class ConversionFailed(Exception):
    """A parameter or reply did not convert (reported as ``TypeConversion``)."""


def handler_call(instance: Instance, fn: TypedFunction) -> Callable[[Ctx, Value], Value]:
    """``fn``'s handler as ``call(ctx, value) -> Value``, its conversions decided once.

    A plain function of one parameter (not async, not a Result) gets a direct
    closure; everything else goes through :func:`invoke_handler`.
    """
    try:
        plan = instance._plans[id(fn)] = Plan(fn)
    except Exception:  # reported by invoke_handler on each call, as it always was
        return functools.partial(invoke_handler, instance, fn)
    return direct_call(fn, plan, check_reply) or functools.partial(invoke_handler, instance, fn)


def invoke_handler(instance: Instance, fn: TypedFunction, ctx: Ctx, value: Value) -> Value:
    plan = instance._plans.get(id(fn))
    if plan is None:
        plan = instance._plans[id(fn)] = Plan(fn)
    convert = plan.params
    if convert is None:
        args: tuple[Any, ...] = (value,)
    elif plan.spread:
        items = value.items if type(value) is Tuple else None
        if items is None or len(items) != len(convert):
            raise ConversionFailed(
                f"expected a tuple of {len(convert)} parameters, got {value.infer_type()}"
            )
        args = tuple(
            item if c is None else c(item) for item, c in zip(items, convert, strict=True)
        )
    else:
        c = convert[0]
        args = (value if c is None else c(value),)

    if fn.is_async:
        ctx = AsyncCtx(instance, copy.copy(instance.state))
        ctx.interface = fn.module
        ctx.function = fn.name
    is_err = False
    try:
        result = fn.handler(ctx, *args)
        if fn.is_async:
            result = instance.driver.run(result, inline=False)
    except HostErr as err:
        if fn.result_types is None:
            raise
        result, is_err = err.value, True

    if fn.result_types is not None:
        ok_t, err_t = fn.result_types
        declared = err_t if is_err else ok_t
        inner = result if isinstance(result, Value) else _from_python_checked(result, declared)
        return Result(ok_t, err_t, inner, is_err=is_err)
    ret = plan.returns
    if ret is not None and not isinstance(result, Value):
        return ret(result)
    return check_reply(result)


def check_reply(result: Any) -> Value:
    if isinstance(result, Value):
        return result
    if isinstance(result, EncodedValue):
        result.value  # noqa: B018 - validate: the guest must get valid CGRF
        return result  # type: ignore[return-value]  # its exact bytes are written as they are
    raise ConversionFailed(
        f"handler returned {type(result).__name__}, not a Value; declare returns= "
        "or annotate the return type to convert plain Python values"
    )


class Plan:
    """How one typed function converts its parameters and its reply, decided once.

    Primitive types get direct converters (a kind check and ``.value`` in, the Value
    class out); everything else goes through ``abi.convert``.
    """

    __slots__ = ("params", "returns", "spread")

    def __init__(self, fn: TypedFunction) -> None:
        params = fn.params
        hints = fn.param_hints
        self.spread = fn.spread
        self.params: tuple[Callable[[Value], Any] | None, ...] | None
        if params is None:
            self.params = None
        elif isinstance(params, tuple):
            hs = hints if hints is not None else (None,) * len(params)
            self.params = tuple(_param_converter(t, h) for t, h in zip(params, hs, strict=True))
        else:
            self.params = (_param_converter(params, hints[0] if hints else None),)
        self.returns = None if fn.returns is None else _return_converter(fn.returns)


def _prim_hint(hint: Any) -> bool:
    """A hint that reads a primitive exactly as its ValueType does (``s64``, ``str``)."""
    if hint is None or hint is str or hint is bool:
        return True
    if typing.get_origin(hint) is Annotated:
        return any(isinstance(m, ValueType) and m.is_primitive for m in hint.__metadata__)
    return False


def _param_converter(vtype: ValueType | None, hint: Any) -> Callable[[Value], Any] | None:
    if vtype is None:
        return None  # the Value itself
    if vtype.is_primitive and _prim_hint(hint):
        cls = _PRIMITIVE_CLASSES[vtype.tag]

        def primitive(v: Value) -> Any:
            if type(v) is cls:
                return v.value  # type: ignore[attr-defined]
            raise ConversionFailed(f"expected {vtype}, got {v.infer_type()}")

        primitive.value_class = cls  # type: ignore[attr-defined]  # (inlined by _direct_call)
        return primitive
    if hint is not None:
        return lambda v: _from_value_checked(v, hint)
    return lambda v: _to_python_checked(v, vtype)


def _return_converter(vtype: ValueType) -> Callable[[Any], Value]:
    if vtype == ValueType.UNIT:

        def unit(obj: Any) -> Value:
            return UNIT if obj is None else _from_python_checked(obj, vtype)

        return unit
    if vtype.is_primitive:
        cls = _PRIMITIVE_CLASSES[vtype.tag]
        plain = _PLAIN_TYPES[vtype.tag]

        def primitive(obj: Any) -> Value:
            if type(obj) is plain:
                try:
                    return cls(obj)  # type: ignore[call-arg]
                except (TypeError, ValueError, OverflowError):
                    pass  # let convert produce its error message
            return _from_python_checked(obj, vtype)

        primitive.value_class = cls  # type: ignore[attr-defined]  # (inlined by _direct_call)
        primitive.plain_type = plain  # type: ignore[attr-defined]
        return primitive
    return lambda obj: _from_python_checked(obj, vtype)


def simple_call(handler: Callable[..., Any]) -> Callable[[Ctx, Value], Value]:
    """A handler taking and returning Values: its reply checked to be one."""
    check = check_reply

    def call(ctx: Ctx, value: Value) -> Value:
        result = handler(ctx, value)
        if isinstance(result, Value):
            return result
        return check(result)

    return call


def direct_call(
    fn: TypedFunction, plan: Plan, check: Callable[[Any], Value]
) -> Callable[[Ctx, Value], Value] | None:
    """What ``invoke_handler`` does for ``fn``, as one closure, for the common shape:
    a plain (not async) handler of one parameter whose reply is not a Result. A
    primitive parameter and reply are converted inline (the converters' fast paths)."""
    if fn.is_async or fn.result_types is not None or plan.spread or plan.params is None:
        return None
    if len(plan.params) != 1 or plan.params[0] is None:
        return None
    handler, convert, ret = fn.handler, plan.params[0], plan.returns
    if ret is None:

        def call_checked(ctx: Ctx, value: Value) -> Value:
            return check(handler(ctx, convert(value)))

        return call_checked
    in_cls: type | None = getattr(convert, "value_class", None)
    out_cls: type | None = getattr(ret, "value_class", None)
    plain: type | None = getattr(ret, "plain_type", None)
    if in_cls is None or out_cls is None or plain is None:

        def call(ctx: Ctx, value: Value) -> Value:
            result = handler(ctx, convert(value))
            if isinstance(result, Value):
                return result
            return ret(result)

        return call

    def call_primitive(ctx: Ctx, value: Value) -> Value:
        result = handler(ctx, value.value if type(value) is in_cls else convert(value))  # type: ignore[attr-defined]
        if isinstance(result, Value):
            return result
        if type(result) is plain:
            try:
                return out_cls(result)  # type: ignore[no-any-return]
            except (TypeError, ValueError, OverflowError):
                pass
        return ret(result)

    return call_primitive


_PRIMITIVE_CLASSES: dict[int, type[Value]] = {
    cls.KIND: cls
    for cls in (Bool, U8, U16, U32, U64, S8, S16, S32, S64, F32, F64, Char, String, Flags)
}
_PLAIN_TYPES: dict[int, type] = {
    **{k: int for k in _PRIMITIVE_CLASSES},
    Kind.BOOL: bool,
    Kind.F32: float,
    Kind.F64: float,
    Kind.CHAR: str,
    Kind.STRING: str,
}


def _to_python_checked(value: Value, vtype: ValueType) -> Any:
    got = value.infer_type()
    if got != vtype:
        raise ConversionFailed(f"expected {vtype}, got {got}")
    try:
        return to_python(value)
    except PackrReplayError as exc:
        raise ConversionFailed(str(exc)) from exc


def _from_value_checked(value: Value, hint: Any) -> Any:
    try:
        return from_value(value, hint)
    except PackrReplayError as exc:
        raise ConversionFailed(str(exc)) from exc


def _from_python_checked(obj: Any, vtype: ValueType) -> Value:
    try:
        return from_python(obj, vtype)
    except (PackrReplayError, TypeError, ValueError, OverflowError) as exc:
        raise ConversionFailed(
            f"cannot convert the handler's {type(obj).__name__} to {vtype}: {exc}"
        ) from exc
