"""Recording and replaying whole runs: record modes, sessions, and replay reports.

A :class:`Session` instantiates a guest with the right interceptors for its
:class:`RecordMode` and owns the trace(s) it writes. :func:`replay_trace` re-runs every
export call of a trace with imports served from it and reports whether the run was
reproduced or where it first diverged.
"""

from __future__ import annotations

import functools
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from .._units import human_size
from ..abi import EncodedValue, Value
from ..errors import (
    GuestRuntimeError,
    GuestTimeout,
    HostFunctionError,
    Interrupted,
    ReplayDivergence,
    ReplayError,
    TraceExhausted,
)
from ..runtime import (
    CallInterceptor,
    ExportCall,
    HostLinkerBuilder,
    ImportCall,
    ImportReply,
    Module,
    RawCall,
    RawReply,
    Runtime,
)
from ..runtime.host import HostSpec
from ..storage.model import Event, TraceInfo, TraceStatus
from .caps import CapHit, ReplayCaps, tighter
from .matchers import DEFAULT_MATCH_ON, Matcher
from .recorder import Recorder
from .replayer import RecordedFailure, Replayer, ReplayStopped, describe_event
from .settings import RunSettings

if TYPE_CHECKING:
    from ..storage.protocols import EventSink, EventSource

__all__ = [
    "Chain",
    "ExportReplay",
    "RecordMode",
    "ReplayReport",
    "fill_missing_imports",
    "replay_source",
]


class RecordMode(StrEnum):
    """When to record and when to replay (vcrpy's modes).

    * ``none``: replay only; a missing trace or an unrecorded call is an error.
    * ``once``: replay if a trace exists, otherwise record one.
    * ``new_episodes``: replay the recorded prefix, then continue live and record the
      rest (into a new trace that holds the whole run).
    * ``all``: always run live and record a new trace.
    """

    NONE = "none"
    ONCE = "once"
    NEW_EPISODES = "new_episodes"
    ALL = "all"


class Chain(CallInterceptor):
    """Several interceptors as one: the first non-None ``before_*`` answer wins, and
    every interceptor sees every completed call."""

    def __init__(self, *interceptors: CallInterceptor) -> None:
        self.interceptors = interceptors
        self.inline = all(i.inline for i in interceptors)  # type: ignore[misc]
        self.decode_inputs = any(i.decode_inputs for i in interceptors)  # type: ignore[misc]
        servers = [i.raw_server for i in interceptors if i.raw_server is not None]
        observers = [i.raw_observer for i in interceptors if i.raw_observer is not None]
        if servers:
            self.raw_server = functools.partial(_first_reply, servers)
        if observers:
            self.raw_observer = functools.partial(_observe_all, observers)

    async def before_import(
        self, interface: str, function: str, input: EncodedValue
    ) -> Value | EncodedValue | ImportReply | None:
        for i in self.interceptors:
            reply = await i.before_import(interface, function, input)
            if reply is not None:
                return reply
        return None

    async def before_export(self, function: str, input: EncodedValue) -> Value | EncodedValue | None:
        for i in self.interceptors:
            reply = await i.before_export(function, input)
            if reply is not None:
                return reply
        return None

    async def import_completed(self, call: ImportCall) -> None:
        for i in self.interceptors:
            await i.import_completed(call)

    async def export_completed(self, call: ExportCall) -> None:
        for i in self.interceptors:
            await i.export_completed(call)

    def import_unserved(
        self, interface: str, function: str, input: bytes | None, error: HostFunctionError
    ) -> None:
        for i in self.interceptors:
            i.import_unserved(interface, function, input, error)


def _first_reply(
    servers: list[Callable[[RawCall], RawReply | None]], call: RawCall
) -> RawReply | None:
    for server in servers:
        reply = server(call)
        if reply is not None:
            return reply
    return None


def _observe_all(observers: list[Callable[[RawCall], None]], call: RawCall) -> None:
    for observer in observers:
        observer(call)


# -------------------------------------------------------------- replay hosting


