"""GET /templates.json through the real app: versions a client can sign with, short caching with
an ETag, and a new document when a template changes on disk."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

import ogshot
from ogshot.app import create_app
from ogshot.templates.catalog import Catalog
from tests.support.helpers import SHIPPED, make_settings, saved

SECRET = "templates-json-secret"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = make_settings(tmp_path, pool_size=1, secrets=(SECRET,))
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def catalog_of(client: TestClient) -> Catalog:
    found: Catalog = client.app.state.renderer.catalog  # type: ignore[attr-defined]
    return found


def test_lists_every_template_with_its_current_version(client: TestClient) -> None:
    response = client.get("/templates.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "public, max-age=60"
    # Public: with OGSHOT_SECRET set it needs no signature.
    templates = {t["name"]: t for t in response.json()["templates"]}
    assert sorted(templates) == SHIPPED
    catalog = catalog_of(client)
    for name, entry in templates.items():
        assert entry["v"] == catalog.get(name).version
        assert entry["formats"] == ["png", "jpeg", "webp"]
    article = templates["article"]
    assert article["size"] == {"width": 1200, "height": 630, "scale": 1.0}
    assert article["declared"] is True
    assert article["params"]["title"] == {"type": "str", "required": True}
    assert article["params"]["subtitle"] == {"type": "str", "required": False, "default": ""}
    assert article["params"]["accent"]["default"] == "#6d5dfc"
    assert "example" not in str(response.json())  # examples stay in the studio and OpenAPI
    assert len(response.content) < 16_000  # small, unlike /openapi.json


def test_a_url_signed_with_the_listed_version_renders(client: TestClient) -> None:
    entry = next(
        t for t in client.get("/templates.json").json()["templates"] if t["name"] == "minimal"
    )
    url = ogshot.sign_url("minimal", {"title": "Listed"}, secret=SECRET, version=entry["v"])
    response = client.get(url)
    assert response.status_code == 200
    assert response.headers["cache-control"].endswith("immutable")  # the current version
    assert response.content[:8] == b"\x89PNG\r\n\x1a\n"


def test_etag_and_not_modified(client: TestClient) -> None:
    first = client.get("/templates.json")
    etag = first.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"')
    again = client.get("/templates.json", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert client.get("/templates.json", headers={"If-None-Match": '"other"'}).status_code == 200
    head = client.head("/templates.json")
    assert head.status_code == 200 and head.headers["etag"] == etag


def test_built_once_per_catalog_generation(client: TestClient) -> None:
    client.get("/templates.json")
    state = client.app.state  # type: ignore[attr-defined]
    built = state.templates_documents.last
    for _ in range(3):
        client.get("/templates.json")
    assert state.templates_documents.last is built  # the same bytes, not built per request
    assert built.generation == catalog_of(client).generation


def test_a_changed_template_changes_the_document(client: TestClient, tmp_path: Path) -> None:
    before = client.get("/templates.json")
    old = {t["name"]: t["v"] for t in before.json()["templates"]}
    minimal = tmp_path / "html_templates" / "minimal.html"
    with saved(client):
        minimal.write_text(minimal.read_text() + "\n<!-- a redesign -->\n")
    after = client.get("/templates.json")
    new = {t["name"]: t["v"] for t in after.json()["templates"]}
    assert new["minimal"] != old["minimal"]
    assert new["minimal"] == catalog_of(client).get("minimal").version
    assert new["article"] == old["article"]
    assert after.headers["etag"] != before.headers["etag"]
    with saved(client):
        (tmp_path / "html_templates" / "fresh.html").write_text("<p>{{ title }}</p>")
    fresh = {t["name"]: t for t in client.get("/templates.json").json()["templates"]}["fresh"]
    assert fresh["declared"] is False and fresh["params"] == {}


def test_is_in_the_openapi_document(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    operation = spec["paths"]["/templates.json"]["get"]
    assert operation["operationId"] == "templates"
    assert set(operation["responses"]) == {"200", "304"}
