"""A stranger's trace, opened the way a maintainer would: the installed ``packr-replay``
run on hostile files, one class per kind of attack (issue 11).

Each file is built as an attacker would build it: with packr-replay itself (a valid
hash chain, any settings and any module), then edited with plain ``sqlite3`` where
the attack needs it. Each command must end within its cap, with peak RSS under
1 GiB, exit 1 (a verdict: not reproduced within the caps, tampered) or 2 (refused),
and, when it refuses, say why on one line; nothing from the file may reach the
terminal raw. Quick variants run in CI (1 s caps, 25 MB bombs, and some of the
terminal, hidden-SQL and header-edit commands in process); ``--slow`` runs them at full
size (250 MB bombs, the default 60 s cap, 300M table elements, every command through the
installed CLI). RELIABILITY.md has the tallies.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import msgpack
import pytest
from typer.testing import CliRunner

from packr_replay.abi import UNIT, List, String, ValueType, decode, encode
from packr_replay.cli import app
from packr_replay.runtime import Runtime
from packr_replay.storage import EventKind, Outcome, TraceStore
from tests.cli.conftest import executable

from .conftest import Tally

GiB = 1 << 30
#: Peak RSS any command may reach on any file.
RSS_LIMIT = GiB
#: Wall-clock time a command may take beyond the cap it runs under (start-up, a busy CI).
SLACK = 30.0


@pytest.fixture
def full(request: pytest.FixtureRequest) -> bool:
    """Full size (``--slow``): 250 MB bombs, the default 60 s cap, a million levels."""
    return bool(request.config.getoption("--slow") or os.environ.get("PACKR_SLOW"))


@dataclass
class Ran:
    """One command on one file: how it ended, and what it cost."""

    code: int
    out: str
    err: str
    seconds: float
    peak_rss: int  # bytes

    def one_line_error(self) -> str:
        """The error: one line on stderr, its last (a warning may come before it)."""
        lines = [line for line in self.err.splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("packr-replay: error: ")]
        assert len(errors) == 1, f"expected one error line, got {self.err!r}"
        assert lines[-1] == errors[0], self.err
        return errors[0]


#: Starts the command from a small process and reports its peak RSS. Measured from
#: the test process itself, a child's peak would include the pages it was forked with
#: (Linux keeps the high-water mark across ``exec``), i.e. whatever this test built.
LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(str(usage.ru_maxrss * 1024))
code = os.waitstatus_to_exitcode(status)
os._exit(code if code >= 0 else 128 - code)
"""


