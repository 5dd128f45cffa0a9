"""Versioned URLs and what the answers promise caches; stale-while-revalidate. Real renders through
the real app: every header below comes from a picture Chromium drew."""

from __future__ import annotations

import json
import logging
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from starlette.testclient import TestClient

import ogshot
from ogshot.app import create_app
from ogshot.core.errors import InvalidParameter, TemplateError
from ogshot.core.settings import Settings
from ogshot.templates import signing
from ogshot.templates.catalog import Catalog
from tests.support.helpers import image_of, make_settings, pixel, renders, saved, settled
from tests.support.procs import wait_for
from tests.unit.ops.test_metrics import samples, value

IMMUTABLE = "public, max-age=31536000, immutable"
SHORT = "public, max-age=86400, stale-while-revalidate=604800, stale-if-error=604800"
SECRET = "freshness-secret"


@pytest.fixture(scope="module")
def client(module_dir: Path) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(module_dir, pool_size=1))) as test_client:
        yield test_client


def settings_of(client: TestClient) -> Settings:
    found: Settings = client.app.state.renderer.settings  # type: ignore[attr-defined]
    return found


def version_in(url: str) -> str:
    return parse_qs(urlsplit(url).query)["v"][0]


def metric(client: TestClient, name: str, **labels: str) -> float:
    return value(samples(client.get("/metrics").text), name, **labels)


# -- the policy table --------------------------------------------------------------------------


