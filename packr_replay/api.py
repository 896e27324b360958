"""The three verbs for scripts: :func:`record`, :func:`replay` and :func:`diff`.

They compose the layers (runtime + recorder/replayer + trace store) for the common
case; everything they do is available piecewise from the subpackages.
"""

from __future__ import annotations

import contextlib
import os
import platform
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import wasmtime

from . import _interrupts
from ._version import __version__
from .abi import EncodedValue, Value
from .errors import (
    GuestRuntimeError,
    Interrupted,
    ReplayDivergence,
    StoreError,
    UnfinishedStore,
)
from .replay import (
    Chain,
    Recorder,
    RecordMode,
    Replayer,
    ReplayProgress,
    ReplayReport,
    TraceDiff,
    describe_event,
    diff_traces,
    fill_missing_imports,
    replay_source,
)
from .replay.caps import ReplayCaps, tighter
from .replay.composition import diff_compositions, replay_composition
from .replay.matchers import DEFAULT_MATCH_ON, Matcher
from .replay.recorder import CompositionRecorder
from .replay.session import AfterEnd, new_runtime
from .replay.settings import RunSettings, settings_meta
from .runtime import (
    CallInterceptor,
    CompositionBuilder,
    HostLinkerBuilder,
    Instance,
    Module,
    ReplyMode,
    Runtime,
)
from .runtime.engine import check_on_host_error
from .runtime.host import HostSpec
from .runtime.wasm import memory_count
from .storage import Trace, TraceInfo, TraceStatus, TraceStore, TraceWriter
from .storage.model import Event
from .storage.packages import Composition, composition_meta, composition_of

__all__ = [
    "CallResult",
    "RecordResult",
    "Session",
    "TraceSpec",
    "diff",
    "open_trace",
    "record",
    "record_composition",
    "record_run",
    "replay",
    "replayable_trace",
]

ModuleSource = Module | bytes | str | os.PathLike[str]
StoreSource = TraceStore | str | os.PathLike[str]
#: A trace: a ``Trace``, a store path (newest trace), or ``"path#ref"`` (id, uuid or label).
TraceSpec = Trace | str | os.PathLike[str] | tuple[StoreSource, int | str]


@dataclass(slots=True)
class CallResult:
    """One export call of a recording: its output or the error it ended with
    (``package``: the package called, recording a composition)."""

    function: str
    input: EncodedValue
    output: EncodedValue | None = None
    error: GuestRuntimeError | None = None
    package: str | None = None


@dataclass(slots=True)
class RecordResult:
    """What :func:`record_run` did: the trace written and every call's result."""

    trace_id: int
    store_path: Path
    results: list[CallResult] = field(default_factory=list)
    calls: int = 0
    events: int = 0
    bytes: int = 0
    duration_s: float = 0.0


def replayable_trace(store: TraceStore, label: str, *, strict: bool = False) -> TraceInfo | None:
    """The trace a record mode replays for ``label``: the newest *complete* one (a later
    recording that failed or was cut short does not hide it). With ``strict`` (mode
    ``none``, which never records) a label with no complete trace gives its newest
    trace of any status; otherwise ``None`` (record it)."""
    mine = [t for t in store.traces() if t.label == label]
    complete = [t for t in mine if t.status is TraceStatus.COMPLETE]
    if complete:
        return complete[-1]
    return mine[-1] if strict and mine else None


def recorded_trace(
    path: Path, label: str, *, strict: bool = False, can_record: bool = True
) -> TraceInfo | None:
    """:func:`replayable_trace` of the store at ``path`` (``None`` when there is no file).

    The file is read read-only, so replaying works on storage that cannot be written.
    A file another process is still creating (empty, or its creation unfinished: two
    pytest-xdist workers sharing a trace file) is, when ``can_record``, opened to write,
    which waits for that creation or finishes it; a caller that never records cannot
    finish it and gets :class:`UnfinishedStore`.
    """
    if not path.exists():
        return None
    try:
        with TraceStore(path, readonly=True) as probe:
            return replayable_trace(probe, label, strict=strict)
    except UnfinishedStore:
        if not can_record:
            raise
    with TraceStore(path, create=True) as store:
        return replayable_trace(store, label, strict=strict)


