"""Remote images: ogshot fetches them (never Chromium), only from allowlisted hosts at public
addresses, re-checking every redirect hop, with size, time and type checks.

Names resolve through a test resolver and only loopback is ever contacted. The image server
listens on 127.0.0.2 and tests that need a successful fetch allow exactly that address; the canary
listens on 127.0.0.1, which stays refused, as the default policy refuses every loopback address.
"""

from __future__ import annotations

import ipaddress
import ssl
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from ogshot.app import create_app
from ogshot.engine.egress import is_public_address, parse_address
from ogshot.engine.remote_images import RemoteImageError, RemoteImages
from tests.support import canary as servers
from tests.support.helpers import make_settings, pixel
from tests.support.image_origin import IMAGE_HOST, Origin, Resolver, only_image_host, solid_png


@pytest.fixture(scope="module")
def canary() -> Iterator[servers.Canary]:
    with servers.serve("127.0.0.1") as c:
        yield c
        # Whatever arrived after the module's last checkpoint (the app has stopped by now).
        assert c.checkpoint() == [], "the canary was reached after the last test"


@pytest.fixture(scope="module")
def origin(canary: servers.Canary) -> Iterator[tuple[Origin, servers.Canary]]:
    content = Origin()
    content.canary_port = canary.port
    with servers.serve(IMAGE_HOST, answer=content.answer) as server:
        yield content, server


def fetcher(resolver: Resolver, **options: object) -> RemoteImages:
    values: dict[str, object] = {"timeout": 1.0, "max_bytes": 200_000}
    values.update(options)
    return RemoteImages(
        ["*.test", "img.example.com"],
        resolver=resolver,
        address_allowed=only_image_host,
        **values,  # type: ignore[arg-type]
    )


def refusal(remote: RemoteImages, url: str) -> str:
    with pytest.raises(RemoteImageError) as caught:
        remote._fetch(url)
    return str(caught.value)


# -- the address policy ------------------------------------------------------------------------

PRIVATE_FORMS = [
    "127.0.0.1",
    "127.255.255.254",
    "10.0.0.1",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # CGNAT
    "0.0.0.0",
    "224.0.0.1",  # multicast
    "239.255.255.250",
    "240.0.0.1",  # reserved
    "255.255.255.255",
    "198.18.0.1",  # benchmarking
    "192.0.0.170",
    "::1",
    "::",
    "fe80::1",
    "fe80::1%eth0",
    "fc00::1",
    "fd12:3456::1",
    "ff02::1",  # multicast
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:169.254.169.254",
    "::ffff:8.8.8.8",  # mapped, even of a public address
    "::127.0.0.1",  # IPv4-compatible
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b:1::a00:1",  # local-use NAT64
    "2001::1",  # Teredo
    "2130706433",  # 127.0.0.1 as one decimal number
    "0x7f000001",  # ... in hex
    "0x7f.1",
    "017700000001",  # ... in octal
    "0177.0.0.1",
    "127.1",
]


@pytest.mark.parametrize("form", PRIVATE_FORMS)
def test_a_name_resolving_to_a_private_address_is_refused(form: str) -> None:
    resolver = Resolver({"evil.test": [form]})
    # The default policy (loopback refused like every private range):
    remote = RemoteImages(["*.test"], resolver=resolver)
    assert "not a public address" in refusal(remote, "http://evil.test/a.png")
    assert resolver.asked == ["evil.test"]  # resolved once, never connected


def test_one_private_answer_among_public_ones_is_refused() -> None:
    resolver = Resolver({"evil.test": ["93.184.215.14", "10.0.0.5"]})
    remote = RemoteImages(["*.test"], resolver=resolver)
    assert "10.0.0.5" in refusal(remote, "https://evil.test/a.png")


@pytest.mark.parametrize(
    "host",
    ["2130706433", "0x7f.1", "127.1", "017700000001", "[::ffff:127.0.0.1]", "[::1]", "0"],
)
def test_numeric_hosts_are_read_as_addresses_and_refused(host: str) -> None:
    resolver = Resolver({})
    remote = RemoteImages([host.strip("[]")], resolver=resolver)
    assert "not a public address" in refusal(remote, f"http://{host}/a.png")
    assert resolver.asked == []  # an address is not looked up


def test_parse_address_reads_what_the_c_library_reads() -> None:
    loopback = ipaddress.IPv4Address("127.0.0.1")
    for form in ("2130706433", "0x7f000001", "0x7f.1", "017700000001", "127.1", "127.0.0.1"):
        assert parse_address(form) == loopback, form
    assert parse_address("img.example.com") is None
    assert parse_address("deadbeef.test") is None
    assert is_public_address(ipaddress.ip_address("93.184.215.14"))
    assert is_public_address(ipaddress.ip_address("2606:2800:21f:cb07:6820:80da:af6b:8b2c"))


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("file:///etc/passwd", "scheme"),
        ("ftp://img.test/a.png", "scheme"),
        ("gopher://img.test/", "scheme"),
        ("http://user:pass@img.test/a.png", "credentials"),
        ("http://example.com/a.png", "not in OGSHOT_REMOTE_IMAGES"),
        ("http://test/a.png", "not in OGSHOT_REMOTE_IMAGES"),  # *.test is not test itself
        ("http://img.test.evil.com/a.png", "not in OGSHOT_REMOTE_IMAGES"),
        ("http://eviltest/a.png", "not in OGSHOT_REMOTE_IMAGES"),
    ],
)
def test_scheme_credentials_and_allowlist(url: str, reason: str) -> None:
    resolver = Resolver({})
    remote = fetcher(resolver)
    assert reason in refusal(remote, url)
    assert not remote.allows(url) or reason == "credentials"
    assert resolver.asked == []


