"""Network isolation: templates and parameters try every way out of the page; a canary server on
127.0.0.1 counts what arrives. It must receive nothing.

Each attack template also paints a green square at (0, 0) when its attempt *succeeded* from the
page's point of view (an onload, a resolved fetch, an open WebSocket), so a test fails on a leak
even if the request went somewhere other than the canary.

Chromium's own Local Network Access checks would block many of these requests to 127.0.0.1 by
themselves (the page's origin is not local). They are switched off here, so that the canary
measures ogshot's defences (the request router and the isolation flags) and not Chromium's: with
both of ours removed, all but the service-worker and file:// tests fail.
"""

from __future__ import annotations

import socket
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from starlette.testclient import TestClient

from ogshot.app import create_app
from tests.support import canary as canary_server
from tests.support.helpers import image_of, make_settings, pixel

HEAD = """<!doctype html><html><head><meta charset="utf-8">
<style>html, body { margin: 0; background: #fff; }
#hit { position: fixed; left: 0; top: 0; width: 120px; height: 120px; background: #00ff00; }</style>
<script>
function hit() {
  if (!document.getElementById("hit")) {
    const d = document.createElement("div"); d.id = "hit"; document.documentElement.appendChild(d);
  }
}
// Give every attempt time to land before the capture.
window.ogshotReady = new Promise((resolve) => setTimeout(resolve, 200));
</script>
"""

# name -> markup (C is the canary's http://127.0.0.1:PORT, P its port)
ATTACKS: dict[str, str] = {
    "img": '<img src="{C}/img" onload="hit()">',
    "img-srcset": '<img srcset="{C}/srcset 1x" onload="hit()"><picture><source srcset="{C}/pic">'
    '<img src="/static/img/logo.svg"></picture>',
    "link-stylesheet": '<link rel="stylesheet" href="{C}/style.css" onload="hit()">',
    "link-preload-prefetch": '<link rel="preload" as="image" href="{C}/preload">'
    '<link rel="prefetch" href="{C}/prefetch"><link rel="preconnect" href="{C}">'
    '<link rel="dns-prefetch" href="{C}"><link rel="icon" href="{C}/favicon.ico">',
    "css-url": '<style>body {{ background-image: url("{C}/bg.png"); }}</style>'
    '<div style="width:50px;height:50px;background:url({C}/inline.png)"></div>'
    '<div style="width:50px;height:50px;border-image:url({C}/border.png) 30"></div>',
    "css-import": '<style>@import url("{C}/import.css");</style>',
    "font-face": '<style>@font-face {{ font-family: leak; src: url("{C}/font.woff2"); }}'
    "body {{ font-family: leak; }}</style><p>text in a remote font</p>"
    '<script>document.fonts.load("16px leak").then((f) => f.length && hit(), () => 0);</script>',
    "fetch": '<script>fetch("{C}/fetch").then(hit, () => 0);'
    'fetch("{C}/no-cors", {{mode: "no-cors"}}).then(hit, () => 0);</script>',
    "xhr": '<script>const x = new XMLHttpRequest(); x.onload = hit; x.open("GET", "{C}/xhr");'
    "x.send();</script>",
    "beacon-eventsource": "<script>"
    'try {{ navigator.sendBeacon("{C}/beacon", "x"); }} catch (e) {{}}'
    'const es = new EventSource("{C}/events"); es.onopen = hit;</script>',
    "iframe": '<iframe src="{C}/iframe"></iframe><iframe srcdoc="<img src={C}/srcdoc>"></iframe>',
    "object-embed-media": '<object data="{C}/object"></object><embed src="{C}/embed">'
    '<video src="{C}/video" autoplay muted></video><audio src="{C}/audio" autoplay></audio>',
    "websocket": '<script>const w = new WebSocket("ws://127.0.0.1:{P}/ws"); w.onopen = hit;'
    "</script>",
    "webrtc": "<script>try {{ const pc = new RTCPeerConnection({{iceServers: ["
    '{{urls: "stun:127.0.0.1:{P}"}}, {{urls: "turn:127.0.0.1:{P}?transport=tcp",'
    ' username: "u", credential: "p"}}]}});'
    'pc.createDataChannel("x"); pc.createOffer().then((o) => pc.setLocalDescription(o));'
    "}} catch (e) {{}}</script>",
    "meta-refresh": '<meta http-equiv="refresh" content="0;url={C}/refresh">',
    "location-and-form": '<form action="{C}/form" method="get"><input name="q" value="1"></form>'
    "<script>setTimeout(() => document.forms[0].submit(), 10);"
    'setTimeout(() => {{ location.href = "{C}/location"; }}, 50);</script>',
    "base-href": '<base href="{C}/"><img src="relative.png" onload="hit()">',
    "worker": "<script>try {{ const w = new Worker(URL.createObjectURL(new Blob(["
    '"fetch(\\"{C}/worker\\").then(() => postMessage(1))"], {{type: "text/javascript"}})));'
    "w.onmessage = hit; }} catch (e) {{}}</script>",
    "service-worker": "<script>if (navigator.serviceWorker) {{"
    'navigator.serviceWorker.register("/static/sw.js").then(hit, () => 0); }}</script>',
    "window-open": '<script>window.open("{C}/popup");'
    'window.open("{C}/popup-noopener", "_blank", "noopener");</script>',
}

NO_LOCAL_NETWORK_CHECKS = (
    "--disable-features=LocalNetworkAccessChecks,BlockInsecurePrivateNetworkRequests,"
    "PrivateNetworkAccessSendPreflights,PrivateNetworkAccessRespectPreflightResults"
)

SERVICE_WORKER = 'self.addEventListener("install", () => fetch("{C}/from-sw"));\n'

# Parameters are data: each payload would, if it ran, paint the green square and call the canary.
PAYLOAD_TEMPLATE = (
    HEAD
    + """<style>.c { color: {{ color }}; }</style></head><body>
<h1 class="c" title="{{ attr }}">{{ text }}</h1>
<a href="{{ link }}">link</a><img src="{{ link }}" width="10" height="10">
<div style="width:10px;height:10px;background-image:url('{{ css }}')"></div>
<img src="{{ src }}" width="10" height="10">
</body></html>"""
)


def payloads(c: str) -> dict[str, str]:
    return {
        "text": f'<script>hit(); fetch("{c}/script")</script>',
        "attr": f'"><img src=x onerror="hit(); fetch(\'{c}/onerror\')">',
        "color": f"red; }}</style><script>hit(); fetch('{c}/style')</script><style>",
        "link": f"javascript:hit();fetch('{c}/javascript')",
        "css": f"x'); background-image: url('{c}/css-url",
        "src": f"{c}/img-param",
    }


@pytest.fixture(scope="module")
def canary() -> Iterator[canary_server.Canary]:
    with canary_server.serve() as c:
        yield c
        # Whatever arrived after the module's last checkpoint: the app and its Chromium, which
        # depend on this fixture, have stopped by now.
        assert c.checkpoint() == [], "the canary was reached after the last test"


@pytest.fixture(scope="module")
def app(module_dir: Path, canary: canary_server.Canary) -> Iterator[TestClient]:
    settings = make_settings(module_dir, pool_size=1)
    settings = settings.replace(launch_args=(*settings.launch_args, NO_LOCAL_NETWORK_CHECKS))
    templates = Path(settings.templates_dir)
    fill = {"C": canary.base, "P": str(canary.port)}
    for name, markup in ATTACKS.items():
        body = markup.format(**fill)
        (templates / f"attack-{name}.html").write_text(f"{HEAD}</head><body>{body}</body></html>")
    (templates / "payload.html").write_text(PAYLOAD_TEMPLATE)
    (templates / "quiet.html").write_text(QUIET)
    (templates / "declared-url.html").write_text(
        '{#ogshot\n[params.src]\ntype = "url"\n#}\n<img src="{{ src }}">'
    )
    frame = '<iframe id="f" src="file:///etc/passwd" style="width:1200px;height:500px;border:0">'
    (templates / "file-read.html").write_text(
        HEAD
        + "</head><body>"
        + frame
        + '</iframe><img src="file:///etc/passwd" onload="hit()"'
        # (in a corner: a refused image draws its 16 px "broken" icon)
        + ' style="position:absolute;right:0;bottom:0">'
        + "<script>"
        + 'fetch("file:///etc/passwd").then((r) => r.text()).then((t) => {'
        + " document.body.append(t); hit(); }, () => 0);"
        + 'document.getElementById("f").addEventListener("load", () => {'
        + " try { const t = document.getElementById('f').contentDocument.body.innerText;"
        + " if (t.includes('root:')) hit(); } catch (e) {} });"
        + "</script></body></html>"
    )
    Path(settings.static_dir, "sw.js").write_text(SERVICE_WORKER.format(**fill))
    with TestClient(create_app(settings)) as client:
        yield client