def run(*args: object, timeout: float = 120.0, stdin: bytes | None = None,
        cwd: Path | None = None) -> Ran:  # fmt: skip
    """Run the installed CLI; ``peak_rss`` is the command's own."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r") as rss:  # fmt: skip
        t0 = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-c", LAUNCHER, rss.name, executable(), *map(str, args)],
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=out, stderr=err, cwd=cwd, start_new_session=True,
            env={**os.environ, "COLUMNS": "200"},
        )  # fmt: skip
        if stdin is not None:
            assert proc.stdin is not None
            threading.Thread(target=_feed, args=(proc.stdin, stdin), daemon=True).start()
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise AssertionError(f"{args} did not end in {timeout:.0f}s") from None
        seconds = time.monotonic() - t0
        out.seek(0)
        err.seek(0)
        peak = rss.read().strip()
        ran = Ran(code, out.read().decode("utf-8", "replace"),
                  err.read().decode("utf-8", "replace"), seconds, int(peak or 0))  # fmt: skip
    assert ran.code < 128, f"{args} was killed by signal {ran.code - 128} after {seconds:.1f}s"
    return ran


def run_in_process(*args: object) -> Ran:
    """The CLI in this process (typer's runner, the same commands and error handling
    as the installed one); ``peak_rss`` is not measured (0)."""
    t0 = time.monotonic()
    result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Ran(result.exit_code, result.stdout, result.stderr, time.monotonic() - t0, 0)


def _feed(pipe: Any, data: bytes) -> None:
    try:
        pipe.write(data)
        pipe.close()
    except BrokenPipeError:
        pass


def bounded(ran: Ran, tally: Tally, cap: float, label: str) -> None:
    """Within its cap (plus slack) and the RSS limit; counted in the tally."""
    tally.add(f"{label}: exit {ran.code}")
    tally.peak("peak_rss_mb", round(ran.peak_rss / 1e6))
    tally.peak("slowest_s", round(ran.seconds, 1))
    assert ran.seconds < cap + SLACK, f"{label}: {ran.seconds:.1f}s"
    assert ran.peak_rss < RSS_LIMIT, f"{label}: peak RSS {ran.peak_rss / 1e6:.0f} MB"


# ----------------------------------------------------------------- building files


def hostile_trace(path: Path, wat: str | bytes, *, meta: dict[str, Any] | None = None,
                  calls: int = 1, export: str = "run", label: str = "hostile",
                  inputs: list[bytes] | None = None) -> None:  # fmt: skip
    """A trace an attacker wrote with packr-replay: a module of their choosing, any
    settings, a recorded run whose calls returned ``()``."""
    wasm = wat if isinstance(wat, bytes) else Runtime(multi_memory=True).load_module(wat).wasm
    meta = {"fuel": None, "timeout": None, "memory_limit": None, "reply": "scratch"} if meta is None else meta
    with TraceStore(path, create=True) as store:
        sha = store.add_module(wasm, "hostile")
        with store.begin_trace(sha, label=label, host="attacker", meta=meta) as writer:
            for call in range(1, calls + 1):
                data = encode(UNIT) if inputs is None else inputs[call - 1]
                writer.append(call, EventKind.EXPORT, "", export, data)
                writer.append(call, EventKind.RETURN, "", export, data, encode(UNIT), 0)
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def sql(path: Path, *statements: str | tuple[str, tuple[Any, ...]], writable_schema: bool = False) -> None:
    with closing(sqlite3.connect(path)) as conn:
        if writable_schema:
            conn.execute("PRAGMA writable_schema=ON")
        for statement in statements:
            text, params = (statement, ()) if isinstance(statement, str) else statement
            conn.execute(text, params)
        conn.commit()


PACKR = "(param i32 i32 i32 i32) (result i32)"
UNIT_BYTES = "".join(f"\\{b:02x}" for b in encode(UNIT))


def guest(start: str = "", body: str = "", head: str = '(memory (export "memory") 1)') -> str:
    """A module whose start function runs ``start`` and whose export ``run`` runs
    ``body`` and returns ``()``; ``head`` declares its memories and tables."""
    return f"""(module
  {head}
  (data (memory 0) (i32.const 1024) "{UNIT_BYTES}")
  (func $start {start})
  (start $start)
  (func (export "run") {PACKR} {body}
    (i32.store (local.get 2) (i32.const 1024))
    (i32.store (local.get 3) (i32.const {len(encode(UNIT))}))
    (i32.const 0)))"""


SPIN = "(loop $l (br $l))"
#: A packr guest panics by spinning: what these guests do when a growth is refused.
PANIC_UNLESS = "(if (i32.eqz {cond}) (then " + SPIN + "))"


# ------------------------------------------------------------------------- 1. caps


def _play(path: Path, *args: str, cap: float) -> Ran:
    return run("play", path, "--max-time", f"{cap:g}", *args, timeout=cap + SLACK + 30)


class TestCaps:
    """The replayer owns the limits: play ends within its caps whatever the file says."""

    CAP = 1.0  # seconds in CI; --slow runs under the default 60

    @pytest.fixture(autouse=True)
    def _cap(self, full: bool) -> None:
        self.CAP = 60.0 if full else 1.0

    def check_capped(self, ran: Ran, tally: Tally, cap: str, label: str) -> None:
        bounded(ran, tally, self.CAP, label)
        assert ran.code == 1, ran.err + ran.out
        assert f"cut by --max-{cap}" in ran.out, ran.out  # cap "": whichever came first

    def test_fuel_nil_and_a_start_function_that_spins(self, tmp_path: Path, tally: Tally) -> None:
        path = tmp_path / "spin.db"
        hostile_trace(path, guest(start=SPIN), meta={"fuel": None, "timeout": None,
                                                     "memory_limit": None})  # fmt: skip
        self.check_capped(_play(path, cap=self.CAP), tally, "time", "spin start")
        ran = _play(path, "--max-fuel", "100000000", cap=self.CAP)
        self.check_capped(ran, tally, "fuel", "spin start, fuel cap")
        assert "the start function" in ran.out

    def test_fuel_two_to_the_63(self, tmp_path: Path, tally: Tally) -> None:
        path = tmp_path / "fuel.db"
        hostile_trace(path, guest(body=SPIN), meta={"fuel": 2**63 - 1})
        ran = _play(path, "--max-fuel", "10000000", cap=self.CAP)
        self.check_capped(ran, tally, "fuel", "fuel 2^63")

    def test_four_tables_of_300m_elements(self, tmp_path: Path, tally: Tally) -> None:
        grow = "".join(
            f"(drop (table.grow $t{i} (ref.null func) (i32.const 300000000)))" for i in range(4)
        )
        head = '(memory (export "memory") 1) ' + " ".join(f"(table $t{i} 0 funcref)" for i in range(4))
        start = grow + PANIC_UNLESS.format(cond="(i32.ge_u (table.size $t3) (i32.const 300000000))")
        path = tmp_path / "tables.db"
        hostile_trace(path, guest(start=start, head=head))
        self.check_capped(_play(path, cap=self.CAP), tally, "time", "4 x 300M table elements")

    def test_three_memories_of_1_gib(self, tmp_path: Path, tally: Tally) -> None:
        head = '(memory $m0 (export "memory") 1) (memory $m1 1) (memory $m2 1)'
        grow = "".join(f"(drop (memory.grow $m{i} (i32.const 16383)))" for i in range(3))
        start = grow + PANIC_UNLESS.format(cond="(i32.ge_u (memory.size $m2) (i32.const 16384))")
        path = tmp_path / "memories.db"
        hostile_trace(path, guest(start=start, head=head))
        ran = _play(path, cap=self.CAP)
        bounded(ran, tally, self.CAP, "3 x 1 GiB memories")
        assert ran.code == 1, ran.err
        assert "cut by --max-" in ran.out

    def test_an_imported_memory_of_65536_pages(self, tmp_path: Path, tally: Tally) -> None:
        head = '(import "env" "memory" (memory 65536)) (export "memory" (memory 0))'
        path = tmp_path / "env_memory.db"
        hostile_trace(path, guest(head=head))
        self.check_capped(_play(path, cap=self.CAP), tally, "memory", "env.memory 4 GiB")

    def test_growth_in_an_export(self, tmp_path: Path, tally: Tally) -> None:
        body = "(loop $l (br_if $l (i32.ne (memory.grow (i32.const 1024)) (i32.const -1))))" + SPIN
        path = tmp_path / "grow.db"
        hostile_trace(path, guest(body=body))
        ran = _play(path, "--max-memory", "256MiB", cap=self.CAP)
        bounded(ran, tally, self.CAP, "memory growth")
        assert ran.code == 1, ran.err
        assert "cut by --max-" in ran.out


# ------------------------------------------------------------------- 2. hidden SQL


TRIGGER = ("CREATE TRIGGER sqlite_x AFTER INSERT ON segments BEGIN "
           "DELETE FROM modules; DELETE FROM traces; END")  # fmt: skip


class TestHiddenSql:
    """A trigger planted under a ``sqlite_`` name never fires: every command that
    writes refuses the file before writing, and the file is left as it was."""

    @pytest.fixture
    def planted(self, tmp_path: Path) -> Path:
        path = tmp_path / "planted.db"
        hostile_trace(path, guest())
        sql(path, ("INSERT INTO sqlite_master (type, name, tbl_name, rootpage, sql) "
                   "VALUES ('trigger', 'sqlite_x', 'segments', 0, ?)", (TRIGGER,)),
            writable_schema=True)  # fmt: skip
        return path

    def test_no_command_runs_it(self, planted: Path, tmp_path: Path, tally: Tally,
                                full: bool) -> None:  # fmt: skip
        before = planted.read_bytes()
        stream = tmp_path / "t.stream"
        good = tmp_path / "good.db"
        hostile_trace(good, guest())
        assert run("export", good, "-o", stream).code == 0
        for args in (["play", planted, "--save"], ["index", planted],
                     ["record", tmp_path / "x.wat", "-c", "run", "-o", planted],
                     ["import", stream, "-o", planted], ["sql", planted, "--write", "select 1"],
                     ["show", planted], ["verify", planted], ["play", planted]):  # fmt: skip
            (tmp_path / "x.wat").write_text(guest())
            # In CI the commands that would write through the installed CLI, the readers
            # in process; --slow runs every one through the installed CLI.
            writes = "--save" in args or "-o" in args or "--write" in args or args[0] == "index"
            ran = run(*args) if full or writes else run_in_process(*args)
            bounded(ran, tally, 0, f"planted trigger: {args[0]}")
            assert ran.code == 2, (args, ran.err)
            assert "did not make" in ran.one_line_error() or "malformed" in ran.err
            assert planted.read_bytes() == before

    def test_a_recursive_view(self, tmp_path: Path, tally: Tally) -> None:
        path = tmp_path / "view.db"
        hostile_trace(path, guest())
        view = ("CREATE VIEW sqlite_v AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL "
                "SELECT x + 1 FROM c) SELECT x FROM c")  # fmt: skip
        sql(path, ("INSERT INTO sqlite_master (type, name, tbl_name, rootpage, sql) "
                   "VALUES ('view', 'sqlite_v', 'sqlite_v', 0, ?)", (view,)),
            writable_schema=True)  # fmt: skip
        ran = run("sql", path, "select * from sqlite_v")
        bounded(ran, tally, 0, "recursive view")
        assert ran.code == 2
        ran.one_line_error()


# -------------------------------------------------------------------- 3. integrity


class TestIntegrity:
    """Editing what a replay runs, or how, is caught; a swapped module never runs."""

    @pytest.fixture
    def file(self, tmp_path: Path) -> Path:
        path = tmp_path / "t.db"
        hostile_trace(path, guest(), meta={"fuel": 1000000, "reply": "scratch"})
        return path

    EDITS: ClassVar[dict[str, tuple[str, tuple[Any, ...]]]] = {
        "meta": ("UPDATE traces SET meta = ?", (msgpack.packb({"fuel": None}),)),
        "label": ("UPDATE traces SET label = 'reproduced'", ()),
        "host": ("UPDATE traces SET host = 'trusted-ci'", ()),
        "created_at": ("UPDATE traces SET created_at = '2001-01-01T00:00:00'", ()),
    }

    @pytest.mark.parametrize("edit", list(EDITS))
    def test_edited_header(self, file: Path, edit: str, tally: Tally, full: bool) -> None:
        sql(file, self.EDITS[edit])
        # The installed CLI on one edit in CI (all with --slow); the others in process.
        cli = run if full or edit == "meta" else run_in_process
        verify, play = cli("verify", file), cli("play", file)
        for ran in (verify, play):
            bounded(ran, tally, 0, f"edited {edit}")
        assert verify.code == 1
        assert "TAMPERED" in verify.out
        assert play.code == 2
        assert "header" in play.one_line_error()

    def test_pointed_at_another_stored_module(self, file: Path, tally: Tally) -> None:
        other = Runtime().load_module(guest(body=SPIN)).wasm
        with TraceStore(file) as store:
            sha = store.add_module(other, "evil")
        sql(file, ("UPDATE traces SET module_sha256 = ?", (sha,)))
        verify, play = run("verify", file), run("play", file)
        bounded(play, tally, 0, "other module")
        assert (verify.code, play.code) == (1, 2)

    def test_module_bytes_swapped_under_their_key(self, file: Path, tmp_path: Path,
                                                  tally: Tally) -> None:  # fmt: skip
        other = Runtime().load_module(guest(body=SPIN)).wasm
        sql(file, ("UPDATE modules SET wasm = ?", (other,)))
        verify, play = run("verify", file), run("play", file)
        bounded(play, tally, 0, "swapped module bytes")
        assert (verify.code, play.code) == (1, 2)
        assert "does not match its SHA-256" in play.one_line_error()
        own = tmp_path / "own.wat"
        own.write_text(guest())
        assert run("play", file, "--module", own).code == 0  # another build: the user's

    def test_pinned_out_of_band(self, file: Path) -> None:
        head = json.loads(run("info", file, "--json").out)["trace"]["head_hash"]
        assert run("verify", file, "--expect", head).code == 0
        sql(file, self.EDITS["label"])
        assert run("verify", file, "--expect", head).code == 1


# --------------------------------------------------------------------- 4. terminal


NASTY = "\x1b]0;pwned\x07\x1b[2J\x1b[1;32mreproduced\x1b[0m\r\nok\x9b31m\u202eevil\x08"
ALLOWED_CONTROLS = {"\n"}


def raw_controls(text: str) -> list[str]:
    """Characters that would act on a terminal rather than show."""
    return sorted({c for c in text if (not c.isprintable() and c not in ALLOWED_CONTROLS)})


class TestTerminal:
    """Control characters in every string a trace holds reach no terminal raw; --json
    carries them exactly (as JSON escapes)."""

    @pytest.fixture
    def nasty(self, tmp_path: Path) -> Path:
        """Trace 1: label, metadata and a string value; trace 2: label, host, an import
        with such interface and function names and error, an export's error string."""
        path = tmp_path / "nasty.db"
        hostile_trace(path, guest(), label=f"label{NASTY}",
                      meta={"fuel": 1000000, "note": NASTY, NASTY: 1},
                      inputs=[encode(String(f"value{NASTY}"))])  # fmt: skip
        with TraceStore(path) as store:
            sha = store.traces()[0].module_sha256
            with store.begin_trace(sha, label=f"second{NASTY}", host=NASTY) as writer:
                writer.append(1, EventKind.EXPORT, "", "run", encode(String(NASTY)))
                writer.append(1, EventKind.IMPORT, f"iface{NASTY}", f"fn{NASTY}", encode(UNIT),
                              None, -1, Outcome.IMPORT_ERROR, f"Handler{NASTY}", f"error{NASTY}")  # fmt: skip
                writer.append(1, EventKind.RETURN, "", "run", None, None, -1, Outcome.GUEST_ERROR,
                              None, f"guest said {NASTY}")  # fmt: skip
        return path

    def test_human_outputs(self, nasty: Path, tmp_path: Path, tally: Tally, full: bool) -> None:
        commands = [
            ["show", nasty], ["show", f"{nasty}#1"], ["show", f"{nasty}#2"],
            ["show", f"{nasty}#1", "0"], ["show", f"{nasty}#2", "1"], ["show", f"{nasty}#2", "2"],
            ["info", f"{nasty}#1"], ["info", f"{nasty}#2"], ["verify", nasty],
            ["diff", f"{nasty}#1", f"{nasty}#2"], ["play", f"{nasty}#1"], ["play", f"{nasty}#2"],
            ["sql", nasty, "select label, host, meta from traces"],
            ["sql", nasty, "select ? as x", "-p", NASTY], ["index", nasty],
            ["show", f"{nasty}#label{NASTY}"], ["bundle", f"{nasty}#1", "-o", tmp_path / "b.db"],
            ["export", f"{nasty}#1", "-o", tmp_path / "e.stream"],
        ]  # fmt: skip
        for i, args in enumerate(commands):
            # In CI three go through the installed CLI (a listing, a failed replay, a query
            # parameter) and the rest run in process, through the same rendering code;
            # --slow runs every one through the installed CLI.
            ran = run(*args) if full or i in (0, 11, 13) else run_in_process(*args)
            bounded(ran, tally, 0, f"control characters: {args[0]}")
            assert ran.code in (0, 1, 2), args
            leaked = raw_controls(ran.out + ran.err)
            assert not leaked, f"{args}: {leaked!r} reached the terminal: {ran.out + ran.err!r}"

    def test_json_keeps_them_exactly(self, nasty: Path) -> None:
        for args in (["show", f"{nasty}#2", "--json"], ["info", f"{nasty}#1", "--json"],
                     ["show", nasty, "--json"]):  # fmt: skip
            ran = run(*args)
            assert ran.code == 0, ran.err
            assert not raw_controls(ran.out)
            assert any(NASTY in text for text in strings(json.loads(ran.out))), args


