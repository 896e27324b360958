"""A real browser for the tests: the system's Chromium driven by Playwright (no
browser download), and Datasette served on loopback with the plugin installed.

``PACKR_CHROMIUM`` names the browser (default: ``chromium`` on the PATH, as Debian's
package installs it). Without one the browser tests skip, saying so, unless
``PACKR_REQUIRE_BROWSER=1`` (``.ci/run`` sets it once it has installed Chromium), when
they fail instead. Screenshots go to ``PACKR_SCREENSHOTS`` (``.ci/run`` prints where);
with ``PACKR_DOC_SCREENSHOTS=1`` the README's are rewritten in ``docs/screenshots``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC_SCREENSHOTS = ROOT / "docs" / "screenshots"

#: Chromium's flags on a machine with no network but loopback (see the module doc).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str | None:
    named = os.environ.get("PACKR_CHROMIUM")
    if named:
        return named
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def unavailable(reason: str) -> None:
    """Skip with ``reason``, or fail where a browser is required."""
    if os.environ.get("PACKR_REQUIRE_BROWSER") == "1":
        pytest.fail(f"browser tests required (PACKR_REQUIRE_BROWSER=1) but {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def datasette_server(files: list[Path], log: Path) -> Iterator[str]:
    """``datasette FILES`` on a free loopback port (the installed command, so the
    plugin is found the way a user's ``datasette bug.db`` finds it); yields its URL."""
    exe = Path(sys.executable).parent / "datasette"
    command = str(exe) if exe.exists() else shutil.which("datasette")
    if command is None:
        pytest.fail("datasette is not installed (it comes with the test extra)")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [command, "serve", *map(str, files), "--host", "127.0.0.1", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/-/versions.json", timeout=2):
                        break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        pytest.fail(f"datasette did not start:\n{log.read_text()[-2000:]}")
                    time.sleep(0.2)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    named = os.environ.get("PACKR_SCREENSHOTS")
    if named:
        folder = Path(named)
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    return tmp_path_factory.mktemp("screenshots")


def save_screenshot(page: object, folder: Path, name: str, *, doc: bool = False) -> Path:
    """A screenshot of the viewport as ``folder/name``; README ones also into
    ``docs/screenshots`` when ``PACKR_DOC_SCREENSHOTS=1``."""
    path = folder / name
    page.screenshot(path=str(path))  # type: ignore[attr-defined]
    if doc and os.environ.get("PACKR_DOC_SCREENSHOTS") == "1":
        DOC_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOC_SCREENSHOTS / name)
    return path
