"""Writing a page to a file without clobbering anything.

The page is written to a temporary file beside the destination and moved into place
in one step, so a reader never sees half a report and a failed write leaves nothing
behind. Without ``overwrite`` the move is a hard link, which fails if the name was
taken in the meantime (no check-then-write race).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from ..errors import StoreError

__all__ = ["write_html"]


def write_html(path: str | os.PathLike[str], text: str, *, overwrite: bool = False) -> Path:
    """Write ``text`` (a page) to ``path``; :class:`StoreError` if it exists and
    ``overwrite`` is false, or if it cannot be written."""
    dest = Path(path)
    if dest.is_dir():
        raise StoreError(f"{dest} is a directory")
    if dest.exists() and not overwrite:
        raise StoreError(f"{dest} already exists (pass --force / overwrite=True to replace it)")
    folder = dest.parent if str(dest.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise StoreError(f"cannot write {dest}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        if overwrite:
            os.replace(tmp, dest)
        else:
            try:
                os.link(tmp, dest)
            except FileExistsError:
                raise StoreError(f"{dest} already exists (pass --force / overwrite=True to replace it)") from None
            except OSError:  # a filesystem without hard links: exclusive create instead
                with open(dest, "x", encoding="utf-8", newline="\n") as f:
                    f.write(text)
    except OSError as exc:
        raise StoreError(f"cannot write {dest}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return dest
