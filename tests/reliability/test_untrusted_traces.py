"""Untrusted trace files: damaged, foreign or malicious files fail with StoreError
subclasses (reading) or a PackrReplayError (replaying), in bounded memory, and nothing
in them is ever run as host code.

tests/storage/test_files.py (TestHostileFiles) covers one example of each kind of
damage (random bytes, an SQLite header then garbage, a foreign database, a trigger,
truncation, bad meta, wrong column types, segment bombs); this adds volume and the
whole stack: seeded random corruption of a real recorded file read end to end
(open, list, read every event, verify, module bytes, replay), more foreign schema
shapes, msgpack bombs not covered there, and a package-wide scan for code execution.
"""

from __future__ import annotations

import io
import random
import sqlite3
import time
import tokenize
import tracemalloc
import warnings
from contextlib import closing
from pathlib import Path
from typing import Any

import msgpack
import pytest

import packr_replay
from packr_replay import api
from packr_replay.abi import S64, UNIT, String
from packr_replay.errors import PackrReplayError, StoreError, TraceFormatError
from packr_replay.replay import replay_source
from packr_replay.runtime import Module, Runtime
from packr_replay.runtime.demo import DemoHost, example_guest
from packr_replay.storage import TraceStore

from .conftest import Tally, quick_count

#: Peak traced allocation allowed for reading one damaged file end to end.
CASE_BYTES = 64 * 1024 * 1024
CASE_SECONDS = 20.0


@pytest.fixture(scope="module")
def runtime() -> Runtime:
    return Runtime(fuel=10**10)


@pytest.fixture(scope="module")
def modules(runtime: Runtime) -> dict[str, Module]:
    return {name: runtime.load_module(example_guest(name)) for name in ("bench", "clock_actor")}


@pytest.fixture(scope="module")
def good_file(tmp_path_factory: pytest.TempPathFactory, modules: dict[str, Module]) -> bytes:
    """A real file: a clock_actor trace (two exports) and a bench trace (300 imports)."""
    path = tmp_path_factory.mktemp("good") / "good.db"
    host = DemoHost(environ={"USER": "ada"})
    api.record_run(modules["clock_actor"], [("run", String("Ada")), ("run", UNIT)], host=host,
                   store=path, label="clock")  # fmt: skip
    api.record_run(modules["bench"], [("calls", S64(300))], host=host, store=path,
                   label="bench")  # fmt: skip
    with TraceStore(path) as store:  # checkpoint: everything in the main file
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path.read_bytes()


def fresh_copy(data: bytes, path: Path) -> Path:
    for leftover in path.parent.glob(path.name + "*"):
        leftover.unlink()
    path.write_bytes(data)
    return path


def read_everything(path: Path) -> list[tuple[int, str | None]]:
    """Every read the store offers; the (id, module sha256) of each trace."""
    with TraceStore(path) as store:
        found = []
        for info in store.traces():
            trace = store.trace(info.id)
            for n, event in enumerate(trace.events()):
                if n < 50:
                    event.input_value  # noqa: B018  (decode some values)
            trace.exports()
            store.verify(info.id)
            if info.module_sha256:
                store.module_bytes(info.module_sha256)
            found.append((info.id, info.module_sha256))
        store.modules()
    return found


def replay_all(path: Path, found: list[tuple[int, str | None]], modules: dict[str, Module],
               good_shas: dict[str, Module], full: bool) -> list[str]:  # fmt: skip
    """Replay every trace: with the compiled good module when the stored one is intact
    (fast), through ``api.replay`` (recompiling whatever the file holds) when ``full``
    or when the module bytes were altered. Outcomes, one per trace."""
    outcomes = []
    for trace_id, sha in found:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                if full or sha not in good_shas:
                    report = api.replay(path, trace_id)
                else:
                    with TraceStore(path, readonly=True) as store:
                        report = replay_source(store.trace(trace_id), good_shas[sha])
            warned = " (warned: module differs from its address)" if any(
                "differs from the recorded module" in str(w.message) for w in caught) else ""  # fmt: skip
            outcomes.append(("reproduced" if report.reproduced else "diverged") + warned)
        except PackrReplayError as exc:
            outcomes.append(f"replay refused: {type(exc).__name__}")
        except Exception as exc:
            raise AssertionError(f"replay of trace {trace_id} let {exc!r} escape") from exc
    return outcomes


