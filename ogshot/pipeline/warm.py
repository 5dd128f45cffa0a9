"""The lane for ahead-of-time work: warming (``POST /admin/warm``) and refresh-ahead.

Items wait in a queue (in this node, or with Redis in a stream the fleet shares: see
``warm_queues.py``); workers take one only when the pool has a page to spare, and render it with a
:class:`~ogshot.engine.pool.Ticket`, so the pool lends to live requests first and a live miss never
waits behind warm work. An item whose image is already cached (and fresh enough) is skipped; one
whose key is being rendered joins that render (single flight).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ogshot.core.errors import OgshotError

if TYPE_CHECKING:
    from ogshot.pipeline.renderer import Renderer
    from ogshot.pipeline.warm_queues import Claimed, WarmQueue

__all__ = ["MAX_ITEMS", "WarmItem", "WarmLane"]

log = logging.getLogger("ogshot.warm")

MAX_ITEMS = 1000  # per POST /admin/warm
DEPTH_EVERY = 1.0  # seconds between reports of the queue's depth to the metrics


@dataclass(frozen=True)
class WarmItem:
    """One image to make ahead of its first request: the request's template, parameters (as the
    URL gives them) and format. ``refresh``: render it again even though it is cached, because it
    is past ``OGSHOT_REFRESH_AHEAD`` x TTL."""

    template: str
    params: Mapping[str, Any] = field(default_factory=dict)
    format: str = "png"
    refresh: bool = False

    def pack(self) -> bytes:
        return json.dumps(
            {"t": self.template, "p": dict(self.params), "f": self.format, "r": self.refresh},
            separators=(",", ":"),
        ).encode()

    @classmethod
    def unpack(cls, raw: bytes | str) -> WarmItem:
        data = json.loads(raw)
        return cls(data["t"], data["p"], data["f"], bool(data.get("r")))


class WarmLane:
    """The node's warm workers and its view of the queue (one per Renderer)."""

    def __init__(self, renderer: Renderer) -> None:
        self.renderer = renderer
        self.queue: WarmQueue | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def running(self) -> bool:
        return self.queue is not None

    async def start(self) -> None:
        """Start taking work (the server does; a Renderer used as a library never does)."""
        from ogshot.pipeline.warm_queues import LocalQueue, StreamQueue

        if self.queue is not None:
            return
        renderer = self.renderer
        fleet = renderer.layers.fleet
        settings = renderer.settings
        if fleet is None:
            self.queue = LocalQueue()
        else:
            # An item taken by a node that died is taken again after this long: longer than
            # any render may last once its page is lent (a worker claims only with one to spare).
            claim_after = 2 * settings.render_timeout + 5
            self.queue = StreamQueue(fleet.url, claim_after=claim_after)
        await self.queue.start()
        # At most one warm render a core pair: a live request that arrives while warm renders
        # run shares the cores with them (engine/pool.py), so they must leave cores free.
        workers = max(
            1, min(renderer.pool.size - renderer.pool.reserve, (os.cpu_count() or 2) // 2)
        )
        self._tasks = [asyncio.ensure_future(self._work()) for _ in range(workers)]
        if renderer.metrics is not None:
            self._tasks.append(asyncio.ensure_future(self._report_depth()))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        if self.queue is not None:
            await self.queue.close()

    async def submit(self, items: Sequence[tuple[str, WarmItem]]) -> None:
        """Queue ``(key, item)`` pairs; raises when the queue (Redis) cannot take them."""
        if self.queue is None:
            raise OgshotError("the warm lane is not running")
        await self.queue.put(items)

    async def depth(self) -> int:
        return 0 if self.queue is None else await self.queue.depth()

    async def _work(self) -> None:
        assert self.queue is not None
        while True:
            # Claimed only when a page is spare: with Redis, a busy node leaves the item to one
            # with idle pages.
            await self.renderer.pool.spare()
            claimed = await self.queue.take()
            if claimed is None:
                continue
            try:
                await self._make(claimed)
            finally:
                await self.queue.done(claimed)

    async def _make(self, claimed: Claimed) -> None:
        try:
            item = WarmItem.unpack(claimed.raw)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("dropping an unreadable warm item (%s)", exc)
            return
        try:
            await self.renderer.prewarm(item)
        except asyncio.CancelledError:
            raise
        except OgshotError as exc:
            log.warning("warming a %r image failed: %s", item.template, exc.message)
        except Exception as exc:
            log.warning("warming a %r image failed: %s: %s", item.template, type(exc).__name__, exc)

    async def _report_depth(self) -> None:
        metrics = self.renderer.metrics
        assert metrics is not None
        while True:
            with contextlib.suppress(Exception):  # Redis away: the next report tells
                metrics.warm_queue(await self.depth())
            await asyncio.sleep(DEPTH_EVERY)
