"""Browser tests of the dashboard: a real service process and Debian's chromium, driven by
Playwright (pointed at the system browser; Playwright's own browsers are never downloaded).

Screenshots go to ``$DASHBOARD_SCREENSHOTS`` when set, else to the test's ``tmp_path``.
Every page a test opens fails it on any console error or uncaught exception.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
DESKTOP = {"width": 1360, "height": 900}
PHONE = {"width": 390, "height": 844}


def chromium_path() -> str | None:
    given = os.environ.get("DASHBOARD_CHROMIUM")
    if given:
        return given
    return next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    var: Path
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        cmd = [sys.executable, "-m", "server", "--port", str(self.port), "--var", str(self.var)]
        cmd += ["--workers", "2", "--heartbeat", "1", *self.args]
        log = open(self.var.parent / f"server-{self.port}.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            cmd, cwd=REPO_ROOT, stdout=log, stderr=log, env={**os.environ, **self.env}
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2):
                    return self
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError("the service exited during start-up") from None
                time.sleep(0.1)
        raise RuntimeError("the service did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator:
    servers: list[Server] = []

    def start(*args: str, **env: str) -> Server:
        var = tmp_path / f"var{len(servers)}"
        var.mkdir()
        server = Server(var=var, args=list(args), env=env)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


# Module scope, not session: Playwright's sync API keeps an event loop running while it is
# started, which would break every asyncio test collected after these.
@pytest.fixture(scope="module")
def browser() -> Iterator:
    playwright_sync = pytest.importorskip("playwright.sync_api", reason="make setup installs it")
    path = chromium_path()
    if path is None:
        pytest.skip("no chromium on this machine (make setup installs it)")
    with playwright_sync.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=path, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        yield browser
        browser.close()


@pytest.fixture
def shots(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    base = os.environ.get("DASHBOARD_SCREENSHOTS")
    folder = Path(base) / request.node.name if base else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def wait_js(page, expression: str, arg=None, timeout: float = 30.0, poll: float = 0.05):
    """Wait until ``expression`` (a JS function of ``arg``) is truthy on the page.

    Playwright's own ``wait_for_function`` compiles its predicate with ``new Function``,
    which the dashboard's Content-Security-Policy refuses; ``evaluate`` is not subject to it.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = page.evaluate(expression, arg)
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"not true after {timeout} s: {expression}")
        time.sleep(poll)


@dataclass
class Pages:
    """Opens pages in fresh contexts; each one records its console errors."""

    browser: object
    errors: list[str] = field(default_factory=list)
    contexts: list = field(default_factory=list)
    allowed: list[str] = field(default_factory=list)

    def allow(self, text: str) -> None:
        """An error the test provokes on purpose (a refused token's 401)."""
        self.allowed.append(text)

    def record(self, text: str) -> None:
        if not any(a in text for a in self.allowed):
            self.errors.append(text)

    def open(self, viewport: dict[str, int] | None = None):
        context = self.browser.new_context(viewport=viewport or DESKTOP)  # type: ignore[attr-defined]
        context.set_default_timeout(30_000)
        self.contexts.append(context)
        page = context.new_page()
        page.on(
            "console",
            lambda msg: msg.type == "error" and self.record(f"{msg.text} ({msg.location})"),
        )
        page.on("pageerror", lambda exc: self.record(f"uncaught: {exc}"))
        return page

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def pages(browser) -> Iterator[Pages]:
    opened = Pages(browser)
    yield opened
    opened.close()
    assert opened.errors == [], "console errors:\n" + "\n".join(opened.errors)
