"""The service's own answers: liveness (``/healthz``), readiness (``/readyz``), the OpenAPI
document and the Prometheus scrape (``/metrics``)."""

from __future__ import annotations

import asyncio
import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ogshot.core.version import __version__
from ogshot.http.hot import HotTable
from ogshot.http.og import renderer_of
from ogshot.http.openapi import openapi
from ogshot.ops.metrics import CONTENT_TYPE_LATEST, Metrics
from ogshot.pipeline.renderer import Renderer

__all__ = ["healthz", "metrics_endpoint", "openapi_json", "readyz", "sync_metrics"]

log = logging.getLogger("ogshot")


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


async def metrics_endpoint(request: Request) -> Response:
    """Prometheus text format; never behind the URL signature (it carries no image)."""
    metrics: Metrics = request.app.state.metrics
    await _sync_once(metrics, renderer_of(request), getattr(request.app.state, "hot", None))
    return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


SYNC_EVERY = 2.0  # seconds between copies of the pool's and caches' own totals into the metrics


async def sync_metrics(metrics: Metrics, renderer: Renderer, hot: HotTable | None = None) -> None:
    """Keep the gauges current between scrapes, so that with several workers each worker's part
    is fresh whichever worker answers the scrape."""
    while True:
        await _sync_once(metrics, renderer, hot)
        await asyncio.sleep(SYNC_EVERY)


async def _sync_once(metrics: Metrics, renderer: Renderer, hot: HotTable | None = None) -> None:
    if hot is not None:  # the hot path's hits, counted as plain integers
        hot.flush()
    try:
        sizes = await asyncio.to_thread(renderer.cache_sizes)
    except Exception as exc:  # a failing cache is reported by the cache itself
        log.debug("cache sizes unavailable: %s", exc)
        sizes = []
    metrics.sync(renderer.pool.stats(), sizes)
