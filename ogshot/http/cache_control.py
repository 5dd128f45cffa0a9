"""What an image answer promises the caches in front: ``Cache-Control`` and ``X-Ogshot-Cache``.

==========================================  ===========================================  =========
request                                     ``Cache-Control`` (defaults)                 cache
==========================================  ===========================================  =========
``v`` is the current version                ``public, max-age=31536000, immutable``      hit/miss
no ``v``, or an old one                     ``public, max-age=86400,                     hit/miss
                                            stale-while-revalidate=604800,
                                            stale-if-error=604800``
served past its TTL (one refresh running)   the no-version policy                        stale
fallback image (any error)                  ``no-store`` (http/errors.py)
==========================================  ===========================================  =========

Only the current version may be ``immutable``: its URL can never show another picture, since a
change to the design makes a new version. ``OGSHOT_CACHE_CONTROL`` replaces every policy.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from ogshot.core.settings import Settings

__all__ = ["Promise", "cache_status", "promise", "short_policy"]


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
