"""The /shot request filter without a browser: option bounds, which requests are refused, which
addresses an origin's host may resolve to, and a fetch pinned to the address that was checked
(against a real local server)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from ogshot.core.errors import InvalidParameter
from ogshot.core.origins import parse_origin
from ogshot.core.settings import Settings
from ogshot.engine.page_shot import (
    MAX_REQUESTS,
    PageShooter,
    Refused,
    ShotOptions,
    _Shot,
    parse_shot_options,
    shot_origins,
)
from tests.support import canary as canary_server
from tests.support.helpers import make_settings

ORIGINS = tuple(o for o in map(parse_origin, ("https://example.com", "http://127.0.0.4:8080")) if o)


def parse(**params: Any) -> ShotOptions:
    return parse_shot_options(params, ORIGINS)


def test_options_within_bounds() -> None:
    options = parse(
        url="https://example.com/a?b=1",
        selector="main > .card",
        wait="5000",
        hide="#cookie, .ads ,  ",
        scheme="dark",
    )
    assert options == ShotOptions(
        url="https://example.com/a?b=1",
        selector="main > .card",
        wait=5000,
        hide=("#cookie", ".ads"),
        scheme="dark",
    )
    assert parse(url="https://EXAMPLE.com:443/").scheme == "light"
    # The key's text changes with every option.
    texts = {
        parse(url="https://example.com/", **extra).canonical()
        for extra in ({}, {"wait": "1"}, {"hide": "a"}, {"selector": "a"}, {"scheme": "dark"})
    }
    assert len(texts) == 5


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({}, "url"),
        ({"url": "https://example.org/"}, "url"),
        ({"url": "https://example.com:8443/"}, "url"),
        ({"url": "http://example.com/"}, "url"),  # another scheme is another origin
        ({"url": "file:///etc/passwd"}, "url"),
        ({"url": "https://example.com/" + "a" * 2000}, "url"),
        ({"url": "https://example.com/", "wait": "5001"}, "wait"),
        ({"url": "https://example.com/", "wait": "1.5"}, "wait"),
        ({"url": "https://example.com/", "hide": ",".join("a" * 11)}, "hide"),
        ({"url": "https://example.com/", "hide": "a}b"}, "hide"),
        ({"url": "https://example.com/", "hide": "a /* b"}, "hide"),
        ({"url": "https://example.com/", "selector": "<script>"}, "selector"),
        ({"url": "https://example.com/", "selector": "a\\62"}, "selector"),
        ({"url": "https://example.com/", "scheme": "auto"}, "scheme"),
        ({"url": "https://example.com/", "full_page": "1"}, "full_page"),
    ],
)
def test_bad_options_name_themselves(params: dict[str, str], name: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        parse_shot_options(params, ORIGINS)
    assert caught.value.name == name


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, shot_origins=("https://example.com", "http://127.0.0.4:8080"))


def test_requests_off_the_origins_or_not_get_are_refused(settings: Settings) -> None:
    shooter = PageShooter(None, settings)
    assert shooter.origins == shot_origins(settings) == ORIGINS
    seen = _Shot()
    assert shooter._check("https://example.com/x.png", "GET", seen) == ORIGINS[0]
    for url, method in [
        ("https://example.org/", "GET"),
        ("https://example.com.evil.net/", "GET"),
        ("http://example.com/", "GET"),
        ("file:///etc/passwd", "GET"),
        ("ws://example.com/", "GET"),
        ("https://example.com/form", "POST"),
    ]:
        with pytest.raises(Refused):
            shooter._check(url, method, seen)
    seen.requests = MAX_REQUESTS + 1
    with pytest.raises(Refused, match="more than"):
        shooter._check("https://example.com/x.png", "GET", seen)


@pytest.mark.parametrize(
    ("origin", "address", "allowed"),
    [
        ("https://example.com", "93.184.216.34", True),
        ("https://example.com", "127.0.0.1", False),
        ("https://example.com", "10.0.0.5", False),
        ("https://example.com", "169.254.169.254", False),
        ("https://example.com", "::ffff:127.0.0.1", False),
        ("http://127.0.0.4:8080", "127.0.0.4", True),  # listed explicitly: that address only
        ("http://127.0.0.4:8080", "127.0.0.1", False),
        ("http://localhost:8080", "127.0.0.1", True),
        ("http://localhost:8080", "10.0.0.5", False),
    ],
)
def test_which_addresses_an_origin_may_resolve_to(
    settings: Settings, origin: str, address: str, allowed: bool
) -> None:
    parsed = parse_origin(origin)
    assert parsed is not None
    policy = PageShooter(None, settings)._addresses_for(parsed)
    assert policy(ipaddress.ip_address(address)) is allowed


@pytest.fixture
def server() -> Iterator[canary_server.Canary]:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        body = b"hello"
        handler.send_response(200)
        handler.send_header("content-type", "text/plain")
        handler.send_header("set-cookie", "a=1")
        handler.send_header("content-length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    with canary_server.serve("127.0.0.4", answer) as found:
        yield found


def test_a_fetch_goes_to_the_checked_address_only(
    settings: Settings, server: canary_server.Canary
) -> None:
    plain = parse_origin(f"http://pages.example.com:{server.port}")
    assert plain is not None
    settings = settings.replace(shot_origins=(str(plain),))
    resolved: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        resolved.append(host)
        return ["127.0.0.4"]

    refusing = PageShooter(None, settings, resolver=resolver)
    url = f"{plain}/page"
    with pytest.raises(Refused, match=r"127\.0\.0\.4, which is not an allowed address"):
        refusing._fetch(url, "GET", {}, plain, 5.0)
    assert server.checkpoint() == []  # refused before any connection
    allowing = PageShooter(
        None, settings, resolver=resolver, address_allowed=lambda a: a.is_loopback
    )
    fetched = allowing._fetch(url, "GET", {"accept": "*/*"}, plain, 5.0)
    assert (fetched.status, fetched.body) == (200, b"hello")
    assert fetched.headers == {"content-type": "text/plain"}  # no Set-Cookie
    assert server.checkpoint() == ["tcp /page"]
    assert resolved == ["pages.example.com", "pages.example.com"]  # once per fetch
