"""Byte budgets through the server: ``max_kb`` on a photo card, signed, in the key, answered with
the chosen quality; a template's declared default; a PNG that cannot fit is a 422."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from starlette.testclient import TestClient

from ogshot.app import create_app
from ogshot.pipeline.renderer import Renderer
from ogshot.templates.signing import sign, signed_path
from tests.support.helpers import ROOT, image_of, make_settings

SECRET = "budget-secret"
TITLE = {"title": "What the mountains taught us about latency"}


@pytest.fixture(scope="module")
def app(module_dir: Path) -> Iterator[TestClient]:
    settings = make_settings(module_dir, secrets=(SECRET,), pool_size=1)
    shutil.copy(ROOT / "benchmarks" / "cards" / "photo.html", settings.templates_dir)
    shutil.copy(ROOT / "benchmarks" / "cards" / "static" / "photo.jpg", settings.static_dir)
    # The same card with a declared default budget.
    source = (ROOT / "benchmarks" / "cards" / "photo.html").read_text()
    budgeted = source.replace("{#ogshot\n", "{#ogshot\nmax_kb = 80\n", 1)
    Path(settings.templates_dir, "photo-budget.html").write_text(budgeted)
    with TestClient(create_app(settings)) as client:
        yield client


def url(app: TestClient, template: str, params: dict[str, str], fmt: str) -> str:
    renderer: Renderer = app.app.state.renderer  # type: ignore[attr-defined]
    return signed_path(renderer.settings, template, params, fmt)


def test_a_photo_card_as_jpeg_fits_60_kb_and_says_its_quality(app: TestClient) -> None:
    plain = app.get(url(app, "photo", TITLE, "jpg"))
    assert plain.status_code == 200
    assert len(plain.content) > 60_000  # the positive control: without a budget it is over
    assert "x-ogshot-quality" not in plain.headers

    response = app.get(url(app, "photo", {**TITLE, "max_kb": "60"}, "jpg"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/jpeg"
    assert len(response.content) <= 60_000
    quality = int(response.headers["x-ogshot-quality"])
    assert 1 <= quality < 88
    image = image_of(response.content)
    assert (image.width, image.height) == (1200, 630)
    # A hit answers the same bytes and the same quality, from the cache.
    again = app.get(url(app, "photo", {**TITLE, "max_kb": "60"}, "jpg"))
    assert again.headers["x-ogshot-cache"] == "hit"
    assert again.content == response.content
    assert again.headers["x-ogshot-quality"] == str(quality)


def test_a_photo_card_as_png_fits_by_a_palette_or_is_a_422(app: TestClient) -> None:
    response = app.get(url(app, "photo", {**TITLE, "max_kb": "60"}, "png"))
    if response.status_code == 200:
        assert len(response.content) <= 60_000
        assert response.headers["x-ogshot-quality"].startswith("palette-")
        return
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["detail"]["max_kb"] == 60
    assert body["detail"]["smallest_bytes"] > 60_000
    assert body["detail"]["suggestion"] == "jpeg"
    assert "JPEG" in body["error"] and "KB" in body["error"]
    # Nothing was cached: the same request renders (and refuses) again.
    assert app.get(url(app, "photo", {**TITLE, "max_kb": "60"}, "png")).status_code == 422


def test_a_roomier_png_budget_fits_by_a_palette(app: TestClient) -> None:
    response = app.get(url(app, "photo", {**TITLE, "max_kb": "600"}, "png"))
    assert response.status_code == 200, response.text
    assert len(response.content) <= 600_000
    assert response.headers["x-ogshot-quality"] == "palette-256"
    assert image_of(response.content).get("palette") == 1


def test_the_key_differs_with_and_without_max_kb(app: TestClient) -> None:
    renderer: Renderer = app.app.state.renderer  # type: ignore[attr-defined]
    portal = app.portal
    assert portal is not None
    keys = {
        portal.call(renderer.resolve, "photo", params, "jpeg").key
        for params in (TITLE, {**TITLE, "max_kb": "60"}, {**TITLE, "max_kb": "61"})
    }
    assert len(keys) == 3


def test_a_signature_without_max_kb_does_not_verify_a_url_with_it(app: TestClient) -> None:
    signed = url(app, "photo", TITLE, "jpg")
    assert app.get(signed).status_code == 200
    response = app.get(signed + "&max_kb=60")
    assert response.status_code == 403
    assert response.json()["detail"] == {"parameter": "s"}


@pytest.mark.parametrize("bad", ["5", "20000", "sixty", "60.5"])
def test_a_budget_out_of_range_is_a_400_naming_it(app: TestClient, bad: str) -> None:
    response = app.get(url(app, "photo", {**TITLE, "max_kb": bad}, "jpg"))
    assert response.status_code == 400
    body = response.json()
    assert body["detail"] == {"parameter": "max_kb"}
    assert "10..10000" in body["error"]


def test_a_declared_default_budget_applies_and_a_url_budget_overrides_it(
    app: TestClient,
) -> None:
    default = app.get(url(app, "photo-budget", TITLE, "jpg"))
    assert default.status_code == 200, default.text
    assert len(default.content) <= 80_000
    assert int(default.headers["x-ogshot-quality"]) < 88
    tighter = app.get(url(app, "photo-budget", {**TITLE, "max_kb": "40"}, "jpg"))
    assert tighter.status_code == 200
    assert len(tighter.content) <= 40_000
    assert int(tighter.headers["x-ogshot-quality"]) < int(default.headers["x-ogshot-quality"])
    renderer: Renderer = app.app.state.renderer  # type: ignore[attr-defined]
    assert renderer.catalog.get("photo-budget").describe()["max_kb"] == 80


def test_the_query_form_takes_max_kb_too(app: TestClient) -> None:
    params = {**TITLE, "max_kb": "60"}
    data = json.dumps(params)
    query = urlencode(
        {
            "template": "photo",
            "format": "jpeg",
            "data": data,
            "s": sign(SECRET, "photo", params, "jpeg"),
        }
    )
    response = app.get(f"/og?{query}")
    assert response.status_code == 200, response.text
    assert len(response.content) <= 60_000
    assert response.headers["x-ogshot-quality"]


def test_openapi_documents_max_kb_with_the_declared_default(app: TestClient) -> None:
    spec = app.get("/openapi.json").json()
    params = spec["paths"]["/og/photo-budget.{format}"]["get"]["parameters"]
    budget = next(p for p in params if p["name"] == "max_kb")
    assert budget["schema"] == {"type": "integer", "minimum": 10, "maximum": 10000}
    assert "default: 80" in budget["description"]
