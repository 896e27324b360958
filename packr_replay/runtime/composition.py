"""Several packages composed into one program (packr's ``CompositionBuilder``).

Each package is a guest of its own (its own store, memory and budget). ``wire``
serves one package's typed import with another package's export: when the caller
calls the import, its input goes to the callee's export and the export's output comes
back as the import's reply, with packr's conventions on both sides (the callee sees an
export call, its result freed; the caller gets the reply in its scratch buffer, status
0). Host functions serve the imports nothing is wired to, for every package.

Wired imports and host functions are ordinary typed host functions of the caller's
instance, so an interceptor given per package sees, on the caller's side, each wired
call as an import, and on the callee's side as an export call: that is how a
composition is recorded, and why any one package can later be replayed alone.

Beyond packr: ``add_host`` takes any host (a builder function, a provider, a list);
``wire`` and ``call`` refuse unknown packages instead of doing nothing; a wired
call's value is passed on as a value, so an input a guest encoded as a DAG (which
packr's encoders never do) reaches the callee as the equal tree.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..abi import EncodedValue, Value, encode
from ..errors import MetadataError, PackageNotFound
from .engine import Module, Runtime
from .host import ErrorHandler, HostLinkerBuilder, HostSpec, ReplyMode
from .interceptor import CallInterceptor

if TYPE_CHECKING:
    from ..abi.metadata import PackageMetadata
    from .host import Ctx
    from .instance import Instance

__all__ = ["BuiltComposition", "CompositionBuilder", "HostFn", "Wire"]

#: A composition host function (packr's ``HostFn``): CGRF bytes in, CGRF bytes out;
#: raising makes the import fail (-1 to the guest).
HostFn = Callable[[bytes], bytes]

ModuleSource = Module | bytes | str | os.PathLike[str]
Interceptors = Mapping[str, CallInterceptor | None] | Callable[[str], CallInterceptor | None]


@dataclass(frozen=True, slots=True)
class Wire:
    """``target``'s import ``interface.function`` is served by ``source``'s
    export ``source_function``."""

    target: str
    interface: str
    function: str
    source: str
    source_function: str

    def __str__(self) -> str:
        return (
            f"{self.target}: {self.interface}.{self.function} -> "
            f"{self.source}.{self.source_function}"
        )


class CompositionBuilder:
    """Declares a composition: packages, host functions and wires; :meth:`build` it."""

    def __init__(self, runtime: Runtime | None = None) -> None:
        self.runtime = runtime or Runtime()
        self._packages: dict[str, Module] = {}
        self._hosts: list[HostSpec] = []
        self._host_functions: list[tuple[str, str, Callable[[Ctx, Value], Any]]] = []
        self._wires: list[Wire] = []

    def add_package(self, name: str, module: ModuleSource) -> CompositionBuilder:
        """Add a package (a :class:`Module`, wasm or WAT bytes, or a path) under ``name``."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"a package name is a non-empty str, got {name!r}")
        if name in self._packages:
            raise ValueError(f"package {name!r} is added twice")
        self._packages[name] = (
            module if isinstance(module, Module) else self.runtime.load_module(module)
        )
        return self

    def add_host_function(self, module: str, function: str, handler: HostFn) -> CompositionBuilder:
        """A host function taking and returning CGRF bytes (packr's ``add_host_function``),
        for every package that imports ``module.function``."""

        def raw(ctx: Ctx, value: Value) -> EncodedValue:
            return EncodedValue(bytes(handler(encode(value))))

        self._host_functions.append((module, function, raw))
        return self

    def add_host_function_typed(
        self, module: str, function: str, handler: Callable[[Value], Value]
    ) -> CompositionBuilder:
        """A host function on values (packr's ``add_host_function_typed``); raising
        makes the import fail."""

        def typed(ctx: Ctx, value: Value) -> Value:
            return handler(value)

        self._host_functions.append((module, function, typed))
        return self

    def add_host(self, host: HostSpec) -> CompositionBuilder:
        """Any host (builder function, provider, or a list) for every package."""
        self._hosts.append(host)
        return self

    def wire(
        self,
        target_package: str,
        interface: str,
        function: str,
        source_package: str,
        source_function: str,
    ) -> CompositionBuilder:
        """Serve ``target_package``'s import ``interface.function`` with
        ``source_package``'s export ``source_function`` (checked at :meth:`build`)."""
        self._wires.append(
            Wire(target_package, interface, function, source_package, source_function)
        )
        return self

    @property
    def packages(self) -> dict[str, Module]:
        return dict(self._packages)

    @property
    def wires(self) -> tuple[Wire, ...]:
        return tuple(self._wires)

    def build(
        self,
        *,
        interceptors: Interceptors | None = None,
        state: Any = None,
        reply: ReplyMode | str = ReplyMode.SCRATCH,
        on_error: ErrorHandler | None = None,
        **limits: Any,
    ) -> BuiltComposition:
        """Instantiate every package and return the running composition.

        ``interceptors`` gives each package its interceptor (a mapping by package name,
        or a function of it), as ``Module.instantiate(interceptor=...)`` would. As in
        packr, packages that import nothing wired and need no host function are
        instantiated first, then the others, each in the order added. ``limits`` are
        ``Module.instantiate``'s ``fuel``, ``timeout``, ``memory_limit`` and
        ``scratch_capacity``, for every package.
        """
        self._check()
        built = BuiltComposition(self.runtime, tuple(self._wires))
        wired = {w.target for w in self._wires}
        host_needed = bool(self._hosts or self._host_functions)
        order = sorted(
            self._packages,
            key=lambda n: n in wired or (host_needed and _imports_any(self._packages[n])),
        )
        for name in order:
            module = self._packages[name]
            icpt = _interceptor_for(interceptors, name)
            host = built._configure(name, [*self._hosts, self._host_registrar()])
            built._add(
                name,
                module.instantiate(
                    host, state=state, interceptor=icpt, reply=reply, on_error=on_error, **limits
                ),
            )
        built._order = list(self._packages)
        return built

    def _host_registrar(self) -> Callable[[HostLinkerBuilder], None]:
        functions = list(self._host_functions)

        def register(builder: HostLinkerBuilder) -> None:
            for module, function, handler in functions:
                builder.interface(module).func_typed(function, handler)

        register.__qualname__ = "composition host functions"
        return register

    def _check(self) -> None:
        seen: set[tuple[str, str, str]] = set()
        for w in self._wires:
            for package in (w.target, w.source):
                if package not in self._packages:
                    raise PackageNotFound(package, f"wire {w}")
            key = (w.target, w.interface, w.function)
            if key in seen:
                raise ValueError(
                    f"{w.target}'s import {w.interface}.{w.function} is wired twice"
                )
            seen.add(key)


