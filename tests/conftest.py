"""Shared fixtures: real Chromium, real pyvips, real diskcache, all in tmp folders."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pyvips
from playwright.sync_api import Browser, Page
from starlette.testclient import TestClient

from ogshot.app import create_app
from ogshot.config import Settings
from ogshot.pipeline import Renderer

from .live import checked_page, launch

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted(p.stem for p in (ROOT / "html_templates").glob("*.html"))  # template names


def make_settings(base: Path, **overrides: Any) -> Settings:
    """Settings over a private copy of the shipped templates and static files."""
    templates, static = base / "html_templates", base / "static"
    if not templates.exists():
        shutil.copytree(ROOT / "html_templates", templates)
    if not static.exists():
        shutil.copytree(ROOT / "static", static)
    values: dict[str, Any] = {
        "templates_dir": templates,
        "static_dir": static,
        "cache_dir": base / "cache",
        "pool_size": 2,
        "render_timeout": 10.0,
    }
    values.update(overrides)
    return Settings.load(environ={}, config_file=ROOT / "playwright.config.json", **values)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture(scope="module")
def module_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ogshot")


@pytest.fixture(scope="module")
def client(module_dir: Path) -> Iterator[TestClient]:
    """One app (one browser) per test module, over the shipped templates."""
    with TestClient(create_app(make_settings(module_dir))) as test_client:
        yield test_client


@contextlib.contextmanager
def saved(client: TestClient, within: float = 10.0) -> Iterator[None]:
    """File edits made inside count once it exits: it waits until the app's file watcher has
    reported them, and with that, the templates and static folder were read again."""
    watcher = client.app.state.renderer.watcher  # type: ignore[attr-defined]
    seen = watcher.version
    yield
    assert client.portal is not None, "use the TestClient as a context manager"
    version = client.portal.call(watcher.wait, seen, within)
    assert version > seen, f"the file watcher reported no change within {within} s"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """A real Chromium for a module's browser tests (a module may bring its own)."""
    with launch() as chromium:
        yield chromium


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page (own context, own localStorage) that fails the test on a JavaScript error;
    closing it ends its event stream."""
    with checked_page(browser) as fresh:
        yield fresh


def image_of(data: bytes) -> pyvips.Image:
    return pyvips.Image.new_from_buffer(data, "")


def pixel(data: bytes, x: int, y: int) -> list[float]:
    return list(image_of(data)(x, y))[:3]


def mean_difference(a: bytes, b: bytes) -> float:
    """Mean absolute difference per channel (0..255) between two images of the same size."""
    first, second = image_of(a)[:3], image_of(b)[:3]
    return float((first.cast("float") - second.cast("float")).abs().avg())


def settled(client: TestClient) -> None:
    """Wait for the app's disk writes under way (a miss is answered before its write lands)."""
    renderer: Renderer = client.app.state.renderer  # type: ignore[attr-defined]
    assert client.portal is not None  # inside `with TestClient(...)`
    client.portal.call(renderer.layers.flush)


def renders(client: TestClient) -> int:
    count: int = client.app.state.renderer.pool.renders  # type: ignore[attr-defined]
    return count