def test_the_current_version_is_immutable_and_every_other_url_short(client: TestClient) -> None:
    versioned = ogshot.sign_url("minimal", {"title": "Versions"}, settings=settings_of(client))
    version = version_in(versioned)
    assert len(version) == 10 and int(version, 16) >= 0

    current = client.get(versioned)
    assert current.status_code == 200, current.text
    assert current.headers["cache-control"] == IMMUTABLE
    assert current.headers["x-ogshot-cache"] == "miss"
    assert (image_of(current.content).width, image_of(current.content).height) == (1200, 630)
    assert client.get(versioned).headers["x-ogshot-cache"] == "hit"

    # No version, an old one, a hand-made cache buster: the same picture (one cache entry), but
    # the short policy, revalidated by the ETag.
    for url in (
        "/og/minimal.png?title=Versions",
        "/og/minimal.png?title=Versions&v=0123456789",
        "/og/minimal.png?title=Versions&v=2",
    ):
        answer = client.get(url)
        assert answer.status_code == 200, url
        assert answer.headers["x-ogshot-cache"] == "hit", url
        assert answer.headers["cache-control"] == SHORT, url
        assert answer.content == current.content, url
        assert answer.headers["etag"] == current.headers["etag"], url
        again = client.get(url, headers={"if-none-match": answer.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
        assert again.headers["cache-control"] == SHORT
    assert client.head(versioned).headers["cache-control"] == IMMUTABLE


def test_the_json_form_takes_v_inside_data_or_beside_it(client: TestClient) -> None:
    version = version_in(ogshot.sign_url("minimal", {"title": "x"}, settings=settings_of(client)))
    inside = quote(json.dumps({"title": "JSON versions", "v": version}))
    answer = client.get(f"/og?template=minimal&data={inside}")
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == IMMUTABLE
    plain = quote(json.dumps({"title": "JSON versions"}))
    beside = client.get(f"/og?template=minimal&data={plain}&v={version}")
    assert beside.headers["cache-control"] == IMMUTABLE
    assert beside.headers["x-ogshot-cache"] == "hit" and beside.content == answer.content
    assert client.get(f"/og?template=minimal&data={plain}").headers["cache-control"] == SHORT
    both = client.get(f"/og?template=minimal&data={inside}&v={version}")
    assert both.status_code == 400 and both.json()["detail"] == {"parameter": "v"}


@pytest.mark.parametrize(
    "bad", ["", "a b", "x" * 65, "%3Cscript%3E", "abc%0A", "v%C3%A9rsion", "1/2"]
)
def test_a_malformed_version_is_400_naming_it(client: TestClient, bad: str) -> None:
    answer = client.get(f"/og/minimal.png?title=x&v={bad}")
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["detail"] == {"parameter": "v"}
    assert "template version" in answer.json()["error"]


def test_a_template_edit_makes_a_new_version_and_old_urls_get_the_new_picture(
    client: TestClient,
) -> None:
    settings = settings_of(client)
    page = settings.templates_dir / "fresh_card.html"
    partial = settings.templates_dir / "partials" / "_fresh_colour.html"

    def publish(colour: str, template_body: str = "") -> str:
        with saved(client):
            partial.write_text(colour)
            if template_body:
                page.write_text(template_body)
        url = ogshot.sign_url("fresh_card", {"title": "x"}, settings=settings, validate=True)
        return url

    body = (
        "<body style=\"margin:0;background:{% include 'partials/_fresh_colour.html' %}\">"
        "{{ title }}</body>"
    )
    first = publish("#ff0000", body)
    red = client.get(first)
    assert red.headers["cache-control"] == IMMUTABLE
    assert pixel(red.content, 600, 600) == pytest.approx([255, 0, 0], abs=2)

    # A change in a partial the template includes is a new version.
    second = publish("#0000ff")
    assert version_in(second) != version_in(first)
    blue = client.get(second)
    assert blue.headers["cache-control"] == IMMUTABLE
    assert pixel(blue.content, 600, 600) == pytest.approx([0, 0, 255], abs=2)
    # The URL already shared (the old version) still answers, with the current picture and the
    # short policy: a CDN that kept it refetches within a day.
    shared = client.get(first)
    assert shared.status_code == 200
    assert shared.headers["cache-control"] == SHORT
    assert shared.content == blue.content

    # So is a change in the template itself, and one in the static folder.
    third = publish("#0000ff", body + "<!-- edited -->")
    with saved(client):
        (settings.static_dir / "fresh.css").write_text("body { margin: 0 }")
    fourth = ogshot.sign_url("fresh_card", {"title": "x"}, settings=settings, validate=True)
    versions = [version_in(url) for url in (first, second, third, fourth)]
    assert len(set(versions)) == 4, versions
    assert client.get(fourth).headers["cache-control"] == IMMUTABLE
    assert client.get(third).headers["cache-control"] == SHORT


def test_openapi_describes_v_with_the_current_version(client: TestClient) -> None:
    version = version_in(ogshot.sign_url("minimal", {"title": "x"}, settings=settings_of(client)))
    spec = client.get("/openapi.json").json()
    params = spec["paths"]["/og/minimal.{format}"]["get"]["parameters"]
    (v,) = [p for p in params if p["name"] == "v"]
    assert v["example"] == version and v["required"] is False
    assert client.get(f"/og/minimal.png?title=x&v={v['example']}").headers["cache-control"] == (
        IMMUTABLE
    )


def test_fallback_images_stay_no_store(client: TestClient) -> None:
    settings = settings_of(client)
    (settings.templates_dir / "fresh_broken.html").write_text("{{ nope(1) }}")
    url = ogshot.sign_url("fresh_broken", {}, settings=settings)
    assert "v=" in url  # the version of a template that fails to render is still its version
    for answer in (client.get(url), client.get("/og/fresh_broken.png")):
        assert answer.status_code == 500
        assert answer.headers["cache-control"] == "no-store"
        assert answer.headers["content-type"] == "image/png"
        assert "x-ogshot-cache" not in answer.headers


# -- signatures --------------------------------------------------------------------------------


def test_the_signature_covers_v(module_dir: Path) -> None:
    settings = make_settings(module_dir / "signed", secrets=(SECRET,), pool_size=1)
    with TestClient(create_app(settings)) as signed:
        url = ogshot.sign_url("minimal", {"title": "Signed version"}, settings=settings)
        version = version_in(url)
        answer = signed.get(url)
        assert answer.status_code == 200 and answer.headers["cache-control"] == IMMUTABLE
        for tampered in (
            url.replace(f"v={version}", "v=0000000000"),  # another version
            url.replace(f"&v={version}", ""),  # the version taken out
        ):
            refused = signed.get(tampered)
            assert refused.status_code == 403, tampered
            assert "wrong URL signature" in refused.json()["error"]
        # A URL signed with an old version stays valid: the current picture, the short policy.
        old = ogshot.sign_url(
            "minimal", {"title": "Signed version"}, settings=settings, version="0000000000"
        )
        kept = signed.get(old)
        assert kept.status_code == 200 and kept.headers["cache-control"] == SHORT
        assert kept.content == answer.content


# -- sign_url and declarations -------------------------------------------------------------------


def test_sign_url_version_argument(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, secrets=(SECRET,))
    current = Catalog(settings.templates_dir, settings.static_dir).get("article").version
    assert version_in(ogshot.sign_url("article", {"title": "x"}, settings=settings)) == current
    given = ogshot.sign_url("article", {"title": "x"}, settings=settings, version="abc")
    assert version_in(given) == "abc"
    assert "v=" not in ogshot.sign_url("article", {"title": "x"}, settings=settings, version="")
    in_params = ogshot.sign_url("article", {"title": "x", "v": "def"}, settings=settings)
    assert version_in(in_params) == "def"
    with pytest.raises(InvalidParameter, match="template version"):
        ogshot.sign_url("article", {"title": "x"}, settings=settings, version="a b")
    # A web app without the templates: a URL that works, without a version, and a warning.
    elsewhere = settings.replace(templates_dir=tmp_path / "nowhere")
    signing._warned_unversioned = False  # warned once per process: as in a fresh one
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        unversioned = ogshot.sign_url("article", {"title": "x"}, settings=elsewhere)
    assert "v=" not in unversioned and "&s=" in unversioned
    assert any("carries no version" in str(w.message) for w in caught)


def test_a_template_cannot_declare_a_reserved_parameter(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "takes_v.html").write_text(
        '{#ogshot\n[params.v]\ntype = "str"\n#}\n<p>{{ v }}</p>'
    )
    with pytest.raises(TemplateError, match="'v' is reserved"):
        Catalog(templates, tmp_path / "static").get("takes_v")


# -- stale-while-revalidate --------------------------------------------------------------------


def test_past_its_ttl_an_image_is_served_stale_while_one_refresh_replaces_it(
    tmp_path: Path,
) -> None:
    # cache_ttl 2 s rather than 1: the fresh hit after the refresh must arrive within the TTL.
    settings = make_settings(tmp_path, cache_ttl=2, pool_size=1)
    with TestClient(create_app(settings)) as client:
        renderer = client.app.state.renderer  # type: ignore[attr-defined]
        url = ogshot.sign_url("minimal", {"title": "Stale"}, settings=settings)
        first = client.get(url)
        assert first.headers["x-ogshot-cache"] == "miss"
        assert first.headers["cache-control"] == IMMUTABLE
        key = renderer.prepare("minimal", {"title": "Stale"}).key
        settled(client)
        made = renderer.cache.get(key).stored_at
        before = renders(client)
        time.sleep(2.2)

        # Past the TTL, several requests at once: all answered at once from the old entry, with
        # the short policy even though the URL is versioned; one render refreshes it.
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda _: client.get(url), range(4)))
        assert "stale" in [answer.headers["x-ogshot-cache"] for answer in answers]
        for answer in answers:
            assert answer.status_code == 200
            assert answer.content == first.content
            if answer.headers["x-ogshot-cache"] == "stale":
                assert answer.headers["cache-control"] == SHORT
            else:  # the refresh was done already
                assert answer.headers["x-ogshot-cache"] == "hit"
        assert wait_for(lambda: metric(client, "ogshot_refreshes_total", result="ok") == 1)
        assert renders(client) == before + 1
        assert metric(client, "ogshot_stale_served_total") >= 1

        refreshed = client.get(url)
        assert refreshed.headers["x-ogshot-cache"] == "hit"
        assert refreshed.headers["cache-control"] == IMMUTABLE
        assert refreshed.content == first.content  # the same template draws the same picture
        settled(client)
        assert renderer.cache.get(key).stored_at > made


