"""Versioned URLs, and what an image answer promises the caches in front (``Cache-Control``).

A template's *version* is a short prefix of its digest (the template, the partials it uses and the
static folder: everything that decides its pixels). URLs made by ``ogshot url``, ``sign_url`` and
the studio carry it as the reserved parameter ``v``, which every template accepts, the signature
covers, and the template never sees. The image is always the current one; ``v`` only decides how
long a cache may keep it:

==========================================  ===========================================  =========
request                                     ``Cache-Control`` (defaults)                 cache
==========================================  ===========================================  =========
``v`` is the current version                ``public, max-age=31536000, immutable``      hit/miss
no ``v``, or an old one                     ``public, max-age=86400,                     hit/miss
                                            stale-while-revalidate=604800,
                                            stale-if-error=604800``
served past its TTL (one refresh running)   the no-version policy                        stale
fallback image (any error)                  ``no-store`` (http_errors.py)
==========================================  ===========================================  =========

Only the current version may be ``immutable``: its URL can never show another picture, since a
change to the design makes a new version. ``OGSHOT_CACHE_CONTROL`` replaces every policy.
This module is imported by ``sign_url``: it stays light (no Jinja, no browser).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .config import Settings
from .errors import InvalidParameter

__all__ = [
    "VERSION_PARAM",
    "VERSION_PATTERN",
    "Promise",
    "cache_status",
    "check_version",
    "promise",
    "split_version",
    "version_of",
]

VERSION_PARAM = "v"
VERSION_LENGTH = 10  # hex digits of the template digest: 40 bits, plenty to tell designs apart
# Lenient on purpose: a hand-made cache buster from before versions (v=2, v=2024-05-01) is an old
# version, so pages already shared with it keep working.
VERSION_PATTERN = r"^[0-9A-Za-z._-]{1,64}$"
_VERSION_RE = re.compile(VERSION_PATTERN)


def version_of(digest: str) -> str:
    """The version of a template whose digest is ``digest``."""
    return digest[:VERSION_LENGTH]


def check_version(value: Any) -> str:
    """``value`` when it is a well-formed version; InvalidParameter (400) otherwise."""
    if not isinstance(value, str) or not _VERSION_RE.fullmatch(value):
        raise InvalidParameter(
            VERSION_PARAM,
            "not a template version (1 to 64 letters, digits, '.', '_' or '-'; "
            "`ogshot url` and sign_url write the current one)",
        )
    return value


def split_version(params: Mapping[str, Any]) -> tuple[Mapping[str, Any], str | None]:
    """(the parameters without ``v``, the version asked for or None); a malformed one is a 400."""
    if VERSION_PARAM not in params:
        return params, None
    requested = check_version(params[VERSION_PARAM])
    return {k: v for k, v in params.items() if k != VERSION_PARAM}, requested


@dataclass(frozen=True)
class Promise:
    """What an image answer tells the caches in front: ``Cache-Control`` and ``X-Ogshot-Cache``."""

    cache_control: str
    cache: str  # hit | miss | stale


def cache_status(*, cached: bool, stale: bool) -> str:
    return "stale" if stale else "hit" if cached else "miss"


def promise(
    settings: Settings, *, requested: str | None, current: str, cached: bool, stale: bool
) -> Promise:
    """The policy of an image answer (errors are ``no-store``, answered elsewhere).

    ``requested``: the version the URL carries (None: none); ``current``: the version of the
    template that made the image; ``stale``: served past its TTL while a refresh runs."""
    status = cache_status(cached=cached, stale=stale)
    if settings.cache_control:
        return Promise(settings.cache_control, status)
    if requested is not None and requested == current and not stale:
        return Promise(f"public, max-age={settings.versioned_max_age}, immutable", status)
    return Promise(short_policy(settings), status)


def short_policy(settings: Settings) -> str:
    """The policy of a URL without the current version: revalidate soon, by ETag."""
    return _short_policy(settings.max_age, settings.stale_while_revalidate, settings.stale_if_error)


@functools.lru_cache(maxsize=16)  # on every hit: built once per setting
def _short_policy(max_age: int, stale_while_revalidate: int, stale_if_error: int) -> str:
    parts = ["public", f"max-age={max_age}"]
    if stale_while_revalidate:
        parts.append(f"stale-while-revalidate={stale_while_revalidate}")
    if stale_if_error:
        parts.append(f"stale-if-error={stale_if_error}")
    return ", ".join(parts)
