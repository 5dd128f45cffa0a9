"""The studio with warnings and template sizes, in a real browser against a real uvicorn server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page

from tests.integration.engine.test_typography import TOFU, app_settings
from tests.support.live import WAIT_MS, serve


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = app_settings(tmp_path_factory.mktemp("studio-typography"), pool_size=2)
    with serve(settings) as live:
        yield live.url


def open_studio(page: Page, url: str, template: str) -> None:
    page.goto(f"{url}/preview/{template}")
    page.wait_for_selector("body[data-state=ready]", timeout=WAIT_MS)


def test_a_missing_glyph_is_shown_next_to_its_field_and_cleared_after(page: Page, url: str) -> None:
    open_studio(page, url, "card")
    field = '.field[data-param="title"]'
    page.fill("#p-title", f"Box {TOFU} here")
    page.wait_for_selector(f"{field}.warned", timeout=WAIT_MS)
    message = page.locator(f"{field} .field-error").inner_text()
    assert "U+F0000" in message and "font" in message
    assert "U+F0000" in page.locator("#stat-warning").inner_text()
    assert page.locator("#error-overlay").is_hidden()  # a warning, not an error: the image shows
    page.fill("#p-title", "Nothing missing")
    page.wait_for_selector(f"{field}:not(.warned)", timeout=WAIT_MS)
    page.wait_for_function("() => document.getElementById('stat-warning').textContent === ''")


def test_a_square_template_gets_a_square_frame_crops_and_meta_tags(page: Page, url: str) -> None:
    open_studio(page, url, "square")
    canvas = page.locator("#canvas").bounding_box()
    assert canvas and abs(canvas["width"] / canvas["height"] - 1.0) < 0.01
    assert page.locator("#stat-size").inner_text().startswith("1080\u00d71080")
    # X shows a 2:1 centre crop: (1080 - 540) / 2 px off the top and the bottom.
    x_note = page.locator('[data-platform="x"] h3').inner_text()
    assert "270 px off top and bottom" in x_note
    meta = page.locator("#meta-tags").inner_text()
    assert '<meta property="og:image:width" content="1080">' in meta
    assert '<meta property="og:image:height" content="1080">' in meta
    page.click("label.switch:has(#show-crop)")
    band = page.locator("#crop-guide .crop-band.top").bounding_box()
    frame = page.locator("#canvas").bounding_box()
    assert band and frame
    assert abs(band["height"] / frame["height"] - 270 / 1080) < 0.005
