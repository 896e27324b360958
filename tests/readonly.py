"""Running commands where a directory is read-only, as a CI artifact or a read-only
checkout is.

The best stand-in is the real thing: a read-only bind mount of the directory, made in a
private mount namespace (``unshare -m``, or ``unshare -rm`` for a user without
privileges) so it vanishes with the command and touches nothing outside. Where mounting
is not allowed, a directory without write permission does for a user that is not root
(root writes through permissions, so there the tests skip).
"""

from __future__ import annotations

import os
import shlex
import shutil
import stat
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import pytest

__all__ = ["ReadOnlyDir", "read_only_dir"]

PYTHON_SNIPPET = "import sys; exec(sys.argv[1])"
"""``[sys.executable, "-c", PYTHON_SNIPPET, code]`` runs ``code`` (for library reads)."""


@cache
def _unshare_prefix() -> tuple[str, ...] | None:
    """How to enter a private mount namespace where we may mount, or None."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    for prefix in ((unshare, "-m"), (unshare, "-rm")):
        probe = subprocess.run(
            [*prefix, "sh", "-c", "mount --bind / / 2>/dev/null || exit 3"],
            capture_output=True,
            timeout=30,
        )
        if probe.returncode == 0:
            return prefix
    return None


class ReadOnlyDir:
    """``source`` (fill it first) seen read-only at ``path`` by :meth:`run`.

    ``how`` says which stand-in is used: ``"bind mount"`` or ``"read-only directory"``
    (for which the first :meth:`run` takes write permission away).
    """

    def __init__(self, source: Path, path: Path, how: str, prefix: tuple[str, ...]) -> None:
        self.source = source
        self.path = path
        self.how = how
        self._prefix = prefix

    def run(
        self,
        argv: Sequence[str | os.PathLike[str]],
        *,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` with :attr:`path` read-only (the command's exit code is returned)."""
        args = [str(a) for a in argv]
        if self.how == "read-only directory":
            _set_writable(self.source, False)
        else:
            src, dst = shlex.quote(str(self.source)), shlex.quote(str(self.path))
            script = (
                f"mount --bind {src} {dst} && mount -o remount,bind,ro {dst} || exit 97; "
                'cd "$PWD" 2>/dev/null; exec "$@"'  # (cd: the mount, not the directory under it)
            )
            args = [*self._prefix, "sh", "-c", script, "sh", *args]
        return subprocess.run(
            args,
            capture_output=True,
            text=True,
            cwd=cwd,
            env={**os.environ, "COLUMNS": "200", **(env or {})},
            timeout=timeout,
        )


@contextmanager
def read_only_dir(tmp_path: Path) -> Iterator[ReadOnlyDir]:
    """A :class:`ReadOnlyDir` under ``tmp_path``; skips when no stand-in is possible."""
    source = tmp_path / "ro-source"
    source.mkdir()
    prefix = _unshare_prefix()
    if prefix is not None:
        view = tmp_path / "ro"
        view.mkdir()
        yield ReadOnlyDir(source, view, "bind mount", prefix)
        return
    if os.geteuid() == 0:
        pytest.skip("cannot mount here, and root writes through directory permissions")
    ro = ReadOnlyDir(source, source, "read-only directory", ())
    try:
        yield ro
    finally:
        _set_writable(source, True)


def _set_writable(root: Path, writable: bool) -> None:
    bits = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
    for path in [root, *root.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod((mode | stat.S_IWUSR) if writable else (mode & ~bits))
