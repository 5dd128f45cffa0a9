"""The fleet's shared cache in Redis: the second level behind every node's disk cache.

With ``OGSHOT_REDIS_URL`` set, nodes share images under the same content-hash keys as their disk
caches, so an image rendered on one node is a hit on every other. Redis also gives the fleet:

- one render per key: a lease per key (``SET NX PX`` through redis-py's ``Lock``, with a random
  token so only its holder releases it). The lease is short (``lock_ttl``, a few seconds) and its
  holder renews it every third of that while it renders, so a node that dies mid-render frees the
  key within ``lock_ttl`` instead of holding it for a whole render deadline. Nodes that lose the
  race poll Redis for the winner's image until their own deadline, and one of them takes the key
  over if the lease goes away without one;
- purges that reach every node. A purge deletes the images from Redis and records, with the
  wall-clock time of the purge, what it purged: ``purged:<key>`` per key (kept as long as an
  image), and in one hash the time of the latest key purge and each purged template's time; the
  purge generation (a counter) says that something changed. Every worker reads the generation about
  once a second (``refresh_purges``) and, when it moved, the hash. A copy in a node's memory or disk
  made (``Entry.stored_at``) before its template's purge is dead; one made before the latest key
  purge is checked once against ``purged:<key>`` (``purged_at``). Templates are indexed
  (``tpl:<name>``: the keys written under it) so that their images can be deleted, not only
  refused.

Redis is never a single point of failure. Every call has a timeout; a failed call makes this node
act as if Redis were absent for ``RETRY_AFTER`` seconds (logged once when it goes, once when it is
back), then it tries again: redis-py reconnects by itself. A connection that broke while it was
idle in the pool (a restart of Redis breaks them all) is retried once on a fresh one, so one
restart is one outage, not one per pooled connection.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import LockError

from ogshot.cache.disk import Entry

__all__ = ["ALONE", "Fleet", "Lease", "PurgeState"]

log = logging.getLogger("ogshot.fleet")

T = TypeVar("T")

PREFIX = "ogshot:"
POLL_FIRST, POLL_MAX = 0.02, 0.1  # seconds between polls for another node's render
ALONE = object()  # the lock of a node that renders without Redis


@dataclass
class PurgeState:
    """What a worker knows of the fleet's purges: the generation it read, the wall-clock time of
    the latest purge by key, and each purged template's time."""

    generation: int = 0
    keys_at: float = 0.0
    templates: dict[str, float] = field(default_factory=dict)


@dataclass
class Lease:
    """A held render lock and the task that renews it until it is released."""

    lock: Any
    renewing: asyncio.Task[None]


