"""pytest plugin: a guest's host calls are recorded once, then replayed in every run.

Registered through the ``pytest11`` entry point, so installing packr-replay is enough::

    def test_greets(packr):
        inst = packr.instantiate(example_guest("clock_actor"), host=DemoHost())
        report = inst.call_with_value("run", String("Ada"))
        assert report["greeting"] == String("Hello, Ada")

The first run records every typed import into ``tests/traces/<module>/<test>.db``
(beside the test module); later runs serve the imports from that file, so the clock,
the dice and the network answer exactly as they did. ``packr.instantiate`` may be
called several times per test (each instance is one labelled trace in the file).

Record modes (``--packr-record-mode``, the ``packr_record_mode`` ini option, or
``@pytest.mark.packr_trace(record_mode=...)`` per test; the default is ``none`` when
the ``CI`` environment variable is set and ``once`` otherwise, as pytest-recording
does):

* ``none``: replay only. A missing trace, an unrecorded call, or any divergence fails
  the test with the full report (and the option that records it).
* ``once``: replay the newest complete trace, else record (a test that failed while
  recording leaves a ``failed`` trace, kept for inspection until the next one replaces it).
* ``new_episodes``: replay the recorded calls, then run live and record the rest.
* ``all``: always run live and record.
* ``rewrite``: delete the test's trace file and record it anew.

A replayed trace runs under the replayer's caps (``--packr-max-fuel``,
``--packr-max-time``, ``--packr-max-memory``, or the ``packr_max_*`` ini options; the
defaults are those of ``packr-replay play``), whatever the runtime given allows.

A file keeps only the newest complete trace per label (and at most the newest failed
one), and each recorded trace is
indexed (``packr_index`` ini option) so it reads in ``sqlite3`` or Datasette as is.
The heavy imports (wasmtime, SQLite) happen only when a test asks for ``packr``.

Under pytest-xdist (``pytest -n 2``) each test records and replays its own file from
the worker that runs it, and the summary line counts every worker's traces.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

if TYPE_CHECKING:
    from .abi import EncodedValue, Value
    from .api import ModuleSource, Session
    from .errors import ReplayDivergence
    from .replay.matchers import Matcher
    from .runtime import Runtime
    from .runtime.host import HostSpec

__all__ = ["MODES", "PackrTraces", "TracedInstance"]

MODES = ("none", "once", "new_episodes", "all", "rewrite")
"""``--packr-record-mode`` values: the four of :class:`~.replay.RecordMode` and ``rewrite``."""

_OPTION = "--packr-record-mode"
#: The replay caps (``replay.caps.ReplayCaps``), as in ``packr-replay play --max-*``.
_CAPS = {
    "fuel": "fuel per guest call (default: none of its own)",
    "time": "number of seconds per instance (default 60)",
    "memory": "guest memory size, e.g. 512MiB (default 1GiB)",
}
_CI_FALSE = {"", "0", "false", "no", "off"}


@dataclass
class _Tally:
    recorded: int = 0
    replayed: int = 0


_TALLY = pytest.StashKey[_Tally]()
_TRACES = pytest.StashKey["PackrTraces"]()
_CAPS_KEY = pytest.StashKey[dict[str, Any]]()


# ------------------------------------------------------------------- options


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("packr-replay", "packr-replay record/replay")
    group.addoption(
        _OPTION,
        choices=MODES,
        default=None,
        help="record mode for the `packr` fixture: none (replay only), once (record what is "
        "missing), new_episodes, all, rewrite (delete and record anew). Default: none when "
        "the CI environment variable is set, once otherwise.",
    )
    group.addoption(
        "--packr-trace-dir",
        default=None,
        help="directory of trace files, <dir>/<test module>/<test>.db (default: "
        "a 'traces' directory beside each test module)",
    )
    for cap, what in _CAPS.items():
        group.addoption(
            f"--packr-max-{cap}",
            default=None,
            metavar="VALUE|none",
            help=f"replayed traces run under this {what}, whatever the runtime allows "
            "('none' lifts the cap)",
        )
        parser.addini(f"packr_max_{cap}", f"default of --packr-max-{cap}", default="")
    parser.addini("packr_record_mode", "default record mode of the `packr` fixture", default="")
    parser.addini(
        "packr_trace_dir", "trace directory, relative to the ini file's directory", default=""
    )
    parser.addini(
        "packr_index",
        "index recorded traces so sqlite3/Datasette show their events (default true)",
        type="bool",
        default=True,
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "packr_trace(name=None, *, record_mode=None, match_on=None, allow_unused=False): "
        "the trace file name (default: the test's name) and per-test options of the "
        "`packr` fixture",
    )
    ini = config.getini("packr_record_mode").strip()
    if ini and ini not in MODES:
        raise pytest.UsageError(f"packr_record_mode = {ini!r}; expected one of {', '.join(MODES)}")
    config.stash[_TALLY] = _Tally()
    config.stash[_CAPS_KEY] = _caps(config)


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in _CI_FALSE


def _default_mode(config: pytest.Config) -> tuple[str, str]:
    """The run's record mode and where it came from."""
    option = config.getoption("packr_record_mode")
    if option:
        return str(option), _OPTION
    ini = config.getini("packr_record_mode").strip()
    if ini:
        return ini, "the packr_record_mode ini option"
    if _in_ci():
        return "none", "the default when CI is set"
    return "once", "the default outside CI"


