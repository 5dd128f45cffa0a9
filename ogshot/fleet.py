"""The fleet's shared cache in Redis: the second level behind every node's disk cache.

With ``OGSHOT_REDIS_URL`` set, nodes share images under the same content-hash keys as their disk
caches, so an image rendered on one node is a hit on every other. Redis also gives the fleet:

- one render per key: a short lock per key (``SET NX PX`` through redis-py's ``Lock``, with a
  random token so only its holder releases it, and an expiry a little over the render deadline so a
  node that dies while holding it frees it by itself). Nodes that lose the race poll Redis for the
  winner's image until their own deadline, and render themselves if the lock goes away without one;
- purges that reach every node: a purge deletes the keys and records them under a new purge
  generation; a node asks whether a copy it holds from before that generation was purged.

Redis is never a single point of failure. Every call has a timeout; a failed call makes this node
act as if Redis were absent for ``RETRY_AFTER`` seconds (logged once when it goes, once when it is
back), then it tries again: redis-py reconnects by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import LockError

from .cache import Entry

__all__ = ["Fleet"]

log = logging.getLogger("ogshot.fleet")

T = TypeVar("T")

PREFIX = "ogshot:"
POLL_FIRST, POLL_MAX = 0.02, 0.1  # seconds between polls for another node's render
ALONE = object()  # the lock of a node that renders without Redis


class Fleet:
    """One Redis connection pool per worker; every method is safe to call when Redis is down."""

    RETRY_AFTER = 2.0  # seconds this node leaves Redis alone after a failed call

    def __init__(self, url: str, *, keep: int, lock_ttl: float, timeout: float = 0.5) -> None:
        """``keep``: seconds an image stays in Redis (its TTL plus the stale window; 0: for ever);
        ``lock_ttl``: seconds a render lock lives when its holder never releases it."""
        self.url = url
        self.keep = keep
        self.lock_ttl = lock_ttl
        self.timeout = timeout
        self.redis = aioredis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            health_check_interval=30,
            retry_on_timeout=False,
        )
        self.errors = 0
        self._down_since: float | None = None
        self._retry_at = 0.0

    @property
    def healthy(self) -> bool:
        return self._down_since is None

    async def close(self) -> None:
        try:
            await self.redis.aclose()
        except Exception as exc:  # closing a pool whose server is gone
            log.debug("closing the Redis pool: %s", exc)

    # -- images ------------------------------------------------------------------------------

    async def get(self, key: str) -> Entry | None:
        raw = await self._call(self.redis.get(PREFIX + "img:" + key), None)
        return _unpack(raw) if isinstance(raw, bytes) else None

    async def set(self, key: str, entry: Entry) -> None:
        packed = entry.tag.encode() + b"\n" + entry.body
        await self._call(self.redis.set(PREFIX + "img:" + key, packed, ex=self.keep or None), None)

    # -- one render per key ------------------------------------------------------------------

    async def lock(self, key: str) -> Any:
        """A held lock when this node should render ``key``; None when another node holds it.

        When Redis is down, a stand-in that nobody else sees: the node renders alone, as it would
        without a fleet."""
        lock = self.redis.lock(PREFIX + "lock:" + key, timeout=self.lock_ttl, blocking=False)
        got = await self._call(lock.acquire(), None)
        if got is None:
            return ALONE
        return lock if got else None

    async def unlock(self, lock: Any) -> None:
        if lock is ALONE or lock is None:
            return
        # LockError: it expired (a render slower than lock_ttl) and may be another node's now.
        with contextlib.suppress(LockError):
            await self._call(lock.release(), None)

    async def wait(self, key: str, deadline: float) -> Entry | None:
        """Poll for the image another node is rendering, until ``deadline`` (monotonic), Redis
        fails, or the lock goes away without an image (its holder failed or died)."""
        pause = POLL_FIRST
        while time.monotonic() < deadline:
            await asyncio.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(pause * 2, POLL_MAX)
            found = await self.get(key)
            if found is not None or not self.healthy:
                return found
            held = await self._call(self.redis.exists(PREFIX + "lock:" + key), 0)
            if not held:
                return await self.get(key)  # released just now, after writing the image
        return None

    # -- purge ---------------------------------------------------------------------------------

    async def purge(self, keys: list[str]) -> int:
        """Delete ``keys`` fleet-wide and record them under a new purge generation (returned).

        Raises when Redis cannot be reached: a purge that did not happen must not look done."""
        generation = int(await self.redis.incr(PREFIX + "purge:generation"))
        if keys:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.delete(*(PREFIX + "img:" + k for k in keys))
                pipe.hset(PREFIX + "purged", mapping=dict.fromkeys(keys, generation))
                await pipe.execute()
        return generation

    async def generation(self) -> int | None:
        """The current purge generation (0 before any purge); None while Redis is unreachable."""
        raw = await self._call(self.redis.get(PREFIX + "purge:generation"), None)
        if raw is None:
            return 0 if self.healthy else None
        return int(raw)

    async def purged(self, key: str, since: int) -> bool:
        """Whether ``key`` was purged in a generation after ``since``."""
        raw = await self._call(self.redis.hget(PREFIX + "purged", key), None)
        return raw is not None and int(raw) > since

    # -- failure handling ------------------------------------------------------------------------

    async def ping(self) -> bool:
        return bool(await self._call(self.redis.ping(), False, probe=True))

    async def _call(self, call: Awaitable[T], fallback: T, *, probe: bool = False) -> T:
        if self._down_since is not None and time.monotonic() < self._retry_at and not probe:
            _close(call)
            return fallback
        try:
            async with asyncio.timeout(self.timeout * 2):
                result = await call
        except (LockError, asyncio.CancelledError):
            raise
        except Exception as exc:
            self.errors += 1
            self._retry_at = time.monotonic() + self.RETRY_AFTER
            if self._down_since is None:
                self._down_since = time.monotonic()
                log.error(
                    "Redis at %s unavailable (%s: %s); serving from the disk cache and rendering "
                    "alone until it is back",
                    _safe_url(self.url),
                    type(exc).__name__,
                    exc,
                )
            return fallback
        if self._down_since is not None:
            log.warning(
                "Redis at %s is back after %.1f s",
                _safe_url(self.url),
                time.monotonic() - self._down_since,
            )
            self._down_since = None
        return result


def _unpack(raw: bytes) -> Entry | None:
    """``<etag> <stored_at>\\n<body>`` -> the entry (None for anything else)."""
    head, sep, body = raw.partition(b"\n")
    if not sep or b" " not in head:
        return None
    return Entry.from_tag(body, head.decode("ascii", "replace"))


def _close(call: Awaitable[Any]) -> None:
    close = getattr(call, "close", None)  # an un-awaited coroutine: say it is done with
    if close is not None:
        close()


def _safe_url(url: str) -> str:
    """The URL without its password, for logs."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = rest.split("@", 1)[1]
    return f"{scheme}{sep}{rest}"
