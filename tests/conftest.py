"""Shared fixtures: real Chromium, real pyvips, real diskcache, all in tmp folders."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page
from starlette.testclient import TestClient

from ogshot.app import create_app
from ogshot.core.settings import Settings
from tests.support.helpers import make_settings
from tests.support.live import checked_page, launch


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
