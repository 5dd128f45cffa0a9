"""The cache layers, nearest first: memory (each worker), disk (each node), Redis (the fleet).

A read goes memory -> disk -> Redis and copies what it finds into the nearer layers; a write goes
to every layer. Every layer keeps an :class:`~ogshot.cache.Entry` under the same content-hash key,
with the wall-clock time it was made, so whoever reads it can tell fresh from stale (freshness is
the pipeline's decision, not a layer's). Only memory is touched on the event loop: the disk cache
runs in threads of its own and Redis is asynchronous.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from .cache import Entry, ImageCache
from .config import Settings
from .lru import LRU

if TYPE_CHECKING:
    from .fleet import Fleet
    from .metrics import Metrics

__all__ = ["Layers"]

DISK_THREADS = 4


class Layers:
    def __init__(
        self, settings: Settings, *, fleet: Fleet | None = None, metrics: Metrics | None = None
    ) -> None:
        self.disk = ImageCache(settings)
        self.fleet = fleet
        self.metrics = metrics
        self.memory: LRU[Entry] = LRU(
            max_entries=10_000 if settings.memory_cache_size else 0,  # 0 turns it off
            max_size=settings.memory_cache_size,
            size_of=lambda entry: len(entry.body),
        )
        # Disk reads (SQLite, then the image file) never queue behind encodes in the default
        # executor: a few threads of their own.
        self._threads = ThreadPoolExecutor(
            max_workers=DISK_THREADS, thread_name_prefix="ogshot-cache"
        )

    async def get(self, key: str) -> Entry | None:
        found = self.memory.get(key)
        self._count("memory", found)
        if found is not None:
            return found
        loop = asyncio.get_running_loop()
        found = await loop.run_in_executor(self._threads, self.disk.get, key)
        self._count("disk", found)
        if found is None and self.fleet is not None:
            found = await self.fleet.get(key)
            self._count("redis", found)
            if found is not None:
                await loop.run_in_executor(self._threads, self.disk.set, key, found)
        if found is not None:
            self.memory.set(key, found)
        return found

    async def put(self, key: str, entry: Entry, *, shared: bool = True) -> None:
        """Store in every layer (``shared=False``: not in Redis, e.g. it came from there)."""
        self.memory.set(key, entry)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._threads, self.disk.set, key, entry)
        if shared and self.fleet is not None:
            await self.fleet.set(key, entry)

    def forget(self, key: str) -> None:
        """Drop this worker's memory copy (the disk and Redis copies are purged elsewhere)."""
        self.memory.pop(key)

    def sizes(self) -> list[tuple[str, int, int]]:
        """(layer, entries, bytes) of this node's layers. Blocking: the disk cache counts rows."""
        entries, volume = self.disk.stats()
        return [("memory", len(self.memory), self.memory.size), ("disk", entries, volume)]

    async def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)  # a stuck disk must not hang a stop
        self.disk.close()
        if self.fleet is not None:
            await self.fleet.close()

    def _count(self, layer: str, found: Entry | None) -> None:
        if self.metrics is not None:
            self.metrics.lookup(layer, found is not None)
