"""Nothing refused silently: a stylesheet, script, font or frame that network isolation refuses, or
that is missing from the static folder, is a warning (header, log line, counter, the studio) like a
failed image, and a 422 in strict mode. Real Chromium, real HTTP through the app."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from ogshot.app import create_app
from ogshot.core.settings import Settings
from ogshot.pipeline.warnings import Warnings, dump_warnings, load_warnings
from tests.support.helpers import pixel, renders, settled

CDN = "https://cdn.example/x.css"
# A red page with a white body: if the CDN's stylesheet had loaded, the body would be blue.
TEMPLATES = {
    "cdn": f"""<!doctype html><html><head>
<link rel="stylesheet" href="{CDN}">
</head><body style="margin:0;background:#f00"><h1>CDN</h1></body></html>
""",
    "missing": """<!doctype html><html><head>
<link rel="stylesheet" href="/static/nope.css">
</head><body style="margin:0;background:#fff"><h1>Missing</h1></body></html>
""",
    "scripted": """<!doctype html><html><head>
<style>@font-face { font-family: Gone; src: url(/static/fonts/gone.woff2) format("woff2"); }</style>
<script src="https://cdn.example/tailwind.js"></script>
</head><body style="margin:0;background:#fff;font:40px Gone"><h1>Script</h1>
<iframe src="https://frames.example/embed" width="10" height="10"></iframe></body></html>
""",
    "styled": """<!doctype html><html><head>
<link rel="stylesheet" href="/static/ok.css">
</head><body><h1>Styled</h1></body></html>
""",
}


def app_settings(base: Path, **overrides: object) -> Settings:
    templates, static = base / "templates", base / "static"
    templates.mkdir(parents=True)
    (static / "fonts").mkdir(parents=True)
    for name, source in TEMPLATES.items():
        (templates / f"{name}.html").write_text(source)
    (static / "ok.css").write_text("body { margin: 0; background: #00f; }")
    values: dict[str, object] = {
        "templates_dir": templates,
        "static_dir": static,
        "cache_dir": base / "cache",
        "pool_size": 1,
        "render_timeout": 10.0,
        "dev": True,
    }
    values.update(overrides)
    return Settings.load(environ={}, **values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with TestClient(create_app(app_settings(tmp_path_factory.mktemp("refused")))) as client:
        yield client


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = app_settings(tmp_path_factory.mktemp("refused-strict"), strict=True)
    with TestClient(create_app(settings)) as client:
        yield client


def counted(client: TestClient, template: str) -> float:
    text = client.get("/metrics").text
    pattern = (
        rf'^ogshot_render_warnings_total\{{kind="failed_resources",template="{template}"\}} (\S+)$'
    )
    match = re.search(pattern, text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_a_stylesheet_from_a_cdn_is_a_warning_header_a_log_line_and_a_counter(
    app: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    before = counted(app, "cdn")
    with caplog.at_level("WARNING", logger="ogshot"):
        response = app.get("/og/cdn.png")
    assert response.status_code == 200
    assert response.headers["x-ogshot-cache"] == "miss"
    assert response.headers["x-ogshot-warning"] == f"failed-resources {CDN}"
    assert pixel(response.content, 600, 500) == [255, 0, 0]  # drawn without it
    assert counted(app, "cdn") == before + 1
    logged = [r.getMessage() for r in caplog.records if CDN in r.getMessage()]
    assert logged and "'cdn'" in logged[0] and "static folder" in logged[0]
    # Not strict: cached, and a hit still says what it lacks.
    settled(app)
    hit = app.get("/og/cdn.png")
    assert hit.headers["x-ogshot-cache"] == "hit"
    assert hit.headers["x-ogshot-warning"] == f"failed-resources {CDN}"


def test_a_stylesheet_missing_from_the_static_folder_is_a_warning(app: TestClient) -> None:
    response = app.get("/og/missing.png")
    assert response.status_code == 200
    assert response.headers["x-ogshot-warning"] == "failed-resources /static/nope.css"


def test_a_script_a_font_and_a_frame_are_each_named(app: TestClient) -> None:
    header = app.get("/og/scripted.png").headers["x-ogshot-warning"]
    assert header.startswith("failed-resources ")
    named = set(header.removeprefix("failed-resources ").split(" "))
    assert named == {
        "https://cdn.example/tailwind.js",
        "/static/fonts/gone.woff2",
        "https://frames.example/embed",
    }


def test_a_stylesheet_that_loads_gives_no_warning(app: TestClient) -> None:
    response = app.get("/og/styled.png")
    assert response.status_code == 200
    assert pixel(response.content, 600, 500) == [0, 0, 255]  # the stylesheet applied
    assert "x-ogshot-warning" not in response.headers
    # And a warning of one render is not carried into the next on the same page.
    assert "x-ogshot-warning" in app.get("/og/missing.png", params={"v": "2"}).headers
    assert "x-ogshot-warning" not in app.get("/og/styled.png", params={"v": "2"}).headers


def test_the_studio_names_the_template_line_that_asks_for_it(app: TestClient) -> None:
    response = app.get("/preview/_render/cdn.png")
    assert response.status_code == 200
    warnings = json.loads(response.headers["x-ogshot-warnings"])
    assert warnings["failed_resources"] == [CDN]
    assert warnings["lines"] == {CDN: {"file": "cdn.html", "line": 2}}


@pytest.mark.parametrize(
    ("template", "url"),
    [("cdn", CDN), ("missing", "http://ogshot.invalid/static/nope.css")],
)
def test_strict_mode_answers_422_naming_it_and_caches_nothing(
    strict: TestClient, template: str, url: str
) -> None:
    first = strict.get(f"/og/{template}.png")
    assert first.status_code == 422
    assert first.headers["cache-control"] == "no-store"
    body = first.json()
    assert url in body["error"] and template in body["error"]
    assert body["detail"]["failed_resources"] == [url]
    rendered = renders(strict)
    second = strict.get(f"/og/{template}.png")
    assert second.status_code == 422
    assert renders(strict) == rendered + 1  # rendered again: nothing was cached
    assert strict.get("/og/styled.png").status_code == 200


def test_cached_warnings_keep_resources_and_read_entries_from_before() -> None:
    warnings = Warnings(failed_images=("a.png",), failed_resources=("x.css",))
    assert load_warnings(dump_warnings(warnings)) == warnings
    assert load_warnings('[[57344],["a.png"]]') == Warnings((57344,), ("a.png",))
    assert warnings.kinds == ["failed_images", "failed_resources"]
