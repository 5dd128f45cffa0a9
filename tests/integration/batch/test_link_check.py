"""``ogshot check``: a real HTTP server on 127.0.0.1 serves pages whose tags point at images
rendered by ogshot (real Chromium, pyvips); the command, run with click's CliRunner, fetches and
judges them."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from ogshot.batch.link_check import page_tags
from ogshot.cli import cli
from ogshot.pipeline.renderer import Renderer
from tests.support.helpers import image_of, make_settings

GOOD_TAGS = {
    "og:title": "A card",
    "og:image:width": "1200",
    "og:image:height": "630",
    "og:image:alt": "The title on a colour wash",
    "twitter:card": "summary_large_image",
}


def page(image: str, **tags: str | None) -> bytes:
    """An HTML page with GOOD_TAGS, og:image = ``image``, and ``tags`` changed (None: left out);
    ``og_image_width`` means ``og:image:width``."""
    values: dict[str, str | None] = {**GOOD_TAGS, "og:image": image}
    values.update({k.replace("_", ":"): v for k, v in tags.items()})
    meta = "\n".join(
        f'<meta {"name" if k.startswith("twitter:") else "property"}="{k}" content="{v}">'
        for k, v in values.items()
        if v is not None
    )
    return f"<!doctype html><html><head>{meta}</head><body>hi</body></html>".encode()


@dataclass
class Site:
    base: str
    files: dict[str, tuple[int, str, bytes]]  # path -> (status, content type, body)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    base = tmp_path_factory.mktemp("link-check")
    # Uncompressed PNG (png_compression=0): a real ogshot image over WhatsApp's 600 KB.
    settings = make_settings(base, png_compression=0, pool_size=1)

    async def render() -> tuple[bytes, bytes]:
        async with Renderer(settings) as renderer:
            params = {"title": "Checked by ogshot check"}
            return (
                await renderer.render("article", params, "jpg"),
                await renderer.render("article", params, "png"),
            )

    jpeg, big_png = asyncio.run(render())
    assert image_of(jpeg).width == 1200 and len(jpeg) < 300_000
    assert len(big_png) > 1_000_000  # over WhatsApp's and Bluesky's limits, under X's 5 MB
    files: dict[str, tuple[int, str, bytes]] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, kind, body = files.get(self.path, (404, "text/plain", b"not found"))
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("location", body.decode())
                body = b""
            self.send_header("content-type", kind)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    files.update(
        {
            "/card.jpg": (200, "image/jpeg", jpeg),
            "/moved.jpg": (302, "text/plain", b"/card.jpg"),
            "/big.png": (200, "image/png", big_png),
            "/good.html": (200, "text/html; charset=utf-8", page(f"{url}/moved.jpg")),
            "/no-card.html": (200, "text/html", page(f"{url}/card.jpg", twitter_card=None)),
            "/big.html": (200, "text/html", page(f"{url}/big.png")),
            "/wrong-width.html": (200, "text/html", page(f"{url}/card.jpg", og_image_width="1000")),
            "/relative.html": (200, "text/html", page("/card.jpg")),
            "/markup.html": (200, "text/html", page("[red]x[/red]/card.jpg")),
            "/gone.html": (200, "text/html", page(f"{url}/nope.png")),
        }
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Site(url, files)
    finally:
        server.shutdown()
        server.server_close()


def check(*args: str) -> Result:
    return CliRunner().invoke(cli, ["check", *args])


def verdicts(result: Result) -> dict[str, list[tuple[str, str]]]:
    """platform -> [(level, code)] from --json output."""
    report = json.loads(result.stdout)
    return {
        p["platform"]: [(f["level"], f["code"]) for f in p["findings"]] for p in report["platforms"]
    }


def failing(result: Result) -> dict[str, list[str]]:
    return {
        name: [code for level, code in findings if level == "fail"]
        for name, findings in verdicts(result).items()
        if any(level == "fail" for level, _ in findings)
    }


def test_a_good_card_shows_everywhere(site: Site) -> None:
    result = check(f"{site.base}/good.html", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert failing(result) == {}
    # The redirect was followed to the JPEG ogshot rendered, read from its header.
    image = report["images"][f"{site.base}/moved.jpg"]
    assert image["status"] == 200 and image["content_type"] == "image/jpeg"
    assert (image["format"], image["width"], image["height"]) == ("jpeg", 1200, 630)
    assert image["size"] == len(site.files["/card.jpg"][2])
    # Served over http: a warning, not a failure.
    assert ("warn", "http_image") in verdicts(result)["X"]


def test_the_table_names_each_platform(site: Site) -> None:
    result = check(f"{site.base}/good.html")
    assert result.exit_code == 0, result.output
    for name in ("X", "Facebook", "LinkedIn", "Discord", "WhatsApp", "Bluesky"):
        assert f"│ {name}" in result.stdout
    assert "10 of 10 platforms show the card" in result.stdout
    assert "1200x630 jpeg" in result.stdout


def test_a_missing_twitter_card_fails_x(site: Site) -> None:
    result = check(f"{site.base}/no-card.html", "--json")
    assert result.exit_code == 1
    assert failing(result) == {"X": ["twitter_card_missing"]}
    assert ("warn", "small_twitter_card") in verdicts(result)["Discord"]  # a thumbnail only
    text = check(f"{site.base}/no-card.html")
    assert text.exit_code == 1
    assert "no twitter:card: X shows no card" in text.stdout
    assert "9 of 10 platforms show the card" in text.stdout


def test_an_image_over_the_byte_limits_fails_whatsapp_and_bluesky(site: Site) -> None:
    result = check(f"{site.base}/big.html", "--json")
    assert result.exit_code == 1
    assert failing(result) == {"WhatsApp": ["too_large"], "Bluesky": ["too_large"]}
    text = check(f"{site.base}/big.html")
    size = len(site.files["/big.png"][2])
    assert f"image is {size:,} bytes; WhatsApp takes at most 600,000" in text.stdout


def test_a_width_tag_that_does_not_match_the_image_fails(site: Site) -> None:
    result = check(f"{site.base}/wrong-width.html", "--json")
    assert result.exit_code == 1
    assert failing(result) == {"Facebook": ["width_mismatch"], "Discord": ["width_mismatch"]}
    assert ("warn", "width_mismatch") in verdicts(result)["X"]
    assert (
        "og:image:width says 1000, the image is 1200"
        in check(f"{site.base}/wrong-width.html").stdout
    )


def test_a_relative_image_url_fails_everywhere(site: Site) -> None:
    result = check(f"{site.base}/relative.html", "--json")
    assert result.exit_code == 1
    assert all(codes == ["relative_url"] for codes in failing(result).values())
    assert len(failing(result)) == 10
    assert json.loads(result.stdout)["images"] == {}  # never fetched
    text = check(f"{site.base}/relative.html").stdout
    assert "og:image is a relative URL (/card.jpg); use an absolute https:// URL" in text
    # What the page says is shown as it is, never read as the table's markup.
    assert "([red]x[/red]/card.jpg)" in check(f"{site.base}/markup.html").stdout


def test_an_image_that_answers_404_fails_everywhere(site: Site) -> None:
    result = check(f"{site.base}/gone.html", "--json")
    assert result.exit_code == 1
    assert all(codes == ["unreachable"] for codes in failing(result).values())
    assert len(failing(result)) == 10
    assert "image answered 404" in check(f"{site.base}/gone.html").stdout


def test_an_html_file_is_read_and_its_image_fetched(site: Site, tmp_path: Path) -> None:
    file = tmp_path / "page.html"
    file.write_bytes(page(f"{site.base}/card.jpg"))
    result = check(str(file), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["images"][f"{site.base}/card.jpg"]["width"] == 1200


@pytest.mark.parametrize(
    ("target", "words"),
    [
        ("ftp://127.0.0.1/page.html", "only http(s) URLs are fetched (ftp: is not)"),
        ("file:///etc/passwd", "only http(s) URLs are fetched (file: is not)"),
        ("no-such-file.html", "not an http(s) URL, and no file to read"),
    ],
)
def test_what_is_not_http_or_a_file_is_refused(target: str, words: str) -> None:
    result = check(target)
    assert result.exit_code == 1
    assert words in result.output
    assert "Traceback" not in result.output


def test_a_page_that_answers_404_is_an_error(site: Site) -> None:
    result = check(f"{site.base}/no-such-page.html")
    assert result.exit_code == 1
    assert "answered 404, not the page" in result.output


def test_tags_are_read_by_property_or_name_and_the_first_wins() -> None:
    html = (
        '<meta property="og:image" content=" https://a.example/1.png ">'
        '<meta property="og:image" content="https://a.example/2.png">'
        '<META NAME="twitter:card" CONTENT="summary_large_image">'
        '<meta name="description" content="not a card tag">'
        '<meta property="og:image:alt" content="Tom &amp; Jerry">'
    )
    assert page_tags(html) == {
        "og:image": "https://a.example/1.png",
        "twitter:card": "summary_large_image",
        "og:image:alt": "Tom & Jerry",
    }