def _runtime_for(module: ModuleSource, runtime: Runtime | None) -> Runtime:
    if runtime is not None:
        return runtime
    return module.runtime if isinstance(module, Module) else Runtime()


def _module(source: ModuleSource, runtime: Runtime) -> Module:
    return source if isinstance(source, Module) else runtime.load_module(source)


@contextlib.contextmanager
def _store(source: StoreSource, *, create: bool = False, readonly: bool = False) -> Iterator[TraceStore]:
    if isinstance(source, TraceStore):
        yield source
        return
    store = TraceStore(source, create=create, readonly=readonly)
    try:
        yield store
    finally:
        store.close()


def _describe_host(host: HostSpec) -> str:
    return HostLinkerBuilder().apply(host).describe()


def record_run(
    module: ModuleSource,
    calls: Iterable[tuple[str, Value | EncodedValue | bytes]],
    *,
    host: HostSpec = None,
    store: StoreSource,
    label: str | None = None,
    state: Any = None,
    runtime: Runtime | None = None,
    reply: ReplyMode | str = ReplyMode.SCRATCH,
    meta: dict[str, Any] | None = None,
    on_result: Callable[[CallResult], None] | None = None,
    keep_results: bool = True,
    on_host_error: str | None = None,
    raw_imports: str = "record",
) -> RecordResult:
    """Run ``calls`` (``(export, value)`` pairs) against ``module`` with ``host``
    recorded into ``store``; export errors are recorded and the run continues.

    Each call's :class:`CallResult` goes to ``on_result`` as it completes, and into
    ``RecordResult.results`` unless ``keep_results`` is false: a long run given a
    generator of calls then records in flat memory. ``on_host_error`` (``"status"``,
    packr's -1, or ``"trap"``: stop the guest at a failing typed import) overrides the
    runtime's, and is recorded so a replay does the same. ``raw_imports="host"`` leaves
    raw imports (``func_raw``) out of the trace, as packr does not intercept them: a
    replay then calls a host's raw functions live (the default, ``"record"``, records
    them so a replay needs no host).

    SIGINT or SIGTERM (on the main thread) stops a running guest within a second,
    whatever its fuel: every event so far is committed, the trace is sealed
    ``incomplete`` with the reason ``interrupted``, and
    :class:`~packr_replay.errors.Interrupted` is raised, its ``note`` saying what was
    kept and how to replay it.
    """
    if raw_imports not in ("record", "host"):
        raise ValueError(f"raw_imports is {raw_imports!r}; expected 'record' or 'host'")
    rt = _runtime_for(module, runtime)
    mod = _module(module, rt)
    on_host_error = rt.on_host_error if on_host_error is None else on_host_error
    t0 = time.perf_counter()
    with _interrupts.catching(), _store(store, create=True) as ts:
        sha = ts.add_module(mod.wasm, mod.name, mod.metadata_bytes())
        run_meta = _run_meta(rt, reply, meta, on_host_error)
        if raw_imports == "host":
            run_meta["raw_imports"] = "host"
        with _interrupts.deferred():  # (a signal is raised once the recording is set up)
            writer = ts.begin_trace(sha, label=label, host=_describe_host(host), meta=run_meta)
            recorder = Recorder(writer, raw=raw_imports == "record")
        result = RecordResult(writer.trace_id, ts.path)
        with _sealed_if_stopped(recorder, writer, ts.path):
            instance = mod.instantiate(
                host, state=state, interceptor=recorder, reply=reply, on_host_error=on_host_error
            )
            for name, value in calls:
                enc = _encoded(value)
                entry = CallResult(name, enc)
                try:
                    entry.output = instance.call_raw(name, enc)
                except GuestRuntimeError as exc:
                    entry.error = exc
                result.calls += 1
                if keep_results:
                    result.results.append(entry)
                if on_result is not None:
                    on_result(entry)
            instance.close()
        _finish_recording(ts, writer, result)
    result.duration_s = time.perf_counter() - t0
    return result


def _seal(
    recorder: Recorder | CompositionRecorder | None,
    writer: TraceWriter,
    status: TraceStatus,
    reason: str | None = None,
) -> TraceInfo:
    """End a recording early: every collected event committed, then the trace sealed
    (no signal is raised in between)."""
    with _interrupts.deferred():
        try:
            if recorder is not None:
                recorder.drain()
        finally:
            info = writer.finish(status, reason)
    return info


