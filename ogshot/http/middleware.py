"""What every HTTP request leaves behind: a request id (the client's ``X-Request-ID`` when sane,
else a new one, echoed in the response), its counts in the metrics, and, with
``OGSHOT_LOG_FORMAT=json``, one JSON log line.

A pure ASGI middleware: on a cache hit it costs a few microseconds, not a task. The image routes
leave what only they know (template, format, stage timings, the error) in ``scope["ogshot"]``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ogshot.http.routes import area_of
from ogshot.ops.alerts import Alerter
from ogshot.ops.logs import REQUEST_ID, request_id_from
from ogshot.ops.metrics import Metrics, platform_of

__all__ = ["Telemetry", "log_request"]

log = logging.getLogger("ogshot.request")

_FORMATS = {b"image/png": "png", b"image/jpeg": "jpeg", b"image/webp": "webp"}


class Telemetry:
    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics | None,
        alerter: Alerter | None = None,
        log_requests: bool = False,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.alerter = alerter
        self.log_requests = log_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_from(_header(scope, b"x-request-id"))
        token = REQUEST_ID.set(request_id)
        info: dict[str, Any] = {}
        scope["ogshot"] = info
        seen: dict[str, Any] = {"status": 500, "cache": b"", "type": b"", "variant": b""}
        sent = 0

        async def observed(message: Message) -> None:
            nonlocal sent
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
                for name, value in message.get("headers", ()):
                    if name == b"x-ogshot-cache":
                        seen["cache"] = value
                    elif name == b"content-type":
                        seen["type"] = value
                    elif name == b"x-ogshot-variant":
                        seen["variant"] = value
                message["headers"] = [
                    *message.get("headers", ()),
                    (b"x-request-id", request_id.encode()),
                ]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, observed)
        finally:
            REQUEST_ID.reset(token)
            route = area_of(scope["path"]).label
            status: int = seen["status"]
            cache = seen["cache"].decode() or ("error" if route == "og" and status >= 400 else "")
            fmt = _FORMATS.get(seen["type"].split(b";")[0])
            variant = seen["variant"].decode("ascii", "replace")[:32]
            image = route == "og" and status < 400 and scope["method"] == "GET"
            platform = platform_of(_header(scope, b"user-agent") or "") if image else None
            template = info.get("template")
            if self.metrics is not None:
                self.metrics.request(
                    route,
                    status,
                    cache or "none",
                    # Only a template that was found serves an image: the label stays bounded.
                    template=str(template)[:64] if platform is not None else "",
                    platform=platform,
                    variant=variant,
                    fmt=fmt,
                    nbytes=sent,
                )
            # Client errors say nothing about a template; 503 is the queue's own alert.
            counted = status < 400 or status in (500, 504)
            if self.alerter is not None and route == "og" and template and counted:
                self.alerter.outcome(str(template), ok=status < 400)
            if self.log_requests:
                log_request(scope, info, request_id, route, status, cache, fmt, sent, started)


def log_request(
    scope: Scope,
    info: dict[str, Any],
    request_id: str,
    route: str,
    status: int,
    cache: str,
    fmt: str | None,
    sent: int,
    started: float,
) -> None:
    fields: dict[str, Any] = {
        "request_id": request_id,
        "method": scope["method"],
        "path": area_of(scope["path"]).logged,
        "status": status,
        "cache": cache or None,
        "bytes": sent,
        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
    }
    if route == "og":
        fields["template"] = str(info.get("template", ""))[:100] or None
        fields["format"] = fmt or info.get("format")
        fields["platform"] = platform_of(_header(scope, b"user-agent") or "")
        fields["stages_ms"] = {k: round(v, 2) for k, v in info.get("timings", {}).items()}
    if "error_kind" in info:
        fields["error_kind"] = info["error_kind"]
        fields["error"] = info.get("error")
    level = logging.ERROR if status >= 500 else logging.INFO
    log.log(
        level,
        "%s %s %d",
        scope["method"],
        fields["path"],
        status,
        extra={"event": "request", "fields": fields},
    )


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None
