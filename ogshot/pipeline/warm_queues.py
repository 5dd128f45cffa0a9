"""Where warm items wait: in this node (:class:`LocalQueue`) or, with Redis, in a stream the whole
fleet shares (:class:`StreamQueue`).

The stream is ``ogshot:warm`` with one consumer group, ``ogshot-warm``; each node is a consumer.
``XADD`` queues an item, ``XREADGROUP`` hands it to exactly one node (which reads only when it has
a page to spare), ``XACK`` + ``XDEL`` remove it once it is made. An item a node took and never
acknowledged (the node died) stays pending in the group; after ``claim_after`` seconds another node
takes it over with ``XAUTOCLAIM``. So each item is rendered once, by whichever node is idle, and
none is lost with a node.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import secrets
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ogshot.pipeline.warm import WarmItem

__all__ = ["Claimed", "LocalQueue", "StreamQueue", "WarmQueue"]

log = logging.getLogger("ogshot.warm")

MAX_LOCAL = 100_000  # items one node keeps; more are dropped (they are only ahead-of-time work)
MAX_STREAM = 1_000_000  # entries the fleet's stream keeps (XADD MAXLEN ~)
STREAM, GROUP = "ogshot:warm", "ogshot-warm"
BLOCK_MS = 1000  # how long one XREADGROUP waits for an item
PAUSE_AFTER_ERROR = 1.0  # seconds a worker waits when Redis failed


@dataclass(frozen=True)
class Claimed:
    """An item handed to this node, until ``done``."""

    raw: bytes
    key: str
    id: str = ""  # the stream entry's id


class WarmQueue(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def put(self, items: Sequence[tuple[str, WarmItem]]) -> None: ...

    async def take(self) -> Claimed | None:
        """The next item (waits a while for one; None when there was none)."""

    async def done(self, claimed: Claimed) -> None: ...

    async def depth(self) -> int:
        """Items queued or being made."""


class LocalQueue:
    """This node's queue: first in, first out; a key already queued is not queued twice."""

    def __init__(self) -> None:
        self._items: collections.OrderedDict[str, bytes] = collections.OrderedDict()
        self._taken = 0
        self._arrived = asyncio.Event()

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        self._items.clear()

    async def put(self, items: Sequence[tuple[str, WarmItem]]) -> None:
        for key, item in items:
            if key not in self._items and len(self._items) < MAX_LOCAL:
                self._items[key] = item.pack()
        if self._items:
            self._arrived.set()

    async def take(self) -> Claimed | None:
        while not self._items:
            self._arrived.clear()
            await self._arrived.wait()
        key, raw = self._items.popitem(last=False)
        self._taken += 1
        return Claimed(raw, key)

    async def done(self, claimed: Claimed) -> None:
        self._taken -= 1

    async def depth(self) -> int:
        return len(self._items) + self._taken


class StreamQueue:
    """The fleet's queue in a Redis stream (see the module docstring)."""

    def __init__(self, url: str, *, claim_after: float) -> None:
        import redis.asyncio as aioredis

        # A connection pool of its own: its reads block up to BLOCK_MS, longer than the image
        # cache's call timeout.
        self.redis: Any = aioredis.from_url(
            url, socket_timeout=BLOCK_MS / 1000 + 2, socket_connect_timeout=2
        )
        self.claim_after_ms = int(claim_after * 1000)
        self.consumer = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self._failing = False

    async def start(self) -> None:
        await self._ensure_group()

    async def _ensure_group(self) -> None:
        from redis.exceptions import ResponseError

        try:
            await self.redis.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):  # it exists: another node made it
                raise
        except Exception as exc:  # Redis away at start: workers try again as they read
            self._failed(exc)

    async def close(self) -> None:
        try:
            await self.redis.aclose()
        except Exception as exc:
            log.debug("closing the warm stream's pool: %s", exc)

    async def put(self, items: Sequence[tuple[str, WarmItem]]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for key, item in items:
                pipe.xadd(STREAM, {"key": key, "item": item.pack()}, maxlen=MAX_STREAM)
            await pipe.execute()

    async def take(self) -> Claimed | None:
        from redis.exceptions import ResponseError

        try:
            # First what a node that died left behind, then what nobody took yet.
            reclaimed = await self.redis.xautoclaim(
                STREAM, GROUP, self.consumer, self.claim_after_ms, start_id="0-0", count=1
            )
            entries = reclaimed[1] if len(reclaimed) > 1 else []
            if not entries:
                answer = await self.redis.xreadgroup(
                    GROUP, self.consumer, {STREAM: ">"}, count=1, block=BLOCK_MS
                )
                entries = answer[0][1] if answer else []
        except ResponseError as exc:
            if "NOGROUP" in str(exc):  # the stream was deleted (FLUSHALL, a Redis restart)
                await self._ensure_group()
                return None
            self._failed(exc)
            await asyncio.sleep(PAUSE_AFTER_ERROR)
            return None
        except Exception as exc:
            self._failed(exc)
            await asyncio.sleep(PAUSE_AFTER_ERROR)
            return None
        self._back()
        for entry_id, fields in entries:
            if not fields:  # deleted while pending
                continue
            return Claimed(fields[b"item"], fields[b"key"].decode(), _text(entry_id))
        return None

    async def done(self, claimed: Claimed) -> None:
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.xack(STREAM, GROUP, claimed.id)
                pipe.xdel(STREAM, claimed.id)
                await pipe.execute()
        except Exception as exc:  # it is taken again after claim_after: a cached image, skipped
            self._failed(exc)

    async def depth(self) -> int:
        return int(await self.redis.xlen(STREAM))

    def _failed(self, exc: Exception) -> None:
        if not self._failing:
            log.error("the warm stream in Redis failed (%s: %s)", type(exc).__name__, exc)
        self._failing = True

    def _back(self) -> None:
        if self._failing:
            log.warning("the warm stream in Redis is back")
        self._failing = False


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw
