"""The cache layers, nearest first: memory (each worker), disk (each node), Redis (the fleet).

A read goes memory -> disk -> Redis and copies what it finds into the nearer layers; a write goes
to every layer (the disk's is not waited for: see :meth:`Layers.put`). Every layer keeps an
:class:`~ogshot.cache.disk.Entry` under the same content-hash key, with the wall-clock time it was
made, so whoever reads it can tell fresh from stale (freshness is the pipeline's decision, not a
layer's). Only memory is touched on the event loop: the disk cache runs in threads of its own and
Redis is asynchronous.

Purges. A purge deletes its keys from Redis, this node's disk and this worker's memory at once;
copies elsewhere (other nodes' disks, other workers' memory) learn of it from the purge record in
Redis, which every worker reads about once a second (:meth:`Fleet.refresh_purges`). A copy made
(``stored_at``) before its template was purged is dead; one made before the latest purge by key is
checked once against Redis (then remembered as checked for that purge), so a purge costs each
worker one Redis read per key it serves afterwards, and the hit path nothing otherwise. A dead copy
is removed and the read goes on to the next layer, as a miss. Without Redis, a purge reaches this
node's disk and the worker that ran it (``ogshot serve --workers N`` keeps other workers' memory
copies until they are evicted).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from ogshot.cache.disk import Entry, ImageCache
from ogshot.core.events import Events
from ogshot.core.lru import LRU
from ogshot.core.settings import Settings

if TYPE_CHECKING:
    from ogshot.cache.redis import Fleet

__all__ = ["Layers"]

log = logging.getLogger("ogshot.cache")

DISK_THREADS = 4
PURGE_POLL = 1.0  # seconds between reads of the fleet's purge generation
PENDING_WRITES = 32  # disk writes under way before a render waits for its own
CLOSE_TIMEOUT = 10.0  # seconds a stop waits for the disk writes under way


class Layers:
    def __init__(
        self, settings: Settings, *, fleet: Fleet | None = None, metrics: Events | None = None
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
        # key -> the key-purge time it was checked against (see the module docstring).
        self._checked: LRU[float] = LRU(max_entries=20_000)  # evicted: checked once more
        # key -> (entry, its disk write) until the write is done; see put().
        self._writing: dict[str, tuple[Entry, asyncio.Future[bool]]] = {}
        self._local_templates: dict[str, float] = {}  # template purges without Redis
        self._watching: asyncio.Task[None] | None = None
        if metrics is not None:
            self.disk.on_error = functools.partial(metrics.cache_error, "disk")
            if fleet is not None:
                fleet.on_error = functools.partial(metrics.cache_error, "redis")

    async def start(self) -> None:
        """Read the fleet's purges before the first request, then keep reading them."""
        if self.fleet is not None and self._watching is None:
            await self.fleet.refresh_purges()
            self._watching = asyncio.ensure_future(self._watch_purges(self.fleet))

    async def get(self, key: str, *, template: str = "") -> Entry | None:
        """The entry under ``key`` from the nearest layer that has a live one (``template``: the
        template it belongs to, for purges by template)."""
        found = self.memory.get(key)
        if found is not None:
            # The hit path: decided without awaiting unless a purge makes this copy doubtful.
            live = self._verdict(key, found, template, local=True)
            if live is None:
                live = await self._live(key, found, template, local=True)
            if live:
                self._count("memory", found)
                return found
            self.memory.pop(key)
            found = None
        self._count("memory", found)
        loop = asyncio.get_running_loop()
        pending = self._writing.get(key)
        if pending is not None:  # written a moment ago, still on its way to the disk
            found = pending[0]
        else:
            found = await loop.run_in_executor(self._threads, self.disk.get, key)
        if found is not None and not await self._live(key, found, template, local=True):
            await loop.run_in_executor(self._threads, self.disk.delete, key)
            found = None
        self._count("disk", found)
        if found is None and self.fleet is not None:
            found = await self.fleet.get(key)
            if found is not None and not await self._live(key, found, template, local=False):
                found = None
            self._count("redis", found)
            if found is not None:
                await self._write_to_disk(key, found)
        if found is not None:
            self.memory.set(key, found)
        return found

    async def put(self, key: str, entry: Entry, *, shared: bool = True, template: str = "") -> None:
        """Store in every layer (``shared=False``: not in Redis, e.g. it came from there).
        ``template``: index the key under its template in Redis, for purges by template.

        The disk write is not waited for: the image is answered while SQLite and the file
        system take it (~0.6 ms on a quiet disk, far more on a busy one), and until it lands this
        worker reads the entry from the write itself. Only when ``PENDING_WRITES`` are already
        under way does a render wait for its own, so a slow disk slows renders instead of
        piling images up in memory. Redis is waited for: a node waiting for this key is told the
        image exists once it does."""
        self.memory.set(key, entry)
        await self._write_to_disk(key, entry)
        if shared and self.fleet is not None:
            await self.fleet.set(key, entry, template=template)

    async def _write_to_disk(self, key: str, entry: Entry) -> None:
        """Start the disk write of ``key`` (a render, or a copy of what Redis had); wait for it
        only when ``PENDING_WRITES`` are already under way (see put)."""
        write = asyncio.get_running_loop().run_in_executor(self._threads, self.disk.set, key, entry)
        self._writing[key] = (entry, write)
        write.add_done_callback(lambda done: self._written(key, done))
        if len(self._writing) > PENDING_WRITES:
            await asyncio.shield(write)

    def _written(self, key: str, write: asyncio.Future[bool]) -> None:
        if not write.cancelled():
            write.exception()  # disk.set logs its own failures; nothing is left unretrieved
        pending = self._writing.get(key)
        if pending is not None and pending[1] is write:  # not a newer write of the same key
            del self._writing[key]

    async def flush(self) -> None:
        """Wait for the disk writes under way."""
        writes = [write for _, write in self._writing.values()]
        if writes:
            await asyncio.wait(writes)

    def forget(self, key: str) -> None:
        """Drop this worker's memory copy (the disk and Redis copies are purged elsewhere)."""
        self.memory.pop(key)

    # -- purges --------------------------------------------------------------------------------

    def made_after(self, template: str) -> float:
        """Wall-clock time a copy of ``template``'s images must be newer than (its last purge)."""
        purged = self._local_templates if self.fleet is None else self.fleet.purges.templates
        return purged.get(template, 0.0)

    async def purge(self, keys: list[str]) -> int | None:
        """Remove ``keys`` from every layer, fleet-wide with Redis: the new purge generation
        (None without Redis). Raises when Redis is configured but unreachable."""
        generation = None
        if self.fleet is not None:
            generation = await self.fleet.purge(keys)
        for key in keys:
            self.memory.pop(key)
        loop = asyncio.get_running_loop()
        for key in keys:
            pending = self._writing.get(key)
            if pending is not None:  # a write landing after the delete would bring it back
                await asyncio.wait([pending[1]])
            await loop.run_in_executor(self._threads, self.disk.delete, key)
        if self.fleet is not None:
            await self.fleet.refresh_purges()
        if self.metrics is not None:
            self.metrics.purged(len(keys))
        return generation

    async def purge_template(self, template: str) -> tuple[int | None, int]:
        """Make every image of ``template`` dead in every layer: (generation, images deleted from
        Redis). Raises when Redis is configured but unreachable."""
        generation, deleted = None, 0
        if self.fleet is not None:
            generation, deleted = await self.fleet.purge_template(template)
            await self.fleet.refresh_purges()
        else:
            self._local_templates[template] = time.time()
        if self.metrics is not None:
            self.metrics.purged(deleted)
        return generation, deleted

    async def _live(self, key: str, entry: Entry, template: str, *, local: bool) -> bool:
        """False for a copy that a purge killed (see the module docstring)."""
        verdict = self._verdict(key, entry, template, local=local)
        if verdict is not None:
            return verdict
        assert self.fleet is not None
        purged_at = await self.fleet.purged_at(key)
        if purged_at is None:
            return True  # Redis unreachable: serve what we have, check again later
        if entry.stored_at <= purged_at:
            return False
        self._checked.set(key, self.fleet.purges.keys_at)
        return True

    def alive(self, key: str, entry: Entry, template: str) -> bool | None:
        """Whether this worker's memory copy ``entry`` of ``key`` outlived every purge it knows
        of: True, False (purged), or None (only Redis can tell; :meth:`get` asks it)."""
        return self._verdict(key, entry, template, local=True)

    def _verdict(self, key: str, entry: Entry, template: str, *, local: bool) -> bool | None:
        """Live (True) or dead (False) from what this worker knows; None: ask Redis."""
        if template:
            purged = self.made_after(template)
            if purged and entry.stored_at <= purged:
                return False
        if not local or self.fleet is None:
            return True  # a purge by key deletes the Redis copy itself
        keys_at = self.fleet.purges.keys_at
        if not keys_at or entry.stored_at > keys_at:
            return True
        checked = self._checked.get(key)
        return True if checked is not None and checked >= keys_at else None

    async def _watch_purges(self, fleet: Fleet) -> None:
        while True:
            await asyncio.sleep(PURGE_POLL)
            try:
                await fleet.refresh_purges()
            except Exception as exc:  # a bad value in Redis must not end the loop
                log.warning("reading the fleet's purges failed: %s", exc)

    # -- sizes and closing ---------------------------------------------------------------------

    def sizes(self) -> list[tuple[str, int, int]]:
        """(layer, entries, bytes) of this node's layers. Blocking: the disk cache counts rows."""
        entries, volume = self.disk.stats()
        return [("memory", len(self.memory), self.memory.size), ("disk", entries, volume)]

    async def close(self) -> None:
        if self._watching is not None:
            self._watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watching
        # What was rendered is kept, but a stuck disk never hangs a stop.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self.flush()
        self._threads.shutdown(wait=False, cancel_futures=True)
        self.disk.close()
        if self.fleet is not None:
            await self.fleet.close()

    def _count(self, layer: str, found: Entry | None) -> None:
        if self.metrics is not None:
            self.metrics.lookup(layer, found is not None)