@contextlib.contextmanager
def _sealed_if_stopped(
    recorder: Recorder | CompositionRecorder, writer: TraceWriter, path: Path
) -> Iterator[None]:
    """A recording that stops early is sealed with what it collected: ``incomplete``
    (reason ``interrupted``) on SIGINT/SIGTERM, the note saying what was kept and how to
    replay it; ``failed`` on any other error."""
    try:
        yield
    except Interrupted as exc:
        info = _seal(recorder, writer, TraceStatus.INCOMPLETE, "interrupted")
        exc.note = _kept_note(info, path)
        raise
    except BaseException:
        _seal(recorder, writer, TraceStatus.FAILED)
        raise


def _finish_recording(ts: TraceStore, writer: TraceWriter, result: RecordResult) -> None:
    info = writer.finish(TraceStatus.COMPLETE)
    result.events = info.event_count
    result.bytes = _trace_bytes(ts.trace(info.id))


@contextlib.contextmanager
def _saved_if_stopped(
    writer: TraceWriter | None,
    into: TraceStore | None,
    recorder: CompositionRecorder | None = None,
) -> Iterator[None]:
    """A replay (recorded into ``writer``, if saved) that stops early: on SIGINT/SIGTERM
    the run so far is sealed ``incomplete`` (reason ``interrupted``) and the note says
    where it is, or that nothing was written; on any other error it is sealed ``failed``."""
    try:
        yield
    except Interrupted as exc:
        if writer is not None:
            saved = _seal(recorder, writer, TraceStatus.INCOMPLETE, "interrupted")
            exc.note += f"; the replay run so far is trace {saved.id} in {into_path(into)}"
        else:
            exc.note += "; nothing was written"
        raise
    except BaseException:
        if writer is not None:
            _seal(recorder, writer, TraceStatus.FAILED)
        raise


def _kept_note(info: TraceInfo, path: Path) -> str:
    """What an interrupted recording kept, and how to replay it."""
    return (
        f"kept {info.event_count:,} event(s) of trace {info.id} in {path} (incomplete, "
        f"reason: interrupted); replay them with: packr-replay play {path}#{info.id}"
    )


def _run_meta(
    rt: Runtime,
    reply: ReplyMode | str,
    extra: dict[str, Any] | None,
    on_host_error: str | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "python": platform.python_version(),
        "wasmtime": getattr(wasmtime, "__version__", "50"),
        "platform": platform.platform(terse=True),
    }
    meta.update(extra or {})
    meta = {k: v for k, v in meta.items() if v is not None}
    settings = settings_meta(rt, reply)  # limits stay, even None (unlimited)
    if on_host_error is not None:
        settings["on_host_error"] = check_on_host_error(on_host_error)
    return {**meta, **settings}


def record_composition(
    composition: CompositionBuilder,
    calls: Iterable[tuple[str, str, Value | EncodedValue | bytes]],
    *,
    store: StoreSource,
    label: str | None = None,
    state: Any = None,
    reply: ReplyMode | str = ReplyMode.SCRATCH,
    meta: dict[str, Any] | None = None,
    on_result: Callable[[CallResult], None] | None = None,
) -> RecordResult:
    """Build ``composition`` and run ``calls`` (``(package, export, value)``) with the
    whole composition recorded into one trace of ``store``; export errors are recorded
    and the run continues.

    Every package's module is stored with the trace, and every event names its
    package: a wired call is an import of the caller and an export of the callee.
    Replay any one package alone with ``replay(..., package=NAME)``.
    """
    rt = composition.runtime
    t0 = time.perf_counter()
    with _interrupts.catching(), _store(store, create=True) as ts:
        shas = {
            name: ts.add_module(mod.wasm, mod.name, mod.metadata_bytes())
            for name, mod in composition.packages.items()
        }
        run_meta = _run_meta(rt, reply, meta)
        run_meta["composition"] = composition_meta(
            shas.items(),
            [(w.target, w.interface, w.function, w.source, w.source_function)
             for w in composition.wires],
        )  # fmt: skip
        host = f"composition of {', '.join(shas)}"
        with _interrupts.deferred():
            writer = ts.begin_trace(None, label=label, host=host, meta=run_meta)
            recorder = CompositionRecorder(writer)
        result = RecordResult(writer.trace_id, ts.path)
        with (
            _sealed_if_stopped(recorder, writer, ts.path),
            composition.build(interceptors=recorder.package, state=state, reply=reply) as built,
        ):
            for package, name, value in calls:
                enc = _encoded(value)
                entry = CallResult(name, enc, package=package)
                try:
                    entry.output = built.call_raw(package, name, enc)
                except GuestRuntimeError as exc:
                    entry.error = exc
                result.results.append(entry)
                if on_result is not None:
                    on_result(entry)
        _finish_recording(ts, writer, result)
    result.duration_s = time.perf_counter() - t0
    return result


