"""Errors -> HTTP responses: the one function that answers every error, and the route class
with which a route says how its errors are answered.

Everything an error needs is on its class (errors.py): status, kind, headers, and whether an
image route answers it with the fallback image. A route adds only what is about the route:
``ErrorRoute(..., fallback_image=True)`` serves images (a crawler gets a picture, never JSON), and
``explain`` adds to the JSON ``detail`` (the design studio's file, line and source excerpt).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match, Route
from starlette.types import Scope

from ogshot.core.errors import OgshotError
from ogshot.engine.encode import fallback_image
from ogshot.ops import sentry as tracking

__all__ = ["ErrorRoute", "Explain", "error_response"]

log = logging.getLogger("ogshot")

Explain = Callable[[Request, OgshotError], dict[str, Any]]
_ROUTE = "ogshot.error_route"  # request.scope key: the ErrorRoute that matched


class ErrorRoute(Route):
    """A Route that declares how its errors are answered (see the module docstring)."""

    def __init__(
        self,
        path: str,
        endpoint: Callable[..., Any],
        *,
        fallback_image: bool = False,
        explain: Explain | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(path, endpoint, **kwargs)
        self.fallback_image = fallback_image
        self.explain = explain

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is not Match.NONE:
            child_scope[_ROUTE] = self
        return match, child_scope


def error_response(request: Request, exc: Exception) -> Response:
    """The answer to any exception raised while handling ``request``."""
    if isinstance(exc, HTTPException):  # Starlette's own: no route (404), wrong method (405)
        message = "not found" if exc.status_code == 404 else str(exc.detail)
        return JSONResponse(
            {"error": message, "detail": None}, status_code=exc.status_code, headers=exc.headers
        )
    info = request.scope.setdefault("ogshot", {})  # for the request's log line (telemetry.py)
    if not isinstance(exc, OgshotError):
        log.exception("unexpected error on %s", request.url.path, exc_info=exc)
        tracking.report(exc, template=str(info.get("template", "")))  # renders report their own
        exc = OgshotError("internal error")
    info.update(error_kind=exc.kind, error=exc.message)
    route = request.scope.get(_ROUTE)
    headers = {"cache-control": "no-store", **exc.headers()}
    if exc.fallback_image and isinstance(route, ErrorRoute) and route.fallback_image:
        # A crawler gets a picture, but never caches it: no-store, and never in the disk cache.
        body = fallback_image(*_fallback_size(request, info.get("template")))
        headers["x-ogshot-error"] = _header_safe(exc.message)
        if request.method == "HEAD":
            headers["content-length"] = str(len(body))
            body = b""
        return Response(body, status_code=exc.status, headers=headers, media_type="image/png")
    payload = exc.to_json()
    if isinstance(route, ErrorRoute) and route.explain is not None:
        payload["detail"] = route.explain(request, exc)
    return JSONResponse(payload, status_code=exc.status, headers=headers)


def _fallback_size(request: Request, template: object) -> tuple[int, int]:
    """The pixel size of the image the request asked for: its template's, else the settings'."""
    renderer = request.state.renderer
    if isinstance(template, str):
        try:
            width, height = renderer.catalog.get(template).size.pixels
            return width, height
        except OgshotError:
            pass  # a template that cannot be read: the settings' size
    settings = renderer.settings
    return settings.width, settings.height


def _header_safe(text: str) -> str:
    return text.encode("ascii", "replace").decode()[:300].replace("\r", " ").replace("\n", " ")