# -- fetching from the (allowed, loopback) image server ----------------------------------------


def test_an_allowed_image_is_fetched_pinned_and_kept(
    origin: tuple[Origin, servers.Canary],
) -> None:
    content, server = origin
    resolver = Resolver({"img.test": [IMAGE_HOST]})
    remote = fetcher(resolver)
    url = f"http://img.test:{server.port}/ok.png"
    before = server.connections
    image = remote._fetch(url)
    assert image.body == content.image and image.content_type == "image/png"
    assert server.connections - before == 1
    assert resolver.asked == ["img.test"]  # once: the connection went to that address
    # The default policy refuses the very same fetch: loopback is never public.
    default = RemoteImages(["*.test"], resolver=resolver)
    assert "not a public address" in refusal(default, url)


def test_a_redirect_hop_is_checked_like_the_first_url(
    origin: tuple[Origin, servers.Canary], canary: servers.Canary
) -> None:
    _content, server = origin
    resolver = Resolver({"img.test": [IMAGE_HOST], "evil.test": ["127.0.0.1"]})
    remote = fetcher(resolver)
    base = f"http://img.test:{server.port}"
    assert "not in OGSHOT_REMOTE_IMAGES" in refusal(remote, f"{base}/to-canary-ip")
    assert "not a public address" in refusal(remote, f"{base}/to-canary-name")
    assert "scheme 'file'" in refusal(remote, f"{base}/to-file")
    assert "more than 3 redirects" in refusal(remote, f"{base}/loop")
    assert remote._fetch(f"{base}/hop").content_type == "image/png"  # a good hop is followed
    assert canary.checkpoint() == []  # the fetches have returned: all they sent has arrived


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/big", "the limit is 200000"),
        ("/endless", "larger than 200000"),
        ("/slow", "no answer within 1 s"),
        ("/html", "text/html, not an image"),
        ("/fake.png", "is not a PNG, JPEG, GIF, WebP or AVIF"),
        ("/image.svg", "image/svg+xml, not an image"),
        ("/missing.png", "HTTP 404"),
    ],
)
def test_size_time_and_type_caps(
    origin: tuple[Origin, servers.Canary], path: str, reason: str
) -> None:
    _content, server = origin
    remote = fetcher(Resolver({"img.test": [IMAGE_HOST]}))
    started = time.monotonic()
    assert reason in refusal(remote, f"http://img.test:{server.port}{path}")
    assert time.monotonic() - started < 30  # a cap, not a hang (the real bound is 1 s)


def test_a_second_answer_from_dns_is_never_used(
    origin: tuple[Origin, servers.Canary], canary: servers.Canary
) -> None:
    """DNS rebinding: the name answers the allowed address once, then the canary's. The fetch
    connects to the address it checked, so the canary hears nothing."""
    _content, server = origin
    answers = iter([[IMAGE_HOST], ["127.0.0.1"], ["127.0.0.1"]])
    asked: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:
        asked.append(host)
        return next(answers)

    remote = RemoteImages(["*.test"], resolver=rebinding, address_allowed=only_image_host)
    image = remote._fetch(f"http://img.test:{server.port}/ok.png")
    assert image.content_type == "image/png"
    assert asked == ["img.test"]
    assert canary.checkpoint() == []