def _encoded(value: Value | EncodedValue | bytes) -> EncodedValue:
    if isinstance(value, EncodedValue):
        return value
    if isinstance(value, (bytes, bytearray)):
        return EncodedValue(bytes(value))
    return EncodedValue.of(value)


def _trace_bytes(trace: Trace) -> int:
    total = 0
    for e in trace.events():
        total += len(e.input or b"") + len(e.output or b"")
    return total


def record(
    module: ModuleSource,
    calls: Iterable[tuple[str, Value | EncodedValue | bytes]],
    *,
    host: HostSpec = None,
    store: StoreSource,
    label: str | None = None,
    **kwargs: Any,
) -> int:
    """Record a run into ``store`` and return the new trace's id (see :func:`record_run`)."""
    return record_run(module, calls, host=host, store=store, label=label, **kwargs).trace_id


def _split_spec(spec: str | os.PathLike[str]) -> tuple[str, str | None]:
    text = os.fspath(spec)
    if "#" in text and not Path(text).exists():
        path, _, ref = text.rpartition("#")
        return path, ref
    return text, None


@contextlib.contextmanager
def open_trace(spec: TraceSpec, *, readonly: bool = True) -> Iterator[Trace]:
    """Open a trace from a ``Trace``, a path (its newest trace), ``"path#ref"``, or
    ``(store, ref)``; the store is closed on exit."""
    if isinstance(spec, Trace):
        yield spec
        return
    if isinstance(spec, tuple):
        source, trace_ref = spec
        with _store(source, readonly=readonly) as ts:
            yield ts.trace(trace_ref)
        return
    path, ref_text = _split_spec(spec)
    with _store(path, readonly=readonly) as ts:
        if ref_text is None:
            traces = ts.traces()
            if not traces:
                raise StoreError(f"{path} holds no traces")
            yield ts.trace(traces[-1].id)
        else:
            ref: int | str = int(ref_text) if ref_text.isdigit() else ref_text
            yield ts.trace(ref)


