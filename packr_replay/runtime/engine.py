"""``Runtime`` (one wasmtime engine) and ``Module`` (a compiled guest).

Every guest call runs under a fuel budget (deterministic: the same budget stops a
spinning guest at the same instruction on every machine) and, optionally, a
wall-clock deadline enforced with epoch interruption. packr guests panic by looping
forever, so an unbounded call would hang the host. SIGINT and SIGTERM stop a running
guest the same way, whatever its fuel (see :mod:`.interrupt`).
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import wasmtime

from ..errors import MetadataError, ModuleLoadError
from . import interrupt
from . import native as _native
from .host import ErrorHandler, HostSpec, ReplyMode
from .interceptor import CallInterceptor
from .wasm import Extern, WasmFormatError, extern_types, find_cgrf_segment

if TYPE_CHECKING:
    from ..abi import Value
    from ..abi.metadata import PackageMetadata, TypeDefs, TypeDesc
    from .instance import Instance

__all__ = [
    "DEFAULT_FUEL",
    "ON_HOST_ERROR",
    "ExternInfo",
    "Module",
    "Runtime",
    "check_fuel",
    "check_on_host_error",
    "check_timeout",
]

#: About a few seconds of guest work; a spinning guest stops well before a user gives up.
DEFAULT_FUEL = 5_000_000_000
_EPOCH_TICK = 0.01  # seconds per epoch tick while a call has a wall-clock limit


@dataclass(frozen=True, slots=True)
class ExternInfo:
    """One import or export of a module: where, what kind, and its signature (a
    function's parameter and result types also as tuples)."""

    module: str
    name: str
    kind: str  # "func", "memory", "global", "table"
    signature: str
    params: tuple[str, ...] = ()
    results: tuple[str, ...] = ()

    @property
    def qualified(self) -> str:
        return f"{self.module}.{self.name}" if self.module else self.name


def check_fuel(fuel: object) -> int | None:
    """A fuel budget as the runtime keeps it: ``None`` for no limit (0 means that too,
    wherever a budget is given: here, ``--fuel 0`` and a trace's metadata)."""
    if fuel is None or (type(fuel) is int and fuel >= 0):
        return fuel or None
    raise ValueError(
        f"fuel is {fuel!r}; expected None or 0 (no limit), or a positive instruction count"
    )


def check_timeout(timeout: object) -> float | None:
    """A wall-clock limit in seconds: ``None`` (no limit) or a finite positive number."""
    if timeout is None:
        return None
    number = isinstance(timeout, int | float) and not isinstance(timeout, bool)
    if number and math.isfinite(timeout) and timeout > 0:  # type: ignore[arg-type,operator]
        return float(timeout)  # type: ignore[arg-type]
    raise ValueError(
        f"timeout is {timeout!r}; expected None (no limit) or a positive number of seconds"
    )


#: What a failed typed import does to the guest (see :class:`Runtime`).
ON_HOST_ERROR = ("status", "trap")


def check_on_host_error(value: object) -> str:
    if value in ON_HOST_ERROR:
        return str(value)
    raise ValueError(f"on_host_error is {value!r}; expected 'status' or 'trap'")


def _check_memory_limit(limit: object) -> int | None:
    if limit is None or (type(limit) is int and limit >= 0):
        return limit
    raise ValueError(f"memory_limit is {limit!r}; expected None (no limit) or a number of bytes")


class Runtime:
    """One wasmtime engine plus the defaults every instance inherits.

    ``fuel``: instructions per export call (``None`` or 0: unlimited — not recommended).
    ``timeout``: wall-clock seconds per export call (``None``: none).
    ``memory_limit``: the most bytes of linear memory one instance may use, all its
    memories together (``None``: wasm's own limits); a guest growing past it sees
    ``memory.grow`` fail, and its tables are held to a share of it too (see
    :mod:`.limits`).
    ``scratch_capacity``: the largest typed-import reply written to the scratch buffer
    (``None``: no cap, as packr 0.7.0; packr 0.7.3 caps at 512 KiB, HEAD at 32 KiB).
    ``debug_info``: emit DWARF so a replay can run under gdb/lldb.
    ``native``: serve typed imports with the C trampoline when it is built (``None``:
    the default, :data:`native.DEFAULT`); ``False`` keeps the Python path.
    ``multi_memory``: accept modules with more than one memory. Off by default, like
    every wasm feature packr guests do not use (threads and shared memory,
    memory64, GC, exceptions, tail calls, the component model): a module that needs
    one is refused when it is loaded, naming the feature.
    ``on_host_error``: what a failed typed import does to the guest. ``"status"``
    (packr's behaviour): the guest gets status -1 (packr guests then spin until their
    budget runs out, and the timeout names the failure). ``"trap"``: the guest stops
    at the failing import and the export call raises the
    :class:`~packr_replay.errors.HostFunctionError`.
    """

    def __init__(
        self,
        *,
        fuel: int | None = DEFAULT_FUEL,
        timeout: float | None = None,
        memory_limit: int | None = None,
        scratch_capacity: int | None = None,
        debug_info: bool = False,
        native: bool | None = None,
        multi_memory: bool = False,
        on_host_error: str = "status",
    ) -> None:
        config = wasmtime.Config()
        config.consume_fuel = True
        config.epoch_interruption = True
        config.memory_may_move = False  # GuestMemory caches the base address
        config.wasm_multi_memory = multi_memory
        for feature in _UNUSED_FEATURES:
            setattr(config, feature, False)
        if debug_info:
            config.debug_info = True
            config.cranelift_opt_level = "none"
        self.fuel = check_fuel(fuel)
        self.timeout = check_timeout(timeout)
        self.memory_limit = _check_memory_limit(memory_limit)
        self.engine = wasmtime.Engine(config)
        interrupt.register_engine(self.engine)  # SIGINT/SIGTERM reach its guests
        self.scratch_capacity = scratch_capacity
        self.debug_info = debug_info
        self.native = _native.DEFAULT if native is None else bool(native) and _native.AVAILABLE
        self.multi_memory = multi_memory
        self.on_host_error = check_on_host_error(on_host_error)
        self._ticker: threading.Thread | None = None
        self._ticker_lock = threading.Lock()

    def load_module(
        self, source: bytes | str | os.PathLike[str], *, name: str | None = None
    ) -> Module:
        """Compile a module from wasm bytes, WAT text, or a ``.wasm``/``.wat`` path."""
        wasm, default_name = _read_source(source)
        try:
            compiled = wasmtime.Module(self.engine, wasm)
        except wasmtime.WasmtimeError as exc:
            hint = ""
            if not self.multi_memory and "multiple memories" in str(exc):
                hint = " (multi-memory is off: Runtime(multi_memory=True) accepts it)"
            raise ModuleLoadError(
                f"cannot compile {name or default_name}: {_first_line(exc)}{hint}"
            ) from None
        return Module(self, compiled, wasm, name or default_name)

    # -- packr's schema-checked codec (Runtime::decode_arg and friends)

    def decode_arg(self, types: TypeDefs, data: bytes, type: Any) -> Value:
        """Decode an argument and check it against its declared type (packr's
        ``Runtime::decode_arg``): raises :class:`~packr_replay.errors.SchemaError`.

        ``type`` is a metadata ``TypeDesc`` or anything :func:`.interface.type_desc_of`
        takes (a Python annotation, a dataclass, a ``TaggedUnion``); ``types`` holds the
        named types its references resolve to (packr's ``TypeDef`` list)."""
        from ..abi.schema import decode_with_schema

        return decode_with_schema(data, _desc(type), types)

    def encode_result(self, value: Value) -> bytes:
        """packr's ``Runtime::encode_result``: plain CGRF encoding."""
        from ..abi import encode

        return encode(value)

    def encode_result_with_schema(self, types: TypeDefs, value: Value, type: Any) -> bytes:
        """Check ``value`` against its declared type, then encode it (packr's
        ``Runtime::encode_result_with_schema``): raises ``SchemaError``."""
        from ..abi.schema import encode_with_schema

        return encode_with_schema(value, _desc(type), types)

    # -- epoch ticking for wall-clock deadlines

    def start_ticker(self) -> None:
        """Tick this engine's epoch every 10 ms from now on (a call has a wall-clock
        limit: each tick its store's callback compares the time, see :mod:`.interrupt`)."""
        if self._ticker is None:
            with self._ticker_lock:
                if self._ticker is None:
                    self._ticker = threading.Thread(
                        target=_tick, args=(self.engine,), name="packr-replay-epoch", daemon=True
                    )
                    self._ticker.start()


def _desc(spec: Any) -> TypeDesc:
    from .interface import type_desc_of

    return type_desc_of(spec)


#: wasmtime ``Config`` features packr guests never use, switched off so a module that
#: needs one is refused at load instead of reaching around the store's limits.
_UNUSED_FEATURES = tuple(
    name
    for name in (
        "wasm_threads",
        "shared_memory",
        "wasm_memory64",
        "wasm_gc",
        "wasm_function_references",
        "wasm_exceptions",
        "wasm_tail_call",
        "wasm_stack_switching",
        "wasm_component_model",
        "wasm_custom_page_sizes",
        "wasm_wide_arithmetic",
    )
    if hasattr(wasmtime.Config, name)
)


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return "; ".join(lines[:3])


def _tick(engine: wasmtime.Engine) -> None:
    """One epoch per ``_EPOCH_TICK`` of real time: a wake-up that comes late (a busy
    machine) catches up, so a deadline of N ticks is N ticks of the clock, not of this
    thread's wake-ups."""
    event = threading.Event()
    start = time.monotonic()
    done = 0
    while not event.wait(_EPOCH_TICK):
        due = int((time.monotonic() - start) / _EPOCH_TICK)
        for _ in range(max(due - done, 1)):
            engine.increment_epoch()
        done = max(due, done + 1)


def _read_source(source: bytes | str | os.PathLike[str]) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _wasm_or_wat(bytes(source), "module", "the bytes")
    if isinstance(source, str) and _looks_like_wat(source):
        return _wat_to_wasm(source, "module"), "module"
    path = Path(source)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModuleLoadError(f"cannot read module {path}: {exc.strerror or exc}") from None
    return _wasm_or_wat(data, path.stem, str(path))


def _wasm_or_wat(data: bytes, name: str, where: str) -> tuple[bytes, str]:
    """Binary wasm as is, WAT text compiled; anything else refused by what it is (a
    README is not "bad WAT at <anon>:1:1")."""
    if data[:4] == b"\0asm":
        return data, name
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or not _looks_like_wat(text):
        what = "an empty file" if not data else f"it starts with {data[:16]!r}"
        raise ModuleLoadError(f"{where}: not a WebAssembly module (or WAT text): {what}")
    return _wat_to_wasm(text, name), name


def _looks_like_wat(text: str) -> bool:
    """WAT text rather than a path: starts with ``(`` once comments are skipped."""
    rest = text.lstrip()
    while rest.startswith(";;") or rest.startswith("(;"):
        if rest.startswith(";;"):
            _, _, rest = rest.partition("\n")
        else:
            _, _, rest = rest.partition(";)")
        rest = rest.lstrip()
    return rest.startswith("(")


def _wat_to_wasm(text: str, name: str) -> bytes:
    try:
        return bytes(wasmtime.wat2wasm(text))
    except wasmtime.WasmtimeError as exc:
        raise ModuleLoadError(f"invalid WAT for {name}: {exc}") from None


def _fields(e: Extern) -> tuple[str, str, str, str, tuple[str, ...], tuple[str, ...]]:
    return e.module, e.name, e.kind, e.signature, e.params, e.results


class Module:
    """A compiled guest: its bytes, content hash, imports, exports and metadata."""

    def __init__(self, runtime: Runtime, compiled: wasmtime.Module, wasm: bytes, name: str) -> None:
        self.runtime = runtime
        self.compiled = compiled
        self.wasm = wasm
        self.name = name
        self.sha256 = hashlib.sha256(wasm).hexdigest()
        try:  # from the bytes: wasmtime-py aborts the process printing a v128
            types = extern_types(wasm)
        except WasmFormatError as exc:
            raise ModuleLoadError(f"cannot read the types of {name}'s imports and exports: {exc}") from None
        self.imports = [ExternInfo(*_fields(e)) for e in types.imports]
        self.exports = [ExternInfo(*_fields(e)) for e in types.exports]
        self.memory_count = types.memories
        self.table_count = types.tables

    def __repr__(self) -> str:
        return f"<Module {self.name} sha256={self.sha256[:12]}>"

    def export(self, name: str) -> ExternInfo | None:
        return next((e for e in self.exports if e.name == name), None)

    def metadata_bytes(self) -> bytes | None:
        """The ``__pack_types`` CGRF blob, read statically from the data segments."""
        try:
            found = find_cgrf_segment(self.wasm)
        except WasmFormatError:
            return None
        if found is None:
            return None
        from ..abi import AbiError, decode_prefix

        try:
            _, used = decode_prefix(found[1])
        except AbiError:
            return None
        return found[1][:used]

    def types(self) -> PackageMetadata:
        """The package metadata the guest declares (``__pack_types``, spec §6).

        Read statically from the first data segment starting with ``CGRF``, without
        running guest code. Raises ``MetadataError`` (kind ``NotFound``) for a module
        that does not export ``__pack_types`` or has no such segment.
        """
        from ..abi import decode
        from ..abi.metadata import PackageMetadata

        if self.export("__pack_types") is None:
            raise MetadataError("NotFound", "package does not export __pack_types")
        blob = self.metadata_bytes()
        if blob is None:
            raise MetadataError("NotFound", "no CGRF metadata segment found in the module")
        return PackageMetadata.from_value(decode(blob))

    def instantiate(
        self,
        host: HostSpec = None,
        *,
        state: Any = None,
        interceptor: CallInterceptor | None = None,
        reply: ReplyMode | str = ReplyMode.SCRATCH,
        on_error: ErrorHandler | None = None,
        fuel: int | str | None = "default",
        timeout: float | str | None = "default",
        scratch_capacity: int | str | None = "default",
        memory_limit: int | str | None = "default",
        deadline: float | None = None,
        on_host_error: str = "default",
    ) -> Instance:
        """Instantiate with host functions and return an :class:`Instance`.

        ``host`` is a function taking the :class:`HostLinkerBuilder`, a
        :class:`HostFunctionProvider`, or a list of them. ``reply`` chooses where typed
        import replies go (``"scratch"`` for every guest version, ``"guest"`` for
        packr >= 0.8 guests). ``scratch_capacity`` caps scratch replies (default: the
        runtime's, which is no cap, as packr 0.7.0; 32768 is packr HEAD's cap; a reply
        over it fails with ``MemoryWrite``). ``fuel`` / ``timeout`` override the
        runtime's per-call budget (fuel 0: no limit) and ``memory_limit`` its memory cap
        (bytes, all the instance's memories together). ``deadline`` (a
        ``time.monotonic()`` value) ends every guest call, the start function's
        included, by then, whatever its own timeout: a whole run's wall-clock cap.
        ``on_host_error`` overrides the runtime's (``"status"`` or ``"trap"``).
        ``interceptor`` and ``on_error`` serve every typed import and export call;
        interceptors and handlers set on the builder serve the interfaces created after
        them (packr's scope).
        """
        from .instance import Instance

        return Instance(
            self,
            host,
            state=state,
            interceptor=interceptor,
            reply=ReplyMode(reply),
            on_error=on_error,
            fuel=self.runtime.fuel if fuel == "default" else check_fuel(fuel),
            timeout=self.runtime.timeout if timeout == "default" else check_timeout(timeout),
            scratch_capacity=self.runtime.scratch_capacity
            if scratch_capacity == "default"
            else scratch_capacity,  # type: ignore[arg-type]
            memory_limit=(
                self.runtime.memory_limit
                if memory_limit == "default"
                else _check_memory_limit(memory_limit)
            ),
            deadline=deadline,
            on_host_error=(
                self.runtime.on_host_error
                if on_host_error == "default"
                else check_on_host_error(on_host_error)
            ),
        )