@pytest.fixture(scope="module")
def tls_origin(
    tmp_path_factory: pytest.TempPathFactory, origin: tuple[Origin, servers.Canary]
) -> Iterator[tuple[servers.Canary, ssl.SSLContext]]:
    """An HTTPS image server on 127.0.0.2 with a self-signed certificate for img.test."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=img.test"),
            *("-addext", "subjectAltName=DNS:img.test"),
        ],
        check=True,
        capture_output=True,
    )
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(cert, key)
    client_side = ssl.create_default_context(cafile=str(cert))
    content, _plain = origin
    with servers.serve(IMAGE_HOST, answer=content.answer, tls=server_side) as server:
        yield server, client_side


def test_https_connects_to_the_pinned_address_and_checks_the_name(
    tls_origin: tuple[servers.Canary, ssl.SSLContext],
) -> None:
    server, trust = tls_origin
    resolver = Resolver({"img.test": [IMAGE_HOST], "other.test": [IMAGE_HOST]})
    remote = fetcher(resolver)
    remote.tls = trust
    image = remote._fetch(f"https://img.test:{server.port}/ok.png")
    assert image.content_type == "image/png"
    # Same address, another name: the certificate (for img.test) does not match it.
    assert "CERTIFICATE_VERIFY_FAILED" in refusal(
        remote, f"https://other.test:{server.port}/ok.png"
    )


# -- through the app and a real page -----------------------------------------------------------

AVATAR = """{#ogshot
[params.src]
type = "url"
#}
<!doctype html><html><head><style>body { margin: 0; background: #fff; }</style></head><body>
<img src="{{ src }}" style="display:block;width:1200px;height:630px"></body></html>"""

FRAMED = """{#ogshot
[params.src]
type = "url"
#}
<!doctype html><html><head><style>body { margin: 0; background: #fff; }</style></head><body>
<iframe src="{{ src }}" style="border:0;width:1200px;height:630px"></iframe></body></html>"""


QUIET = '{#ogshot\n[params.n]\ntype = "str"\n#}\n<!doctype html><p>{{ n }}</p>'


@pytest.fixture(scope="module")
def app(
    module_dir: Path, origin: tuple[Origin, servers.Canary]
) -> Iterator[tuple[TestClient, RemoteImages]]:
    settings = make_settings(module_dir, pool_size=1, remote_images=("*.test",))
    (Path(settings.templates_dir) / "avatar.html").write_text(AVATAR)
    (Path(settings.templates_dir) / "framed.html").write_text(FRAMED)
    (Path(settings.templates_dir) / "quiet.html").write_text(QUIET)
    with TestClient(create_app(settings)) as client:
        remote: RemoteImages = client.app.state.renderer.remote  # type: ignore[attr-defined]
        remote.resolver = Resolver({"img.test": [IMAGE_HOST], "evil.test": ["127.0.0.1"]})
        remote.address_allowed = only_image_host
        yield client, remote


def test_the_page_gets_the_image_and_the_key_follows_its_bytes(
    app: tuple[TestClient, RemoteImages], origin: tuple[Origin, servers.Canary]
) -> None:
    client, remote = app
    content, server = origin
    url = f"http://img.test:{server.port}/ok.png"
    content.image = solid_png([255, 0, 0])
    fetches = remote.fetches
    first = client.get("/og/avatar.png", params={"src": url})
    assert first.status_code == 200, first.text
    r, g, b = pixel(first.content, 600, 300)
    assert r > 240 and g < 15 and b < 15  # the remote image reached the page
    assert remote.fetches == fetches + 1
    again = client.get("/og/avatar.png", params={"src": url})
    assert again.headers["x-ogshot-cache"] == "hit"
    assert remote.fetches == fetches + 1  # a hit does not fetch again (kept for the TTL)
    # New bytes at the same URL, once the kept copy is gone: a new cache key, a new image.
    content.image = solid_png([0, 0, 255])
    remote.clear()
    changed = client.get("/og/avatar.png", params={"src": url})
    assert changed.headers["x-ogshot-cache"] == "miss"
    assert changed.headers["etag"] != first.headers["etag"]
    r, g, b = pixel(changed.content, 600, 300)
    assert b > 240 and r < 15


def test_a_refused_remote_image_is_a_400_naming_the_parameter(
    app: tuple[TestClient, RemoteImages],
    origin: tuple[Origin, servers.Canary],
    canary: servers.Canary,
) -> None:
    client, _remote = app
    response = client.get("/og/avatar.png", params={"src": f"http://evil.test:{canary.port}/x.png"})
    assert response.status_code == 400
    assert response.json()["detail"] == {"parameter": "src"}
    assert "remote image refused" in response.json()["error"]
    assert "not a public address" in response.json()["error"]
    assert response.headers["cache-control"] == "no-store"
    # An allowed URL that redirects to the canary: the hop is refused, nothing is rendered.
    _content, server = origin
    hop = client.get(
        "/og/avatar.png", params={"src": f"http://img.test:{server.port}/to-canary-name"}
    )
    assert hop.status_code == 400
    assert "not a public address" in hop.json()["error"]
    # Not on the allowlist: not fetched by ogshot, and Chromium may not fetch it either.
    plain = client.get("/og/avatar.png", params={"src": f"http://127.0.0.1:{canary.port}/x.png"})
    assert plain.status_code == 200
    assert pixel(plain.content, 600, 300) == [255.0, 255.0, 255.0]
    # A control render replaces that document in the only page, so nothing of it can still send
    # a request; then the canary's checkpoint proves that whatever was sent has arrived.
    control = client.get("/og/quiet.png", params={"n": uuid.uuid4().hex})
    assert control.status_code == 200 and control.headers["x-ogshot-cache"] == "miss"
    assert canary.checkpoint() == []


def test_a_remote_image_is_served_to_the_page_only_as_an_image(
    app: tuple[TestClient, RemoteImages], origin: tuple[Origin, servers.Canary]
) -> None:
    client, _remote = app
    content, server = origin
    content.image = solid_png([255, 0, 0])
    response = client.get("/og/framed.png", params={"src": f"http://img.test:{server.port}/ok.png"})
    assert response.status_code == 200
    r, g, b = pixel(response.content, 600, 300)
    assert not (r > 240 and g < 15 and b < 15)  # the frame did not get the image as a document
