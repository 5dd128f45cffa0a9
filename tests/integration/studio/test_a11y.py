"""Accessibility of the gallery and the studio: axe-core (bundled by axe-playwright-python, no
network) in real Chromium against a real uvicorn server, in both themes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page

from tests.support.helpers import make_settings
from tests.support.live import WAIT_MS, Live, launch, serve

BLOCKING = ("serious", "critical")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with serve(make_settings(tmp_path_factory.mktemp("a11y"), dev=True)) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launch() as chromium:
        yield chromium


def opened(browser: Browser, url: str, theme: str) -> Page:
    page = browser.new_page(viewport={"width": 1500, "height": 950})
    page.add_init_script(f"localStorage.setItem('ogshot-studio-theme', '{theme}')")
    page.goto(url)
    page.wait_for_selector("body[data-state=ready]", timeout=WAIT_MS)
    assert page.evaluate("() => document.documentElement.dataset.theme") == theme
    return page


def blocking(page: Page) -> list[str]:
    """The serious and critical violations, one line per rule with the elements it names."""
    violations: list[dict[str, Any]] = Axe().run(page).response["violations"]
    return [
        f"{v['impact']} {v['id']}: {v['help']} -> {[n['target'] for n in v['nodes']][:5]}"
        for v in violations
        if v["impact"] in BLOCKING
    ]


@pytest.mark.parametrize("theme", ["dark", "light"])
def test_gallery_has_no_serious_violations(browser: Browser, live: Live, theme: str) -> None:
    page = opened(browser, f"{live.url}/preview", theme)
    try:
        assert page.locator(".template-card").count() >= 3  # checked with its cards in it
        assert blocking(page) == []
    finally:
        page.context.close()


@pytest.mark.parametrize("theme", ["dark", "light"])
@pytest.mark.parametrize("template", ["article", "launch", "minimal"])
def test_studio_has_no_serious_violations(
    browser: Browser, live: Live, template: str, theme: str
) -> None:
    page = opened(browser, f"{live.url}/preview/{template}", theme)
    try:
        assert page.locator("#params-form .field").count() >= 1
        assert blocking(page) == []
        page.get_by_role("switch", name="Show X crop").check()  # the crop overlay on top
        assert page.locator("#crop-guide").is_visible()
        assert blocking(page) == []
    finally:
        page.context.close()


def test_the_unknown_template_page_has_no_serious_violations(browser: Browser, live: Live) -> None:
    page = browser.new_page()
    try:
        response = page.goto(f"{live.url}/preview/articel")
        assert response is not None and response.status == 404
        assert blocking(page) == []
    finally:
        page.context.close()


def test_error_states_have_no_serious_violations(browser: Browser, live: Live) -> None:
    """The overlay, a field marked invalid and a broken card in the gallery, in both themes."""
    (live.templates / "broken.html").write_text(
        '{#ogshot\n[params.title]\nexample = "x"\n#}\n<h1>{{ title }}</h1>\n<p>{% endfor %}</p>\n'
    )
    for theme in ("dark", "light"):
        page = browser.new_page(viewport={"width": 1500, "height": 950})
        page.add_init_script(f"localStorage.setItem('ogshot-studio-theme', '{theme}')")
        try:
            page.goto(f"{live.url}/preview/broken")
            page.wait_for_selector("#error-overlay:not([hidden])", timeout=WAIT_MS)
            assert page.locator("#error-excerpt .row.hit").count() == 1
            assert blocking(page) == []
            page.goto(f"{live.url}/preview/minimal?size=500")
            page.wait_for_selector('.field[data-param="size"].invalid', timeout=WAIT_MS)
            assert blocking(page) == []
            page.goto(f"{live.url}/preview")
            page.wait_for_selector("body[data-state=ready]", timeout=WAIT_MS)
            assert page.locator('[data-template="broken"].broken').count() == 1
            assert blocking(page) == []
        finally:
            page.context.close()
