"""Web origins as an operator lists them (``OGSHOT_SHOT_ORIGINS=https://example.com,...``): parsed
once, compared exactly (scheme, host and port; the port a scheme implies is filled in)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["Origin", "origin_of", "parse_origin"]

DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Origin:
    scheme: str  # http or https
    host: str  # lower case; an IPv6 address without its brackets
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = DEFAULT_PORTS[self.scheme] == self.port
        return f"{self.scheme}://{host}" + ("" if default else f":{self.port}")


def origin_of(url: str) -> Origin | None:
    """The origin of an http(s) URL without credentials; None for anything else (``file:``,
    ``data:``, ``javascript:``, a URL with ``user:pass@``, a malformed port)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    if parts.username is not None or parts.password is not None:
        return None
    return Origin(scheme, parts.hostname.lower().rstrip("."), port or DEFAULT_PORTS[scheme])


def parse_origin(text: str) -> Origin | None:
    """An origin as written in the settings: ``scheme://host[:port]``, nothing after it but an
    optional ``/``; None when it is not one."""
    try:
        parts = urlsplit(text.strip())
    except ValueError:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return None
    return origin_of(text.strip())
