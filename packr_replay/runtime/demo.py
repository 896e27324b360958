"""``DemoHost``: the host functions of the example guests in ``examples/guests/``.

One provider serves every example guest; a guest links only what it imports:

================================  ============================================  =========
interface.function                what it does                                  guest
================================  ============================================  =========
``demo:host/log.write``           collect a message (and print it if asked)     clock_actor
``demo:host/clock.now``           unix time in ns (``u64``)                     clock_actor
``demo:host/random.next``         OS randomness in ``[0, bound)``               clock_actor
``demo:host/env.get``             an environment variable, ``option<string>``   clock_actor
``sexpr:host/env.lookup``         a small symbol table, ``option<sexpr>``       sexpr
``kv:store/kv.get/set/delete``    an in-memory dict                             kv_actor
``math.double``                   ``2n`` (wrapping s64)                         host_actor
``theater:simple/runtime.log``    collect a message                             host_actor
``bench:host/math.inc``           ``i + 1`` (typed)                             bench
``bench:host/text.echo``          returns its string (typed)                    bench
``bench:host/raw.noop``           returns its argument (raw wasm, no CGRF)      bench
``hostile:host/sink.take``        echoes its input                              hostile
``host.log``                      collect raw UTF-8 from guest memory (raw)     logger
``host.alloc``                    packr's bump allocator from 48 KiB (raw)      logger
``demo:raw/entropy.fill``         write random bytes into guest memory (raw)    logger
================================  ============================================  =========

Nondeterminism is the point of the clock actor: its ``now``, ``random`` and ``env``
answers differ from run to run, which is what a recorder captures and a replayer
reproduces. Each typed interface is an :class:`~.interface.InterfaceImpl`, so its hash
can be checked against what a guest declares (``DemoHost().check(module)``).
"""

from __future__ import annotations

import math
import os
import secrets
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ..abi import F64, S64, Bool, Option, String, Value, ValueType, Variant
from ..abi.convert import s64, u64
from .interface import InterfaceImpl

if TYPE_CHECKING:
    from ..abi.metadata import TypeDesc
    from .engine import Module
    from .host import Ctx, HostLinkerBuilder

__all__ = ["DEFAULT_SYMBOLS", "EXAMPLE_GUESTS", "SEXPR", "DemoHost", "example_guest", "sexpr"]

#: The example guests DemoHost serves (``examples/guests``, shipped as
#: ``packr_replay.examples``).
EXAMPLE_GUESTS = (
    "bench",
    "clock_actor",
    "echo",
    "host_actor",
    "hostile",
    "kv_actor",
    "logger",
    "sexpr",
)


def example_guest(name: str) -> Path:
    """The path of a built example guest, e.g. ``example_guest("clock_actor")``."""
    import importlib.resources

    if name not in EXAMPLE_GUESTS:
        raise ValueError(f"no example guest {name!r}; there are {', '.join(EXAMPLE_GUESTS)}")
    try:
        root = importlib.resources.files("packr_replay.examples")
    except ModuleNotFoundError:
        raise FileNotFoundError(
            "the example guests (packr_replay.examples) are not installed"
        ) from None
    path = Path(str(root / f"{name}.wasm"))
    if not path.is_file():
        raise FileNotFoundError(f"{path} is not built (python examples/guests/build.py {name})")
    return path


#: The ``sexpr`` variant type the sexpr guest evaluates.
SEXPR = ValueType.variant("sexpr")
_SEXPR_CASES = ("sym", "num", "float", "str", "lst", "bool", "nil", "err")


def sexpr(case: str, payload: Value | None = None) -> Variant:
    """A ``sexpr`` value by case name: ``sexpr("num", S64(42))``, ``sexpr("nil")``."""
    return Variant("sexpr", case, _SEXPR_CASES.index(case), [] if payload is None else [payload])


#: What ``sexpr:host/env.lookup`` knows unless told otherwise.
DEFAULT_SYMBOLS: dict[str, Value] = {
    "pi": sexpr("float", F64(math.pi)),
    "e": sexpr("float", F64(math.e)),
    "answer": sexpr("num", S64(42)),
    "greeting": sexpr("str", String("hello")),
    "yes": sexpr("bool", Bool(True)),
}


