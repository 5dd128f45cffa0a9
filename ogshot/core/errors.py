"""ogshot's exceptions. Each class carries how it is answered: its HTTP status, a ``kind`` (a
stable snake_case name for JSON, logs and metrics), extra response headers, and whether an image
route answers it with the fallback image. ``http_errors.error_response`` renders every one.

OgshotError (500, internal)
├── ConfigError (500, config)             a setting has a bad value; stops the start
├── BadRequest (400, request)
│   ├── InvalidParameter (400, parameter) names the parameter, and a declared one it is near
│   ├── InvalidFormat (400, format)
│   └── RemoteImageError (400, remote_image)  a remote image may not or could not be fetched
├── Unauthorized (401, unauthorized)      missing or wrong admin token; WWW-Authenticate
├── Forbidden (403, forbidden)            missing or wrong URL signature
├── TemplateNotFound (404, not_found)     names the templates that exist, and the nearest
├── RequestTooLarge (414, too_large)      query string or data too long
├── Unrenderable (422, unrenderable)      strict mode: missing glyphs or failed images; never cached
├── OverBudget (422, over_budget)         no encoding fits the byte budget (max_kb); never cached
├── PageNotCaptured (422, page_not_captured)  /shot: the page failed, left the allowlist, or has
│                                         no such element; never cached
├── Overloaded (503, overloaded)          no page free in time; Retry-After
├── FleetUnavailable (503, fleet_unavailable)  Redis unreachable: a purge did not happen
└── RenderFailed (500, render)            image routes: the fallback image, never cached
    ├── TemplateError (500, template)     Jinja syntax/undefined errors; carries the line
    ├── BrowserError (500, browser)       the page or Chromium failed
    └── RenderTimeout (504, timeout)      the render deadline passed

A subclass that names no ``kind`` gets its class name in snake_case, so every class has its own.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from ogshot.core.suggest import closest, did_you_mean

__all__ = [
    "BadRequest",
    "BrowserError",
    "ConfigError",
    "FleetUnavailable",
    "Forbidden",
    "InvalidFormat",
    "InvalidParameter",
    "OgshotError",
    "OverBudget",
    "Overloaded",
    "PageNotCaptured",
    "RemoteImageError",
    "RenderFailed",
    "RenderTimeout",
    "RequestTooLarge",
    "TemplateError",
    "TemplateNotFound",
    "Unauthorized",
    "Unrenderable",
]


class OgshotError(Exception):
    status: ClassVar[int] = 500
    kind: ClassVar[str] = "internal"
    # Answered with the fallback image (no-store) by a route that serves images.
    fallback_image: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" not in cls.__dict__:
            cls.kind = re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()

    def __init__(self, message: str, *, detail: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail

    def headers(self) -> dict[str, str]:
        """Response headers this error adds (lower-case names)."""
        return {}

    def to_json(self) -> dict[str, Any]:
        return {"error": self.message, "detail": self.detail}


class ConfigError(OgshotError):
    kind = "config"

    def __init__(self, key: str, value: object, reason: str) -> None:
        super().__init__(f"Config {key!r} has value {value!r}: {reason}")
        self.key = key
        self.value = value
        self.reason = reason


class BadRequest(OgshotError):
    status = 400
    kind = "request"


class InvalidParameter(BadRequest):
    kind = "parameter"

    def __init__(self, name: str, reason: str, *, suggestion: str | None = None) -> None:
        """``suggestion``: the declared name ``name`` is a near miss of (suggest.closest); the
        message ends with ``did you mean '...'?`` and ``detail`` carries it."""
        detail: dict[str, Any] = {"parameter": name}
        super().__init__(
            _suggesting(f"parameter {name!r}: {reason}", detail, suggestion), detail=detail
        )
        self.name = name
        self.suggestion = suggestion


class InvalidFormat(BadRequest):
    kind = "format"


class RemoteImageError(BadRequest):
    """A remote image that may not or could not be fetched; the message says why."""

    kind = "remote_image"


class Unauthorized(OgshotError):
    status = 401
    kind = "unauthorized"

    def headers(self) -> dict[str, str]:
        return {"www-authenticate": 'Bearer realm="ogshot admin"'}


class Forbidden(OgshotError):
    status = 403
    kind = "forbidden"


class TemplateNotFound(OgshotError):
    status = 404
    kind = "not_found"

    def __init__(self, name: str, available: list[str]) -> None:
        suggestion = closest(name, available)
        detail: dict[str, Any] = {"available": available}
        super().__init__(
            _suggesting(f"no template named {name!r}", detail, suggestion), detail=detail
        )
        self.name = name
        self.suggestion = suggestion


class RequestTooLarge(OgshotError):
    status = 414
    kind = "too_large"


class Unrenderable(OgshotError):
    """With ``strict``: the render drew tofu or lost an image. JSON (not the fallback image), so
    the reason is read; never cached, so the next request renders again. ``detail`` has the
    template, the missing characters (``U+E000``), the failed image URLs, and the parameter whose
    value holds them (``parameter``: the first, for the studio's field)."""

    status = 422
    kind = "unrenderable"

    def __init__(self, message: str, *, detail: dict[str, Any]) -> None:
        super().__init__(message, detail=detail)


class OverBudget(OgshotError):
    """No encoding of the image fits its byte budget (``max_kb``). JSON, never cached; ``detail``
    has the budget, the smallest size reached (bytes) and how it was reached."""

    status = 422
    kind = "over_budget"

    def __init__(self, message: str, *, detail: dict[str, Any]) -> None:
        super().__init__(message, detail=detail)


class PageNotCaptured(OgshotError):
    """``/shot``: the page could not be captured as asked (its navigation was refused or failed,
    it answered an error status, the selector matched nothing). JSON, never cached; ``detail``
    has the URL and, for a refused request, the URL refused and why."""

    status = 422
    kind = "page_not_captured"


class Overloaded(OgshotError):
    status = 503
    kind = "overloaded"

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message, detail={"retry_after": retry_after})
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"retry-after": str(self.retry_after)}


class FleetUnavailable(OgshotError):
    """Redis, which a fleet-wide operation needs, could not be reached; nothing was done."""

    status = 503
    kind = "fleet_unavailable"

    def headers(self) -> dict[str, str]:
        return {"retry-after": "5"}


class RenderFailed(OgshotError):
    status = 500
    kind = "render"
    fallback_image = True


class TemplateError(RenderFailed):
    kind = "template"

    def __init__(self, message: str, *, template: str, line: int | None = None) -> None:
        super().__init__(message, detail={"template": template, "line": line})
        self.template = template
        self.line = line


class BrowserError(RenderFailed):
    kind = "browser"


class RenderTimeout(RenderFailed):
    status = 504
    kind = "timeout"


def _suggesting(message: str, detail: dict[str, Any], suggestion: str | None) -> str:
    """``message`` ending in ``did you mean '...'?``, and ``detail`` carrying the suggestion, when
    there is one (the 400 and 404 bodies say it the same way)."""
    if not suggestion:
        return message
    detail["suggestion"] = suggestion
    return f"{message}; {did_you_mean(suggestion)}"
