"""The one exception tree of packr-replay.

Every error the library raises on purpose derives from :class:`PackrReplayError`, so a
caller can catch "anything packr-replay refused" in one place, and each layer's errors
carry their context as attributes rather than only in the message::

    PackrReplayError
    ├── AbiError (ValueError)               CGRF bytes or values packr would refuse
    │   ├── InvalidEncoding                 .message, text identical to packr's
    │   ├── BufferTooSmall                  .need, .have, same numbers as packr
    │   ├── InvalidTag                      .tag, an unknown node-kind or type-tag byte
    │   └── TypeMismatch                    .expected, .got
    ├── ParseError (ValueError)             packr text format: .message, .position
    │   └── TypedParseError                 text against a declared type: .path, .expected
    ├── ConversionError (TypeError)         Python value <-> Value with a declared type
    ├── SchemaError (ValueError)            packr's schema-checked codec: .kind, .node, ...
    ├── TypeValidationError (ValueError)    a value outside a type space: .kind, .context
    ├── HostSpecError (ValueError)          a host spec ("file.py:NAME") that names no host
    ├── CorpusError (ValueError)            a corpus check that cannot start (no traces, ...)
    ├── GuestRuntimeError                   running a guest under wasmtime
    │   ├── ModuleLoadError                 bytes/WAT that wasmtime refuses
    │   ├── LinkError                       .missing: every unresolved import
    │   ├── ExportNotFound                  .export
    │   ├── GuestError                      .export, .message: the guest's error string
    │   ├── GuestTrap                       .export, .trap: a wasm trap
    │   ├── GuestTimeout                    .export, .budget: fuel or deadline exhausted
    │   ├── InvalidGuestOutput              .export, .cause: status 0 but bad CGRF
    │   ├── GuestMemoryError                a guest pointer/length outside its memory
    │   ├── MetadataError                   __pack_types missing or malformed
    │   ├── InterfaceError                  .kind, .name: an instance lacks an interface
    │   ├── PackageNotFound                 .package: not in the composition
    │   └── HostFunctionError               .interface, .function, .kind (packr's kinds)
    ├── ReplayError                         reproducing a recorded run
    │   ├── ReplayDivergence                .seq, .expected, .actual, .differences, ...
    │   └── TraceExhausted                  the guest made more calls than recorded
    └── StoreError                          trace files
        ├── TraceFormatError                newer/unknown format, foreign or corrupt file
        │   └── UnfinishedStore             .path: empty, or its creation has not finished
        ├── TraceNotFound                   .trace_id
        └── IntegrityError                  .seq: first event whose hash chain breaks

Codec and parse errors also subclass :class:`ValueError` (as msgpack's do) so code that
already guards ``ValueError`` around parsing keeps working.

One class stands outside the tree on purpose: :class:`Interrupted`, a
``KeyboardInterrupt`` (so ``except Exception`` does not swallow it), raised at a safe
point when SIGINT or SIGTERM stopped a run (see :mod:`packr_replay._interrupts`).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

__all__ = [
    "AbiError",
    "BufferTooSmall",
    "ConversionError",
    "CorpusError",
    "ExportNotFound",
    "GuestError",
    "GuestMemoryError",
    "GuestRuntimeError",
    "GuestTimeout",
    "GuestTrap",
    "HostFunctionError",
    "HostSpecError",
    "IntegrityError",
    "InterfaceError",
    "Interrupted",
    "InvalidEncoding",
    "InvalidGuestOutput",
    "InvalidTag",
    "LinkError",
    "MetadataError",
    "ModuleLoadError",
    "PackageNotFound",
    "PackrReplayError",
    "ParseError",
    "ReplayDivergence",
    "ReplayError",
    "SchemaError",
    "StoreError",
    "TraceExhausted",
    "TraceFormatError",
    "TraceNotFound",
    "TypeMismatch",
    "TypeValidationError",
    "TypedParseError",
    "UnfinishedStore",
]


class PackrReplayError(Exception):
    """Base of every error packr-replay raises deliberately."""


# --------------------------------------------------------------------------- abi


class AbiError(PackrReplayError, ValueError):
    """A CGRF buffer or value that packr's codec would reject.

    ``debug`` is Rust's ``{:?}`` of the equivalent ``AbiError`` (what a packr guest puts
    in its error strings, e.g. ``InvalidEncoding("Invalid magic")``); ``str()`` is the
    host's Display form.
    """

    @property
    def debug(self) -> str:  # pragma: no cover - overridden by every subclass
        raise NotImplementedError


class InvalidEncoding(AbiError):
    """The bytes are not valid CGRF v2; ``message`` is packr's exact text."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return f"Invalid encoding: {self.message}"

    @property
    def debug(self) -> str:
        return f"InvalidEncoding({_rust_debug_str(self.message)})"