def strings(data: Any) -> list[str]:
    """Every string in a JSON document, keys included."""
    out: list[str] = []
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict):
            out.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return out


# --------------------------------------------------------------------------- 5. v128


class TestV128:
    """A module with v128 in its import, export and global types: no SIGABRT."""

    def test_play_and_info(self, tmp_path: Path, tally: Tally) -> None:
        head = ('(import "m" "f" (func (param v128))) (memory (export "memory") 1) '
                '(global (export "g") v128 (v128.const i64x2 0 0))')  # fmt: skip
        wat = guest(head=head).replace("(start $start)", "(start $start) "
                                       '(func (export "e") (param v128) (result v128) (local.get 0))')  # fmt: skip
        path = tmp_path / "v128.db"
        hostile_trace(path, wat)
        info, play = run("info", path), run("play", path)
        for ran in (info, play):
            bounded(ran, tally, 0, "v128")
        assert info.code == 0, info.err
        assert "v128" in info.out
        assert play.code == 2
        assert "v128" in play.one_line_error()


# ------------------------------------------------------------------------ 6. bounded


def diamonds(levels: int) -> bytes:
    """A few hundred bytes of CGRF that expand to ``2 ** (levels + 1) - 1`` nodes."""
    def node(kind: int, payload: bytes) -> bytes:
        return struct.pack("<BBHI", kind, 0, 0, len(payload)) + payload

    nodes = [node(0x03, struct.pack("<q", 7))]
    nodes += [node(0x0B, struct.pack("<III", 2, i, i)) for i in range(levels)]
    return struct.pack("<4sHHII", b"CGRF", 2, 0, len(nodes), len(nodes) - 1) + b"".join(nodes)


