"""An image answer: its headers (``ETag``, ``Cache-Control``, ``X-Ogshot-*``, ``Server-Timing``),
conditional requests (``If-None-Match``) and byte ranges, written encoded in one list."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response

from ogshot.core.settings import Settings
from ogshot.core.stopwatch import server_timing
from ogshot.http.cache_control import promise
from ogshot.http.edge import tags
from ogshot.pipeline.renderer import Image

__all__ = ["EncodedResponse", "etag_matches", "image_headers", "image_response"]

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def image_response(
    request: Request,
    image: Image,
    settings: Settings,
    requested: str | None,
    *,
    template: str = "",
) -> Response:
    """The answer with ``image``; ``requested``: the version the URL carries (``v``);
    ``template``: its template, named in the cache tags that CDNs purge by (http/edge.py).

    On the cache-hit path: the headers are written encoded, in one list, and the request's
    conditional headers are read in one pass over the raw ones."""
    request.scope["ogshot"].update(format=image.format, timings=image.timings)
    headers = image_headers(image, settings, requested, template=template)
    if_none_match = range_header = None
    for name, value in request.scope["headers"]:
        if name == b"if-none-match":
            if_none_match = value.decode("latin-1")
        elif name == b"range":
            range_header = value.decode("latin-1")
    if etag_matches(if_none_match, image.etag):
        return EncodedResponse(b"", 304, headers)
    body, status = image.body, 200
    if range_header and request.method == "GET":
        span = _byte_range(range_header, len(body))
        if span is None:
            headers += [(b"content-range", b"bytes */%d" % len(body)), (b"content-length", b"0")]
            return EncodedResponse(b"", 416, headers)
        if span != (0, len(body) - 1):
            start, end = span
            body, status = body[start : end + 1], 206
            headers.append((b"content-range", b"bytes %d-%d/%d" % (start, end, len(image.body))))
    headers += [
        (b"content-length", b"%d" % len(body)),
        (b"content-type", image.content_type.encode()),
    ]
    return EncodedResponse(b"" if request.method == "HEAD" else body, status, headers)


def image_headers(
    image: Image, settings: Settings, requested: str | None, *, template: str = ""
) -> list[tuple[bytes, bytes]]:
    """The headers of an answer with ``image``, encoded, before the body's own (length, type,
    range): what :func:`image_response` sends and the hot path (http/hot.py) replays."""
    answer = promise(
        settings,
        requested=requested,
        current=image.version,
        cached=image.cached,
        stale=image.stale,
    )
    timing = server_timing(image.timings)
    if image.variant:  # counted by platform in the metrics (telemetry reads it back)
        timing = ", ".join(filter(None, (timing, f'variant;desc="{image.variant}"')))
    headers = [
        (b"etag", b'"%s"' % image.etag.encode()),
        (b"cache-control", answer.cache_control.encode()),
        (b"x-ogshot-cache", answer.cache.encode()),
        (b"server-timing", timing.encode()),
        (b"accept-ranges", b"bytes"),
    ]
    if template and image.key:
        names = tags(template, image.key)
        headers.append((b"surrogate-key", " ".join(names).encode("latin-1")))
        headers.append((b"cache-tag", ",".join(names).encode("latin-1")))
    if image.variant:
        headers.append((b"x-ogshot-variant", image.variant.encode("latin-1")))
    if image.quality:  # what the byte budget (max_kb) chose
        headers.append((b"x-ogshot-quality", image.quality.encode("latin-1")))
    if image.warnings:
        headers.append((b"x-ogshot-warning", image.warnings.header().encode("latin-1")))
    return headers


class EncodedResponse(Response):
    """A response whose headers arrive encoded, as ``(name, value)`` bytes in their final order
    (Starlette's own constructor lower-cases and encodes a mapping, header by header)."""

    def __init__(self, body: bytes, status_code: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.status_code = status_code
        self.background = None
        self.body = body
        self.raw_headers = headers


def etag_matches(header: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` header names ``etag`` (strong or weak, or ``*``)."""
    if not header:
        return False
    if header.strip() == "*":
        return True
    for candidate in header.split(","):
        tag = candidate.strip()
        if tag.startswith("W/"):
            tag = tag[2:]
        if tag.strip('"') == etag:
            return True
    return False


def _byte_range(header: str, size: int) -> tuple[int, int] | None:
    """A single 'bytes=a-b' range -> (start, end) inclusive; None when unsatisfiable.

    Several ranges, or a syntax we do not understand, mean the whole body (RFC 9110 allows a server
    to ignore Range)."""
    match = _RANGE.match(header.strip())
    if not match or size == 0:
        return (0, size - 1) if size else None
    first, last = match.groups()
    if first == "" and last == "":
        return (0, size - 1)
    if first == "":
        length = int(last)
        return (max(0, size - length), size - 1) if length > 0 else None
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        return None
    return (start, end)
