"""The Activity page and the studio's variants in a real browser: Playwright's Chromium against a
real uvicorn server on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.helpers import make_settings
from tests.support.live import WAIT_MS, serve
from tests.unit.templates.test_variants import AB_TEMPLATE


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = make_settings(tmp_path_factory.mktemp("activity-browser"), dev=True)
    (Path(settings.templates_dir) / "abtest.html").write_text(AB_TEMPLATE)
    with serve(settings) as live:
        yield live.url


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A page the size of a laptop screen (the studio's layout), on conftest's browser."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    yield page
    context.close()


def fetch(base_url: str, path: str, user_agent: str, times: int) -> None:
    for _ in range(times):
        response = httpx.get(base_url + path, headers={"user-agent": user_agent}, timeout=30)
        assert response.status_code == 200, response.text


def test_the_activity_page_shows_known_traffic_and_updates_live(base_url: str, page: Page) -> None:
    fetch(base_url, "/og/minimal.png?title=Activity+page", "Twitterbot/1.0", 3)
    page.goto(base_url + "/preview/_activity")
    minimal = page.locator('#templates tr[data-template="minimal"]')
    expect(minimal.locator("td.hits")).to_have_text("2", timeout=WAIT_MS)
    expect(minimal.locator("td.renders")).to_have_text("1")
    expect(minimal.locator("td.p50")).to_contain_text("ms")
    assert minimal.locator("svg.spark polyline").count() == 2
    twitter = page.locator('#platforms tr[data-platform="twitter"]')
    expect(twitter.locator("td.fetches")).to_have_text("3")
    expect(page.locator('#stages tr[data-stage="capture"] svg.bars rect')).to_have_count(2)

    # Live: more traffic shows up without a reload.
    fetch(base_url, "/og/minimal.png?title=Activity+page", "Slackbot-LinkExpanding 1.0", 2)
    expect(minimal.locator("td.hits")).to_have_text("4", timeout=WAIT_MS)
    slack = page.locator('#platforms tr[data-platform="slack"]')
    expect(slack.locator("td.fetches")).to_have_text("2", timeout=WAIT_MS)
    assert page.locator("#poll").get_attribute("data-state") == "live"


def test_the_studio_shows_every_variant_side_by_side(base_url: str, page: Page) -> None:
    page.goto(base_url + "/preview/abtest")
    for variant in ("light", "dark"):
        card = page.locator(f'#variants-grid figure[data-variant="{variant}"]')
        expect(card).to_have_attribute("data-state", "ready", timeout=WAIT_MS)
        width = card.locator("img").evaluate("img => img.decode().then(() => img.naturalWidth)")
        assert width == 1200
    etags = page.eval_on_selector_all("#variants-grid figure", "fs => fs.map(f => f.dataset.etag)")
    assert len(set(etags)) == 2 and all(etags)  # two different images
    # The variant the studio's own parameters draw is marked; exactly one is.
    expect(page.locator('#variants-grid figure[data-current="true"]')).to_have_count(1)
    # A plain template has no variants panel.
    page.goto(base_url + "/preview/minimal")
    expect(page.locator("body")).to_have_attribute("data-state", "ready", timeout=WAIT_MS)
    assert page.locator("#variants-panel").count() == 0