def test_a_failed_refresh_keeps_serving_the_stale_image(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ogshot")
    settings = make_settings(tmp_path, cache_ttl=1, pool_size=1)
    # A template that draws until a moment and fails after it: what a feed going down looks like
    # to a template that reads one (nothing in its key changes).
    (settings.templates_dir / "until.html").write_text(
        "<body style='margin:0;background:#00aa00'><script>"
        "if (Date.now() > {{ until }}) window.ogshotReady = Promise.reject(new Error('feed down'));"
        "</script></body>"
    )
    with TestClient(create_app(settings)) as client:
        until = int((time.time() + 5) * 1000)
        url = f"/og/until.png?until={until}"
        first = client.get(url)
        assert first.status_code == 200, first.text
        assert pixel(first.content, 10, 10) == pytest.approx([0, 170, 0], abs=2)
        time.sleep(max(0.0, until / 1000 + 1.3 - time.time()))  # past `until` and the TTL

        stale = client.get(url)
        assert stale.status_code == 200
        assert stale.headers["x-ogshot-cache"] == "stale"
        assert stale.headers["cache-control"] == SHORT
        assert stale.content == first.content
        assert wait_for(lambda: metric(client, "ogshot_refreshes_total", result="error") == 1)
        kept = client.get(url)
        assert kept.status_code == 200 and kept.headers["x-ogshot-cache"] == "stale"
        assert kept.content == first.content
        assert metric(client, "ogshot_refreshes_total", result="error") == 1  # not retried yet
        assert metric(client, "ogshot_refreshes_total", result="ok") == 0
        refresh_logs = [r for r in caplog.records if "refresh of a stale" in r.getMessage()]
        assert len(refresh_logs) == 1 and "feed down" in refresh_logs[0].getMessage()

        # A miss of the same template now fails: the fallback image, never cached.
        missed = client.get(f"/og/until.png?until={until - 1}")
        assert missed.status_code == 500
        assert missed.headers["cache-control"] == "no-store"
