"""``ogshot check URL|FILE``: would a link to this page unfurl with its image, platform by platform?

Reads the page's Open Graph and Twitter tags (a URL fetched with httpx, or an HTML file; parsed
with the standard library's html.parser), fetches each image they name (redirects followed, at
most MAX_REDIRECTS, the bytes and the time bounded), reads its format and size from the header
with pyvips, and judges the result per platform (link_platforms.py).

A client tool: it fetches what the user names, as a crawler would, but only http(s).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pyvips
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ogshot.batch.link_platforms import PLATFORMS, ImageFacts, Verdict, image_url, judge
from ogshot.core.errors import BadRequest
from ogshot.core.version import __version__

__all__ = ["LinkReport", "check_link", "page_tags", "print_report", "report_json"]

MAX_REDIRECTS = 5  # Discord follows at most 5
PAGE_BYTES = 1_000_000  # Facebook reads the first 1 MB of a page; tags after it are not seen
IMAGE_BYTES = 16_000_000  # over every limit but Discord's: enough to judge the others
# Sites that show their tags to crawlers only (pre-rendered single-page apps) see one here;
# iMessage sends both names in one User-Agent, too.
USER_AGENT = f"ogshot-check/{__version__} (facebookexternalhit/1.1; Twitterbot/1.0)"


@dataclass(frozen=True)
class LinkReport:
    source: str  # the URL or file the tags were read from
    tags: Mapping[str, str]
    images: Mapping[str, ImageFacts]  # by URL as the page wrote it
    verdicts: tuple[Verdict, ...]

    @property
    def ok(self) -> bool:
        """Every platform shows the card (warnings allowed)."""
        return all(v.shows for v in self.verdicts)


class _MetaTags(HTMLParser):
    """``<meta property|name=... content=...>`` of og:* and twitter:*; the first of each wins,
    as crawlers read them (a second og:image is an alternative, not a replacement)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "meta":
            return
        values = {k.lower(): v for k, v in attrs if v is not None}
        key = (values.get("property") or values.get("name") or "").strip().lower()
        if key.startswith(("og:", "twitter:")) and "content" in values:
            self.tags.setdefault(key, values["content"].strip())


def page_tags(html: str) -> dict[str, str]:
    """The og:* and twitter:* tags of a page (names lower-cased; the first of each)."""
    parser = _MetaTags()
    parser.feed(html)
    parser.close()
    return parser.tags


def _http_url(text: str) -> bool:
    parts = urlsplit(text)
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


async def check_link(target: str, *, seconds: float = 10.0) -> LinkReport:
    """Check the page at ``target`` (an http(s) URL, or the path of an HTML file). BadRequest
    when it cannot be read at all; everything about its card is in the report. ``seconds``:
    for the page and its images together (Discord gives a whole unfurl 10 s)."""
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(
        follow_redirects=True,
        max_redirects=MAX_REDIRECTS,
        headers={"user-agent": USER_AGENT},
        timeout=seconds,
    ) as client:
        tags = page_tags(await _read_page(client, target, deadline))
        urls = {found[1] for p in PLATFORMS if (found := image_url(tags, p)) is not None}
        images: dict[str, ImageFacts] = {}
        for url in sorted(urls):
            if _http_url(url):  # a relative one fails as it is: crawlers do not resolve it
                images[url] = await _fetch_image(client, url, deadline)
    verdicts = tuple(judge(p, tags, images) for p in PLATFORMS)
    return LinkReport(target, tags, images, verdicts)


async def _read_page(client: httpx.AsyncClient, target: str, deadline: float) -> str:
    """The page's HTML (its first PAGE_BYTES)."""
    if _http_url(target):
        try:
            body, response = await _get(client, target, PAGE_BYTES, deadline)
        except (httpx.HTTPError, TimeoutError) as exc:
            raise BadRequest(f"{target}: {_reason(exc)}") from None
        if response.status_code != 200:
            raise BadRequest(f"{target} answered {response.status_code}, not the page")
        return body[:PAGE_BYTES].decode(response.encoding or "utf-8", errors="replace")
    scheme = urlsplit(target).scheme
    if scheme and len(scheme) > 1:  # C:\ is a path, not a scheme
        raise BadRequest(
            f"{target}: only http(s) URLs are fetched ({scheme}: is not), or give an HTML file"
        )
    path = Path(target)
    try:
        data = await asyncio.to_thread(path.read_bytes)
    except OSError as exc:
        raise BadRequest(
            f"{target}: not an http(s) URL, and no file to read ({exc.strerror})"
        ) from None
    return data[:PAGE_BYTES].decode("utf-8", errors="replace")


