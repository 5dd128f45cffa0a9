"""A real ogshot app under uvicorn in a thread on a free loopback port, and a real Chromium to
look at it: what the browser tests of /preview share."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, sync_playwright

from ogshot.app import create_app
from ogshot.core.settings import ESSENTIAL_ARGS, Settings
from ogshot.engine.chromium import find_chromium

__all__ = ["CHROMIUM_ARGS", "WAIT_MS", "Live", "checked_page", "launch", "serve"]

CHROMIUM_ARGS = list(ESSENTIAL_ARGS)
WAIT_MS = 15_000


@dataclass
class Live:
    url: str
    settings: Settings

    @property
    def templates(self) -> Path:
        return Path(self.settings.templates_dir)

    @property
    def static(self) -> Path:
        return Path(self.settings.static_dir)


@contextlib.contextmanager
def serve(settings: Settings) -> Iterator[Live]:
    """Run the app with ``settings`` under uvicorn in a thread, on a free loopback port."""
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=0,
        log_level="warning",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the uvicorn server did not start (see the captured log above)")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Live(url=f"http://127.0.0.1:{port}", settings=settings)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextlib.contextmanager
def launch() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=find_chromium(), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@contextlib.contextmanager
def checked_page(browser: Browser) -> Iterator[Page]:
    """A fresh page (own context, own localStorage) that fails the test on any JavaScript error;
    closing it ends its event stream."""
    page = browser.new_page(viewport={"width": 1500, "height": 950})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    page.context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"
