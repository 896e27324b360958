"""Start-up time of the command line, side by side with a bare interpreter.

In each round, back to back, in fresh processes:

* ``python``   ``python -c pass`` (the interpreter alone: the floor);
* ``version``  ``packr-replay --version``;
* ``help``     ``packr-replay --help``.

The goal is ``--version`` in at most 0.3 s; the ratio to the bare interpreter says how
much of that is packr-replay. The console script beside this interpreter is used when it
is installed, else ``python -m packr_replay``. Run::

    python bench/bench_startup.py            # 21 rounds
    python bench/bench_startup.py --quick    # 5 rounds
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def command() -> list[str]:
    """How the CLI is started: the installed console script, or ``-m``."""
    script = Path(sys.executable).parent / "packr-replay"
    if script.exists():
        return [str(script)]
    found = shutil.which("packr-replay")
    return [found] if found else [sys.executable, "-m", "packr_replay"]


def _time(argv: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def _summary(xs: list[float]) -> dict[str, float]:
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs)}


def run(rounds: int) -> dict[str, Any]:
    cli = command()
    runs = {
        "python": [sys.executable, "-c", "pass"],
        "version": [*cli, "--version"],
        "help": [*cli, "--help"],
    }
    for argv in runs.values():  # warm the page cache and any .pyc files once
        _time(argv)
    seconds: dict[str, list[float]] = {key: [] for key in runs}
    for _ in range(rounds):
        for key, argv in runs.items():
            seconds[key].append(_time(argv))
    ratios = {
        key: _summary([x / p for x, p in zip(seconds[key], seconds["python"], strict=True)])
        for key in ("version", "help")
    }
    return {
        "rounds": rounds,
        "command": " ".join(Path(c).name for c in cli),
        "seconds": {key: _summary(xs) for key, xs in seconds.items()},
        "samples": seconds,
        "vs_python": ratios,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(json.dumps({k: v for k, v in run(5 if args.quick else 21).items() if k != "samples"},
                     indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