async def _fetch_image(client: httpx.AsyncClient, url: str, deadline: float) -> ImageFacts:
    try:
        body, response = await _get(client, url, IMAGE_BYTES, deadline)
    except (httpx.HTTPError, TimeoutError) as exc:
        return ImageFacts(url=url, error=_reason(exc))
    facts: dict[str, Any] = {
        "url": url,
        "status": response.status_code,
        "content_type": response.headers.get("content-type", ""),
        "size": len(body),
        "truncated": len(body) > IMAGE_BYTES,
    }
    if response.status_code in (200, 206):
        facts.update(await asyncio.to_thread(_header, body))
    return ImageFacts(**facts)


async def _get(
    client: httpx.AsyncClient, url: str, limit: int, deadline: float
) -> tuple[bytes, httpx.Response]:
    """The body (at most ``limit`` + 1 bytes: one more tells it was longer) and the response,
    within what is left of the time."""
    async with asyncio.timeout(max(0.1, deadline - time.monotonic())):
        async with client.stream("GET", url) as response:
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if size > limit:
                    break
            return b"".join(chunks)[: limit + 1], response


# pyvips loader -> format name
_LOADERS = {
    "jpegload": "jpeg",
    "pngload": "png",
    "webpload": "webp",
    "gifload": "gif",
    "svgload": "svg",
    "tiffload": "tiff",
    "jp2kload": "jp2",
    "jxlload": "jxl",
}


def _header(body: bytes) -> dict[str, Any]:
    """format, width and height from the image's header (pyvips reads no pixels). Blocking."""
    try:
        image = pyvips.Image.new_from_buffer(body, "")
        loader = str(image.get("vips-loader")).removesuffix("_buffer").removesuffix("_source")
    except pyvips.Error:
        return {"format": None}
    fmt = _LOADERS.get(loader, loader.removesuffix("load"))
    if loader == "heifload":  # AVIF and HEIC share a loader; the compression tells them apart
        try:
            fmt = "avif" if str(image.get("heif-compression")) == "av1" else "heic"
        except pyvips.Error:
            fmt = "heif"
    return {"format": fmt, "width": image.width, "height": image.height}


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.TooManyRedirects):
        return f"more than {MAX_REDIRECTS} redirects"
    return str(exc) or type(exc).__name__


def report_json(report: LinkReport) -> dict[str, Any]:
    """The report as JSON: what ``ogshot check --json`` prints."""
    return {
        "source": report.source,
        "ok": report.ok,
        "tags": dict(report.tags),
        "images": {
            url: {k: v for k, v in vars(facts).items() if k != "url"}
            for url, facts in report.images.items()
        },
        "platforms": [
            {
                "platform": v.platform,
                "shows": v.shows,
                "findings": [vars(f) for f in v.findings],
            }
            for v in report.verdicts
        ],
    }


def print_report(report: LinkReport, console: Console) -> None:
    """The image(s) found, then a table: one row per platform, each problem on its own line
    (``x`` would not show the card, ``!`` a warning). What the page said is printed as text,
    never as rich markup (a tag may hold ``[bold]``)."""
    console.print(Text(report.source, style="bold"))
    for url, facts in report.images.items():
        if facts.error:
            console.print(Text(f"  image {url}: {facts.error}"))
            continue
        size = f"{'> ' if facts.truncated else ''}{facts.size or 0:,} bytes"
        shape = f"{facts.width}x{facts.height} {facts.format}" if facts.format else "not an image"
        kind = facts.content_type or "no content type"
        console.print(Text(f"  image {url}: {facts.status}, {kind}, {size}, {shape}"))
    table = Table(show_lines=True)
    table.add_column("platform", no_wrap=True)
    table.add_column("card", no_wrap=True)
    table.add_column("problems", overflow="fold")
    for verdict in report.verdicts:
        fails = any(f.level == "fail" for f in verdict.findings)
        card = (
            Text("NOT SHOWN", style="red")
            if fails
            else Text("shown, but", style="yellow")
            if verdict.findings
            else Text("shown", style="green")
        )
        problems = "\n".join(
            f"{'x' if f.level == 'fail' else '!'} {f.message} ({f.code})" for f in verdict.findings
        )
        table.add_row(verdict.platform, card, Text(problems))
    console.print(table)
    shown = sum(v.shows for v in report.verdicts)
    console.print(f"{shown} of {len(report.verdicts)} platforms show the card")