def _imports_any(module: Module) -> bool:
    return any(i.kind == "func" and i.module != "pack:alloc" for i in module.imports)


def _interceptor_for(interceptors: Interceptors | None, name: str) -> CallInterceptor | None:
    if interceptors is None:
        return None
    if isinstance(interceptors, Mapping):
        return interceptors.get(name)
    return interceptors(name)


class BuiltComposition:
    """A running composition (packr's ``BuiltComposition``)."""

    def __init__(self, runtime: Runtime, wires: tuple[Wire, ...]) -> None:
        self.runtime = runtime
        self.wires = wires
        self._instances: dict[str, Instance] = {}
        self._order: list[str] = []

    def _add(self, name: str, instance: Instance) -> None:
        self._instances[name] = instance

    def _configure(self, target: str, hosts: list[HostSpec]) -> Callable[[HostLinkerBuilder], None]:
        """The host of package ``target``: its wires, then the host functions for every
        import that is not wired (a wire wins over a host function of the same name)."""
        mine = [w for w in self.wires if w.target == target]

        def configure(builder: HostLinkerBuilder) -> None:
            for w in mine:
                builder.interface(w.interface).func_typed(w.function, self._wired(w))
            shared = HostLinkerBuilder()
            shared.interceptor, shared.error_handler = builder.interceptor, builder.error_handler
            for host in hosts:
                shared.apply(host)
            for key, fn in shared.functions.items():
                if key not in builder.functions:
                    builder.functions[key] = fn
            builder.descriptions.extend(shared.descriptions)

        configure.__qualname__ = f"composition package {target}"
        return configure

    def _wired(self, wire: Wire) -> Callable[[Ctx, Value], EncodedValue]:
        def call(ctx: Ctx, value: Value) -> EncodedValue:
            source = self._instances.get(wire.source)
            if source is None:  # called while the composition is still being built
                raise PackageNotFound(wire.source, f"wire {wire} (not instantiated yet)")
            return source.call_raw(wire.source_function, value)

        return call

    def instance(self, package: str) -> Instance:
        """The running instance of ``package``."""
        try:
            return self._instances[package]
        except KeyError:
            raise PackageNotFound(package) from None

    def call(self, package: str, function: str, input: Value | EncodedValue) -> Value:
        """Call ``package``'s export ``function`` (packr's ``BuiltComposition::call``)."""
        return self.instance(package).call_with_value(function, input)

    def call_raw(
        self, package: str, function: str, input: Value | EncodedValue | bytes
    ) -> EncodedValue:
        """:meth:`call` with exact bytes in and out."""
        return self.instance(package).call_raw(function, input)

    def packages(self) -> list[str]:
        """The package names, in the order they were added."""
        return list(self._order or self._instances)

    def types(self, package: str) -> PackageMetadata:
        """``package``'s metadata (``__pack_types``); ``MetadataError`` ``NotFound`` for
        an unknown package, as packr."""
        instance = self._instances.get(package)
        if instance is None:
            raise MetadataError("NotFound", f"package {package!r} is not in the composition")
        return instance.types()

    def close(self) -> None:
        for instance in self._instances.values():
            instance.close()

    def __enter__(self) -> BuiltComposition:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