def _sexpr_desc() -> TypeDesc:
    from ..abi.metadata import TypeDesc

    # The recursive list<sexpr> is declared list<value>, as packr writes `self`.
    return TypeDesc.variant(
        "sexpr",
        [
            ("sym", TypeDesc.STRING),
            ("num", TypeDesc.S64),
            ("float", TypeDesc.F64),
            ("str", TypeDesc.STRING),
            ("lst", TypeDesc.list(TypeDesc.VALUE)),
            ("bool", TypeDesc.BOOL),
            ("nil", None),
            ("err", TypeDesc.STRING),
        ],
    )


class DemoHost:
    """Host functions for the example guests (a ``HostFunctionProvider``).

    ``environ``: what ``demo:host/env.get`` reads (default: the real environment).
    ``symbols``: the sexpr symbol table (default :data:`DEFAULT_SYMBOLS`).
    ``kv``: the initial key-value store. ``clock`` / ``randbelow`` / ``randbytes``:
    sources of time and randomness (default: ``time.time_ns`` and the OS generator).
    ``print_logs``: also write each log message to ``stream`` (default stderr).

    State lives on the object: ``logs`` (every message from ``demo:host/log.write``,
    ``theater:simple/runtime.log`` and ``host.log``), ``kv``, ``calls`` (a count per
    function) and ``next_alloc`` (``host.alloc``'s bump pointer).
    """

    #: Where packr's legacy ``host.alloc`` starts (48 KiB).
    ALLOC_START = 49152
    #: The most bytes one ``demo:raw/entropy.fill`` writes.
    MAX_FILL = 1 << 20

    def __init__(
        self,
        *,
        environ: Mapping[str, str] | None = None,
        symbols: Mapping[str, Value] | None = None,
        kv: Mapping[str, str] | None = None,
        clock: Callable[[], int] = time.time_ns,
        randbelow: Callable[[int], int] = secrets.randbelow,
        randbytes: Callable[[int], bytes] = secrets.token_bytes,
        print_logs: bool = False,
        stream: TextIO | None = None,
    ) -> None:
        self.environ: Mapping[str, str] = os.environ if environ is None else environ
        self.symbols: dict[str, Value] = dict(DEFAULT_SYMBOLS if symbols is None else symbols)
        self.kv: dict[str, str] = dict(kv or {})
        self.clock = clock
        self.randbelow = randbelow
        self.randbytes = randbytes
        self.next_alloc = self.ALLOC_START
        self.print_logs = print_logs
        self.stream = stream
        self.logs: list[str] = []
        self.calls: dict[str, int] = {}
        self.interfaces: tuple[InterfaceImpl, ...] = self._interfaces()

    # ----------------------------------------------------------- the handlers

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    def _log(self, message: str) -> None:
        self.logs.append(message)
        if self.print_logs:
            print(f"[guest] {message}", file=self.stream or sys.stderr, flush=True)

    def log_write(self, ctx: Ctx, message: str) -> None:
        self._count("demo:host/log.write")
        self._log(message)

    def clock_now(self, ctx: Ctx) -> u64:
        self._count("demo:host/clock.now")
        return self.clock()

    def random_next(self, ctx: Ctx, bound: u64) -> u64:
        self._count("demo:host/random.next")
        if bound == 0:
            raise ValueError("random.next: bound must be > 0")
        return self.randbelow(bound)

    def env_get(self, ctx: Ctx, name: str) -> str | None:
        self._count("demo:host/env.get")
        return self.environ.get(name)

    def sexpr_lookup(self, ctx: Ctx, name: str) -> Value:
        self._count("sexpr:host/env.lookup")
        return Option(SEXPR, self.symbols.get(name))

    def kv_get(self, ctx: Ctx, key: str) -> str | None:
        self._count("kv:store/kv.get")
        return self.kv.get(key)

    def kv_set(self, ctx: Ctx, key: str, value: str) -> bool:
        self._count("kv:store/kv.set")
        self.kv[key] = value
        return True

    def kv_delete(self, ctx: Ctx, key: str) -> bool:
        self._count("kv:store/kv.delete")
        return self.kv.pop(key, None) is not None

    def math_double(self, ctx: Ctx, n: s64) -> s64:
        self._count("math.double")
        return ((2 * n + 2**63) % 2**64) - 2**63

    def runtime_log(self, ctx: Ctx, msg: str) -> None:
        self._count("theater:simple/runtime.log")
        self._log(msg)

    def bench_inc(self, ctx: Ctx, i: s64) -> s64:
        return i + 1

    def bench_echo(self, ctx: Ctx, s: str) -> str:
        return s

    def sink_take(self, ctx: Ctx, input: Value) -> Value:
        self._count("hostile:host/sink.take")
        return input

    # Raw imports (plain wasm numbers; what they touch in guest memory goes through ctx).

    def host_log(self, ctx: Ctx, ptr: int, length: int) -> None:
        """packr's ``host.log``: raw UTF-8 (not CGRF); invalid UTF-8 is dropped."""
        self._count("host.log")
        data = ctx.read_bytes(ptr, length & 0xFFFF_FFFF)
        try:
            self._log(data.decode("utf-8"))
        except UnicodeDecodeError:
            pass

    def host_alloc(self, ctx: Ctx, size: int) -> int:
        """packr's ``host.alloc``: a bump pointer, 8-aligned, no bounds check."""
        self._count("host.alloc")
        current = self.next_alloc
        self.next_alloc = (current + (size & 0xFFFF_FFFF) + 7) & ~7
        return ((current + 2**31) % 2**32) - 2**31  # as a wasm i32

    def entropy_fill(self, ctx: Ctx, ptr: int, length: int) -> int:
        """Write ``length`` random bytes at ``ptr``; returns how many were written."""
        self._count("demo:raw/entropy.fill")
        length &= 0xFFFF_FFFF
        if length > self.MAX_FILL:
            raise ValueError(f"entropy.fill: {length} bytes asked, at most {self.MAX_FILL}")
        ctx.write_bytes(ptr, self.randbytes(length))
        return length

    # ------------------------------------------------------------ declaration

    def _interfaces(self) -> tuple[InterfaceImpl, ...]:
        from ..abi.metadata import TypeDesc

        def iface(name: str, **funcs: Callable[..., Any]) -> InterfaceImpl:
            out = InterfaceImpl(name)
            for fname, fn in funcs.items():
                out.func(fname, fn)
            return out

        sexpr_env = InterfaceImpl("sexpr:host/env")
        sexpr_env.func(
            "lookup",
            self.sexpr_lookup,
            params=[TypeDesc.STRING],
            returns=TypeDesc.option(_sexpr_desc()),
        )
        kv = iface("kv:store/kv", get=self.kv_get, set=self.kv_set)
        kv.func("delete", self.kv_delete)
        return (
            iface("demo:host/log", write=self.log_write),
            iface("demo:host/clock", now=self.clock_now),
            iface("demo:host/random", next=self.random_next),
            iface("demo:host/env", get=self.env_get),
            sexpr_env,
            kv,
            iface("math", double=self.math_double),
            iface("theater:simple/runtime", log=self.runtime_log),
            iface("bench:host/math", inc=self.bench_inc),
            iface("bench:host/text", echo=self.bench_echo),
            iface("hostile:host/sink", take=self.sink_take),
        )

    def register(self, builder: HostLinkerBuilder) -> None:
        for interface in self.interfaces:
            interface.register(builder)
        builder.interface("bench:host/raw").func_raw(
            "noop", _noop, params=("i32",), results=("i32",)
        )
        legacy = builder.interface("host")
        legacy.func_raw("log", self.host_log, params=("i32", "i32"))
        legacy.func_raw("alloc", self.host_alloc, params=("i32",), results=("i32",))
        builder.interface("demo:raw/entropy").func_raw(
            "fill", self.entropy_fill, params=("i32", "i32"), results=("i32",)
        )

    def check(self, module: Module) -> dict[str, bool]:
        """For each interface the module imports from this host: does the guest's
        declared interface hash match ours? (``{}`` when it declares none.)"""
        metadata = module.types()
        out: dict[str, bool] = {}
        for interface in self.interfaces:
            found = interface.matches(metadata)
            if found is not None:
                out[interface.name] = found
        return out

    def clear(self) -> None:
        """Forget logs and call counts (the kv store and the allocator are kept)."""
        self.logs.clear()
        self.calls.clear()


def _noop(ctx: Ctx, i: int) -> int:
    return i