def replay(
    store: StoreSource,
    trace: int | str | None = None,
    *,
    module: ModuleSource | None = None,
    host: HostSpec = None,
    match_on: Sequence[str | Matcher] = DEFAULT_MATCH_ON,
    until: int | None = None,
    save: bool = False,
    save_to: StoreSource | None = None,
    debug_info: bool = False,
    on_event: Callable[[Event], None] | None = None,
    progress: ReplayProgress | None = None,
    caps: ReplayCaps | None = None,
    package: str | None = None,
) -> ReplayReport:
    """Replay a trace offline; ``report.reproduced`` says whether the run was reproduced.

    ``progress`` (a :class:`ReplayProgress`) can be sampled while the replay runs;
    ``on_event`` sees every event, which costs the native call path its speed.

    ``module`` replays a different build (regression testing): a module hash mismatch
    is warned about and replay continues. Without it the stored module runs, and one
    whose bytes no longer match their SHA-256 is refused (``IntegrityError``).
    ``save`` records the replay as a trace of its own (``replay_of`` the original;
    status ``diverged`` when it diverged) in the same file; ``save_to`` records it into
    another store instead, and the trace's own file is only read.
    ``caps`` are the limits the replay runs under (default ``ReplayCaps()``: 60 s,
    1 GiB, no fuel cap of its own); the trace's recorded settings only tighten them,
    and a run they cut ends with ``report.capped`` set.

    A composition's trace replays one package alone (``package``; ``module`` is then a
    new build of that package), or every package alone, one after another: the report
    is then a :class:`~packr_replay.replay.composition.CompositionReplayReport`.
    """
    if save and save_to is not None:
        raise ValueError("give save=True (into the trace's own file) or save_to=, not both")
    with _interrupts.catching(), _store(store, readonly=not save) as ts:
        if trace is None:
            traces = ts.traces()
            if not traces:
                raise StoreError(f"{ts.path} holds no traces")
            trace = traces[-1].id
        source = ts.trace(trace)
        info = source.info
        composition = composition_of(info)
        if composition is not None:
            return _replay_composition(
                ts, source, composition, package=package, module=module, host=host,
                match_on=match_on, until=until, save=save, save_to=save_to,
                debug_info=debug_info, on_event=on_event, progress=progress, caps=caps,
            )  # fmt: skip
        if package is not None:
            raise StoreError(
                f"trace {info.id} is not a composition's trace; it has no package {package!r}"
            )
        mod = _replay_module(ts, info, info.module_sha256, module, debug_info)
        with contextlib.ExitStack() as stack:
            into = ts if save else None
            if save_to is not None:
                into = stack.enter_context(_store(save_to, create=True))
            writer = None
            if into is not None:
                sha = into.add_module(mod.wasm, mod.name, mod.metadata_bytes())
                writer = into.begin_trace(
                    sha,
                    label=f"replay of {info.label or info.id}",
                    host="replay",
                    meta={**info.meta, "replay_tool_version": __version__},
                    replay_of=info.id if into is ts else None,
                    replay_of_uuid=info.uuid,
                )
            with _saved_if_stopped(writer, into):
                report = replay_source(
                    source,
                    mod,
                    host=host,
                    match_on=match_on,
                    until=until,
                    on_event=on_event,
                    progress=progress,
                    record_into=writer,
                    recorded_module_sha=info.module_sha256,
                    caps=caps,
                )
            _finish_replay(writer, report)
        return report


def _replay_module(
    ts: TraceStore,
    info: TraceInfo,
    sha: str | None,
    module: ModuleSource | None,
    debug_info: bool,
    whose: str = "",
) -> Module:
    """What a replay runs: ``module`` (a new build) or the stored module ``sha`` (checked
    against its SHA-256), on a runtime with the trace's settings."""
    wasm, name = None, None
    if module is None:
        if sha is None:
            raise StoreError(f"trace {info.id}{whose} has no stored module; pass module=")
        name = ts.module_info(sha).name
        wasm = ts.module_bytes(sha)  # checked against its SHA-256
    rt = new_runtime(
        info.meta,
        trace=f"trace {info.id}",
        debug_info=debug_info,
        multi_memory=wasm is not None and memory_count(wasm) > 1,
    )
    if wasm is None:
        assert module is not None
        return _module(module, rt)
    return rt.load_module(wasm, name=name)


def _finish_replay(writer: TraceWriter | None, report: ReplayReport) -> None:
    """Seal a saved replay run: ``complete`` when it reproduced, else ``diverged``."""
    if writer is not None:
        writer.finish(TraceStatus.COMPLETE if report.reproduced else TraceStatus.DIVERGED)
        report.saved_trace = writer.trace_id


def _replay_composition(
    ts: TraceStore,
    source: Trace,
    composition: Composition,
    *,
    package: str | None,
    module: ModuleSource | None,
    host: HostSpec,
    match_on: Sequence[str | Matcher],
    until: int | None,
    save: bool,
    save_to: StoreSource | None,
    debug_info: bool,
    on_event: Callable[[Event], None] | None,
    progress: ReplayProgress | None,
    caps: ReplayCaps | None,
) -> ReplayReport:
    """``replay`` of a composition's trace: the packages asked for, each alone, each
    under the trace's settings and the replay's caps, as a one-guest trace is."""
    info = source.info
    if package is not None and composition.package(package) is None:
        raise StoreError(
            f"trace {info.id} has no package {package!r} (it has {', '.join(composition.names)})"
        )
    if module is not None and package is None:
        raise StoreError(
            f"trace {info.id} is a composition's trace: a new build replays one package "
            f"(pass package=, one of {', '.join(composition.names)})"
        )
    names = composition.names if package is None else [package]
    modules: dict[str, Module] = {}
    for name in names:
        sha = composition.package(name).module_sha256  # type: ignore[union-attr]
        modules[name] = _replay_module(ts, info, sha, module, debug_info, f": package {name!r}")
    with contextlib.ExitStack() as stack:
        into = ts if save else None
        if save_to is not None:
            into = stack.enter_context(_store(save_to, create=True))
        writer = None
        recorder = None
        if into is not None:
            shas = {
                n: into.add_module(m.wasm, m.name, m.metadata_bytes()) for n, m in modules.items()
            }
            meta = {
                **info.meta,
                "composition": composition_meta(shas.items(), composition.wires),
                "replay_tool_version": __version__,
            }
            writer = into.begin_trace(
                None,
                label=f"replay of {info.label or info.id}",
                host="replay",
                meta=meta,
                replay_of=info.id if into is ts else None,
                replay_of_uuid=info.uuid,
            )
            recorder = CompositionRecorder(writer)
        with _saved_if_stopped(writer, into, recorder):
            report = replay_composition(
                source, modules, packages=names, host=host, match_on=match_on, until=until,
                on_event=on_event, recorder=recorder, progress=progress, caps=caps,
            )  # fmt: skip
        _finish_replay(writer, report)
    if package is not None:
        single = report.packages[package]
        single.saved_trace = report.saved_trace
        return single
    return report


