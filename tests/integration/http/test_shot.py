"""``/shot``: page screenshots of a real local site through the server, their options (selector,
hide, scheme, wait, max_kb), their errors, signatures, and their cache (short TTL, stale while
revalidating, purge by URL). The request filter's security is in
tests/integration/engine/test_page_shot_security.py."""

from __future__ import annotations

import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from ogshot.app import create_app
from ogshot.pipeline.renderer import Renderer
from ogshot.templates.signing import sign, signed_shot_path
from tests.support import canary as canary_server
from tests.support.helpers import image_of, make_settings, pixel

SECRET = "shot-secret"
ADMIN = "shot-admin"
TTL = 4  # OGSHOT_SHOT_TTL, seconds

PAGE = b"""<!doctype html><html><head><meta charset="utf-8"><style>
html, body { margin: 0; background: #ffffff; }
@media (prefers-color-scheme: dark) { html, body { background: #000000; } }
#banner { position: fixed; top: 0; left: 0; right: 0; height: 80px; background: #ff0000; }
#card { position: absolute; left: 400px; top: 200px; width: 300px; height: 150px;
        background: #0000ff; }
</style></head><body><div id="banner"></div><div id="card"></div></body></html>"""


@pytest.fixture(scope="module")
def site() -> Iterator[canary_server.Canary]:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("content-type", "text/html; charset=utf-8")
        handler.send_header("content-length", str(len(PAGE)))
        handler.end_headers()
        handler.wfile.write(PAGE)

    with canary_server.serve("127.0.0.3", answer) as server:
        yield server


@pytest.fixture(scope="module")
def app(module_dir: Path, site: canary_server.Canary) -> Iterator[TestClient]:
    settings = make_settings(
        module_dir,
        pool_size=1,
        secrets=(SECRET,),
        admin_token=ADMIN,
        shot_origins=(site.base,),
        shot_ttl=TTL,
        shot_timeout=30.0,  # a loaded machine
    )
    with TestClient(create_app(settings)) as client:
        yield client


def path_of(app: TestClient, params: dict[str, str], fmt: str = "png") -> str:
    renderer: Renderer = app.app.state.renderer  # type: ignore[attr-defined]
    return signed_shot_path(renderer.settings, params, fmt)


def shot(app: TestClient, site: canary_server.Canary, fmt: str = "png", **options: str) -> Any:
    return app.get(path_of(app, {"url": f"{site.base}/page", **options}, fmt))


def close_to(colour: list[float], wanted: tuple[int, int, int]) -> bool:
    return all(abs(a - b) < 40 for a, b in zip(colour, wanted, strict=True))


def test_the_viewport_is_captured_at_the_template_size(
    app: TestClient, site: canary_server.Canary
) -> None:
    response = shot(app, site, wait="1")
    assert response.status_code == 200, response.text
    image = image_of(response.content)
    assert (image.width, image.height) == (1200, 630)
    assert close_to(pixel(response.content, 10, 10), (255, 0, 0))  # the banner
    assert close_to(pixel(response.content, 500, 250), (0, 0, 255))  # the card
    assert close_to(pixel(response.content, 10, 600), (255, 255, 255))
    assert response.headers["cache-control"].startswith(f"public, max-age={TTL},")


def test_hide_removes_elements(app: TestClient, site: canary_server.Canary) -> None:
    response = shot(app, site, hide="#banner, .nothing")
    assert response.status_code == 200, response.text
    assert close_to(pixel(response.content, 10, 10), (255, 255, 255))
    assert close_to(pixel(response.content, 500, 250), (0, 0, 255))


def test_selector_captures_one_elements_box(app: TestClient, site: canary_server.Canary) -> None:
    response = shot(app, site, selector="#card")
    assert response.status_code == 200, response.text
    image = image_of(response.content)
    assert (image.width, image.height) == (300, 150)
    assert close_to(pixel(response.content, 150, 75), (0, 0, 255))


def test_scheme_dark_emulates_the_media_feature(
    app: TestClient, site: canary_server.Canary
) -> None:
    dark = shot(app, site, scheme="dark")
    assert dark.status_code == 200, dark.text
    assert close_to(pixel(dark.content, 10, 600), (0, 0, 0))


def test_jpeg_within_a_byte_budget(app: TestClient, site: canary_server.Canary) -> None:
    response = shot(app, site, fmt="jpg", max_kb="10")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/jpeg"
    assert len(response.content) <= 10_000
    assert int(response.headers["x-ogshot-quality"]) >= 1


@pytest.mark.parametrize(
    ("options", "parameter"),
    [
        ({"wait": "9999"}, "wait"),
        ({"wait": "-1"}, "wait"),
        ({"hide": ",".join(f"#a{i}" for i in range(11))}, "hide"),
        ({"hide": "body { background: red }"}, "hide"),
        ({"hide": "a" * 201}, "hide"),
        ({"selector": "#x; color: red"}, "selector"),
        ({"scheme": "sepia"}, "scheme"),
        ({"zoom": "2"}, "zoom"),
        ({"max_kb": "5"}, "max_kb"),
    ],
)
def test_bad_options_are_a_400_naming_them(
    app: TestClient, site: canary_server.Canary, options: dict[str, str], parameter: str
) -> None:
    response = shot(app, site, **options)
    assert response.status_code == 400, response.text
    assert response.json()["detail"] == {"parameter": parameter}


