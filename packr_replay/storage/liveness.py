"""Is the process that was writing a trace still alive?

A trace row whose status is still ``recording`` is either being written right now or
was left behind by a recorder that died (SIGKILL, power loss, an abandoned writer).
Readers tell the two apart without any cooperation from the writer: the writer stamps
its identity into the row when it begins -- host name, boot id, pid and the process's
start time -- and clears it when it seals the trace. A reader reports ``incomplete``
unless that exact process is still running:

* another boot or another host: the writer cannot be writing to *this* file (SQLite's
  WAL needs every writer on one machine), so it is gone;
* same boot: the pid must exist, not be a zombie, and (on Linux) have the same start
  time, so a recycled pid is not mistaken for the writer;
* our own process: the writer object must still be open (a registry of live writers),
  so an abandoned writer reads as incomplete too.

No heartbeat is needed, so a recorder blocked for minutes in a slow host call is never
declared dead. Limitation: writers in another pid namespace (containers sharing a
volume) look dead to readers outside it.
"""

from __future__ import annotations

import os
import socket
import weakref
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["WriterIdentity", "is_alive", "live_writers", "register_live", "unregister_live"]


@dataclass(frozen=True, slots=True)
class WriterIdentity:
    host: str
    boot: str
    pid: int
    start: int

    @classmethod
    def current(cls) -> WriterIdentity:
        pid = os.getpid()
        return cls(_hostname(), _boot_id(), pid, _start_time(pid) or 0)


_live: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()


def register_live(trace_uuid: str, writer: object) -> None:
    """Mark a trace as held by an open writer in this process."""
    _live[trace_uuid] = writer


def unregister_live(trace_uuid: str) -> None:
    _live.pop(trace_uuid, None)


def live_writers() -> list[Any]:
    """The writers this process still has open."""
    return list(_live.values())


def is_alive(trace_uuid: str, who: WriterIdentity) -> bool:
    """True while the process named by ``who`` may still be writing the trace."""
    me = WriterIdentity.current()
    if who.host != me.host or who.boot != me.boot or who.pid <= 0:
        return False
    if who.pid == me.pid:
        return trace_uuid in _live
    start = _start_time(who.pid)
    if start is not None:  # Linux: exact, immune to pid reuse and zombies
        return start == who.start
    try:
        os.kill(who.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


@cache
def _hostname() -> str:
    return socket.gethostname()


@cache
def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot; None if unknown or dead.

    Zombies count as dead: a killed recorder that its parent has not reaped yet has
    stopped writing all the same.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except FileNotFoundError:
        return -1 if Path("/proc/self/stat").exists() else None
    except OSError:
        return None
    # "pid (comm) state ppid ..." -- comm may contain spaces and parentheses.
    fields = stat[stat.rfind(b")") + 2 :].split()
    try:
        if fields[0] in (b"Z", b"X"):
            return -1
        return int(fields[19])
    except (IndexError, ValueError):
        return None