def green(image: bytes) -> bool:
    r, g, b = pixel(image, 10, 10)
    return g > 200 and r < 60 and b < 60


# A render that follows one with scripts gets a fresh window (ogshot/render.py), this one too.
QUIET = '{#ogshot\n[params.n]\ntype = "str"\n#}\n<!doctype html><p>{{ n }}</p>'


def leaks(app: TestClient, canary: canary_server.Canary) -> list[str]:
    """What reached the canary since its last checkpoint, once nothing more can be on its way.

    A control render first replaces the attack's document in the only page (a fresh window: the
    attack had scripts), so none of its timers or requests can still start; then the canary's
    checkpoint proves that everything sent before it has been recorded."""
    control = app.get("/og/quiet.png", params={"n": uuid.uuid4().hex})
    assert control.status_code == 200 and control.headers["x-ogshot-cache"] == "miss"
    return canary.checkpoint()


def test_the_canary_records_what_reaches_it() -> None:
    """The positive control for every "nothing arrived" below, on a canary of its own."""
    with canary_server.serve() as fresh:
        assert fresh.checkpoint() == []
        with urllib.request.urlopen(f"{fresh.base}/seen", timeout=5) as response:
            assert response.read() == b"canary"
        with socket.create_connection((fresh.host, fresh.port), timeout=5):
            pass  # a bare connect, no request
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.sendto(b"stun?", (fresh.host, fresh.port))
        arrived = fresh.checkpoint()
        assert sorted(arrived) == sorted(["tcp /seen", "tcp (no request read yet)", "udp b'stun?'"])
        assert fresh.checkpoint() == []  # each arrival is reported once


def test_static_files_still_load(app: TestClient) -> None:
    """The positive control: the same page machinery does load what it may (a /static image)."""
    (Path(app.app.state.renderer.settings.templates_dir) / "static-ok.html").write_text(  # type: ignore[attr-defined]
        HEAD + '</head><body><img src="/static/img/logo.svg" onload="hit()"></body></html>'
    )
    response = app.get("/og/static-ok.png")
    assert response.status_code == 200
    assert green(response.content)


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_a_template_cannot_reach_the_network(
    app: TestClient, canary: canary_server.Canary, attack: str
) -> None:
    response = app.get(f"/og/attack-{attack}.png")
    # A page that navigates itself away may fail to render (a 500 fallback, never cached);
    # either way nothing may leave it.
    assert response.status_code in (200, 500), response.text
    assert leaks(app, canary) == []
    if response.status_code == 200:
        assert not green(response.content), f"{attack}: the page saw its request succeed"


def test_file_urls_leak_nothing(app: TestClient, canary: canary_server.Canary) -> None:
    response = app.get("/og/file-read.png")
    assert response.status_code == 200
    assert not green(response.content)
    assert leaks(app, canary) == []
    # /etc/passwd as text, in the frame or appended below it, would put dark glyphs on the page.
    region = image_of(response.content).crop(0, 0, 1150, 630)[:3]
    assert region.min() > 200, "something was drawn where /etc/passwd would be"


def test_parameters_are_data_not_code(app: TestClient, canary: canary_server.Canary) -> None:
    renderer = app.app.state.renderer  # type: ignore[attr-defined]
    values = payloads(canary.base)
    html = renderer.catalog.render_html(renderer.catalog.get("payload"), values)
    # The DOM gets text, not markup: every payload's < > " ' is escaped.
    assert "<script>hit" not in html and "&lt;script&gt;hit" in html
    assert 'onerror="hit' not in html and "&#34;&gt;&lt;img src=x onerror=" in html
    assert "</style><script>" not in html
    response = app.get("/og/payload.png?" + "&".join(f"{k}={quote(v)}" for k, v in values.items()))
    assert response.status_code == 200, response.text
    assert not green(response.content), "a parameter ran as code"
    assert leaks(app, canary) == []


def test_a_url_parameter_refuses_javascript_urls(app: TestClient) -> None:
    for bad in ("javascript:alert(1)", "data:text/html,<script>", "file:///etc/passwd"):
        response = app.get("/og/declared-url.png", params={"src": bad})
        assert response.status_code == 400
        assert response.json()["detail"] == {"parameter": "src"}