def into_path(store: TraceStore | None) -> str:
    return "" if store is None else str(store.path)


def diff(a: TraceSpec, b: TraceSpec, **kwargs: Any) -> TraceDiff:
    """Compare two traces (see :func:`packr_replay.replay.diff_traces`).

    Two compositions' traces are compared package by package
    (:func:`~packr_replay.replay.composition.diff_compositions`; ``packages=`` picks
    some)."""
    with open_trace(a) as ta, open_trace(b) as tb:
        if "packages" in kwargs:
            return diff_compositions(ta, tb, **kwargs)
        return diff_traces(ta, tb, **kwargs)


class Session:
    """A guest whose typed imports are recorded or replayed according to a
    :class:`RecordMode` — the engine behind the pytest plugin and ``record --mode``.

    ``label`` names the trace in ``store``; the one replayed is the newest complete
    trace with that label (:func:`replayable_trace`). In ``none`` mode the trace must
    exist and every call is served from it; ``once`` replays an existing complete trace
    or records a new one; ``new_episodes`` replays the recorded prefix, then runs live,
    writing the whole run to a new trace under the same label; ``all`` always records
    anew.

    Use as a context manager; :meth:`close` seals the trace being written and, when
    replaying strictly, fails if the run made fewer calls than were recorded.
    A replaying session runs under ``caps`` (default ``ReplayCaps()``; ``time`` counts
    from instantiation): the runtime's own settings only tighten them. Replaying an
    incomplete trace, a guest still running past its last event is stopped after
    ``caps.after_end``: the call raises :class:`TraceExhausted` (the trace ends there).
    """

    def __init__(
        self,
        module: ModuleSource,
        *,
        store: str | os.PathLike[str],
        label: str,
        mode: RecordMode | str = RecordMode.ONCE,
        host: HostSpec = None,
        state: Any = None,
        runtime: Runtime | None = None,
        match_on: Sequence[str | Matcher] = DEFAULT_MATCH_ON,
        reply: ReplyMode | str = ReplyMode.SCRATCH,
        allow_unused: bool = False,
        caps: ReplayCaps | None = None,
    ) -> None:
        self.mode = RecordMode(mode)
        self.label = label
        self.allow_unused = allow_unused
        path = Path(store)
        strict = self.mode is RecordMode.NONE
        chosen = recorded_trace(path, label, strict=strict, can_record=not strict)
        exists = chosen is not None
        if self.mode is RecordMode.NONE and not exists:
            raise StoreError(
                f"no trace labelled {label!r} in {path}; record it first "
                "(record mode 'once' or 'all')"
            )
        self.replaying = exists and self.mode in (
            RecordMode.NONE, RecordMode.ONCE, RecordMode.NEW_EPISODES
        )
        self.recording = self.mode in (RecordMode.ALL, RecordMode.NEW_EPISODES) or not exists
        # threads: an async call (call_with_value_async) replays from a worker thread.
        # A replay that records nothing only reads, so it works on read-only storage
        # (traces committed in a checkout CI cannot write to).
        self.store = (
            TraceStore(path, create=True, threads=True)
            if self.recording
            else TraceStore(path, readonly=True, threads=True)
        )
        self.runtime = _runtime_for(module, runtime)
        self.module = _module(module, self.runtime)
        self.replayer: Replayer | None = None
        self.writer: TraceWriter | None = None
        self.recorder: Recorder | None = None
        self._closed = False
        on_host_error = self.runtime.on_host_error
        interceptors: list[CallInterceptor] = []
        try:
            if self.replaying:
                assert chosen is not None
                source = self.store.trace(chosen.id)
                meta = source.info.meta or {}
                self.replayer = Replayer(
                    source, match_on=match_on, live_after_end=self.mode is RecordMode.NEW_EPISODES
                )
                interceptors.append(self.replayer)
                recorded = RunSettings.from_meta(meta, f"trace {source.info.id}")
                reply, on_host_error = recorded.reply, recorded.on_host_error
            if self.recording:
                sha = self.store.add_module(
                    self.module.wasm, self.module.name, self.module.metadata_bytes()
                )
                self.writer = self.store.begin_trace(
                    sha,
                    label=label,
                    host=_describe_host(host),
                    meta={
                        **_run_meta(self.runtime, reply, None, on_host_error),
                        "mode": str(self.mode),
                    },
                )
                self.recorder = Recorder(self.writer)
                interceptors.append(self.recorder)
            interceptor = interceptors[0] if len(interceptors) == 1 else Chain(*interceptors)
            limits: dict[str, Any] = {}
            caps = ReplayCaps() if caps is None else caps
            if self.replaying:  # a recorded trace runs under the replayer's caps
                rt = self.runtime
                limits = {
                    "fuel": tighter(rt.fuel, caps.fuel),
                    "memory_limit": tighter(rt.memory_limit, caps.memory),
                    "deadline": None if caps.time is None else time.monotonic() + caps.time,
                }
            self.instance: Instance = self.module.instantiate(
                fill_missing_imports(self.module, host) if self.replaying else host,
                state=state,
                interceptor=interceptor,
                reply=reply,
                on_host_error=on_host_error,
                **limits,
            )
            if self.replayer is not None:
                self.replayer.bind(self.instance)
                # An incomplete trace ends where it was cut: a guest running on past its
                # last event is stopped after the grace (new_episodes goes live there).
                status = self.replayer.source.info.status
                if (
                    caps.after_end is not None
                    and self.mode is not RecordMode.NEW_EPISODES
                    and status in (TraceStatus.INCOMPLETE, TraceStatus.RECORDING)
                ):
                    self.instance.deadline_hook = AfterEnd(
                        self.replayer, caps.after_end, limits.get("deadline")
                    )
        except BaseException as exc:
            self._abort(exc)
            raise

    def call(self, export: str, value: Value | EncodedValue) -> Value:
        """Call an export through the recording/replaying instance."""
        return self.instance.call_with_value(export, value)

    def _abort(self, error: object = None) -> None:
        """The run stopped on ``error``: an interrupted recording is sealed
        ``incomplete`` (reason ``interrupted``) with every event so far, any other
        ``failed``."""
        if self.writer is not None and not self.writer.closed:
            assert self.recorder is not None
            if isinstance(error, Interrupted):
                info = _seal(self.recorder, self.writer, TraceStatus.INCOMPLETE, "interrupted")
                if not error.note:
                    error.note = _kept_note(info, self.store.path)
            else:
                _seal(self.recorder, self.writer, TraceStatus.FAILED)
        self.store.close()
        self._closed = True

    def close(self) -> None:
        """Seal the trace; in strict replay, fail if recorded calls were left unused."""
        if self._closed:
            return
        leftover = None
        if self.replayer is not None and not self.replayer.live:
            leftover = self.replayer.remaining()
        try:
            if self.writer is not None:
                assert self.recorder is not None
                _seal(self.recorder, self.writer, TraceStatus.COMPLETE)
        finally:
            self.instance.close()
            self.store.close()
            self._closed = True
        if leftover is not None and not self.allow_unused:
            raise ReplayDivergence(
                f"the run made fewer calls than trace {self.label!r} recorded; the first "
                f"unused recorded event is {describe_event(leftover)}",
                seq=leftover.seq,
                expected=leftover,
            )

    def __enter__(self) -> Session:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            self._abort(exc)
            self.instance.close()
            return
        self.close()
