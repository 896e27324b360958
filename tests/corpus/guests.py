"""Guests and hosts for the corpus tests, and the corpus they record.

* ``kv`` v1 forwards its input to the typed import ``t:host/kv.get`` and returns the
  reply; v2 asks ``t:host/kv.put`` instead, so every kv trace diverges at that import.
* ``actor`` calls the raw import ``env.act(len)`` with its input's length, then echoes
  the input. Raw imports are not served from a trace, so replay calls the host given
  with ``--host``: :data:`NASTY_HOST` kills its own process for one length (a crash)
  and sleeps for another (a hang outside wasm), is slow for a third, and kills the
  process that started the replay for a fourth (a Dask worker dying under a task).
* ``spin`` v1 echoes; v2 loops forever, so replaying a trace recorded with a fuel
  budget runs out of it (over caps, fuel).
"""

from __future__ import annotations

from pathlib import Path

from packr_replay import api
from packr_replay.abi import String, encode
from packr_replay.runtime import Runtime
from packr_replay.runtime.demo import DemoHost, example_guest

_ECHO_TAIL = """
    (memory.copy (i32.const 16392) (local.get $p) (local.get $n))
    (i32.store (local.get $opp) (i32.const 16392))
    (i32.store (local.get $olp) (local.get $n))
    (i32.const 0)))
"""


def kv(function: str) -> str:
    return f"""
(module
  (import "t:host/kv" "{function}" (func $imp (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (func (export "run") (param $p i32) (param $n i32) (param $opp i32) (param $olp i32) (result i32)
    (drop (call $imp (local.get $p) (local.get $n) (local.get $opp) (local.get $olp)))
    (i32.const 0)))
"""


ACTOR = """
(module
  (import "env" "act" (func $act (param i32) (result i32)))
  (memory (export "memory") 2)
  (func (export "run") (param $p i32) (param $n i32) (param $opp i32) (param $olp i32) (result i32)
    (drop (call $act (local.get $n)))""" + _ECHO_TAIL

SPIN_V1 = """
(module
  (memory (export "memory") 2)
  (func (export "run") (param $p i32) (param $n i32) (param $opp i32) (param $olp i32) (result i32)
""" + _ECHO_TAIL

SPIN_V2 = """
(module
  (memory (export "memory") 2)
  (func (export "run") (param $p i32) (param $n i32) (param $opp i32) (param $olp i32) (result i32)
    (loop $forever (br $forever))
    (i32.const 0)))
"""

CRASH_INPUT = String("crash!")
HANG_INPUT = String("hang, please")
FINE_INPUT = String("ok")
SLOW_INPUT = String("slow, slow, slow")  # a replay that takes 0.3 s
KILL_PARENT_INPUT = String("kill my parent process")  # kills whoever started the replay

NASTY_HOST = f'''
import os
import signal
import time


def register(builder):
    def act(ctx, n):
        if n == {len(encode(CRASH_INPUT))}:
            os.kill(os.getpid(), signal.SIGKILL)
        if n == {len(encode(HANG_INPUT))}:
            time.sleep(3600)
        if n == {len(encode(SLOW_INPUT))}:
            time.sleep(0.3)
        if n == {len(encode(KILL_PARENT_INPUT))}:
            os.kill(os.getppid(), signal.SIGKILL)
            time.sleep(3600)
        return 0

    builder.interface("env").func_raw("act", act, params=("i32",), results=("i32",))
'''


def _benign_act(builder: object) -> None:
    builder.interface("env").func_raw(  # type: ignore[attr-defined]
        "act", lambda ctx, n: 0, params=("i32",), results=("i32",)
    )


def _kv_host(builder: object) -> None:
    builder.interface("t:host/kv").func_typed(  # type: ignore[attr-defined]
        "get", lambda ctx, v: String(f"value of {v}")
    )


def write_guests(root: Path) -> dict[str, Path]:
    """The WAT builds, as files named after their module (kv, actor, spin...)."""
    files = {
        "kv": ("kv/kv.wat", kv("get")),
        "kv2": ("kv2/kv.wat", kv("put")),
        "actor": ("actor/actor.wat", ACTOR),
        "spin": ("spin/spin.wat", SPIN_V1),
        "spin2": ("spin2/spin.wat", SPIN_V2),
    }
    out = {}
    for key, (name, text) in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        out[key] = path
    return out


def record_corpus(root: Path, guests: dict[str, Path]) -> dict[str, Path]:
    """A corpus directory: clock_actor traces (reproduce), kv traces, actor traces
    (fine, crash, hang), a spin trace with a fuel budget, and a file that is no trace
    store. Returns the paths by name."""
    corpus = root / "corpus"
    (corpus / "nested").mkdir(parents=True)
    clock = corpus / "clock.db"
    for i in range(3):
        api.record_run(example_guest("clock_actor"), [("run", String(f"user{i}"))],
                       host=DemoHost(), store=clock, label=f"clock-{i}")  # fmt: skip
    kvdb = corpus / "nested" / "kv.db"
    for i in range(2):
        api.record_run(guests["kv"], [("run", String(f"key{i}"))], host=_kv_host,
                       store=kvdb, label=f"kv-{i}")  # fmt: skip
    # The actor traces leave env.act to a host (raw_imports="host"), so that replaying
    # them runs NASTY_HOST's act, which crashes, hangs or is slow.
    actor = corpus / "actor.db"
    for label, value in (("fine", FINE_INPUT), ("crash", CRASH_INPUT), ("hang", HANG_INPUT)):
        api.record_run(guests["actor"], [("run", value)], host=_benign_act, store=actor,
                       label=label, raw_imports="host")  # fmt: skip
    slow = root / "slow" / "slow.db"  # (outside the corpus directory)
    slow.parent.mkdir()
    for i in range(8):
        api.record_run(guests["actor"], [("run", SLOW_INPUT)], host=_benign_act, store=slow,
                       label=f"slow-{i}", raw_imports="host")  # fmt: skip
    api.record_run(guests["actor"], [("run", KILL_PARENT_INPUT)], host=_benign_act,
                   store=root / "slow" / "killer.db", label="killer", raw_imports="host")  # fmt: skip
    spin = corpus / "spin.db"
    api.record_run(guests["spin"], [("run", FINE_INPUT)], store=spin, label="spin",
                   runtime=Runtime(fuel=20_000_000))  # fmt: skip
    junk = corpus / "junk.db"
    junk.write_bytes(b"SQLite format 3\x00" + b"\x00" * 200)
    (corpus / "notes.txt").write_text("not a trace")
    return {"dir": corpus, "clock": clock, "kv": kvdb, "actor": actor, "spin": spin,
            "junk": junk, "slow": slow}  # fmt: skip
