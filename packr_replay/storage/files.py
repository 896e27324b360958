"""New output files that cannot clobber anything: bundles and export streams.

A file is built under a temporary name in its destination's directory, made with
``O_CREAT | O_EXCL`` and a random suffix (``tempfile.mkstemp``): a name planted there
beforehand, a symlink included, makes it fail rather than be followed. It is moved
into place whole once complete. Without ``overwrite`` the move is a hard link, which
fails if the name was taken meanwhile (no check-then-write race); with it, a rename,
which replaces a symlink at the destination instead of writing through it. A file is
never its own source: ``export a.db -o a.db`` is refused whatever the options.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..errors import StoreError

__all__ = ["check_output", "new_file"]

_COMPANIONS = ("-wal", "-shm", "-journal")


def check_output(
    dest: str | os.PathLike[str], *, overwrite: bool = False, sources: Iterable[Path] = ()
) -> Path:
    """``dest`` as a path a new file may be written to, or :class:`StoreError` saying why
    not: a directory, one of ``sources``, an existing name (symlinks too) without
    ``overwrite``, or a directory that is not there."""
    path = Path(dest)
    for source in sources:
        if _same_file(path, source):
            raise StoreError(f"{path} is the file being read; write to another name")
    if path.is_dir():
        raise StoreError(f"{path} is a directory")
    if os.path.lexists(path) and not overwrite:
        raise StoreError(f"{path} already exists (pass --force / overwrite=True to replace it)")
    folder = path.parent
    if not folder.is_dir():
        raise StoreError(f"cannot create {path}: no such directory {folder}")
    return path


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return a.absolute() == b.absolute()


@contextlib.contextmanager
def new_file(
    dest: str | os.PathLike[str], *, overwrite: bool = False, sources: Iterable[Path] = ()
) -> Iterator[Path]:
    """Yield a fresh, empty temporary file beside ``dest`` to build the output in; on a
    clean exit it becomes ``dest``. The temporary file and anything SQLite made beside
    it are removed whatever happens."""
    path = check_output(dest, overwrite=overwrite, sources=sources)
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    except OSError as exc:
        raise StoreError(f"cannot write {path}: {exc.strerror or exc}") from None
    os.close(fd)
    tmp = Path(name)
    try:
        os.chmod(tmp, 0o644)
        yield tmp
        _publish(tmp, path, overwrite)
    finally:
        for leftover in (tmp, *(Path(f"{tmp}{c}") for c in _COMPANIONS)):
            leftover.unlink(missing_ok=True)


def _publish(tmp: Path, dest: Path, overwrite: bool) -> None:
    taken = f"{dest} already exists (pass --force / overwrite=True to replace it)"
    try:
        if overwrite:
            os.replace(tmp, dest)
            return
        try:
            os.link(tmp, dest)
        except FileExistsError:
            raise StoreError(taken) from None
        except OSError:  # a filesystem without hard links: an exclusive create, then copy
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
            try:
                fd = os.open(dest, flags, 0o644)
            except FileExistsError:
                raise StoreError(taken) from None
            with os.fdopen(fd, "wb") as out, open(tmp, "rb") as src:
                shutil.copyfileobj(src, out, 1024 * 1024)
    except OSError as exc:
        raise StoreError(f"cannot write {dest}: {exc.strerror or exc}") from None