def fill_missing_imports(module: Module, host: HostSpec = None) -> Callable[[HostLinkerBuilder], None]:
    """A host that provides every import the replayer will short-circuit.

    Typed imports (packr's 4-i32 signature) that ``host`` does not define get a stub
    that is never called during replay; so do raw imports, which a trace from format 5
    on serves too. In an older trace raw imports were not recorded: they must come
    from ``host`` (their stub traps with an explanation).
    """

    def build(builder: HostLinkerBuilder) -> None:
        builder.apply(host)
        for imp in module.imports:
            if imp.kind != "func" or (imp.module, imp.name) in builder.functions:
                continue
            if imp.module == "pack:alloc":
                continue  # the runtime's default allocator
            iface = builder.interface(imp.module)
            if imp.signature == "(i32, i32, i32, i32) -> (i32)":
                iface.func_typed(imp.name, _offline_stub(imp.qualified))
            else:
                params, results = _parse_sig(imp.signature)
                iface.func_raw(imp.name, _raw_stub(imp.qualified), params=params, results=results)

    return build


def _offline_stub(name: str) -> Callable[..., Any]:
    def stub(ctx: Any, value: Value) -> Value:
        raise ReplayError(f"{name} was called live during replay; it should have been served from the trace")

    return stub


def _raw_stub(name: str) -> Callable[..., Any]:
    def stub(ctx: Any, *args: Any) -> Any:
        raise ReplayError(
            f"raw import {name} is not recorded (packr does not intercept raw imports); "
            "provide it with a host (--host) to replay this guest"
        )

    return stub


