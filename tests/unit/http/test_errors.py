"""http/errors.py: every error answered in one place. A failed render on an image route is a
fallback picture of the template's own size that no cache keeps; everything else is JSON naming
the problem; an unexpected exception is a 500 that leaks nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from ogshot.app import create_app
from tests.support.helpers import image_of, make_settings

SQUARE_BROKEN = """{#ogshot
width = 1080
height = 1080
[params.n]
type = "int"
#}
<html><body>{{ 1 // n }}</body></html>"""


@pytest.fixture(scope="module")
def app(module_dir: Path) -> Iterator[TestClient]:
    settings = make_settings(module_dir, admin_token="t0ken")
    (Path(settings.templates_dir) / "square-broken.html").write_text(SQUARE_BROKEN)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def test_a_failed_render_is_a_fallback_picture_of_the_templates_size_never_cached(
    app: TestClient,
) -> None:
    got = app.get("/og/square-broken.png", params={"n": 0})
    assert got.status_code == 500
    assert got.headers["content-type"] == "image/png"
    assert got.headers["cache-control"] == "no-store"
    assert "ZeroDivisionError" in got.headers["x-ogshot-error"]
    picture = image_of(got.content)
    assert (picture.width, picture.height) == (1080, 1080)
    head = app.head("/og/square-broken.png", params={"n": 0})
    assert head.status_code == 500 and head.content == b""
    assert int(head.headers["content-length"]) == len(got.content)
    # The /og?data= form is an image route too.
    query = app.get("/og", params={"template": "square-broken", "data": '{"n": 0}'})
    assert query.status_code == 500 and query.headers["content-type"] == "image/png"
    again = app.get("/og/square-broken.png", params={"n": 0})
    assert again.status_code == 500  # rendered (and failed) again: the fallback was not stored


def test_bad_requests_on_image_routes_are_json_naming_the_problem(app: TestClient) -> None:
    got = app.get("/og/square-broken.png", params={"n": "many"})
    assert got.status_code == 400
    assert got.headers["content-type"] == "application/json"
    assert got.headers["cache-control"] == "no-store"
    body = got.json()
    assert "'n'" in body["error"] and body["detail"]["parameter"] == "n"


def test_starlettes_own_errors_and_other_routes_answer_json(app: TestClient) -> None:
    missing = app.get("/nowhere")
    assert (missing.status_code, missing.json()) == (404, {"error": "not found", "detail": None})
    wrong_method = app.post("/healthz")
    assert wrong_method.status_code == 405 and "error" in wrong_method.json()
    unauthorized = app.post("/admin/purge", json={"template": "minimal"})
    assert unauthorized.status_code == 401
    assert unauthorized.headers["www-authenticate"].startswith("Bearer")
    assert "error" in unauthorized.json()
