"""Helpers the suites share: settings over a private copy of the shipped templates, pixels of an
image, and waits on a TestClient's app."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyvips
from starlette.testclient import TestClient

from ogshot.core.settings import Settings
from ogshot.pipeline.renderer import Renderer

ROOT = Path(__file__).resolve().parents[2]
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