class BufferTooSmall(AbiError):
    """A read ran past the end of the slice being read.

    ``need`` is the read position plus the wanted length and ``have`` the slice length,
    exactly as packr reports them (the whole buffer for the container, the node payload
    inside a node).
    """

    def __init__(self, need: int, have: int) -> None:
        super().__init__(need, have)
        self.need = need
        self.have = have

    def __str__(self) -> str:
        return f"Buffer too small: need {self.need} bytes, have {self.have}"

    @property
    def debug(self) -> str:
        return f"BufferTooSmall {{ need: {self.need}, have: {self.have} }}"


class InvalidTag(AbiError):
    """An unknown node-kind byte or type-tag byte."""

    def __init__(self, tag: int) -> None:
        super().__init__(tag)
        self.tag = tag

    def __str__(self) -> str:
        return f"Invalid variant tag: {self.tag}"

    @property
    def debug(self) -> str:
        return f"InvalidTag({self.tag})"


class TypeMismatch(AbiError):
    """A value does not have the type it was declared or expected to have."""

    def __init__(self, expected: str, got: str) -> None:
        super().__init__(expected, got)
        self.expected = expected
        self.got = got

    def __str__(self) -> str:
        return f"Type mismatch: expected {self.expected}, got {self.got}"

    @property
    def debug(self) -> str:
        return (
            f"TypeMismatch {{ expected: {_rust_debug_str(self.expected)}, "
            f"got: {_rust_debug_str(self.got)} }}"
        )


