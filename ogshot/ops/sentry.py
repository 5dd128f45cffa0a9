"""Error tracking with Sentry (``OGSHOT_SENTRY_DSN``; sentry-sdk, from ``ogshot[sentry]``).

Failed renders and unexpected errors are reported with the template and the cache key as tags.
Parameters are never sent: they may be private (a draft title, a customer's name), so the request's
query string, body and cookies are removed from every event before it leaves, and no default PII is
attached. Without a DSN, sentry-sdk is never imported.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

__all__ = ["init", "report"]


def init(dsn: str, *, release: str, environment: str = "production") -> None:
    import sentry_sdk
    from sentry_sdk.integrations.logging import LoggingIntegration

    sentry_sdk.init(
        dsn=dsn,
        release=f"ogshot@{release}",
        environment=environment,
        send_default_pii=False,
        include_local_variables=False,  # frames hold the parameters
        max_request_body_size="never",
        before_send=_scrub,
        # Log lines become breadcrumbs, not events of their own: a failed render is reported
        # once, as its exception with tags, not again as its log line.
        integrations=[LoggingIntegration(level=logging.INFO, event_level=None)],
    )


def report(exc: BaseException, *, template: str, key: str = "") -> None:
    """Send ``exc`` with its template and cache key; a no-op unless :func:`init` ran."""
    sentry_sdk = sys.modules.get("sentry_sdk")
    if sentry_sdk is None or not sentry_sdk.is_initialized():
        return
    with sentry_sdk.new_scope() as scope:
        scope.set_tag("template", template)
        if key:
            scope.set_tag("key", key)
        sentry_sdk.capture_exception(exc)


def _scrub(event: Any, hint: Any) -> Any:
    request = event.get("request")
    if isinstance(request, dict):
        for field in ("query_string", "data", "cookies", "env"):
            request.pop(field, None)
        url = request.get("url")
        if isinstance(url, str):
            request["url"] = url.split("?", 1)[0]
        headers = request.get("headers")
        if isinstance(headers, dict):
            request["headers"] = {
                k: v for k, v in headers.items() if k.lower() in ("user-agent", "x-request-id")
            }
    return event
