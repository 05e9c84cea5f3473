"""Browser tests: real Chromium (Debian's, driven by Playwright) against a real `caravan server`.

Nothing is skipped on a fresh machine: the session installs what it needs first — Debian's
``chromium`` package when /usr/bin/chromium is missing (we are root in CI; about two minutes),
and the ``playwright`` Python package when it cannot be imported. Playwright's own browser
downloads are never used.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
DOCS_IMAGES = ROOT / "docs" / "images"
UPDATE_DOCS_IMAGES = "CARAVAN_UPDATE_DOCS_IMAGES"


def _run(command: list[str], what: str, timeout: float) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        pytest.fail(
            f"{what} failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium, installed with apt-get when missing."""
    if not CHROMIUM.exists():
        sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
        env_prefix = ["env", "DEBIAN_FRONTEND=noninteractive"]
        _run([*sudo, *env_prefix, "apt-get", "update"], "apt-get update", 300)
        _run(
            [*sudo, *env_prefix, "apt-get", "install", "-y", "--no-install-recommends", "chromium"],
            "apt-get install chromium",
            600,
        )
    assert CHROMIUM.exists(), f"{CHROMIUM} is still missing after installing chromium"
    return CHROMIUM


def _playwright() -> Any:
    try:
        return importlib.import_module("playwright.sync_api")
    except ImportError:
        _run([sys.executable, "-m", "pip", "install", "playwright"], "pip install playwright", 300)
        importlib.invalidate_caches()
        return importlib.import_module("playwright.sync_api")


# Module scope, not session: while Playwright's sync API is open its event loop counts as the
# running loop of this thread, which would break the asyncio tests that run after these.
@pytest.fixture(scope="module")
def browser(chromium: Path) -> Iterator[Any]:
    sync_api = _playwright()
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(chromium), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(20_000)
    try:
        yield opened
    finally:
        context.close()


class Server:
    """A `caravan server` subprocess on a free loopback port with a fresh data directory."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.url = ""
        self.start("0")

    def start(self, port: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "caravan", "server", "--data", str(self.data), "--port", port],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        match = re.search(r"listening on (http://\S+)", line)
        if not match:
            self.stop()
            pytest.fail(f"no ready line from caravan server: {line!r}")
        self.url = match.group(1)

    def restart(self) -> None:
        """Stop the server and start a new process on the same port and data."""
        port = self.url.rsplit(":", 1)[1]
        self.stop()
        self.start(port)

    def call(self, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        """One operation of the native API."""
        body = json.dumps(request).encode()
        http = urllib.request.Request(
            f"{self.url}/api/{operation}",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(http, timeout=10) as answer:
            result: dict[str, Any] = json.loads(answer.read())
            return result

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path / "data")
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def screenshot(page: Any) -> Any:
    """Save the page as test-artifacts/screenshots/NAME.png; with ``docs=NAME`` also as
    docs/images/NAME.png (the README's picture) when that file is missing or
    CARAVAN_UPDATE_DOCS_IMAGES=1, so ordinary runs leave the committed tree unchanged."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(name: str, *, docs: str | None = None) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        target = DOCS_IMAGES / f"{docs}.png"
        if docs and (not target.exists() or os.environ.get(UPDATE_DOCS_IMAGES) == "1"):
            DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
        return path

    return take