class ParseError(PackrReplayError, ValueError):
    """packr's text format rejected the input at a UTF-8 byte ``position``."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message, position)
        self.message = message
        self.position = position

    def __str__(self) -> str:
        return f"parse error at {self.position}: {self.message}"


class TypedParseError(ParseError):
    """Value text read against a declared type (a guest's ``__pack_types``) does not fit
    it: ``.path`` says where in the value (``expr.lst[2].num``; ``""`` is the whole
    value), ``.expected`` the declared type there, ``.position`` the UTF-8 byte offset."""

    def __init__(self, message: str, position: int, path: str = "", expected: str = "") -> None:
        super().__init__(message, position)
        self.path = path
        self.expected = expected

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{where}{self.message} (at position {self.position})"


class ConversionError(PackrReplayError, TypeError):
    """A Python value could not become a Value of the declared type, or back."""


class SchemaError(PackrReplayError, ValueError):
    """A value or buffer that does not match its declared schema (packr's
    ``parser::ValidationError``; what ``Runtime.decode_arg`` and
    ``encode_result_with_schema`` raise).

    ``kind`` is packr's variant name: ``InvalidEncoding`` (``message``),
    ``UndefinedType`` (``name``), ``SelfRefOutsideType``, ``TypeMismatch`` (``node``,
    ``expected``, ``actual``), ``VariantTagOutOfRange`` (``node``, ``tag``, ``max``),
    ``VariantPayloadMismatch`` (``node``, ``tag``) or ``UnsupportedType`` (``message``);
    ``str()`` is packr's Display text.
    """

    KINDS = frozenset({
        "InvalidEncoding", "UndefinedType", "SelfRefOutsideType", "TypeMismatch",
        "VariantTagOutOfRange", "VariantPayloadMismatch", "UnsupportedType",
    })  # fmt: skip

    def __init__(
        self,
        kind: str,
        *,
        message: str | None = None,
        name: str | None = None,
        node: int | None = None,
        expected: str | None = None,
        actual: str | None = None,
        tag: int | None = None,
        max: int | None = None,
    ) -> None:
        if kind not in self.KINDS:
            raise ValueError(f"unknown schema error kind {kind!r}")
        self.kind = kind
        self.message = message
        self.name = name
        self.node = node
        self.expected = expected
        self.actual = actual
        self.tag = tag
        self.max = max
        super().__init__(self._text())

    def _text(self) -> str:
        k = self.kind
        if k == "InvalidEncoding":
            return f"Invalid encoding: {self.message}"
        if k == "UndefinedType":
            return f"Undefined type: {self.name}"
        if k == "SelfRefOutsideType":
            return "Self reference used outside of a type definition"
        if k == "TypeMismatch":
            return f"Type mismatch at node {self.node}: expected {self.expected}, got {self.actual}"
        if k == "VariantTagOutOfRange":
            return f"Variant tag out of range at node {self.node}: tag {self.tag}, max {self.max}"
        if k == "VariantPayloadMismatch":
            return f"Variant payload mismatch at node {self.node} tag {self.tag}"
        return f"Unsupported type: {self.message}"

    def __str__(self) -> str:
        return self._text()


class TypeValidationError(PackrReplayError, ValueError):
    """A value that does not inhabit a type (packr's ``metadata::TypeValidationError``,
    raised by ``validate_value_in_type_space``).

    ``kind``: ``TypeMismatch`` (``expected``, ``got``), ``MissingField`` /
    ``ExtraField`` (``record``, ``field``), ``UnknownCase`` (``variant``, ``case``),
    ``UnresolvedRef`` (``path``) or ``WrongArity`` (``expected``, ``got``: counts).
    ``context`` is where, outermost first (packr's ``Nested`` chain: ``list[2]``,
    ``field 'x'``, ``case 'leaf'``...); ``str()`` is packr's Display text.
    """

    KINDS = frozenset(
        {"TypeMismatch", "MissingField", "ExtraField", "UnknownCase", "UnresolvedRef", "WrongArity"}
    )

    def __init__(self, kind: str, *, context: tuple[str, ...] = (), **fields: Any) -> None:
        if kind not in self.KINDS:
            raise ValueError(f"unknown type validation error kind {kind!r}")
        self.kind = kind
        self.context = tuple(context)
        self.expected: Any = fields.get("expected")
        self.got: Any = fields.get("got")
        self.record: str | None = fields.get("record")
        self.field: str | None = fields.get("field")
        self.variant: str | None = fields.get("variant")
        self.case: str | None = fields.get("case")
        self.path: str | None = fields.get("path")
        super().__init__(str(self))

    def __str__(self) -> str:
        k = self.kind
        if k == "TypeMismatch":
            text = f"expected {self.expected}, got {self.got}"
        elif k == "MissingField":
            text = f"record '{self.record}' missing field '{self.field}'"
        elif k == "ExtraField":
            text = f"record '{self.record}' has unexpected field '{self.field}'"
        elif k == "UnknownCase":
            text = f"variant '{self.variant}' has no case '{self.case}'"
        elif k == "UnresolvedRef":
            text = f"unresolved type reference '{self.path}'"
        else:
            text = f"expected {self.expected} elements, got {self.got}"
        return "".join(f"in {c}: " for c in self.context) + text


class CorpusError(PackrReplayError, ValueError):
    """A corpus check that cannot start: a path or glob that names nothing, a build
    that does not exist or compile, a ``--module NAME=`` that no trace was recorded
    with, a selection that is not ``FIELD=PATTERN``."""


class HostSpecError(PackrReplayError, ValueError):
    """A host spec (``demo``, ``file.py:NAME``, ``package.module:NAME``) that does not
    name a host; ``spec`` is the spec as given."""

    def __init__(self, spec: str, message: str) -> None:
        super().__init__(f"--host {spec}: {message}")
        self.spec = spec


def _rust_debug_str(text: str) -> str:
    """Rust's ``{:?}`` of a ``String``: quoted, with Rust's escapes."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\0":
            out.append("\\0")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{{{code:x}}}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


# ----------------------------------------------------------------------- runtime


class GuestRuntimeError(PackrReplayError):
    """Running a guest under wasmtime failed."""


class ModuleLoadError(GuestRuntimeError):
    """wasmtime refused the module bytes, path or WAT text."""


class LinkError(GuestRuntimeError):
    """Imports the host does not provide; ``missing`` lists ``(module, name, signature)``."""

    def __init__(self, missing: list[tuple[str, str, str]]) -> None:
        self.missing = missing
        lines = "\n".join(f"  {module}.{name}: {sig}" for module, name, sig in missing)
        super().__init__(
            f"{len(missing)} unresolved import{'s' if len(missing) != 1 else ''}:\n{lines}"
        )


class ExportNotFound(GuestRuntimeError):
    """The guest has no export of that name with packr's 4-i32 signature."""

    def __init__(self, export: str, detail: str = "") -> None:
        self.export = export
        msg = f"Function not found: {export}"
        super().__init__(f"{msg} ({detail})" if detail else msg)


class _ExportFailure(GuestRuntimeError):
    export: str


class GuestError(_ExportFailure):
    """The export returned a non-zero status and this error string."""

    def __init__(self, export: str, message: str, status: int = -1) -> None:
        self.export = export
        self.message = message
        self.status = status
        super().__init__(f"function '{export}' returned error: {message}")


class GuestTrap(_ExportFailure):
    """The guest trapped (unreachable, out-of-bounds access, stack overflow, ...)."""

    def __init__(self, export: str, trap: str) -> None:
        self.export = export
        self.trap = trap
        super().__init__(f"WASM execution error in '{export}': {trap}")


class GuestTimeout(_ExportFailure):
    """The guest used up its fuel or time budget; packr guests spin forever on panic.

    ``limit`` says which: ``"fuel"``, ``"timeout"`` (the call's own) or
    ``"deadline"`` (the instance's, for a whole run).
    """

    def __init__(
        self,
        export: str,
        budget: str,
        limit: str = "",
        host_error: HostFunctionError | None = None,
    ) -> None:
        self.export = export
        self.budget = budget
        self.limit = limit
        self.host_error = host_error
        if host_error is None:
            text = (
                f"guest export '{export}' exceeded its budget ({budget}); a packr guest that "
                "panics spins forever, so this usually means the guest panicked"
            )
        else:
            ran_out = {
                "fuel": "its fuel ran out",
                "timeout": "its wall-clock timeout passed",
                "deadline": "the instance's deadline passed",
            }.get(limit, f"its budget ran out ({budget})")
            text = (
                f"{host_error.summary()}; the guest then spun until {ran_out} "
                f"(packr guests loop on a panic; export '{export}', {budget})"
            )
        super().__init__(text)


class InvalidGuestOutput(_ExportFailure):
    """An export returned status 0 with bytes that are not valid CGRF."""

    def __init__(self, export: str, cause: AbiError) -> None:
        self.export = export
        self.cause = cause
        super().__init__(f"ABI error: export '{export}' returned invalid CGRF: {cause}")


class GuestMemoryError(GuestRuntimeError):
    """A guest-supplied pointer or length falls outside the guest's memory."""


class MetadataError(GuestRuntimeError):
    """``__pack_types`` is missing, failed, or does not describe a package."""

    def __init__(self, kind: str, message: str) -> None:
        self.kind = kind
        super().__init__(message)


class InterfaceError(GuestRuntimeError):
    """An instance does not implement an interface (packr's ``InterfaceError``, from
    ``validate_interface`` / ``validate_instance_implements_interface``).

    ``kind``: ``MissingFunction`` (``name``), ``SignatureMismatch`` (``name``,
    ``expected``, ``actual``: wasm signatures) or ``MissingMemory``.
    """

    def __init__(self, kind: str, name: str = "", expected: str = "", actual: str = "") -> None:
        self.kind = kind
        self.name = name
        self.expected = expected
        self.actual = actual
        if kind == "MissingFunction":
            text = f"Missing function '{name}' required by interface"
        elif kind == "SignatureMismatch":
            text = f"Function '{name}' has wrong signature: expected {expected}, got {actual}"
        elif kind == "MissingMemory":
            text = "Missing memory export 'memory'"
        else:
            raise ValueError(f"unknown interface error kind {kind!r}")
        super().__init__(text)


class PackageNotFound(GuestRuntimeError):
    """A composition has no package of that name (packr's ``ModuleNotFound``)."""

    def __init__(self, package: str, where: str = "") -> None:
        self.package = package
        self.where = where
        super().__init__(f"Package '{package}' not found" + (f" ({where})" if where else ""))


class HostFunctionError(GuestRuntimeError):
    """A typed import failed; the guest got status -1.

    ``kind`` is one of packr's ``MemoryRead``, ``Decode``, ``TypeConversion``,
    ``MemoryWrite``, ``Encode`` (plus ``Handler`` when a Python handler raised);
    ``cause`` is the underlying exception when there was one.
    """

    KINDS = MappingProxyType(
        {
            "MemoryRead": "memory read failed",
            "Decode": "decode failed",
            "TypeConversion": "type conversion failed",
            "MemoryWrite": "memory write failed",
            "Encode": "encode failed",
            "Handler": "handler failed",
        }
    )

    def __init__(
        self,
        interface: str,
        function: str,
        kind: str,
        message: str,
        cause: BaseException | None = None,
    ) -> None:
        if kind not in self.KINDS:
            raise ValueError(f"unknown host function error kind {kind!r}")
        self.interface = interface
        self.function = function
        self.kind = kind
        self.message = message
        self.cause = cause
        super().__init__(
            f"host function error in {interface}::{function}: {self.KINDS[kind]}: {message}"
        )

    @property
    def name(self) -> str:
        return f"{self.interface}.{self.function}" if self.interface else self.function

    def summary(self) -> str:
        """The failure in a few words, naming the function: ``host function X raised
        RuntimeError: ...`` (or ``... failed: decode failed: ...``)."""
        if self.kind == "Handler":
            return f"host function {self.name} raised {self.message}"
        return f"host function {self.name} failed: {self.KINDS[self.kind]}: {self.message}"


# ------------------------------------------------------------------------ replay


class ReplayError(PackrReplayError):
    """A recorded run could not be reproduced."""


class ReplayDivergence(ReplayError):
    """The guest's k-th call differs from the k-th recorded one.

    Attributes carry everything needed to explain it: ``seq`` (position in the trace),
    ``expected`` and ``actual`` call descriptions, ``differences`` (value paths),
    ``failed_matchers`` and ``nearest`` recorded calls. The rendered explanation is
    ``str(error)``.
    """

    def __init__(self, report: str, **context: Any) -> None:
        super().__init__(report)
        self.report = report
        self.seq: int | None = context.pop("seq", None)
        self.expected: Any = context.pop("expected", None)
        self.actual: Any = context.pop("actual", None)
        self.differences: list[Any] = context.pop("differences", [])
        self.failed_matchers: list[str] = context.pop("failed_matchers", [])
        self.nearest: list[Any] = context.pop("nearest", [])
        self.context = context


class TraceExhausted(ReplayDivergence):
    """The guest asked for more calls than the trace holds."""


# ----------------------------------------------------------------------- storage


class StoreError(PackrReplayError):
    """A trace file could not be opened, read or written."""


class TraceFormatError(StoreError):
    """The file is not a packr-replay trace store this version can read."""


class UnfinishedStore(TraceFormatError):
    """``path`` holds no trace store yet: an empty file, or one whose creation has not
    finished. Another process may be creating it this very moment, so a caller that
    may write opens it with ``create=True``, which waits for that creation or finishes
    it; a read-only caller can only refuse it."""

    def __init__(self, path: object, message: str) -> None:
        self.path = path
        super().__init__(message)


class TraceNotFound(StoreError):
    """No trace with that id (or label) in the file."""

    def __init__(self, trace_id: object, path: object = None) -> None:
        self.trace_id = trace_id
        where = f" in {path}" if path is not None else ""
        super().__init__(f"no trace {trace_id!r}{where}")


class IntegrityError(StoreError):
    """The hash chain breaks at ``seq``: the event was altered after recording."""

    def __init__(self, trace_id: object, seq: int, message: str) -> None:
        self.trace_id = trace_id
        self.seq = seq
        super().__init__(message)


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped the run (``signal``: its number), raised at a safe
    point: never inside a wasmtime callback or a commit.

    A ``KeyboardInterrupt``, so code that catches ``Exception`` lets it through and
    pytest stops as on Ctrl-C. Whoever owns a trace being written seals it as
    ``incomplete`` (reason ``interrupted``) and may say what was kept in ``note``; the
    CLI prints that and exits ``128 + signal`` (130 for SIGINT, 143 for SIGTERM).
    """

    def __init__(self, signal: int, note: str = "") -> None:
        super().__init__(signal, note)
        self.signal = signal
        self.note = note

    @property
    def signal_name(self) -> str:
        import signal as signals

        try:
            return signals.Signals(self.signal).name
        except ValueError:
            return f"signal {self.signal}"

    @property
    def exit_code(self) -> int:
        return 128 + self.signal

    def __str__(self) -> str:
        text = f"interrupted by {self.signal_name}"
        return f"{text}: {self.note}" if self.note else text