def _parse_sig(sig: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    left, _, right = sig.partition(" -> ")
    params = tuple(p.strip() for p in left.strip("()").split(",") if p.strip())
    results = tuple(r.strip() for r in right.strip("()").split(",") if r.strip())
    return params, results


# ---------------------------------------------------------------- the report


@dataclass(slots=True)
class ExportReplay:
    """One re-run export call: what was recorded and what replay produced."""

    seq: int
    call: int
    function: str
    reproduced: bool
    output: EncodedValue | None = None
    error: str | None = None


@dataclass(slots=True)
class ReplayReport:
    """The result of replaying a trace.

    ``reproduced`` is true when every export call ran to its recorded end with every
    import matching. Otherwise ``divergence`` explains the first difference,
    ``stopped`` says where an ``until`` limit halted replay, or ``capped`` which of the
    replayer's caps cut the run (it did not reproduce within them).
    """

    trace: TraceInfo
    reproduced: bool
    exports: list[ExportReplay] = field(default_factory=list)
    divergence: ReplayDivergence | None = None
    stopped: ReplayStopped | None = None
    events_replayed: int = 0
    events_total: int = 0
    module_mismatch: str | None = None
    redacted_served: list[int] = field(default_factory=list)
    capped: CapHit | None = None  # the run was cut by one of the replayer's caps
    trace_incomplete: bool = False
    ended_early: bool = False
    #: The recorded run failed where the replay stopped (a raw import's host function
    #: raised; the recording ends there): reproduced up to that failure.
    recorded_failure: str | None = None
    #: Raw import calls served whose host function had raw memory access when recorded
    #: (writes made through it are not in the trace).
    raw_access_served: list[int] = field(default_factory=list)
    duration_s: float = 0.0
    saved_trace: int | None = None  # the id of the replay run's own trace (``save=True``)
    #: The export the guest was still running in when the replay of an incomplete
    #: trace had used its last event; it was stopped after ``ReplayCaps.after_end``
    #: seconds (``after_end_s``), and the run counts as reproduced up to the cut
    #: (``ended_early``), not as cut by a cap.
    stopped_after_end: str | None = None
    after_end_s: float | None = None

    def __bool__(self) -> bool:
        return self.reproduced

    def summary(self) -> str:
        t = self.trace
        head = f"trace {t.id}{f' ({t.label})' if t.label else ''}: "
        if self.stopped is not None:
            return head + f"stopped as asked: {self.stopped}"
        if self.capped is not None:
            return head + str(self.capped)
        if self.reproduced:
            text = (
                f"reproduced: {len(self.exports)} export call(s), "
                f"{self.events_replayed} event(s) replayed"
            )
            if self.recorded_failure is not None:
                text += f"; then, as recorded, {self.recorded_failure}"
            elif self.ended_early:
                text += (
                    "; the trace ended there (its recorder stopped before finishing), "
                    "so everything up to the cut was reproduced"
                )
            if self.stopped_after_end is not None:
                text += f"; {self.after_end_note()}"
            return head + text
        assert self.divergence is not None
        return head + str(self.divergence)


    def after_end_note(self) -> str:
        """What happened to a guest still running past the end of the trace."""
        return (
            f"the guest was still running in export '{self.stopped_after_end}' when the "
            f"trace ended, and was stopped {self.after_end_s:g} s later (nothing after its "
            "last event can be checked; give it longer with --max-time-after-end, or "
            "ReplayCaps.after_end)"
        )


class ReplayProgress:
    """How far a running replay has got, to sample from another thread (a progress
    bar): :attr:`events` replayed so far. Given as ``progress=`` it costs nothing per
    event, unlike an ``on_event`` callback, which takes every call through Python."""

    __slots__ = ("_replayer",)

    def __init__(self) -> None:
        self._replayer: Replayer | None = None

    @property
    def events(self) -> int:
        replayer = self._replayer
        return 0 if replayer is None else replayer.replayed


def replay_source(
    source: EventSource,
    module: Module,
    *,
    host: HostSpec = None,
    match_on: Iterable[str | Matcher] = DEFAULT_MATCH_ON,
    until: int | None = None,
    on_event: Callable[[Event], None] | None = None,
    record_into: EventSink | None = None,
    recorded_module_sha: str | None = None,
    recorder: CallInterceptor | None = None,
    progress: ReplayProgress | None = None,
    caps: ReplayCaps | None = None,
) -> ReplayReport:
    """Re-run every export call of ``source`` against ``module`` with imports replayed.

    ``record_into``: also record the replay run (to save it as a trace of its own);
    ``recorder``: the interceptor recording it, when it is not a plain ``Recorder``
    (one package's, recording a composition's replay).
    ``progress``: filled in as the replay goes (see :class:`ReplayProgress`).
    ``caps``: the limits the replay runs under (default ``ReplayCaps()``); the trace's
    recorded settings only tighten them, and a run they cut ends with ``report.capped``.
    """
    info = source.info
    t0 = time.perf_counter()
    caps = ReplayCaps() if caps is None else caps
    deadline = None if caps.time is None else time.monotonic() + caps.time
    meta = info.meta or {}
    mismatch = None
    expected_sha = recorded_module_sha or info.module_sha256
    if expected_sha is not None and expected_sha != module.sha256:
        mismatch = (
            f"module {module.name} (sha256 {module.sha256[:12]}) differs from the recorded "
            f"module (sha256 {expected_sha[:12]}); replaying anyway"
        )
        warnings.warn(mismatch, stacklevel=2)
    recorded = RunSettings.from_meta(meta, f"trace {info.id}", RunSettings.of_runtime(module.runtime))
    settings = replace(
        recorded,
        fuel=tighter(recorded.fuel, caps.fuel),
        memory_limit=tighter(recorded.memory_limit, caps.memory),
    )
    guard = _CapGuard(caps, recorded, settings, deadline, module)
    replayer = Replayer(
        source, match_on=match_on, until=until, redacted=settings.redacted, on_event=on_event
    )
    if progress is not None:
        progress._replayer = replayer
    interceptor: CallInterceptor = replayer
    if recorder is None and record_into is not None:
        recorder = Recorder(record_into)
    if recorder is not None:
        interceptor = Chain(replayer, recorder)
    report = ReplayReport(
        info,
        reproduced=False,
        events_total=len(source),
        module_mismatch=mismatch,
        trace_incomplete=info.status in (TraceStatus.INCOMPLETE, TraceStatus.RECORDING),
    )
    try:
        instance = module.instantiate(
            fill_missing_imports(module, host),
            interceptor=interceptor,
            reply=settings.reply,
            fuel=settings.fuel,
            timeout=settings.timeout,
            memory_limit=settings.memory_limit,
            scratch_capacity=settings.scratch_capacity,
            deadline=deadline,
            on_host_error=settings.on_host_error,
        )
    except ReplayDivergence as div:
        report.capped = guard.hit(div, None, "the start function")
        if report.capped is None:
            report.divergence = div
        return _finish(report, replayer, t0)
    except ReplayStopped as stop:
        report.stopped = stop
        return _finish(report, replayer, t0)
    except GuestRuntimeError as exc:
        report.capped = guard.hit(exc, None, "the start function")
        if report.capped is None:
            raise
        return _finish(report, replayer, t0)
    replayer.bind(instance)
    after_end = None
    if report.trace_incomplete and caps.after_end is not None:
        after_end = instance.deadline_hook = AfterEnd(replayer, caps.after_end, deadline)
    where = "the replay"
    try:
        while True:
            event = replayer.next_export()
            if event is None:
                break
            where = f"export '{event.function}' (event #{event.seq})"
            if guard.out_of_time():
                report.capped = guard.time_hit(where)
                break
            if not instance.has_export(event.function):
                raise _missing_export(module, event, other_build=mismatch is not None)
            entry = ExportReplay(event.seq, event.call, event.function, reproduced=False)
            report.exports.append(entry)
            try:
                entry.output = instance.call_raw(event.function, event.input or b"")
            except GuestRuntimeError as exc:
                entry.error = str(exc)  # recorded too: export_completed compared them
                if after_end is not None and after_end.stopped(exc, report):
                    entry.error = None  # not the guest's failure: stopped past the end
                    break
                cut = guard.hit(exc, instance, where)
                if cut is not None and report.trace_incomplete and replayer.remaining() is None:
                    # Every recorded event was reproduced; the recording stopped while
                    # the guest ran on (interrupted while it spun), and so did a cap.
                    report.ended_early = True
                    break
                if cut is not None:
                    report.capped = cut
                    break
            entry.reproduced = True
        leftover = replayer.remaining()
        if leftover is not None:
            report.divergence = ReplayDivergence(
                f"replay ended with recorded events left over, starting at {describe_event(leftover)}",
                seq=leftover.seq,
                expected=leftover,
            )
        elif replayer._stack and report.trace_incomplete:
            report.ended_early = True
    except ReplayStopped as stop:
        report.stopped = stop
    except Interrupted as exc:
        exc.note = (
            f"replayed {replayer.replayed:,} of {report.events_total:,} event(s) of "
            f"trace {info.id}"
        )
        raise
    except RecordedFailure as failure:
        leftover = replayer.remaining()
        if leftover is None:
            report.recorded_failure = str(failure).split(": ", 1)[-1]
            report.ended_early = True
        else:
            report.divergence = ReplayDivergence(
                f"replay ended at event #{failure.seq}, where the recorded run failed "
                f"({failure.error}), but the trace goes on at {describe_event(leftover)}",
                seq=leftover.seq,
                expected=leftover,
            )
    except TraceExhausted as exh:
        if after_end is not None and after_end.stopped(exh, report):
            pass
        elif report.trace_incomplete and exh.seq is None:
            report.ended_early = True  # the recorder died here: reproduced up to the cut
        else:
            report.capped = guard.hit(exh, instance, where)
            if report.capped is None:
                report.divergence = exh
    except ReplayDivergence as div:
        if after_end is None or not after_end.stopped(div, report):
            report.capped = guard.hit(div, instance, where)
            if report.capped is None:
                report.divergence = div
    finally:
        instance.close()
    if report.capped is not None and report.exports:
        report.exports[-1].reproduced = False
    if report.divergence is None and report.stopped is None and report.capped is None:
        report.reproduced = True
    return _finish(report, replayer, t0)


def _missing_export(module: Module, event: Event, *, other_build: bool) -> ReplayDivergence:
    """The trace calls an export the module lacks: say so, not "calls left over"."""
    which = "the new build" if other_build else f"module {module.name}"
    exports = sorted(
        e.name for e in module.exports
        if e.kind == "func" and not e.name.startswith("__") and e.name != "_start"
    )  # fmt: skip
    return ReplayDivergence(
        f"replay diverged at event #{event.seq}: {which} has no export {event.function!r} "
        f"(the trace calls it; {module.name} exports: {', '.join(exports) or 'no functions'})",
        seq=event.seq,
        expected=event,
    )


class _CapGuard:
    """Tells a run cut by the replayer's caps from one that diverged on its own.

    A cap is to blame when the guest ran out of what the cap allowed and the cap, not
    the recorded setting, was the tighter: a deadline trap (only caps set one), a fuel
    trap under capped fuel, or a module whose memory the capped limit refused. A guest
    whose ``memory.grow`` fails goes wrong some way of its own, and wasmtime does not
    say that a growth failed, so a run that went wrong with its memory past half a
    capped limit is counted as cut by it (the message says how full it was).
    """

    def __init__(
        self,
        caps: ReplayCaps,
        recorded: RunSettings,
        settings: RunSettings,
        deadline: float | None,
        module: Module,
    ) -> None:
        self.caps = caps
        self.deadline = deadline
        self.fuel_capped = caps.fuel is not None and settings.fuel != recorded.fuel
        self.memory_capped = caps.memory is not None and settings.memory_limit != recorded.memory_limit
        self.per_memory = (
            None if settings.memory_limit is None
            else settings.memory_limit // max(module.memory_count, 1)
        )  # fmt: skip

    def out_of_time(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def time_hit(self, where: str, detail: str = "") -> CapHit:
        assert self.caps.time is not None
        return CapHit("time", self.caps.time, where, detail)

    def hit(self, exc: BaseException, instance: Any, where: str) -> CapHit | None:
        timeout = _timeout_behind(exc)
        if timeout is not None:
            if timeout.limit == "deadline" and self.caps.time is not None:
                return self.time_hit(where, str(timeout))
            if timeout.limit == "fuel" and self.fuel_capped:
                assert self.caps.fuel is not None
                return CapHit("fuel", self.caps.fuel, where, str(timeout))
        if self.memory_capped and self.caps.memory is not None:
            if isinstance(exc, GuestRuntimeError) and "memory limit" in str(exc):
                return CapHit("memory", self.caps.memory, where, str(exc))
            size = self._memory_size(instance)
            if self.per_memory is not None and size is not None and 2 * size > self.per_memory:
                detail = (
                    f"the guest's memory had grown to {human_size(size)} of the "
                    f"{human_size(self.per_memory)} it may use: {exc}"
                )
                return CapHit("memory", self.caps.memory, where, detail)
        return None

    @staticmethod
    def _memory_size(instance: Any) -> int | None:
        if instance is None:
            return None
        try:
            size: int = instance.memory.size
        except GuestRuntimeError:
            return None
        return size


class AfterEnd:
    """The grace a guest gets past the last event of an incomplete trace
    (``ReplayCaps.after_end``), as the instance's deadline hook: polled at each epoch
    tick while the guest runs, it gives the deadline once the replayer has used every
    recorded event inside an export call."""

    def __init__(self, replayer: Replayer, grace: float, cap_deadline: float | None) -> None:
        self.replayer = replayer
        self.grace = grace
        self.cap_deadline = cap_deadline  # the time cap's: the earlier one stops the guest
        self.deadline: float | None = None
        self.export: str | None = None

    def __call__(self) -> float | None:
        if self.deadline is None:
            export = self.replayer.past_end()
            if export is None:
                return None
            self.export = export
            self.deadline = time.monotonic() + self.grace
        return self.deadline

    def stopped(self, exc: BaseException, report: ReplayReport) -> bool:
        """Whether ``exc`` is the guest stopped by this grace (not by the time cap);
        if so, the report says so: reproduced up to the cut."""
        timeout = _timeout_behind(exc)
        if (
            self.deadline is None
            or timeout is None
            or timeout.limit != "deadline"
            or (self.cap_deadline is not None and self.cap_deadline < self.deadline)
        ):
            return False
        report.ended_early = True
        report.stopped_after_end = self.export
        report.after_end_s = self.grace
        return True


def _timeout_behind(exc: BaseException | None) -> GuestTimeout | None:
    """The :class:`GuestTimeout` that ``exc`` is, or that it was raised while handling
    (a timed-out export becomes a divergence when the recorded one returned)."""
    for _ in range(8):
        if exc is None:
            return None
        if isinstance(exc, GuestTimeout):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def _finish(report: ReplayReport, replayer: Replayer, t0: float) -> ReplayReport:
    report.events_replayed = replayer.replayed
    report.redacted_served = list(replayer.redacted_served)
    report.raw_access_served = list(replayer.raw_access_served)
    report.duration_s = time.perf_counter() - t0
    return report


def new_runtime(
    meta: dict[str, Any] | None = None,
    *,
    trace: str = "trace",
    debug_info: bool = False,
    multi_memory: bool = False,
) -> Runtime:
    """A runtime with the budget and memory cap a trace was recorded with
    (``multi_memory`` for a recorded module that has several memories)."""
    return RunSettings.from_meta(meta, trace).runtime(
        debug_info=debug_info, multi_memory=multi_memory
    )