def corrupt(rng: random.Random, data: bytes) -> bytes:
    """A few random byte runs overwritten: half the time in the first 64 KiB (schema,
    table roots, trace rows), otherwise anywhere (mostly module and segment pages)."""
    buf = bytearray(data)
    head = rng.random() < 0.5
    for _ in range(rng.choice([1, 1, 2, 4, 16])):
        pos = rng.randrange(min(len(buf), 65536) if head else len(buf))
        if rng.random() < 0.5:
            buf[pos] = rng.randrange(256)
        else:
            run = rng.randbytes(rng.randrange(1, 64))
            buf[pos : pos + len(run)] = run[: len(buf) - pos]
    if rng.random() < 0.1:
        del buf[rng.randrange(len(buf)) :]  # truncated too
    return bytes(buf)


def fuzz_files(tmp_path: Path, good: bytes, modules: dict[str, Module], cases: int, seed: int,
               tally: Tally) -> None:  # fmt: skip
    good_shas = {m.sha256: m for m in modules.values()}
    rng = random.Random(seed)
    path = tmp_path / "damaged.db"
    for i in range(cases):
        fresh_copy(corrupt(rng, good), path)
        tracemalloc.start()
        t0 = time.perf_counter()
        try:
            tally.cases += 1  # one damaged file; its outcomes are counted below
            try:
                found = read_everything(path)
            except StoreError as exc:
                tally.add(f"read refused: {type(exc).__name__}", case=False)
                continue
            except Exception as exc:
                raise AssertionError(f"case {i}: reading let {exc!r} escape") from exc
            tally.add("read without error", case=False)
            for outcome in replay_all(path, found, modules, good_shas, full=i % 10 == 0):
                tally.add(f"trace {outcome}", case=False)
        finally:
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            tally.peak("peak_traced_mb", round(peak / 1e6, 1))
            tally.peak("slowest_case_s", round(time.perf_counter() - t0, 2))
        assert peak < CASE_BYTES, f"case {i}: {peak} bytes traced"
        assert time.perf_counter() - t0 < CASE_SECONDS


