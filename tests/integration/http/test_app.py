"""HTTP through the ASGI app, with real Chromium, pyvips and diskcache."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import quote

import pytest
import pyvips
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from ogshot.app import create_app
from ogshot.core import errors
from ogshot.core.settings import parse_size
from ogshot.http.errors import ErrorRoute
from tests.support.helpers import (
    SHIPPED,
    image_of,
    make_settings,
    mean_difference,
    pixel,
    renders,
    saved,
    settled,
)

MAGIC = {
    "png": b"\x89PNG\r\n\x1a\n",
    "jpg": b"\xff\xd8\xff",
    "jpeg": b"\xff\xd8\xff",
    "webp": b"RIFF",
}


@pytest.mark.parametrize("ext", ["png", "jpg", "jpeg", "webp"])
def test_each_format_has_its_magic_bytes_and_size(client: TestClient, ext: str) -> None:
    response = client.get(f"/og/article.{ext}", params={"title": f"Format {ext}"})
    assert response.status_code == 200
    assert response.content.startswith(MAGIC[ext])
    if ext == "webp":
        assert response.content[8:12] == b"WEBP"
    content_type = {"png": "image/png", "webp": "image/webp"}.get(ext, "image/jpeg")
    assert response.headers["content-type"] == content_type
    assert int(response.headers["content-length"]) == len(response.content)
    image = image_of(response.content)
    assert (image.width, image.height) == (1200, 630)


def test_no_extension_means_png(client: TestClient) -> None:
    response = client.get("/og/minimal", params={"title": "plain"})
    assert response.status_code == 200
    assert response.content.startswith(MAGIC["png"])


def test_a_parameter_visibly_changes_the_pixels(client: TestClient) -> None:
    first = client.get("/og/article.png", params={"title": "A short title"}).content
    second = client.get(
        "/og/article.png", params={"title": "Something else entirely, longer"}
    ).content
    assert mean_difference(first, second) > 1.0


def test_a_colour_parameter_lands_on_a_known_pixel(client: TestClient) -> None:
    red = client.get("/og/minimal.png", params={"title": "x", "background": "#ff0000"}).content
    r, g, b = pixel(red, 10, 10)
    assert r > 240 and g < 15 and b < 15
    blue = client.get("/og/minimal.png", params={"title": "x", "background": "0000ff"}).content
    r, g, b = pixel(blue, 1190, 620)
    assert r < 15 and g < 15 and b > 240


@pytest.mark.parametrize(
    ("colour", "rgb"),
    [
        ("rgb(0,128,0)", (0, 128, 0)),
        ("rgb(255 165 0 / 100%)", (255, 165, 0)),
        ("hsl(240deg 100% 50%)", (0, 0, 255)),
        ("oklch(0.628 0.2577 29.23)", (255, 0, 0)),
        ("RebeccaPurple", (102, 51, 153)),
    ],
)
def test_every_css_colour_syntax_lands_on_the_pixel(
    client: TestClient, colour: str, rgb: tuple[int, int, int]
) -> None:
    image = client.get("/og/minimal.png", params={"title": "x", "background": colour})
    assert image.status_code == 200, image.text
    assert all(
        abs(got - want) <= 6 for got, want in zip(pixel(image.content, 10, 10), rgb, strict=True)
    )


@pytest.mark.parametrize("colour", ["notacolour", "zzzzzz", "currentcolor", "rgb(0 0 0"])
def test_a_word_that_is_no_colour_is_400_and_nothing_is_cached(
    client: TestClient, colour: str
) -> None:
    before = renders(client)
    response = client.get("/og/minimal.png", params={"title": "x", "background": colour})
    assert response.status_code == 400
    assert response.json()["detail"] == {"parameter": "background"}
    assert "CSS colour" in response.json()["error"]
    assert renders(client) == before


def test_second_request_is_a_hit_and_does_not_touch_the_browser(client: TestClient) -> None:
    url = "/og/article.png?title=" + quote("Cache me 🎯")
    first = client.get(url)
    assert first.headers["x-ogshot-cache"] == "miss"
    before = renders(client)
    second = client.get(url)
    assert second.headers["x-ogshot-cache"] == "hit"
    assert renders(client) == before
    assert second.content == first.content
    assert second.headers["etag"] == first.headers["etag"]
    # No version in the URL: a short max-age, revalidated by ETag (tests/test_freshness.py)
    assert second.headers["cache-control"] == (
        "public, max-age=86400, stale-while-revalidate=604800, stale-if-error=604800"
    )
    assert "cache;dur=" in second.headers["server-timing"]
    assert "capture;dur=" in first.headers["server-timing"]
    # The bytes depend on the URL alone: no Vary for a CDN to split its entries by
    assert "vary" not in second.headers and second.headers["accept-ranges"] == "bytes"
    assert second.headers["content-type"] == "image/png"
    assert second.headers["content-length"] == str(len(second.content))


def test_parameter_order_does_not_matter(client: TestClient) -> None:
    a = client.get("/og/minimal.png?title=order&size=60")
    b = client.get("/og/minimal.png?size=60&title=order")
    assert b.headers["x-ogshot-cache"] == "hit"
    assert a.headers["etag"] == b.headers["etag"]


def test_if_none_match_gives_304(client: TestClient) -> None:
    first = client.get("/og/minimal.png", params={"title": "etag"})
    etag = first.headers["etag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    again = client.get("/og/minimal.png", params={"title": "etag"}, headers={"if-none-match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    other = client.get(
        "/og/minimal.png", params={"title": "etag"}, headers={"if-none-match": '"x"'}
    )
    assert other.status_code == 200


def test_head_has_headers_but_no_body(client: TestClient) -> None:
    get = client.get("/og/minimal.png", params={"title": "head"})
    head = client.head("/og/minimal.png", params={"title": "head"})
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(get.content))
    assert head.headers["etag"] == get.headers["etag"]
    assert head.headers["content-type"] == "image/png"


def test_range_requests_get_206(client: TestClient) -> None:
    full = client.get("/og/minimal.png", params={"title": "range"}).content
    part = client.get("/og/minimal.png", params={"title": "range"}, headers={"range": "bytes=0-99"})
    assert part.status_code == 206
    assert part.content == full[:100]
    assert part.headers["content-range"] == f"bytes 0-99/{len(full)}"
    tail = client.get("/og/minimal.png", params={"title": "range"}, headers={"range": "bytes=-10"})
    assert tail.content == full[-10:]
    bad = client.get(
        "/og/minimal.png", params={"title": "range"}, headers={"range": "bytes=999999-"}
    )
    assert bad.status_code == 416
    assert bad.headers["content-range"] == f"bytes */{len(full)}"
    assert bad.headers["content-length"] == "0" and bad.content == b""


def test_unknown_template_is_404_naming_the_templates(client: TestClient) -> None:
    response = client.get("/og/nonexistent.png")
    assert response.status_code == 404
    body = response.json()
    assert "nonexistent" in body["error"]
    assert body["detail"]["available"] == SHIPPED


@pytest.mark.parametrize(
    ("url", "culprit"),
    [
        ("/og/article.png?title=x&colour=red", "colour"),
        ("/og/article.png?subtitle=no-title", "title"),
        ("/og/article.png?title=%20%20", "title"),
        ("/og/article.png?title=x&accent=notacolour!", "accent"),
        ("/og/article.png?title=x&theme=purple", "theme"),
        ("/og/minimal.png?title=x&size=9000", "size"),
        ("/og/article.png?title=a&title=b", "title"),
        ("/og/article.gif?title=x", "gif"),
        ("/og?template=article&data=%7Bnot-json", "data"),
        ("/og?template=article&data=%5B1%2C2%5D", "data"),
        ("/og?data=%7B%7D", "template"),
        ("/og?template=article&data=%7B%22title%22%3A%22x%22%7D&format=bmp", "bmp"),
    ],
)
def test_bad_requests_are_400_naming_the_problem(
    client: TestClient, url: str, culprit: str
) -> None:
    response = client.get(url)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    assert culprit in response.json()["error"]


def test_title_longer_than_declared_is_rejected(client: TestClient) -> None:
    response = client.get("/og/article.png", params={"title": "x" * 141})
    assert response.status_code == 400
    assert "title" in response.json()["error"]


@pytest.mark.parametrize(
    "path",
    [
        "/og/..%2F..%2Fetc%2Fpasswd.png",
        "/og/%2e%2e%2fpyproject.png",
        "/og/%2e%2e.png",
        "/og/..",
        "/og/partials%2Fbase.png",
        "/og/partials/base.png",
        "/og/_secret.png",
        "/og/....//....//etc/passwd",
        "/og/%252e%252e%252fetc%252fpasswd.png",
    ],
)
def test_traversal_attempts_are_404(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert "root:" not in response.text


def test_query_form_with_json_data(client: TestClient) -> None:
    data = json.dumps({"title": "From JSON", "size": 90, "background": "#00ff00"})
    response = client.get("/og", params={"template": "minimal", "data": data, "format": "jpeg"})
    assert response.status_code == 200
    assert response.content.startswith(MAGIC["jpeg"])
    r, g, b = pixel(response.content, 5, 5)
    assert g > 230 and r < 30 and b < 30
    same = client.get(
        "/og/minimal.jpg", params={"title": "From JSON", "size": "90", "background": "00ff00"}
    )
    assert same.headers["x-ogshot-cache"] == "hit"  # both forms share one canonical key


def test_health(client: TestClient) -> None:
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz").json()
    assert ready["ready"] is True and ready["pool"]["size"] == 2


def test_unknown_route_is_json_404(client: TestClient) -> None:
    response = client.get("/nope")
    assert response.status_code == 404
    assert response.json()["error"] == "not found"


# -- apps over their own template folders ---------------------------------------------------------


def test_editing_a_template_changes_the_etag(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    card = settings.templates_dir / "card.html"
    card.write_text("<body style='margin:0;background:#123456'>{{ title }}</body>")
    with TestClient(create_app(settings)) as client:
        first = client.get("/og/card.png?title=t")
        with saved(client):
            card.write_text("<body style='margin:0;background:#654321'>{{ title }}</body>")
        second = client.get("/og/card.png?title=t")
        assert second.headers["x-ogshot-cache"] == "miss"
        assert second.headers["etag"] != first.headers["etag"]
        assert pixel(second.content, 5, 5)[0] > 90  # 0x65 = 101: the new colour


def test_undeclared_template_accepts_strings(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    (settings.templates_dir / "free.html").write_text(
        "<body style='margin:0;background:{{ bg }}'><h1>{{ anything }}</h1></body>"
    )
    with TestClient(create_app(settings)) as client:
        ok = client.get("/og/free.png", params={"anything": "whatever", "bg": "#000"})
        assert ok.status_code == 200
        long = client.get("/og/free.png", params={"anything": "x" * 1001})
        assert long.status_code == 400 and "anything" in long.json()["error"]


def test_a_template_that_raises_gets_the_fallback_image_uncached(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    (settings.templates_dir / "boom.html").write_text("<p>{{ 1 // 0 }}</p>")
    with TestClient(create_app(settings)) as client:
        for _ in range(2):
            response = client.get("/og/boom.png")
            assert response.status_code == 500
            assert response.headers["cache-control"] == "no-store"
            assert response.headers["content-type"] == "image/png"
            assert "ZeroDivisionError" in response.headers["x-ogshot-error"]
            image = image_of(response.content)
            assert (image.width, image.height) == (1200, 630)
        cache = client.app.state.renderer.cache  # type: ignore[attr-defined]
        assert cache._cache is not None and len(cache._cache) == 0


def test_a_render_past_the_deadline_gets_504_and_the_pool_recovers(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, render_timeout=2.0, pool_size=1)
    (settings.templates_dir / "hang.html").write_text("<script>while (true) {}</script>")
    with TestClient(create_app(settings)) as client:
        response = client.get("/og/hang.png")
        assert response.status_code == 504
        assert response.headers["cache-control"] == "no-store"
        assert image_of(response.content).width == 1200
        after = client.get("/og/minimal.png", params={"title": "still alive"})
        assert after.status_code == 200
        assert after.headers["x-ogshot-cache"] == "miss"


def test_images_expire_after_the_ttl(tmp_path: Path) -> None:
    # stale_ttl=0: nothing is served past the TTL (stale serving: test_versions.py); no
    # refresh-ahead, which renders an image fetched twice again before its TTL (test_warm.py)
    settings = make_settings(
        tmp_path, cache_ttl=1, stale_ttl=0, pool_size=1, max_age=60, refresh_ahead=0
    )
    with TestClient(create_app(settings)) as client:
        url = "/og/minimal.png?title=ttl"
        assert client.get(url).headers["x-ogshot-cache"] == "miss"
        assert client.get(url).headers["x-ogshot-cache"] == "hit"
        time.sleep(1.2)
        expired = client.get(url)
        assert expired.headers["x-ogshot-cache"] == "miss"  # neither memory nor disk kept it
        assert expired.headers["cache-control"] == (
            "public, max-age=60, stale-while-revalidate=604800, stale-if-error=604800"
        )


@pytest.mark.parametrize(("memory", "after_disk_clear"), [("64MiB", "hit"), ("0", "miss")])
def test_memory_cache_holds_hot_images_unless_turned_off(
    tmp_path: Path, memory: str, after_disk_clear: str
) -> None:
    settings = make_settings(tmp_path, pool_size=1, memory_cache_size=parse_size(memory))
    with TestClient(create_app(settings)) as client:
        url = "/og/minimal.png?title=hot"
        assert client.get(url).headers["x-ogshot-cache"] == "miss"
        settled(client)  # on disk, then gone from it
        client.app.state.renderer.cache.clear()  # type: ignore[attr-defined]
        assert client.get(url).headers["x-ogshot-cache"] == after_disk_clear


def test_the_capture_waits_for_window_ogshot_ready(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, pool_size=1)
    (settings.templates_dir / "late.html").write_text(
        "<body style='margin:0;background:#000'><script>"
        "window.ogshotReady = new Promise((resolve) => setTimeout(() => {"
        "  document.body.style.background = '#00ff00'; resolve();"
        "}, 300));</script></body>"
    )
    (settings.templates_dir / "refuses.html").write_text(
        "<script>window.ogshotReady = Promise.reject(new Error('no data for this card'));</script>"
    )
    with TestClient(create_app(settings)) as client:
        late = client.get("/og/late.png")
        assert late.status_code == 200
        r, g, b = pixel(late.content, 5, 5)
        assert g > 240 and r < 15 and b < 15  # drawn after the promise, not before
        refused = client.get("/og/refuses.png")
        assert refused.status_code == 500
        assert "no data for this card" in refused.headers["x-ogshot-error"]
        assert renders(client) == 2  # a template's own failure is not retried as a browser one
        assert client.get("/og/minimal.png?title=after").status_code == 200


def test_images_that_only_css_asks_for_are_in_the_capture(tmp_path: Path) -> None:
    """Backgrounds and masks are fetched when style is first computed, which can be after the
    load event: the capture must still wait for them."""
    settings = make_settings(tmp_path, pool_size=1)
    red = pyvips.Image.black(8, 8, bands=3).linear(1, [255, 0, 0]).cast("uchar")
    red.pngsave(str(settings.static_dir / "red.png"))
    (settings.templates_dir / "css-images.html").write_text(
        "<style>body{margin:0;width:1200px;height:630px;background:#000}"
        "body::before{content:'';position:absolute;left:0;top:0;width:600px;height:630px;"
        "background:url(/static/red.png) 0 0/100% 100%}"
        "#masked{position:absolute;left:600px;top:0;width:600px;height:630px;background:#0f0;"
        "-webkit-mask:url(/static/red.png) 0 0/100% 100%;mask:url(/static/red.png) 0 0/100% 100%}"
        "</style><div id=masked></div>"
    )
    with TestClient(create_app(settings)) as client:
        for title in ("first", "second"):  # a fresh page and a warm one
            shot = client.get("/og/css-images.png", params={"n": title}).content
            r, g, b = pixel(shot, 300, 300)
            assert r > 240 and g < 15 and b < 15, (title, r, g, b)
            r, g, b = pixel(shot, 900, 300)
            assert g > 240 and r < 15 and b < 15, (title, r, g, b)


def test_every_capture_has_the_current_stylesheet(tmp_path: Path) -> None:
    """A document written into a warm page can report itself loaded before a stylesheet fetched
    anew has arrived; each capture must still show it (this caught ~5% stale captures)."""
    settings = make_settings(tmp_path, pool_size=2)
    css = settings.static_dir / "css" / "base.css"
    original = css.read_text()
    with TestClient(create_app(settings)) as client:
        for round_ in range(20):
            colour, expected = (("#ff00ff", (255, 0, 255)), ("#00ffff", (0, 255, 255)))[round_ % 2]
            with saved(client):
                css.write_text(
                    original + "body::after { content: ''; position: fixed; left: 0; top: 0;"
                    f" width: 50px; height: 50px; background: {colour}; }}\n/* {round_} */\n"
                )
            for n in range(2):
                shot = client.get("/og/minimal.png", params={"title": f"r{round_}-{n}"}).content
                got = pixel(shot, 10, 10)
                assert all(abs(a - e) < 30 for a, e in zip(got, expected, strict=True)), (
                    round_,
                    n,
                    got,
                )


# -- errors: one tree, one function that answers them ---------------------------------------------


def _raising(exc: Exception) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        raise exc

    return endpoint


# One instance of every error class, as the code raises them.
EVERY_ERROR: list[errors.OgshotError] = [
    errors.OgshotError("plain"),
    errors.ConfigError("port", -1, "not a TCP port"),
    errors.BadRequest("bad"),
    errors.InvalidParameter("title", "required"),
    errors.InvalidFormat("unknown format 'gif'"),
    errors.RemoteImageError("host 'x' is not in OGSHOT_REMOTE_IMAGES"),
    errors.Unauthorized("wrong admin token"),
    errors.Forbidden("wrong URL signature"),
    errors.TemplateNotFound("nope", ["article"]),
    errors.RequestTooLarge("query string is 9000 bytes"),
    errors.Overloaded("no page free", retry_after=7),
    errors.Unrenderable(
        "no installed font can draw U+F0000", detail={"missing_glyphs": ["U+F0000"]}
    ),
    errors.FleetUnavailable("Redis is unreachable"),
    errors.OverBudget("no PNG fits max_kb=60", detail={"max_kb": 60, "smallest_bytes": 99000}),
    errors.PageNotCaptured("the page answered 404", detail={"url": "https://example.com/"}),
    errors.RenderFailed("failed"),
    errors.TemplateError("syntax error", template="t", line=3),
    errors.BrowserError("page crashed"),
    errors.RenderTimeout("no capture within 3 s"),
]


def test_every_error_class_has_its_own_kind_and_a_status() -> None:
    classes = {getattr(errors, name) for name in errors.__all__}
    assert classes == {type(exc) for exc in EVERY_ERROR}
    kinds = [cls.kind for cls in classes]
    assert len(set(kinds)) == len(kinds)
    assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*", kind) for kind in kinds)
    assert all(400 <= cls.status <= 599 for cls in classes)
    # The studio's overlay titles, and what metrics and logs will count, depend on these.
    assert errors.TemplateError.kind == "template" and errors.RenderTimeout.kind == "timeout"
    assert errors.InvalidParameter.kind == "parameter" and errors.Overloaded.kind == "overloaded"

    class SomethingNew(errors.BadRequest):
        pass

    assert SomethingNew.kind == "something_new" and SomethingNew.status == 400


@pytest.fixture(scope="module")
def raising(client: TestClient) -> TestClient:
    """The shared app, plus routes that raise each error: as an image route and as a plain one."""
    for exc in [*EVERY_ERROR, RuntimeError("a bug")]:
        name = type(exc).__name__
        client.app.router.routes.extend(  # type: ignore[attr-defined]
            [
                ErrorRoute(f"/test/image/{name}", _raising(exc), fallback_image=True),
                Route(f"/test/json/{name}", _raising(exc)),
            ]
        )
    return client


@pytest.mark.parametrize("exc", EVERY_ERROR, ids=lambda exc: type(exc).__name__)
def test_every_error_is_answered_from_its_class(
    raising: TestClient, exc: errors.OgshotError
) -> None:
    name = type(exc).__name__
    for route in ("json", "image"):
        response = raising.get(f"/test/{route}/{name}")
        assert response.status_code == exc.status, (route, response.text)
        assert response.headers["cache-control"] == "no-store"
        for header, value in exc.headers().items():
            assert response.headers[header] == value
        if route == "image" and exc.fallback_image:
            assert response.headers["content-type"] == "image/png"
            assert response.headers["x-ogshot-error"] == exc.message
            assert (image_of(response.content).width, image_of(response.content).height) == (
                1200,
                630,
            )
        else:
            assert response.headers["content-type"] == "application/json"
            assert response.json() == {"error": exc.message, "detail": exc.detail}
    assert isinstance(exc, errors.RenderFailed) == exc.fallback_image


def test_overloaded_says_when_to_retry(raising: TestClient) -> None:
    response = raising.get("/test/json/Overloaded")
    assert response.status_code == 503 and response.headers["retry-after"] == "7"
    assert response.json()["detail"] == {"retry_after": 7}


def test_an_unexpected_exception_is_a_500_that_gives_nothing_away(
    raising: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    bare = TestClient(raising.app, raise_server_exceptions=False)  # no lifespan: not needed
    for route in ("json", "image"):
        response = bare.get(f"/test/{route}/RuntimeError")
        assert response.status_code == 500
        assert response.json() == {"error": "internal error", "detail": None}
    assert any("a bug" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)


def test_a_wrong_method_is_json_405_with_allow(client: TestClient) -> None:
    response = client.post("/og/minimal.png")
    assert response.status_code == 405
    assert response.json() == {"error": "Method Not Allowed", "detail": None}
    assert set(response.headers["allow"].replace(" ", "").split(",")) == {"GET", "HEAD"}


def test_head_of_a_failed_render_has_the_fallback_length_and_no_body(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, pool_size=1)
    (settings.templates_dir / "boom.html").write_text("<p>{{ 1 // 0 }}</p>")
    with TestClient(create_app(settings)) as client:
        got, head = client.get("/og/boom.png"), client.head("/og/boom.png")
    assert got.status_code == head.status_code == 500
    assert head.content == b"" and int(head.headers["content-length"]) == len(got.content) > 0