def _caps(config: pytest.Config) -> dict[str, Any]:
    """The ``ReplayCaps`` keywords the options (or ini values) give."""
    from ._units import parse_caps

    values: dict[str, str | None] = {}
    for cap in _CAPS:
        option = config.getoption(f"packr_max_{cap}")
        ini = str(config.getini(f"packr_max_{cap}")).strip()
        values[cap] = option if option is not None else (ini or None)
    try:
        return parse_caps(values["fuel"], values["time"], values["memory"])
    except ValueError as exc:
        raise pytest.UsageError(f"--packr-{exc}") from None


def _trace_dir(config: pytest.Config, test_file: Path) -> Path:
    option = config.getoption("packr_trace_dir")
    if option:
        return Path(config.invocation_params.dir, option)
    ini = config.getini("packr_trace_dir").strip()
    if ini:
        base = config.inipath.parent if config.inipath else config.rootpath
        return Path(base, ini)
    return test_file.parent / "traces"


def pytest_report_header(config: pytest.Config) -> str:
    mode, source = _default_mode(config)
    return f"packr-replay: record mode {mode} ({source})"


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    tally = config.stash.get(_TALLY, None)
    if tally is not None and (tally.recorded or tally.replayed):
        terminalreporter.write_line(
            f"packr-replay: {tally.recorded} trace(s) recorded, {tally.replayed} replayed"
        )


# ------------------------------------------------------------- pytest-xdist
# Under ``pytest -n N`` each worker process runs whole tests, so a test's trace file is
# only ever written by the worker running that test (tests that share a file through
# the marker write it like any two recorders: the store takes concurrent writers). What
# the workers cannot do is print the summary line: each sends its tally home.

_WORKER_KEY = "packr_replay_tally"


def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    tally = session.config.stash.get(_TALLY, None)
    if workeroutput is not None and tally is not None:
        workeroutput[_WORKER_KEY] = [tally.recorded, tally.replayed]


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """(pytest-xdist, on the controller) A worker finished: add its tally."""
    sent = getattr(node, "workeroutput", {}).get(_WORKER_KEY)
    tally = node.config.stash.get(_TALLY, None)
    if tally is not None and isinstance(sent, list) and len(sent) == 2:
        tally.recorded += int(sent[0])
        tally.replayed += int(sent[1])


# ------------------------------------------------------------------- fixture


_UNSAFE = re.compile(r"[^A-Za-z0-9_.,=+\-\[\]]+")


def _file_name(name: str) -> str:
    """A test name as a portable file name (long ones keep a hash of the rest)."""
    safe = _UNSAFE.sub("_", name).strip("._") or "trace"
    if len(safe) > 120:
        safe = f"{safe[:100]}-{hashlib.sha256(name.encode()).hexdigest()[:12]}"
    return safe + ".db"


