"""Tailwind templates through the app, with real Chromium and the real Tailwind CLI: the pixels show
the compiled classes; a compile error is a clear 500 on /og and a template error in the studio, and
no image is cached until it is fixed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from ogshot.app import create_app
from ogshot.core.settings import Settings
from tests.support.helpers import image_of, pixel, saved

CARD = """{#ogshot
tailwind = true
[params.tone]
type = "str"
choices = ["red", "blue"]
default = "red"
#}
{% set tones = {"red": "bg-[#ff0000]", "blue": "bg-[#0000ff]"} %}
<!doctype html><html><head></head><body class="m-0 bg-white">
<div class="absolute top-0 left-0 h-[200px] w-[300px] {{ tones[tone] }}"></div>
<div class="absolute top-[300px] left-0 h-[100px] w-[100px] bg-brand"></div>
</body></html>
"""
THEME = "@theme { --color-brand: #00ff00; }\n"
BROKEN = THEME + ".x { @apply no-such-utility; }\n"


def app_settings(base: Path) -> Settings:
    templates, static = base / "templates", base / "static"
    templates.mkdir(parents=True)
    static.mkdir()
    (templates / "card.html").write_text(CARD)
    (static / "tailwind.css").write_text(THEME)
    return Settings.load(
        environ={},
        templates_dir=templates,
        static_dir=static,
        cache_dir=base / "cache",
        pool_size=1,
        render_timeout=10.0,
        dev=True,
    )


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with TestClient(create_app(app_settings(tmp_path_factory.mktemp("tailwind")))) as client:
        yield client


def test_the_compiled_classes_draw_the_picture(app: TestClient) -> None:
    response = app.get("/og/card.png")
    assert response.status_code == 200
    assert "x-ogshot-warning" not in response.headers
    image = response.content
    assert (image_of(image).width, image_of(image).height) == (1200, 630)
    assert pixel(image, 10, 10) == [255, 0, 0]  # bg-[#ff0000]
    assert pixel(image, 299, 199) == [255, 0, 0]  # w-[300px] h-[200px]: its last pixel
    assert pixel(image, 301, 10) == [255, 255, 255]  # and no further
    assert pixel(image, 50, 350) == [0, 255, 0]  # bg-brand, the token of static/tailwind.css
    # A parameter picks a class from the template's map: Tailwind saw both.
    blue = app.get("/og/card.png", params={"tone": "blue"}).content
    assert pixel(blue, 10, 10) == [0, 0, 255]


def test_a_compile_error_is_a_500_and_a_studio_error_and_nothing_is_cached(
    app: TestClient,
) -> None:
    settings = app.app.state.renderer.settings  # type: ignore[attr-defined]
    good = app.get("/preview/_api/templates/card").json()["version"]
    with saved(app):
        (settings.static_dir / "tailwind.css").write_text(BROKEN)
        # A template never rendered before: while the theme is broken it gets no image at all.
        (settings.templates_dir / "fresh.html").write_text(CARD.replace("bg-brand", "bg-[#0ff]"))
    try:
        for name in ("card", "fresh", "fresh"):
            response = app.get(f"/og/{name}.png", params={"tone": "blue"})
            assert response.status_code == 500
            assert response.headers["cache-control"] == "no-store"
            assert "no-such-utility" in response.headers["x-ogshot-error"]
        studio = app.get("/preview/_render/card.png", params={"tone": "blue"})
        assert studio.status_code == 500
        body = studio.json()
        assert "Tailwind could not compile card.html" in body["error"]
        assert "no-such-utility" in body["error"]
        assert body["detail"]["kind"] == "template" and body["detail"]["file"] == "card.html"
        described = app.get("/preview/_api/templates").json()["templates"]
        assert next(t for t in described if t["name"] == "card")["error"] == body["error"]
    finally:
        with saved(app):
            (settings.static_dir / "tailwind.css").write_text(THEME)
    fresh = app.get("/og/fresh.png", params={"tone": "blue"})
    assert fresh.status_code == 200
    assert fresh.headers["x-ogshot-cache"] == "miss"  # nothing was cached while it was broken
    assert pixel(fresh.content, 10, 10) == [0, 0, 255]
    assert pixel(fresh.content, 50, 350) == [0, 255, 255]  # styled: bg-[#0ff]
    # The same sources and theme again: the same CSS, the same version.
    assert app.get("/preview/_api/templates/card").json()["version"] == good