def nested_bomb(size: int) -> bytes:
    """msgpack that describes ~10x its size in Python objects: arrays of arrays of nils."""
    leaf = b"\x9f" + b"\xc0" * 15
    mid = b"\xdc\xff\xff" + leaf * 65535
    count = max(size // len(mid), 1)
    return b"\xdd" + count.to_bytes(4, "big") + mid * count


class TestBoundedWork:
    """Crafted values and streams cost bounded time and memory."""

    BOMB = 25_000_000  # bytes in CI; --slow: 250 MB

    @pytest.fixture(autouse=True)
    def _size(self, full: bool) -> None:
        self.BOMB = 250_000_000 if full else 25_000_000
        self.DEPTH = 1_000_000 if full else 100_000

    def test_a_dag_that_expands_to_8m_nodes(self, tmp_path: Path, tally: Tally) -> None:
        data = diamonds(22)
        assert len(data) < 700
        assert decode(data) is not None
        path = tmp_path / "dag.db"
        hostile_trace(path, guest(), inputs=[data])
        other = tmp_path / "dag2.db"
        hostile_trace(other, guest(), inputs=[diamonds(22)[:-8] + struct.pack("<q", 8)])
        for args in (["show", f"{path}#1", "0"], ["show", f"{path}#1", "0", "--json"],
                     ["diff", path, other], ["diff", path, other, "--json"],
                     ["show", f"{path}#1"], ["index", path]):  # fmt: skip
            ran = run(*args, timeout=60 + SLACK)
            bounded(ran, tally, 60, f"8M-node DAG: {' '.join(map(str, args[:1] + args[3:]))}")
            assert ran.code in (0, 1), (args, ran.err)
        shown = run("show", f"{path}#1", "0", "--json")
        assert "1,000,000 nodes" in json.loads(shown.out)["event"]["input_error"]

    def test_nested_lists_a_million_deep(self, tmp_path: Path, tally: Tally) -> None:
        depth = self.DEPTH
        value = List(ValueType.STRING, [])
        for _ in range(depth):
            value = List(ValueType.STRING, [value])
        t0 = time.perf_counter()
        data = encode(value)
        assert decode(data) == value
        tally.peak("nested_lists_encode_decode_s", round(time.perf_counter() - t0, 1))
        path = tmp_path / "deep.db"
        hostile_trace(path, guest(), inputs=[data])
        for args in (["show", f"{path}#1", "0"], ["show", f"{path}#1"], ["play", path]):
            ran = run(*args)
            bounded(ran, tally, 60, f"{depth}-deep list: {args[0]}")
            assert ran.code in (0, 1), ran.err

    def test_a_bomb_in_a_segment(self, tmp_path: Path, tally: Tally) -> None:
        path = tmp_path / "bomb.db"
        hostile_trace(path, guest())
        sql(path, ("UPDATE segments SET data = ?", (nested_bomb(self.BOMB),)))
        for command in ("show", "verify", "play"):
            ran = run(command, f"{path}#1")
            bounded(ran, tally, 60, f"segment bomb: {command}")
            assert ran.code in (1, 2), ran.err
            if ran.code == 2:
                assert "nested" in ran.one_line_error()

    def test_a_bomb_in_an_import_stream(self, tmp_path: Path, tally: Tally) -> None:
        good = tmp_path / "good.db"
        hostile_trace(good, guest())
        stream = tmp_path / "t.stream"
        assert run("export", good, "-o", stream).code == 0
        unpacker = msgpack.Unpacker(raw=False)
        unpacker.feed(stream.read_bytes())
        header = unpacker.unpack()
        header["trace"]["event_count"] = 1
        head = msgpack.packb(header, use_bin_type=True)
        for name, body in (("events", nested_bomb(self.BOMB)),
                           ("header", None)):  # fmt: skip
            if body is None:  # the bomb in the header's metadata
                header["trace"]["meta"] = {"x": msgpack.unpackb(nested_bomb(self.BOMB // 10))}
                data = msgpack.packb(header, use_bin_type=True)
            else:
                data = head + body
            ran = run("import", "-", "-o", tmp_path / f"in-{name}.db", stdin=data)
            bounded(ran, tally, 60, f"import stream bomb in the {name}")
            assert ran.code == 2
            ran.one_line_error()


# --------------------------------------------------------------------------- 7. writes


class TestWrites:
    """Outputs never clobber: an existing file, the source, a planted name."""

    def test_export(self, tmp_path: Path, tally: Tally) -> None:
        path = tmp_path / "a.db"
        hostile_trace(path, guest())
        before = path.read_bytes()
        victim = tmp_path / "victim"
        victim.write_bytes(b"keep")
        (tmp_path / ".out.stream.partial").symlink_to(victim)
        (tmp_path / "exists.stream").write_bytes(b"keep")
        for args, code in ((["export", path, "-o", path], 2),
                           (["export", path, "-o", path, "--force"], 2),
                           (["bundle", path, "-o", path, "--force"], 2),
                           (["export", path, "-o", tmp_path / "exists.stream"], 2),
                           (["export", path, "-o", tmp_path / "out.stream"], 0)):  # fmt: skip
            ran = run(*args)
            bounded(ran, tally, 0, f"writes: {args[0]}")
            assert ran.code == code, (args, ran.err)
            if code == 2:
                ran.one_line_error()
        assert path.read_bytes() == before
        assert victim.read_bytes() == b"keep"
        assert (tmp_path / "exists.stream").read_bytes() == b"keep"