@pytest.fixture
def packr(request: pytest.FixtureRequest) -> Iterator[PackrTraces]:
    """Instantiate guests whose typed imports are recorded or replayed (see the module doc)."""
    node = request.node
    marker = node.get_closest_marker("packr_trace")
    args: tuple[Any, ...] = marker.args if marker else ()
    kwargs: dict[str, Any] = dict(marker.kwargs) if marker else {}
    unknown = set(kwargs) - {"name", "record_mode", "match_on", "allow_unused"}
    if len(args) > 1 or unknown or ("name" in kwargs and args):
        pytest.fail(
            f"{node.nodeid}: packr_trace takes an optional name and the keywords "
            "record_mode, match_on, allow_unused",
            pytrace=False,
        )
    name = args[0] if args else kwargs.get("name")
    mode, source = _default_mode(request.config)
    if kwargs.get("record_mode") is not None:
        mode, source = str(kwargs["record_mode"]), "the packr_trace marker"
        if mode not in MODES:
            pytest.fail(
                f"{node.nodeid}: packr_trace(record_mode={mode!r}); expected one of "
                f"{', '.join(MODES)}",
                pytrace=False,
            )
    test_file = Path(str(node.path))
    if name is None:
        name = f"{node.cls.__name__}.{node.name}" if getattr(node, "cls", None) else node.name
    traces = PackrTraces(
        path=_trace_dir(request.config, test_file) / test_file.stem / _file_name(str(name)),
        record_mode=mode,
        mode_source=source,
        nodeid=node.nodeid,
        match_on=kwargs.get("match_on"),
        allow_unused=bool(kwargs.get("allow_unused", False)),
        index=bool(request.config.getini("packr_index")),
        tally=request.config.stash.get(_TALLY, _Tally()),
        caps=request.config.stash.get(_CAPS_KEY, {}),
    )
    node.stash[_TRACES] = traces
    yield traces
    traces._abandon()  # whatever the test did not finish (it failed or errored)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Seal the test's traces when its body passed, so a replay that used fewer calls
    than were recorded fails the test itself (not its teardown).

    While a test that uses ``packr`` runs, Ctrl-C and SIGTERM stop a running guest
    within a second; the traces being recorded keep every event so far and are sealed
    ``incomplete`` (reason ``interrupted``), and pytest stops as on Ctrl-C.
    """
    traces = item.stash.get(_TRACES, None)
    try:
        if traces is None:
            result = yield
        else:
            from . import _interrupts

            with _interrupts.catching():
                result = yield
    except BaseException as exc:
        if traces is not None:
            traces._abandon(exc)
        raise
    if traces is not None:
        traces._finish()
    return result


# ---------------------------------------------------------------- the helpers


class PackrTraces:
    """What the ``packr`` fixture gives a test: :meth:`instantiate` guests whose
    imports are recorded into, or replayed from, ``path`` according to ``record_mode``."""

    def __init__(
        self,
        *,
        path: Path,
        record_mode: str,
        mode_source: str,
        nodeid: str,
        match_on: Sequence[str | Matcher] | None = None,
        allow_unused: bool = False,
        index: bool = True,
        tally: _Tally | None = None,
        caps: dict[str, Any] | None = None,
    ) -> None:
        self.path = path
        self.caps = dict(caps or {})  # ReplayCaps keywords; replayed instances run under them
        self.record_mode = record_mode
        self.mode_source = mode_source
        self.nodeid = nodeid
        self.match_on = match_on
        self.allow_unused = allow_unused
        self.index = index
        self.instances: list[TracedInstance] = []
        self._tally = tally or _Tally()
        self._rewritten = False

    def __repr__(self) -> str:
        return f"<PackrTraces {self.path} mode={self.record_mode}>"

    def instantiate(
        self,
        module: ModuleSource,
        host: HostSpec = None,
        *,
        state: Any = None,
        label: str | None = None,
        runtime: Runtime | None = None,
        match_on: Sequence[str | Matcher] | None = None,
        allow_unused: bool | None = None,
    ) -> TracedInstance:
        """Instantiate ``module`` with ``host`` behind a recorder or a replayer.

        ``label`` names the trace in the file (default ``instance-1``, ``instance-2``...
        in the order the test instantiates). ``match_on`` / ``allow_unused``: as for
        :class:`~packr_replay.api.Session` (defaults from the ``packr_trace`` marker).
        """
        from .api import Session
        from .errors import StoreError
        from .replay.caps import ReplayCaps
        from .replay.matchers import DEFAULT_MATCH_ON

        label = label if label is not None else f"instance-{len(self.instances) + 1}"
        if any(t.label == label for t in self.instances):
            raise ValueError(f"this test already has an instance labelled {label!r}")
        mode = self._session_mode(label)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            session = Session(
                module,
                store=self.path,
                label=label,
                mode=mode,
                host=host,
                state=state,
                runtime=runtime,
                match_on=match_on or self.match_on or DEFAULT_MATCH_ON,
                allow_unused=self.allow_unused if allow_unused is None else allow_unused,
                caps=ReplayCaps(**self.caps),
            )
        except StoreError as exc:
            self._fail(f"cannot use trace file {self._where()}: {exc}")
        traced = TracedInstance(self, session, label)
        self.instances.append(traced)
        return traced

    # ---------------------------------------------------------- mode decisions

    def _session_mode(self, label: str) -> str:
        """The Session mode for ``label``, failing the test if ``none`` cannot replay."""
        from .storage import TraceStatus

        if self.record_mode == "rewrite":
            if not self._rewritten:
                for path in (self.path, *_companions(self.path)):
                    path.unlink(missing_ok=True)
                self._rewritten = True
            return "all"
        status = self._recorded_status(label)
        if self.record_mode == "none":
            if status is None:
                self._fail(
                    f"no recorded trace {label!r} in {self._where()} and record mode is none "
                    f"({self.mode_source}).\nRecord it by running the test once with "
                    f"{_OPTION}=once (or {_OPTION}=rewrite to record the whole file anew):\n"
                    f"    {self._command('once')}"
                )
            if status is not TraceStatus.COMPLETE:
                self._fail(
                    f"trace {label!r} in {self._where()} is {status}: it was recorded by a run "
                    f"that did not finish, so it cannot be replayed.\nRecord it again:\n"
                    f"    {self._command('rewrite')}"
                )
            return "none"
        if status is not None and status is not TraceStatus.COMPLETE:
            return "all"  # the last recording did not finish: make a new one
        return self.record_mode

    def _recorded_status(self, label: str) -> Any:
        """The status of the trace a replay would use (the newest complete one, else
        the newest), or ``None`` when ``label`` has none."""
        from .api import recorded_trace
        from .errors import StoreError

        try:
            # Another worker may be creating a shared file: a mode that records waits
            # for that (or finishes it); ``none`` only reads, so read-only checkouts work.
            chosen = recorded_trace(
                self.path, label, strict=True, can_record=self.record_mode != "none"
            )
        except StoreError as exc:
            self._fail(f"cannot read trace file {self._where()}: {exc}")
        return None if chosen is None else chosen.status

    # -------------------------------------------------------- ending the test

    def _finish(self) -> None:
        """The test body passed: seal every trace (strict replays check they were used up)."""
        from .errors import ReplayDivergence

        problems: list[str] = []
        for traced in self.instances:
            if traced.closed:
                continue
            traced.closed = True
            session = traced.session
            try:
                session.close()
            except ReplayDivergence as exc:
                if session.writer is not None:
                    self._tidy(session.writer.trace_id, traced.label, keep=False)
                problems.append(self._divergence_text(traced, exc))
                continue
            if session.writer is not None:
                self._tidy(session.writer.trace_id, traced.label, keep=True)
                self._tally.recorded += 1
            else:
                self._tally.replayed += 1
        if problems:
            pytest.fail("\n\n".join(problems), pytrace=False)

    def _tidy(self, trace_id: int, label: str, *, keep: bool) -> None:
        """Keep one trace per label: the new one (indexed) if it is good, else the old."""
        from .storage import TraceStore, delete_traces, index_trace

        with TraceStore(self.path) as store:
            if not keep:
                delete_traces(store, [trace_id])
                return
            older = [t.id for t in store.traces() if t.label == label and t.id != trace_id]
            delete_traces(store, older)
            if self.index:
                index_trace(store, trace_id)

    def _abandon(self, error: BaseException | None = None) -> None:
        """The test failed: traces being recorded are sealed as ``failed`` (``once``
        replays the newest complete trace, or records anew when there is none), the
        newest failed one is kept for inspection and older failed ones are deleted, and
        every instance is released. An interrupted test's traces are sealed
        ``incomplete`` (reason ``interrupted``) instead, with every event so far."""
        from .errors import Interrupted

        why: BaseException = error if isinstance(error, Interrupted) else _TestFailed()
        for traced in self.instances:
            if not traced.closed:
                traced.closed = True
                writer = traced.session.writer
                traced.session.__exit__(type(why), why, None)
                if writer is not None:
                    self._drop_older_failures(writer.trace_id, traced.label)

    def _drop_older_failures(self, newest: int, label: str) -> None:
        from .storage import TraceStatus, TraceStore, delete_traces

        unfinished = (TraceStatus.FAILED, TraceStatus.INCOMPLETE)
        with TraceStore(self.path) as store:
            older = [
                t.id for t in store.traces()
                if t.label == label and t.id != newest and t.status in unfinished
            ]  # fmt: skip
            if older:
                delete_traces(store, older)

    # -------------------------------------------------------------- messages

    def _where(self) -> str:
        try:
            return str(self.path.relative_to(Path.cwd()))
        except ValueError:
            return str(self.path)

    def _command(self, mode: str) -> str:
        return f"pytest {shlex.quote(self.nodeid)} {_OPTION}={mode}"

    def _divergence_text(self, traced: TracedInstance, exc: ReplayDivergence) -> str:
        return (
            f"packr: the guest's calls diverged from trace {traced.label!r} in "
            f"{self._where()} (record mode {self.record_mode}, {self.mode_source}):\n"
            f"{exc}\n\nIf the new behaviour is intended, record the trace again:\n"
            f"    {self._command('rewrite')}"
        )

    def _fail(self, message: str) -> NoReturn:
        pytest.fail(f"packr: {message}", pytrace=False)


class _TestFailed(Exception):
    """Stands for the test's failure when its sessions are abandoned."""


