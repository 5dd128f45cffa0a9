"""ogshot's exceptions. Each class carries the HTTP status it is answered with.

OgshotError (500)
├── ConfigError (500)             a setting has a bad value; stops the start
├── BadRequest (400)
│   ├── InvalidParameter (400)    names the parameter
│   └── InvalidFormat (400)
├── Forbidden (403)               missing or wrong URL signature
├── TemplateNotFound (404)        names the templates that exist
├── RequestTooLarge (414)         query string or data too long
├── Overloaded (503)              no page free in time; carries retry_after
└── RenderFailed (500)            answered with the fallback image, never cached
    ├── TemplateError (500)       Jinja syntax/undefined errors; carries the line
    ├── BrowserError (500)        the page or Chromium failed
    └── RenderTimeout (504)       the render deadline passed
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BadRequest",
    "BrowserError",
    "ConfigError",
    "Forbidden",
    "InvalidFormat",
    "InvalidParameter",
    "OgshotError",
    "Overloaded",
    "RenderFailed",
    "RenderTimeout",
    "RequestTooLarge",
    "TemplateError",
    "TemplateNotFound",
    "error_kind",
]


class OgshotError(Exception):
    status: int = 500

    def __init__(self, message: str, *, detail: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail

    def to_json(self) -> dict[str, Any]:
        return {"error": self.message, "detail": self.detail}


def error_kind(exc: BaseException) -> str:
    """A stable snake_case name for an error, for metrics and logs."""
    name = type(exc).__name__
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


class ConfigError(OgshotError):
    def __init__(self, key: str, value: object, reason: str) -> None:
        super().__init__(f"Config {key!r} has value {value!r}: {reason}")
        self.key = key
        self.value = value


class BadRequest(OgshotError):
    status = 400


class InvalidParameter(BadRequest):
    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"parameter {name!r}: {reason}", detail={"parameter": name})
        self.name = name


class InvalidFormat(BadRequest):
    pass


class Forbidden(OgshotError):
    status = 403


class TemplateNotFound(OgshotError):
    status = 404

    def __init__(self, name: str, available: list[str]) -> None:
        super().__init__(f"no template named {name!r}", detail={"available": available})
        self.name = name


class RequestTooLarge(OgshotError):
    status = 414


class Overloaded(OgshotError):
    status = 503

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message, detail={"retry_after": retry_after})
        self.retry_after = retry_after


class RenderFailed(OgshotError):
    status = 500


class TemplateError(RenderFailed):
    def __init__(self, message: str, *, template: str, line: int | None = None) -> None:
        super().__init__(message, detail={"template": template, "line": line})
        self.template = template
        self.line = line


class BrowserError(RenderFailed):
    pass


class RenderTimeout(RenderFailed):
    status = 504
