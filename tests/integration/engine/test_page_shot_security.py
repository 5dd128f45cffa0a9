"""Page screenshots (/shot) may reach the allowlisted origins only: pages on a real local server
(the allowed origin, http://127.0.0.2:PORT, listed explicitly) try every way out to a canary
server on 127.0.0.1, which must receive nothing.

Each attack page paints a green square at (0, 0) when its attempt *succeeded* from the page's
point of view, so a test fails on a leak even if the request went somewhere other than the canary.
Chromium's own Local Network Access checks are switched off (as in test_security_network.py), so
that the canary measures ogshot's defences and not Chromium's.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from ogshot.app import create_app
from ogshot.core.errors import PageNotCaptured, RenderTimeout
from ogshot.engine.page_shot import PageShooter, ShotOptions
from ogshot.pipeline.renderer import Renderer
from ogshot.pipeline.shots import Shots
from ogshot.templates.signing import signed_shot_path
from tests.integration.engine.test_security_network import NO_LOCAL_NETWORK_CHECKS
from tests.support import canary as canary_server
from tests.support.helpers import image_of, make_settings, pixel

SECRET = "shot-secret"
ADMIN = "shot-admin"
# OGSHOT_SHOT_TIMEOUT of the app under test: generous, for a loaded machine; the tests of the
# deadline itself use a shorter one.
TIMEOUT = 12.0
SHORT = 3.0

HEAD = """<!doctype html><html><head><meta charset="utf-8">
<style>html, body { margin: 0; background: #fff; }
#hit { position: fixed; left: 0; top: 0; width: 120px; height: 120px; background: #00ff00; }</style>
<script>
function hit() {
  if (!document.getElementById("hit")) {
    const d = document.createElement("div"); d.id = "hit"; document.documentElement.appendChild(d);
  }
}
</script>
"""
# Give every attempt time to land before the capture.
WAIT = "300"


def page(body: str) -> bytes:
    return f"{HEAD}</head><body>{body}</body></html>".encode()


# path -> (status, headers, body); C is the canary's base URL, O the origin's own.
def pages(c: str, o: str) -> dict[str, tuple[int, dict[str, str], bytes]]:
    html = {"content-type": "text/html; charset=utf-8"}
    return {
        "/ok": (200, html, page('<img src="/dot.svg" onload="hit()">')),
        "/dot.svg": (
            200,
            {"content-type": "image/svg+xml"},
            b'<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>',
        ),
        "/away": (302, {"location": f"{c}/landing"}, b""),
        "/home": (302, {"location": f"{o}/ok"}, b""),
        "/missing": (404, html, page("<p>not here</p>")),
        "/img-away": (200, html, page('<img src="/hop" onload="hit()">')),
        "/hop": (302, {"location": f"{c}/img"}, b""),
        "/frames": (
            200,
            html,
            page(
                f'<iframe src="{c}/frame"></iframe><iframe src="{o}/dot.svg"></iframe>'
                '<iframe src="file:///etc/passwd"></iframe>'
                f'<img src="{c}/img" onload="hit()">'
            ),
        ),
        "/sw": (
            200,
            html,
            page(
                "<script>if (navigator.serviceWorker) {"
                # a real registration (Playwright's blocked one resolves to nothing)
                'navigator.serviceWorker.register("/sw.js").then((r) => r && hit(), () => 0);'
                "}</script>"
            ),
        ),
        "/sw.js": (
            200,
            {"content-type": "text/javascript"},
            f'self.addEventListener("install", () => fetch("{c}/from-sw"));'.encode(),
        ),
        "/popup": (
            200,
            html,
            page(
                f'<script>const w = window.open("{c}/popup"); if (w) hit();'
                f'window.open("{c}/popup-noopener", "_blank", "noopener");</script>'
                f'<a id="a" href="{c}/blank" target="_blank">x</a>'
                '<script>document.getElementById("a").click();</script>'
            ),
        ),
        "/refresh": (
            200,
            html,
            b'<!doctype html><meta http-equiv="refresh" content="0;url='
            + c.encode()
            + b'/refresh"><body style="margin:0;background:#fff"><p>refreshing</p>',
        ),
        "/escape": (
            200,
            html,
            page(
                f'<script>fetch("{c}/fetch").then(hit, () => 0);'
                f'const x = new XMLHttpRequest(); x.onload = hit; x.open("GET", "{c}/xhr");'
                'x.send(); fetch("/post", {method: "POST", body: "x"}).then(hit, () => 0);'
                f'const w = new WebSocket("ws://127.0.0.1:{c.rsplit(":", 1)[1]}/ws");'
                "w.onopen = hit;</script>"
                f'<form action="{c}/form"><input name="q" value="1"></form>'
                "<script>setTimeout(() => document.forms[0].submit(), 10);</script>"
            ),
        ),
        "/store": (
            200,
            html,
            page(
                "<script>"
                # a cookie from before, or the origin's Set-Cookie (dropped by ogshot)
                'if (localStorage.getItem("seen") || document.cookie.includes("seen=1")'
                ' || document.cookie.includes("tracked")) hit();'
                'localStorage.setItem("seen", "1"); document.cookie = "seen=1; max-age=3600";'
                'if (localStorage.getItem("seen") === "1") {'
                ' const d = document.createElement("div");'
                ' d.style.cssText = "position:fixed;right:0;bottom:0;width:50px;height:50px;'
                'background:#0000ff"; document.documentElement.appendChild(d); }'
                "</script>"
            ),
        ),
        "/slow-image": (200, html, page('<img src="/never">')),
        "/endless": (200, html, page("<script>while (true) {}</script>")),
    }


@pytest.fixture(scope="module")
def canary() -> Iterator[canary_server.Canary]:
    with canary_server.serve() as c:
        yield c
        # Whatever arrived after the module's last checkpoint: the app has stopped by now.
        assert c.checkpoint() == [], "the canary was reached after the last test"


@pytest.fixture(scope="module")
def origin(canary: canary_server.Canary) -> Iterator[canary_server.Canary]:
    """The allowed origin: a real server on 127.0.0.2 answering the pages above."""
    table: dict[str, tuple[int, dict[str, str], bytes]] = {}

    def answer(handler: BaseHTTPRequestHandler) -> None:
        path = handler.path.split("?", 1)[0]
        if path == "/never":
            time.sleep(TIMEOUT + 5)  # never answers within the shot's deadline
            return
        status, headers, body = table.get(path, (404, {}, b"not found"))
        handler.send_response(status)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("content-length", str(len(body)))
        handler.send_header("set-cookie", "tracked=1; Path=/")
        handler.end_headers()
        handler.wfile.write(body)

    with canary_server.serve("127.0.0.2", answer) as server:
        table.update(pages(canary.base, server.base))
        yield server


@pytest.fixture(scope="module")
def app(module_dir: Path, origin: canary_server.Canary) -> Iterator[TestClient]:
    settings = make_settings(
        module_dir,
        pool_size=1,
        secrets=(SECRET,),
        admin_token=ADMIN,
        shot_origins=(origin.base,),
        shot_timeout=TIMEOUT,
        shot_ttl=60,
    )
    settings = settings.replace(launch_args=(*settings.launch_args, NO_LOCAL_NETWORK_CHECKS))
    with TestClient(create_app(settings)) as client:
        yield client


def renderer_of(app: TestClient) -> Renderer:
    renderer: Renderer = app.app.state.renderer  # type: ignore[attr-defined]
    return renderer


def shot(app: TestClient, url: str, fmt: str = "png", **options: str) -> Any:
    path = signed_shot_path(renderer_of(app).settings, {"url": url, **options}, fmt)
    return app.get(path)


def green(image: bytes) -> bool:
    r, g, b = pixel(image, 10, 10)
    return g > 200 and r < 60 and b < 60


def leaks(canary: canary_server.Canary) -> list[str]:
    """What reached the canary since its last checkpoint. The shot's context is closed when its
    answer comes, so nothing of it is still on its way; the checkpoint proves that everything
    sent before it has been recorded."""
    return canary.checkpoint()


def test_the_allowed_origin_is_captured_with_its_own_requests(
    app: TestClient, origin: canary_server.Canary, canary: canary_server.Canary
) -> None:
    """The positive control: the same machinery does load what it may."""
    response = shot(app, f"{origin.base}/ok", wait=WAIT)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    image = image_of(response.content)
    assert (image.width, image.height) == (1200, 630)
    assert green(response.content)  # the page's own image loaded through ogshot
    assert "tcp /dot.svg" in origin.checkpoint()
    assert leaks(canary) == []


def test_a_redirect_within_the_origin_is_followed_and_checked(
    app: TestClient, origin: canary_server.Canary
) -> None:
    response = shot(app, f"{origin.base}/home", wait=WAIT)
    assert response.status_code == 200, response.text
    assert green(response.content)
    assert {"tcp /home", "tcp /ok"} <= set(origin.checkpoint())


def test_a_redirect_off_the_allowlist_is_refused(
    app: TestClient, canary: canary_server.Canary
) -> None:
    origin_base = renderer_of(app).settings.shot_origins[0]
    response = shot(app, f"{origin_base}/away")
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["detail"]["refused"] == f"{canary.base}/landing"
    assert "not in OGSHOT_SHOT_ORIGINS" in body["detail"]["reason"]
    assert response.headers["cache-control"] == "no-store"
    assert leaks(canary) == []


def test_a_subresource_redirect_off_the_allowlist_is_refused(
    app: TestClient, origin: canary_server.Canary, canary: canary_server.Canary
) -> None:
    response = shot(app, f"{origin.base}/img-away", wait=WAIT)
    assert response.status_code == 200, response.text
    assert not green(response.content), "the redirected image loaded"
    assert "tcp /hop" in origin.checkpoint()  # the first hop, on the origin, was made
    assert leaks(canary) == []


def test_an_error_page_is_not_captured(app: TestClient, origin: canary_server.Canary) -> None:
    response = shot(app, f"{origin.base}/missing")
    assert response.status_code == 422
    assert "answered 404" in response.json()["error"]


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "data:text/html,<p>hi</p>",
        "javascript:alert(1)",
        "http://127.0.0.1:9/",  # not the origin: another host
        "http://user:pass@127.0.0.2/",
    ],
)
def test_urls_that_are_not_the_origin_are_a_400_naming_url(app: TestClient, url: str) -> None:
    response = shot(app, url)
    assert response.status_code == 400, response.text
    assert response.json()["detail"] == {"parameter": "url"}


def test_another_port_of_the_same_host_is_another_origin(
    app: TestClient, origin: canary_server.Canary
) -> None:
    response = shot(app, f"http://127.0.0.2:{origin.port + 1}/ok")
    assert response.status_code == 400
    assert "not in OGSHOT_SHOT_ORIGINS" in response.json()["error"]


@pytest.mark.parametrize("attack", ["frames", "sw", "popup", "refresh", "escape"])
def test_a_page_cannot_reach_other_origins(
    app: TestClient, origin: canary_server.Canary, canary: canary_server.Canary, attack: str
) -> None:
    response = shot(app, f"{origin.base}/{attack}", wait=WAIT)
    # A page that navigates itself away may not be captured (422, never cached); either way
    # nothing may leave it.
    assert response.status_code in (200, 422), response.text
    assert leaks(canary) == []
    if response.status_code == 200:
        assert not green(response.content), f"{attack}: the page saw its request succeed"
    arrived = origin.checkpoint()
    assert f"tcp /{attack}" in arrived
    assert "tcp /sw.js" not in arrived  # service workers are blocked before any fetch
    assert not any("/post" in a for a in arrived), "a POST reached the origin"


def test_nothing_is_kept_between_shots_and_no_cookie_is_set(
    app: TestClient, origin: canary_server.Canary
) -> None:
    for wait in ("1", "2"):  # two cache keys: two captures of the same page
        response = shot(app, f"{origin.base}/store", wait=wait)
        assert response.status_code == 200, response.text
        assert not green(response.content), "the second shot saw the first one's storage"
        r, g, b = pixel(response.content, 1190, 620)
        assert b > 200 and r < 60 and g < 60  # the page could store and read within itself


def test_a_name_resolving_to_loopback_is_refused_when_a_public_origin_is_allowed(
    app: TestClient, origin: canary_server.Canary
) -> None:
    renderer = renderer_of(app)
    public_looking = f"http://pages.example.com:{origin.port}"
    settings = renderer.settings.replace(shot_origins=(public_looking,))

    def to_loopback(host: str, port: int) -> list[str]:
        assert host == "pages.example.com"
        return ["127.0.0.2"]

    assert app.portal is not None
    origin.checkpoint()  # what earlier tests left
    refusing = PageShooter(renderer.pool.browser, settings, resolver=to_loopback)
    with pytest.raises(PageNotCaptured) as caught:
        app.portal.call(refusing.shoot, ShotOptions(url=f"{public_looking}/ok"))
    assert "127.0.0.2" in caught.value.detail["reason"]
    assert "not an allowed address" in caught.value.detail["reason"]
    assert origin.checkpoint() == []  # not even the first request reached the server
    # The control: the same name and server, with loopback allowed, is captured.
    allowing = PageShooter(
        renderer.pool.browser,
        settings,
        resolver=to_loopback,
        address_allowed=lambda address: address.is_loopback,
    )
    png = app.portal.call(allowing.shoot, ShotOptions(url=f"{public_looking}/ok", wait=300))
    assert green(png)
    assert "tcp /ok" in origin.checkpoint()


def test_a_page_that_never_settles_is_a_504_json_and_nothing_is_cached(
    app: TestClient, origin: canary_server.Canary
) -> None:
    renderer = renderer_of(app)
    url = f"{origin.base}/slow-image"  # its image never comes
    started = time.monotonic()
    response = shot(app, url)
    elapsed = time.monotonic() - started
    assert response.status_code == 504, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "no-store"
    assert "OGSHOT_SHOT_TIMEOUT" in response.json()["error"]
    assert response.json()["detail"]["url"] == url
    assert elapsed < TIMEOUT + 10  # the deadline held, the context's close included
    job = renderer.shots.prepare({"url": url}, "png")
    assert app.portal is not None
    assert app.portal.call(renderer.layers.get, job.key) is None
    origin.checkpoint()


@pytest.mark.parametrize("path", ["/slow-image", "/endless"])
def test_the_deadline_holds_in_the_pipeline_and_the_browser_recovers(
    app: TestClient, origin: canary_server.Canary, path: str
) -> None:
    """The same through the pipeline with a short deadline: a page stuck in a script too."""
    renderer = renderer_of(app)
    settings = renderer.settings.replace(shot_timeout=SHORT)
    shots = Shots(settings, renderer.layers, PageShooter(renderer.pool.browser, settings))
    params = {"url": f"{origin.base}{path}", "wait": "7"}  # a key of its own
    assert app.portal is not None
    started = time.monotonic()
    with pytest.raises(RenderTimeout) as caught:
        app.portal.call(shots.image, params, "png")
    assert caught.value.status == 504
    assert time.monotonic() - started < SHORT + 10
    assert app.portal.call(renderer.layers.get, shots.prepare(params, "png").key) is None
    # The browser is still fine: the next shot is captured.
    after = shot(app, f"{origin.base}/ok", wait="1")
    assert after.status_code == 200, after.text
    app.portal.call(shots.close)
    origin.checkpoint()


def test_the_canary_is_reachable_from_here() -> None:
    """The positive control for "nothing arrived": a connection from the test itself is seen."""
    with canary_server.serve() as fresh:
        with socket.create_connection((fresh.host, fresh.port), timeout=5):
            pass
        assert fresh.checkpoint() == ["tcp (no request read yet)"]