def _companions(path: Path) -> tuple[Path, Path]:
    return Path(f"{path}-wal"), Path(f"{path}-shm")


class TracedInstance:
    """A guest instance behind the ``packr`` fixture: call exports as on an
    :class:`~packr_replay.runtime.Instance`; a divergence fails the test with its
    report."""

    def __init__(self, owner: PackrTraces, session: Session, label: str) -> None:
        self.owner = owner
        self.session = session
        self.label = label
        self.closed = False

    def __repr__(self) -> str:
        what = "recording" if self.recording else "replaying"
        return f"<TracedInstance {self.label!r} {what} {self.owner.path}>"

    @property
    def recording(self) -> bool:
        """True when this instance's calls are being recorded (possibly after a replayed prefix)."""
        return self.session.recording

    @property
    def replaying(self) -> bool:
        """True when calls are served from a recorded trace."""
        return self.session.replaying

    @property
    def instance(self) -> Any:
        """The underlying :class:`~packr_replay.runtime.Instance`."""
        return self.session.instance

    def call_with_value(self, export: str, value: Value | EncodedValue) -> Value:
        """Call ``export`` and return its decoded result."""
        from .errors import ReplayDivergence

        try:
            return self.session.instance.call_with_value(export, value)
        except ReplayDivergence as exc:
            divergence = exc  # fail outside the handler: the report is shown once
        self._diverged(divergence)

    async def call_with_value_async(self, export: str, value: Value | EncodedValue) -> Value:
        """The async variant (async host functions and interceptors on this event loop)."""
        from .errors import ReplayDivergence

        try:
            return await self.session.instance.call_with_value_async(export, value)
        except ReplayDivergence as exc:
            divergence = exc
        self._diverged(divergence)

    def call_raw(self, export: str, value: Value | EncodedValue | bytes) -> EncodedValue:
        """Call ``export`` and return its raw result bytes (lazily decoded)."""
        from .errors import ReplayDivergence

        try:
            result: EncodedValue = self.session.instance.call_raw(export, value)
            return result
        except ReplayDivergence as exc:
            divergence = exc
        self._diverged(divergence)

    def _diverged(self, exc: ReplayDivergence) -> NoReturn:
        pytest.fail(self.owner._divergence_text(self, exc), pytrace=False)
