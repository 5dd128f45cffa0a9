"""POST /admin/purge on one node (the multi-node purge is in test_multinode.py): off without a
token, bearer auth, purges by key, URL and template from memory and disk, clear 4xx on bad input,
503 when Redis is configured but down."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from starlette.testclient import TestClient

from ogshot.app import create_app
from tests.support.helpers import make_settings
from tests.support.services import RedisServer, free_port

TOKEN = "s3cret-admin-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def admin(module_dir: Path) -> Iterator[TestClient]:
    settings = make_settings(module_dir, admin_token=TOKEN, pool_size=1)
    with TestClient(create_app(settings)) as client:
        yield client


def renders(client: TestClient) -> int:
    count: int = client.app.state.renderer.pool.stats()["renders"]  # type: ignore[attr-defined]
    return count


def cached(client: TestClient, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, response.text
    found: str = response.headers["x-ogshot-cache"]
    return found


def test_off_without_a_token(client: TestClient) -> None:
    response = client.post("/admin/purge", json={"template": "article"}, headers=AUTH)
    assert response.status_code == 404


@pytest.mark.parametrize(
    "header",
    [None, "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer"],
    ids=["missing", "wrong", "basic", "longer", "empty"],
)
def test_a_wrong_or_missing_token_is_401(admin: TestClient, header: str | None) -> None:
    headers = {"authorization": header} if header is not None else {}
    response = admin.post("/admin/purge", json={"template": "article"}, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["error"]


def test_purge_by_url_removes_the_image_and_it_is_rendered_again(admin: TestClient) -> None:
    url = "/og/article.png?title=" + quote("Purge me")
    first = admin.get(url)
    assert cached(admin, url) == "hit"
    before = renders(admin)
    response = admin.post(
        "/admin/purge", json={"url": "https://og.example.com" + url + "&s=ignored"}, headers=AUTH
    )
    assert response.status_code == 200, response.text
    renderer = admin.app.state.renderer  # type: ignore[attr-defined]
    key = renderer.prepare("article", {"title": "Purge me"}, "png").key
    assert response.json() == {"keys": [key], "generation": None}  # no Redis: this node only
    assert renderer.cache.get(key) is None  # gone from disk
    again = admin.get(url)
    assert again.headers["x-ogshot-cache"] == "miss"
    assert renders(admin) == before + 1
    assert again.content == first.content  # same picture, made again


def test_purge_by_query_url_and_by_key(admin: TestClient) -> None:
    url = "/og?template=minimal&data=" + quote('{"title": "by query"}') + "&format=webp"
    admin.get(url)
    assert cached(admin, url) == "hit"
    response = admin.post("/admin/purge", json={"url": url}, headers=AUTH)
    assert response.status_code == 200, response.text
    (key,) = response.json()["keys"]
    assert cached(admin, url) == "miss"
    assert cached(admin, url) == "hit"
    response = admin.post("/admin/purge", json={"keys": [key, key]}, headers=AUTH)
    assert response.json()["keys"] == [key]
    assert cached(admin, url) == "miss"


def test_purge_by_template_reaches_every_image_of_it_only(admin: TestClient) -> None:
    urls = ["/og/quote.png?quote=one&author=a", "/og/quote.jpg?quote=two&author=b"]
    other = "/og/minimal.png?title=" + quote("not a quote")
    for url in [*urls, other]:
        admin.get(url)
        assert cached(admin, url) == "hit"
    response = admin.post("/admin/purge", json={"template": "quote"}, headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.json()["template"] == "quote"
    assert [cached(admin, url) for url in urls] == ["miss", "miss"]
    assert [cached(admin, url) for url in urls] == ["hit", "hit"]  # the new renders are kept
    assert cached(admin, other) == "hit"


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"template": "no-such-template"}, 404, "no template named"),
        ({"url": "/preview/article"}, 400, "not an /og URL"),
        ({"url": "/og/article.gif?title=x"}, 400, "unknown format"),
        ({"url": "/og/article.png"}, 400, "title"),  # the request would fail: nothing to purge
        ({"keys": ["abc"]}, 400, "not a cache key"),
        ({"keys": []}, 400, "keys"),
        ({"keys": ["a" * 64], "template": "article"}, 400, "one of"),
        ({}, 400, "one of"),
        ([1, 2], 400, "one of"),
    ],
)
def test_bad_bodies_are_4xx_naming_the_problem(
    admin: TestClient, body: object, status: int, needle: str
) -> None:
    response = admin.post("/admin/purge", json=body, headers=AUTH)
    assert response.status_code == status, response.text
    assert needle in response.text


def test_not_json_is_400(admin: TestClient) -> None:
    response = admin.post("/admin/purge", content=b"{nope", headers=AUTH)
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]


def test_purge_with_redis_down_is_503_and_purges_nothing(tmp_path: Path) -> None:
    redis = RedisServer(tmp_path / "redis").start()
    settings = make_settings(tmp_path, admin_token=TOKEN, pool_size=1, redis_url=redis.url)
    try:
        with TestClient(create_app(settings)) as client:
            url = "/og/minimal.png?title=kept"
            client.get(url)
            response = client.post("/admin/purge", json={"url": url}, headers=AUTH)
            assert response.status_code == 200 and response.json()["generation"] == 1
            client.get(url)
            redis.stop()
            response = client.post("/admin/purge", json={"url": url}, headers=AUTH)
            assert response.status_code == 503, response.text
            assert "nothing was purged" in response.json()["error"]
            assert response.headers["retry-after"]
            ready = client.get("/readyz")
            assert ready.status_code == 200  # the node still serves
            assert ready.json()["redis"]["healthy"] is False
            assert cached(client, url) == "hit"  # still there: the purge did not happen
    finally:
        redis.stop()


def test_the_cli_needs_one_target_a_token_and_a_server(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from ogshot.cli import cli

    runner = CliRunner()
    env = {"OGSHOT_ADMIN_TOKEN": TOKEN}
    nothing = runner.invoke(cli, ["purge"], env=env)
    assert nothing.exit_code == 2 and "give one of" in nothing.output
    both = runner.invoke(cli, ["purge", "article", "--key", "a" * 64], env=env)
    assert both.exit_code == 2 and "give one of" in both.output
    no_token = runner.invoke(cli, ["purge", "article"], env={"OGSHOT_ADMIN_TOKEN": ""})
    assert no_token.exit_code == 1 and "OGSHOT_ADMIN_TOKEN is not set" in no_token.output
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    down = runner.invoke(cli, ["purge", "article", "--server", closed], env=env)
    assert down.exit_code == 1 and closed in down.output
