"""A corpus worker process: ``python -m packr_replay.corpus.worker``.

It reads one JSON object a line on stdin and answers each with one line on stdout:

* ``{"hosts": [...], "caps": {...} | null}`` first: the host specs and the replay caps
  (``fuel``, ``time``, ``memory``; null: the defaults); answered ``{"ready": true}`` (or
  ``{"error": "..."}`` and exit 2);
* ``{"job": {...}, "path": null, "ref": null}``: replay that trace (``path`` and
  ``ref``: where its store is and which trace, when not the job's file and id);
  answered ``{"outcome": {...}}``.

JSON, not pickle: nothing a worker sends can run code in the coordinator. The real
stdout is kept for the protocol and fd 1 is pointed at stderr, so a host function that
prints cannot corrupt it. The worker ignores SIGINT (the coordinator decides what a
Ctrl-C stops) and exits when its coordinator goes away (stdin closes, or it is
re-parented), even while a guest spins.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from typing import IO, Any

__all__ = ["main", "serve"]


def _watch_parent(parent: int) -> None:
    """Exit when the coordinator dies (its pipes may stay open in a spinning guest)."""
    event = threading.Event()
    while not event.wait(0.5):
        if os.getppid() != parent:
            os._exit(3)


def _send(out: IO[str], message: dict[str, Any]) -> None:
    out.write(json.dumps(message, separators=(",", ":")) + "\n")
    out.flush()


def serve(inp: IO[str], out: IO[str]) -> int:
    """Answer requests until ``inp`` closes."""
    from ..errors import PackrReplayError
    from ..replay.caps import ReplayCaps
    from .model import TraceJob
    from .replay import Checker

    first = inp.readline()
    if not first:
        return 0
    try:
        setup = json.loads(first)
        caps = setup.get("caps")
        checker = Checker(setup.get("hosts") or [], None if caps is None else ReplayCaps(**caps))
    except (PackrReplayError, ValueError, TypeError, AttributeError) as exc:
        _send(out, {"error": str(exc)})
        return 2
    _send(out, {"ready": True, "pid": os.getpid()})
    for line in inp:
        request = json.loads(line)
        job = TraceJob.from_dict(request["job"])
        outcome = checker.check(job, request.get("path"), request.get("ref"))
        _send(out, {"outcome": outcome.to_dict()})
    checker.close()
    return 0


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return serve(sys.stdin, protocol)


if __name__ == "__main__":
    sys.exit(main())