def test_a_selector_the_browser_cannot_parse_is_a_400(
    app: TestClient, site: canary_server.Canary
) -> None:
    response = shot(app, site, selector="div[", wait="2")
    assert response.status_code == 400, response.text
    assert response.json()["detail"] == {"parameter": "selector"}


def test_a_selector_that_matches_nothing_is_a_422(
    app: TestClient, site: canary_server.Canary
) -> None:
    response = shot(app, site, selector="#nowhere")
    assert response.status_code == 422, response.text
    assert "matches no visible element" in response.json()["error"]


def test_an_unknown_format_is_a_400(app: TestClient, site: canary_server.Canary) -> None:
    response = shot(app, site, fmt="gif")
    assert response.status_code == 400
    assert response.json()["error"].startswith("unknown format")


def test_signatures(app: TestClient, site: canary_server.Canary) -> None:
    params = {"url": f"{site.base}/page", "wait": "3"}
    good = path_of(app, params)
    assert app.get(good).status_code == 200
    unsigned = good.split("&s=")[0]
    assert app.get(unsigned).status_code == 403
    assert app.get(good.replace("wait=3", "wait=4")).status_code == 403
    assert app.get(good.replace("/shot.png", "/shot.jpg")).status_code == 403
    # The signature of /og/shot.png with the same parameters does not fit the /shot URL.
    og_signature = sign(SECRET, "shot", params, "png")
    assert app.get(f"{unsigned}&s={og_signature}").status_code == 403


def test_head_answers_headers_only(app: TestClient, site: canary_server.Canary) -> None:
    got = shot(app, site, wait="5")
    head = app.head(path_of(app, {"url": f"{site.base}/page", "wait": "5"}))
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(got.content))
    assert head.headers["etag"] == got.headers["etag"]


def test_cached_then_stale_while_revalidating(app: TestClient, site: canary_server.Canary) -> None:
    first = shot(app, site, wait="6")
    assert first.status_code == 200 and first.headers["x-ogshot-cache"] == "miss"
    site.checkpoint()
    hit = shot(app, site, wait="6")
    assert hit.headers["x-ogshot-cache"] == "hit"
    assert hit.content == first.content
    assert site.checkpoint() == []  # a hit does not load the page
    time.sleep(TTL + 0.5)
    stale = shot(app, site, wait="6")
    assert stale.headers["x-ogshot-cache"] == "stale"
    assert stale.content == first.content
    # One background capture refreshes it.
    deadline = time.monotonic() + 30
    while "tcp /page" not in site.checkpoint():
        assert time.monotonic() < deadline, "the stale shot was not refreshed"
        time.sleep(0.2)


def test_a_shot_is_purged_by_its_url(app: TestClient, site: canary_server.Canary) -> None:
    path = path_of(app, {"url": f"{site.base}/page", "wait": "8"})
    assert app.get(path).headers["x-ogshot-cache"] == "miss"
    assert app.get(path).headers["x-ogshot-cache"] == "hit"
    purged = app.post(
        "/admin/purge", json={"url": path}, headers={"authorization": f"Bearer {ADMIN}"}
    )
    assert purged.status_code == 200, purged.text
    renderer: Renderer = app.app.state.renderer  # type: ignore[attr-defined]
    key = renderer.shots.prepare({"url": f"{site.base}/page", "wait": "8"}, "png").key
    assert purged.json()["keys"] == [key]
    assert app.get(path).headers["x-ogshot-cache"] == "miss"


def test_shot_is_off_without_origins(client: TestClient) -> None:
    response = client.get("/shot.png", params={"url": "https://example.com/"})
    assert response.status_code == 404
    assert response.json() == {"error": "not found", "detail": None}
    assert "/shot.{format}" not in client.get("/openapi.json").json()["paths"]


def test_the_api_description_lists_shot_as_the_server_accepts_it(
    app: TestClient, site: canary_server.Canary
) -> None:
    document = app.get("/openapi.json").json()
    operation = document["paths"]["/shot.{format}"]["get"]
    assert set(document["paths"]["/shot.{format}"]) == {"get", "head"}
    params = {p["name"]: p for p in operation["parameters"]}
    assert {"format", "url", "selector", "wait", "hide", "scheme", "max_kb", "s"} <= set(params)
    assert params["url"]["required"] and params["s"]["required"]  # OGSHOT_SECRET is set
    assert site.base in operation["description"]
    # The limits it gives are the server's: one more than the highest `wait` is a 400.
    highest = params["wait"]["schema"]["maximum"]
    assert shot(app, site, wait=str(highest + 1)).status_code == 400
    assert params["scheme"]["schema"]["enum"] == ["light", "dark"]
    assert shot(app, site, scheme="sepia").status_code == 400
    # Errors are JSON (never a fallback image), and each status the tests meet is described.
    for status in ("200", "400", "403", "422", "504"):
        assert status in operation["responses"], status
    for status in ("400", "422", "500", "504"):
        assert set(operation["responses"][status]["content"]) == {"application/json"}
    refused = shot(app, site, selector="#nowhere")
    assert refused.status_code == 422 and refused.headers["content-type"] == "application/json"
