"""create_app(settings) -> the Starlette app: routes, a lifespan that owns the Renderer, and
http_errors.error_response answering every error (JSON; failed renders on /og: a fallback image)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.routing import Route

from ogshot.core.errors import OgshotError
from ogshot.core.settings import Settings
from ogshot.core.version import __version__
from ogshot.http import admin
from ogshot.http import warm as warming
from ogshot.http.edge import Edge
from ogshot.http.errors import ErrorRoute, error_response
from ogshot.http.health import healthz, metrics_endpoint, openapi_json, readyz, sync_metrics
from ogshot.http.hot import HotPath, HotTable
from ogshot.http.middleware import Telemetry
from ogshot.http.og import og_image
from ogshot.http.shot import shot_image
from ogshot.http.templates_json import templates_json
from ogshot.ops import sentry as tracking
from ogshot.ops.alerts import Alerter, Health
from ogshot.ops.logs import configure as configure_logging
from ogshot.ops.metrics import Metrics
from ogshot.pipeline.renderer import Renderer

__all__ = ["create_app"]

log = logging.getLogger("ogshot")


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
        renderer = Renderer(settings, metrics=metrics, report_error=tracking.report)
        await renderer.start()
        await renderer.warm.start()  # the warm lane: POST /admin/warm and refresh-ahead
        app.state.renderer = renderer  # for tests and tools that hold the app
        hot.attach(renderer)
        syncing = asyncio.ensure_future(sync_metrics(metrics, renderer, hot)) if metrics else None
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
                from ogshot.studio import routes as preview
                from ogshot.studio.activity import Activity

                async with preview.Studio(renderer) as studio, Activity.running(metrics) as seen:
                    yield {"renderer": renderer, "studio": studio, "activity": seen}
            else:
                yield {"renderer": renderer}
        finally:
            log.info("shutting down", extra={"event": "shutdown"})
            if alerter is not None:
                await alerter.close()
            hot.attach(None)
            if syncing is not None:
                syncing.cancel()
                hot.flush()
                Metrics.worker_exited(os.getpid())
            await renderer.close()

    routes = [
        # The busiest route first: every hit is matched against the routes before it. Each path
        # is in http/routes.py's AREAS, which labels requests for the metrics and the log.
        ErrorRoute("/og/{file:str}", og_image, methods=["GET", "HEAD"], fallback_image=True),
        ErrorRoute("/og", og_image, methods=["GET", "HEAD"], fallback_image=True),
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
        Route("/readyz", readyz, methods=["GET", "HEAD"]),
        Route("/openapi.json", openapi_json, methods=["GET", "HEAD"]),
        Route("/templates.json", templates_json, methods=["GET", "HEAD"]),
        Route("/admin/purge", admin.purge, methods=["POST"]),
        Route("/admin/warm", warming.warm, methods=["POST"]),
        Route("/shot.{ext:str}", shot_image, methods=["GET", "HEAD"]),
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
        from ogshot.studio import activity  # imported only here: a production start skips it
        from ogshot.studio import routes as preview

        app.router.routes.extend([*activity.routes(), *preview.routes()])
    app.state.metrics = metrics
    app.state.edge = Edge(settings)  # purges that reach nginx and CDNs in front of the nodes
    app.state.alerter = alerter
    app.add_middleware(
        Telemetry, metrics=metrics, alerter=alerter, log_requests=settings.log_format == "json"
    )
    # Outside the telemetry: a hot hit counts itself (http/hot.py).
    hot = HotTable(
        settings,
        metrics=metrics,
        alerter=alerter,
        edge=app.state.edge,
        log_requests=settings.log_format == "json",
    )
    app.state.hot = hot
    app.add_middleware(HotPath, table=hot)
    return app


def _no_health() -> Health:
    return Health(pool={}, cache_healthy=True, redis_healthy=None)


def app_from_env() -> Starlette:
    """Factory for ``uvicorn --factory ogshot.app:app_from_env`` (used by ``ogshot serve``)."""
    settings = Settings.load()
    configure_logging(settings.log_format)
    return create_app(settings)