class TestDamagedFiles:
    """Seeded random corruption of a real file, read and replayed end to end."""

    def test_quick(self, tmp_path: Path, good_file: bytes, modules: dict[str, Module],
                   tally: Tally) -> None:  # fmt: skip
        fuzz_files(tmp_path, good_file, modules, quick_count(30, 400), seed=3, tally=tally)

    @pytest.mark.slow
    def test_thousands(self, tmp_path: Path, good_file: bytes, modules: dict[str, Module],
                       tally: Tally) -> None:  # fmt: skip
        fuzz_files(tmp_path, good_file, modules, 2000, seed=99, tally=tally)

    def test_every_truncation_point(self, tmp_path: Path, good_file: bytes, tally: Tally) -> None:
        """Cut at every page boundary (and mid-page): refused with StoreError or read."""
        page = 16384
        cuts = sorted({*range(0, len(good_file), page), *range(page // 2, len(good_file), page)})
        for cut in cuts:
            path = fresh_copy(good_file[:cut], tmp_path / "cut.db")
            try:
                read_everything(path)
                tally.add("read")
            except StoreError as exc:
                tally.add(f"refused: {type(exc).__name__}")
        assert tally.cases == len(cuts)


def tamper(path: Path, *statements: tuple[str, tuple[Any, ...]]) -> None:
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA ignore_check_constraints = ON")
        for sql, params in statements:
            conn.execute(sql, params)
        conn.commit()


FOREIGN_SHAPES = {
    "extra column": "ALTER TABLE traces ADD COLUMN evil TEXT",
    "trigger on a user table": "CREATE TABLE notes (x TEXT); CREATE TRIGGER evil AFTER INSERT "
    "ON notes BEGIN DELETE FROM segments; END",
    "extra index": "CREATE INDEX evil ON segments (count)",
    "extra view": "CREATE VIEW evil AS SELECT * FROM traces",
    "events view redefined": "DROP VIEW events; CREATE VIEW events AS SELECT 1 AS seq",
    "trigger on traces": "CREATE TRIGGER evil AFTER UPDATE ON traces BEGIN DELETE FROM segments; END",
    "virtual table": "CREATE VIRTUAL TABLE evil USING fts4(body)",
    "dropped index": "DROP INDEX traces_label",
    "dropped table": "DROP VIEW events; DROP VIEW trace_summary; DROP TABLE event_index",
}


class TestForeignSchemas:
    """Our application id and version over another shape: refused before any use."""

    @pytest.mark.parametrize("sql", list(FOREIGN_SHAPES.values()), ids=list(FOREIGN_SHAPES))
    def test_refused(self, tmp_path: Path, good_file: bytes, sql: str) -> None:
        path = fresh_copy(good_file, tmp_path / "shape.db")
        with closing(sqlite3.connect(path)) as conn:
            conn.executescript(sql)
        with pytest.raises(TraceFormatError), TraceStore(path) as store:
            store.traces()

    def test_connections_distrust_the_schema(self, tmp_path: Path, good_file: bytes) -> None:
        """trusted_schema=OFF: views and triggers in a file cannot call risky functions."""
        path = fresh_copy(good_file, tmp_path / "trust.db")
        with TraceStore(path) as store:
            assert store.db.execute("PRAGMA trusted_schema").fetchone()[0] == 0


DEEP = b"\x91" * 100_000 + b"\xc0"
BOMBS = {
    "meta nested 100k deep": ("UPDATE traces SET meta = ?", (b"\x81\xa1k" + DEEP,)),
    "meta str claiming 4 GiB": ("UPDATE traces SET meta = ?", (b"\x81\xa1k\xdb\xff\xff\xff\xff",)),
    "meta map claiming 4G keys": ("UPDATE traces SET meta = ?", (b"\xdf\xff\xff\xff\xff",)),
    "segment nested 100k deep": ("UPDATE segments SET data = ?", (DEEP,)),
    "segment 2M nils": ("UPDATE segments SET data = ?", (msgpack.packb([None] * 2_000_000),)),
    "segment map claiming 4G": ("UPDATE segments SET data = ?", (b"\xdf\xff\xff\xff\xff",)),
    "segment str claiming 2 GiB": ("UPDATE segments SET data = ?", (b"\xdb\xff\xff\xff\x7f",)),
    "segment 20 MB of zeros": ("UPDATE segments SET data = zeroblob(20000000)", ()),
    "segment count lie": ("UPDATE segments SET count = 1000000000", ()),
}


class TestBombs:
    """msgpack bombs and huge blobs in meta and segments: refused, in bounded memory."""

    @pytest.mark.parametrize("name", list(BOMBS))
    def test_refused(self, tmp_path: Path, good_file: bytes, name: str) -> None:
        path = fresh_copy(good_file, tmp_path / "bomb.db")
        tamper(path, BOMBS[name])
        tracemalloc.start()
        try:
            with pytest.raises(TraceFormatError):
                read_everything(path)
        finally:
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        # a 20 MB blob is read once (plus one copy); nothing else comes near 64 MB
        limit = 50e6 if "zeros" in name else CASE_BYTES
        assert peak < limit, f"{peak / 1e6:.0f} MB traced"

    def test_event_count_lie_is_caught_by_verify(self, tmp_path: Path, good_file: bytes) -> None:
        path = fresh_copy(good_file, tmp_path / "lie.db")
        tamper(path, ("UPDATE traces SET event_count = 1000000000", ()))
        with TraceStore(path) as store:
            for info in store.traces():
                report = store.verify(info.id)
                assert not report.ok
                assert "missing" in report.message

    def test_meta_with_many_items_is_bounded(self, tmp_path: Path, good_file: bytes) -> None:
        """Meta under the size limit but with 500k items: read, within bounds."""
        path = fresh_copy(good_file, tmp_path / "wide.db")
        tamper(path, ("UPDATE traces SET meta = ?", (msgpack.packb({"k": [None] * 500_000}),)))
        tracemalloc.start()
        try:
            with TraceStore(path) as store:
                store.traces()
        finally:
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        assert peak < 32e6


class TestFormerEscapes:
    """Non-PackrReplayError escapes the fuzzing above found, now typed errors."""

    def test_non_utf8_schema_text(self, tmp_path: Path) -> None:
        path = tmp_path / "schema.db"
        TraceStore(path, create=True).close()
        data = bytearray(path.read_bytes())
        data[data.index(b"CREATE TABLE") + 7] = 0xFF
        path.write_bytes(bytes(data))
        with pytest.raises(TraceFormatError):
            TraceStore(path)

    @pytest.mark.parametrize(
        "meta",
        [{"reply": "bogus"}, {"reply": 1}, {"fuel": "lots"}, {"fuel": -1}, {"fuel": True},
         {"timeout": "soon"}, {"timeout": float("nan")}, {"timeout": 0},
         {"memory_limit": 1.5}, {"scratch_capacity": [1]}, {"redacted": "host.now"},
         {"redacted": [1]}],
        ids=["reply", "reply_int", "fuel", "fuel_negative", "fuel_bool", "timeout",
             "timeout_nan", "timeout_zero", "memory_limit", "scratch", "redacted",
             "redacted_item"],
    )  # fmt: skip
    def test_meta_of_the_wrong_type(
        self, tmp_path: Path, good_file: bytes, meta: dict[str, Any]
    ) -> None:
        path = fresh_copy(good_file, tmp_path / "meta.db")
        tamper(path, ("UPDATE traces SET meta = ?", (msgpack.packb(meta),)))
        key = next(iter(meta))
        with pytest.raises(TraceFormatError, match=f"metadata '{key}' is"):
            api.replay(path, "bench")


PACKAGE = Path(packr_replay.__file__).parent
#: What may run code or import by name, and why none of it comes from a trace file.
ALLOWED = {
    ("runtime/host.py", "eval"): "string annotations of the host's own handler functions",
    ("runtime/fastcall.py", "exec"): "a callback generated from whitelisted wasm value types",
    ("hosts.py", "import_module"): "the host module named by --host (or the library caller)",
    ("cli/app.py", "import_module"): "the CLI's own command modules",
    ("_native.py", "import_module"): "the package's own C accelerators (abi, storage)",
}
#: Names that load or run code; ``eval``/``exec``/``compile`` only as bare calls.
LOADERS = {"pickle", "cPickle", "marshal", "shelve", "dill", "yaml", "jsonpickle",
           "import_module", "__import__", "load_extension", "enable_load_extension"}  # fmt: skip
BARE_CALLS = {"eval", "exec", "compile"}
C_FORBIDDEN = ("PyRun_", "PyEval_Eval", "PyMarshal_", "PyImport_Import", "pickle", "load_extension")


def code_uses(source: Path) -> list[str]:
    """The loader names a file's code uses (comments and strings are not code)."""
    text = source.read_text()
    if source.suffix == ".c":
        return [w for w in C_FORBIDDEN if w in text]
    found, previous = [], None
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.NAME and (
            tok.string in LOADERS or (tok.string in BARE_CALLS and previous != ".")
        ):
            found.append(tok.string)
        if tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT):
            previous = tok.string
    return found


class TestNoCodeExecution:
    """Nothing in the package can run code taken from a file: no pickle, marshal, eval
    or dynamic import of file data anywhere (tests/storage checks storage/ alone)."""

    def test_scan(self) -> None:
        found: set[tuple[str, str]] = set()
        for source in sorted([*PACKAGE.rglob("*.py"), *PACKAGE.rglob("*.c")]):
            rel = source.relative_to(PACKAGE).as_posix()
            found.update((rel, word) for word in code_uses(source))
        unexpected = found - set(ALLOWED)
        assert not unexpected, f"review these (file data must never reach them): {unexpected}"

    def test_scan_sees_what_it_looks_for(self, tmp_path: Path) -> None:
        sample = tmp_path / "sample.py"
        sample.write_text('import pickle\n"marshal in a string"  # eval( in a comment\n'
                          "x = eval('1')\ny = re.compile('x')\n")  # fmt: skip
        assert code_uses(sample) == ["pickle", "eval"]

    def test_generated_callbacks_take_only_known_types(self) -> None:
        from packr_replay.runtime import fastcall

        with pytest.raises(ValueError, match="unsupported wasm value type"):
            fastcall._make_callback(lambda: None, ["i32); import os; (0"], [])

    def test_storage_unpackers_refuse_extension_types(self, tmp_path: Path, good_file: bytes) -> None:
        path = fresh_copy(good_file, tmp_path / "ext.db")
        tamper(path, ("UPDATE traces SET meta = ?", (msgpack.packb({"x": msgpack.ExtType(42, b"code")}),)))
        with TraceStore(path) as store, pytest.raises(TraceFormatError):
            store.traces()

