"""create_app(settings) -> the Starlette app: routes, a lifespan that owns the Renderer, and
http_errors.error_response answering every error (JSON; failed renders on /og: a fallback image)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import activity, admin, freshness, preview, signing, tracking
from .activity import Activity
from .alerts import Alerter, Health
from .config import Settings
from .errors import InvalidParameter, OgshotError
from .http_errors import ErrorRoute, error_response
from .logs import configure as configure_logging
from .metrics import CONTENT_TYPE_LATEST, Metrics
from .openapi import openapi
from .params import query_params
from .pipeline import Image, Renderer
from .telemetry import Telemetry
from .timing import server_timing
from .version import __version__

__all__ = ["create_app"]

log = logging.getLogger("ogshot")

MAX_DATA_DEPTH = 4


def renderer_of(request: Request) -> Renderer:
    renderer: Renderer = request.state.renderer
    return renderer


# -- /og ---------------------------------------------------------------------------------------


async def og_path(request: Request) -> Response:
    """GET|HEAD /og/{template}.{png|jpg|jpeg|webp}?param=value..."""
    name, _, ext = request.path_params["file"].partition(".")
    request.scope["ogshot"]["template"] = name
    renderer = renderer_of(request)
    params = query_params(request, renderer.settings)
    signature = params.pop(signing.SIGNATURE_PARAM, None)
    signing.check(renderer.settings, name, params, ext or "png", signature)
    image = await renderer.image(name, params, ext or "png")
    return image_response(request, image, renderer.settings, params.get(freshness.VERSION_PARAM))


async def og_query(request: Request) -> Response:
    """GET|HEAD /og?template=NAME&data=<JSON object>&format=png"""
    renderer = renderer_of(request)
    settings = renderer.settings
    query = query_params(request, settings)
    name = query.pop("template", None)
    if not name:
        raise InvalidParameter("template", "required (the name of a template)")
    request.scope["ogshot"]["template"] = name
    fmt = query.pop("format", "png")
    data = query.pop("data", None)
    signature = query.pop(signing.SIGNATURE_PARAM, None)
    version = query.pop(freshness.VERSION_PARAM, None)
    if query:
        extra = sorted(query)[0]
        raise InvalidParameter(
            extra, "unknown query parameter here (use template, data, format, v)"
        )
    params = _parse_data(data) if data is not None else {}
    if version is not None:  # v may sit beside data or inside it, not both
        if freshness.VERSION_PARAM in params:
            raise InvalidParameter(freshness.VERSION_PARAM, "given both in data and in the query")
        params[freshness.VERSION_PARAM] = version
    signing.check(settings, name, params, fmt, signature)
    image = await renderer.image(name, params, fmt)
    return image_response(request, image, settings, params.get(freshness.VERSION_PARAM))


def _parse_data(text: str) -> dict[str, Any]:
    # Measured before parsing: the JSON parser recurses, and 5,000 '[' would exhaust the stack.
    if _nesting(text) > MAX_DATA_DEPTH:
        raise InvalidParameter("data", f"nested deeper than {MAX_DATA_DEPTH} levels")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InvalidParameter("data", f"not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InvalidParameter("data", f"must be a JSON object, got {type(data).__name__}")
    return data


def _nesting(text: str) -> int:
    """The deepest nesting of [ and { in JSON text, outside strings; no recursion."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


# -- responses ---------------------------------------------------------------------------------

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def image_response(
    request: Request, image: Image, settings: Settings, requested: str | None
) -> Response:
    """The answer with ``image``; ``requested``: the version the URL carries (freshness.py).

    On the cache-hit path: the headers are written encoded, in one list, and the request's
    conditional headers are read in one pass over the raw ones."""
    request.scope["ogshot"].update(format=image.format, timings=image.timings)
    promise = freshness.promise(
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
        (b"cache-control", promise.cache_control.encode()),
        (b"x-ogshot-cache", promise.cache.encode()),
        (b"server-timing", timing.encode()),
        (b"accept-ranges", b"bytes"),
    ]
    if image.variant:
        headers.append((b"x-ogshot-variant", image.variant.encode("latin-1")))
    if image.warnings:
        headers.append((b"x-ogshot-warning", image.warnings.header().encode("latin-1")))
    if_none_match = range_header = None
    for name, value in request.scope["headers"]:
        if name == b"if-none-match":
            if_none_match = value.decode("latin-1")
        elif name == b"range":
            range_header = value.decode("latin-1")
    if _etag_matches(if_none_match, image.etag):
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


class EncodedResponse(Response):
    """A response whose headers arrive encoded, as ``(name, value)`` bytes in their final order
    (Starlette's own constructor lower-cases and encodes a mapping, header by header)."""

    def __init__(self, body: bytes, status_code: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.status_code = status_code
        self.background = None
        self.body = body
        self.raw_headers = headers


def _etag_matches(header: str | None, etag: str) -> bool:
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


# -- health ------------------------------------------------------------------------------------


async def healthz(request: Request) -> Response:
    """Liveness: the process answers. Whether it can render now is /readyz's question (a
    liveness probe that failed while Chromium restarts would have the whole process killed)."""
    return JSONResponse({"status": "ok", "version": __version__})


async def readyz(request: Request) -> Response:
    renderer = renderer_of(request)
    pool = renderer.pool.stats()
    ready = renderer.pool.ready and pool["idle"] + pool["busy"] > 0
    fleet = renderer.layers.fleet
    body = {
        "ready": ready,
        "pool": pool,
        "cache": {"healthy": renderer.cache.healthy, "errors": renderer.cache.errors},
        # Redis down is not "not ready": the node serves from its disk cache and renders alone.
        "redis": None
        if fleet is None
        else {
            "healthy": fleet.healthy,
            "errors": fleet.errors,
            "purge_generation": fleet.purges.generation,
        },
        "version": __version__,
    }
    return JSONResponse(body, status_code=200 if ready else 503)


async def openapi_json(request: Request) -> Response:
    renderer = renderer_of(request)
    return JSONResponse(openapi(renderer.catalog, renderer.settings))


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.load()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[Mapping[str, Any]]:
        if not settings.secrets:
            log.warning(
                "OGSHOT_SECRET is not set: URLs are unsigned and anyone who can reach this server "
                "can make it render any template with any parameters"
            )
        if settings.sentry_dsn:
            tracking.init(settings.sentry_dsn, release=__version__)
        renderer = Renderer(settings, metrics=metrics)
        await renderer.start()
        app.state.renderer = renderer  # for tests and tools that hold the app
        syncing = asyncio.ensure_future(_sync_metrics(metrics, renderer)) if metrics else None
        if alerter is not None:
            fleet = renderer.layers.fleet
            alerter.health = lambda: Health(
                pool=renderer.pool.stats(),
                cache_healthy=renderer.cache.healthy,
                redis_healthy=None if fleet is None else fleet.healthy,
            )
            await alerter.start()
        try:
            if settings.dev:
                async with preview.Studio(renderer) as studio, Activity.running(metrics) as seen:
                    yield {"renderer": renderer, "studio": studio, "activity": seen}
            else:
                yield {"renderer": renderer}
        finally:
            log.info("shutting down", extra={"event": "shutdown"})
            if alerter is not None:
                await alerter.close()
            if syncing is not None:
                syncing.cancel()
                Metrics.worker_exited(os.getpid())
            await renderer.close()

    routes = [
        # The busiest route first: every hit is matched against the routes before it.
        ErrorRoute("/og/{file:str}", og_path, methods=["GET", "HEAD"], fallback_image=True),
        ErrorRoute("/og", og_query, methods=["GET", "HEAD"], fallback_image=True),
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
        Route("/readyz", readyz, methods=["GET", "HEAD"]),
        Route("/openapi.json", openapi_json, methods=["GET", "HEAD"]),
        Route("/admin/purge", admin.purge, methods=["POST"]),
    ]
    metrics = Metrics() if settings.metrics else None
    alerter = Alerter(settings, _no_health) if settings.alert_webhook else None
    if metrics is not None:
        routes.append(Route("/metrics", metrics_endpoint, methods=["GET", "HEAD"]))
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            OgshotError: error_response,
            HTTPException: error_response,
            Exception: error_response,  # Starlette answers it from its outermost middleware
        },
    )
    if settings.dev:  # the design studio; off in production, where /preview is a 404
        app.router.routes.extend([*activity.routes(), *preview.routes()])
    app.state.metrics = metrics
    app.state.alerter = alerter
    app.add_middleware(
        Telemetry, metrics=metrics, alerter=alerter, log_requests=settings.log_format == "json"
    )
    return app


def _no_health() -> Health:
    return Health(pool={}, cache_healthy=True, redis_healthy=None)


async def metrics_endpoint(request: Request) -> Response:
    """Prometheus text format; never behind the URL signature (it carries no image)."""
    metrics: Metrics = request.app.state.metrics
    await _sync_once(metrics, renderer_of(request))
    return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


SYNC_EVERY = 2.0  # seconds between copies of the pool's and caches' own totals into the metrics


async def _sync_metrics(metrics: Metrics, renderer: Renderer) -> None:
    """Keep the gauges current between scrapes, so that with several workers each worker's part
    is fresh whichever worker answers the scrape."""
    while True:
        await _sync_once(metrics, renderer)
        await asyncio.sleep(SYNC_EVERY)


async def _sync_once(metrics: Metrics, renderer: Renderer) -> None:
    try:
        sizes = await asyncio.to_thread(renderer.cache_sizes)
    except Exception as exc:  # a failing cache is reported by the cache itself
        log.debug("cache sizes unavailable: %s", exc)
        sizes = []
    metrics.sync(renderer.pool.stats(), sizes)


def app_from_env() -> Starlette:
    """Factory for ``uvicorn --factory ogshot.app:app_from_env`` (used by ``ogshot serve``)."""
    settings = Settings.load()
    configure_logging(settings.log_format)
    return create_app(settings)