class Fleet:
    """One Redis connection pool per worker; every method is safe to call when Redis is down."""

    RETRY_AFTER = 2.0  # seconds this node leaves Redis alone after a failed call

    def __init__(self, url: str, *, keep: int, lock_ttl: float, timeout: float = 0.5) -> None:
        """``keep``: seconds an image stays in Redis (its TTL plus the stale window; 0: for ever);
        ``lock_ttl``: seconds a render lease lives unless its holder renews it (it does, every
        third of that, while it renders; a holder that died stops renewing)."""
        self.url = url
        self.keep = keep
        self.lock_ttl = lock_ttl
        self.timeout = timeout
        self.redis = aioredis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            health_check_interval=30,
            # A restart of Redis breaks every pooled connection, and each one fails on its next
            # use. Without a retry, each was a new outage (logged, counted, Redis left alone for
            # RETRY_AFTER) minutes after the restart. A broken connection is retried once on a
            # fresh one at once; a timeout is not retried (it would only double the wait).
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        )
        self.errors = 0
        self.on_error: Callable[[], None] | None = None  # e.g. a metrics counter
        self.purges = PurgeState()
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

    async def set(self, key: str, entry: Entry, *, template: str = "") -> None:
        """Store ``entry``; ``template``: index the key under it, for purges by template."""
        packed = entry.tag.encode() + b"\n" + entry.body
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(PREFIX + "img:" + key, packed, ex=self.keep or None)
        if template:
            pipe.sadd(PREFIX + "tpl:" + template, key)
            if self.keep:  # the index lives as long as its newest image
                pipe.expire(PREFIX + "tpl:" + template, self.keep)
        await self._call(pipe.execute(), None)

    # -- one render per key ------------------------------------------------------------------

    async def lock(self, key: str) -> Lease | object | None:
        """A held lease when this node should render ``key`` (renewed until ``unlock``); None
        when another node holds it.

        When Redis is down, a stand-in that nobody else sees: the node renders alone, as it would
        without a fleet."""
        lock = self.redis.lock(PREFIX + "lock:" + key, timeout=self.lock_ttl, blocking=False)
        got = await self._call(lock.acquire(), None)
        if got is None:
            return ALONE
        if not got:
            return None
        return Lease(lock, asyncio.ensure_future(self._renew(lock)))

    async def unlock(self, lease: Lease | object | None) -> None:
        if not isinstance(lease, Lease):  # ALONE or None
            return
        lease.renewing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await lease.renewing
        # LockError: it expired (Redis was away longer than the lease) and may be another's now.
        with contextlib.suppress(LockError):
            await self._call(lease.lock.release(), None)

    async def _renew(self, lock: Any) -> None:
        """Keep ``lock`` alive while its render runs: its TTL back to ``lock_ttl`` every third
        of it, so a missed renewal or two (a slow Redis) does not lose it."""
        while True:
            await asyncio.sleep(self.lock_ttl / 3)
            try:
                await self._call(lock.reacquire(), None)
            except LockError:  # expired meanwhile: a waiter may render too; nothing to keep
                log.debug("a render lease was lost before its render ended")
                return

    async def wait(self, key: str, deadline: float, *, newer_than: float = 0.0) -> Entry | None:
        """Poll for the image another node is rendering, until ``deadline`` (monotonic), Redis
        fails, or the lock goes away without an image (its holder failed or died). Only an image
        made after ``newer_than`` (wall clock) counts: a stale copy being refreshed does not."""
        pause = POLL_FIRST
        while time.monotonic() < deadline:
            await asyncio.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(pause * 2, POLL_MAX)
            found = _newer(await self.get(key), newer_than)
            if found is not None or not self.healthy:
                return found
            held = await self._call(self.redis.exists(PREFIX + "lock:" + key), 0)
            if not held:  # released just now, after writing the image, or its holder failed
                return _newer(await self.get(key), newer_than)
        return None

    # -- purge ---------------------------------------------------------------------------------

    async def purge(self, keys: list[str]) -> int:
        """Delete ``keys`` fleet-wide and record when; the new purge generation.

        Raises when Redis cannot be reached: a purge that did not happen must not look done."""
        now = time.time()
        async with self.redis.pipeline(transaction=True) as pipe:
            if keys:
                pipe.delete(*(PREFIX + "img:" + k for k in keys))
                for key in keys:
                    pipe.set(PREFIX + "purged:" + key, repr(now), ex=self.keep or None)
                pipe.hset(PREFIX + "purges", "keys", repr(now))
            pipe.incr(PREFIX + "purge:generation")
            try:
                async with asyncio.timeout(self.timeout * 4):
                    done = await pipe.execute()
            except Exception as exc:
                self._failed(exc)
                raise
        return int(done[-1])

    async def purge_template(self, template: str) -> tuple[int, int]:
        """Make every image of ``template`` dead fleet-wide (those indexed are deleted; any other
        copy is refused because it is older than the purge): (generation, images deleted).

        Raises when Redis cannot be reached."""
        now = time.time()
        index = PREFIX + "tpl:" + template
        try:
            async with asyncio.timeout(self.timeout * 4):
                keys = [_text(k) for k in await self.redis.smembers(index)]
                async with self.redis.pipeline(transaction=True) as pipe:
                    if keys:
                        pipe.delete(*(PREFIX + "img:" + k for k in keys))
                    pipe.delete(index)
                    pipe.hset(PREFIX + "purges", "tpl:" + template, repr(now))
                    pipe.incr(PREFIX + "purge:generation")
                    done = await pipe.execute()
        except Exception as exc:
            self._failed(exc)
            raise
        return int(done[-1]), int(done[0]) if keys else 0

    async def generation(self) -> int | None:
        """The current purge generation (0 before any purge); None while Redis is unreachable."""
        raw = await self._call(self.redis.get(PREFIX + "purge:generation"), None)
        if raw is None:
            return 0 if self.healthy else None
        return int(raw)

    async def refresh_purges(self) -> PurgeState:
        """Read the purge generation, and what the purges were when it moved (``self.purges``).
        Called about once a second by every worker; it also notices Redis coming back."""
        generation = await self.generation()
        if generation is None or generation == self.purges.generation:
            return self.purges
        raw = await self._call(self.redis.hgetall(PREFIX + "purges"), None)
        if raw is None:
            return self.purges
        state = PurgeState(generation=generation)
        for name, value in raw.items():
            field_name, at = _text(name), float(value)
            if field_name == "keys":
                state.keys_at = at
            elif field_name.startswith("tpl:"):
                state.templates[field_name[4:]] = at
        self.purges = state
        return state

    async def purged_at(self, key: str) -> float | None:
        """When ``key`` was last purged (0.0: never, or long enough ago to be forgotten); None
        while Redis is unreachable."""
        raw = await self._call(self.redis.get(PREFIX + "purged:" + key), False)
        if raw is False:
            return None
        return float(raw) if isinstance(raw, bytes) else 0.0

    # -- what the edge caches hold ----------------------------------------------------------------

    async def remember_uri(self, uri: str, *, key: str, template: str) -> None:
        """Record that ``uri`` was answered with the image ``key`` of ``template``: an edge cache
        in front of the nodes may hold it under that URI (see http/edge.py)."""
        pipe = self.redis.pipeline(transaction=False)
        for name in (PREFIX + "uris:key:" + key, PREFIX + "uris:tpl:" + template):
            pipe.sadd(name, uri)
            if self.keep:
                pipe.expire(name, self.keep)
        await self._call(pipe.execute(), None)

    async def uris(self, *, keys: list[str], templates: list[str]) -> builtins.set[str]:
        """The URIs recorded for ``keys`` and ``templates``; whatever is known when Redis fails."""
        names = [PREFIX + "uris:key:" + k for k in keys]
        names += [PREFIX + "uris:tpl:" + t for t in templates]
        if not names:
            return set()
        found: builtins.set[bytes | str] = await self._call(
            self.redis.sunion(names), builtins.set()
        )
        return {_text(uri) for uri in found}

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
            self._failed(exc)
            return fallback
        if self._down_since is not None:
            log.warning(
                "Redis at %s is back after %.1f s",
                _safe_url(self.url),
                time.monotonic() - self._down_since,
            )
            self._down_since = None
        return result

    def _failed(self, exc: Exception) -> None:
        """Count a failed call; log the first of an outage; leave Redis alone for a while."""
        self.errors += 1
        if self.on_error is not None:
            self.on_error()
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


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


def _newer(entry: Entry | None, than: float) -> Entry | None:
    return entry if entry is not None and entry.stored_at > than else None


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
