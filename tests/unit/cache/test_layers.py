"""The cache layers' disk writes: a render is answered before its write lands (see
tests/test_hit_path.py for the same seen over HTTP), and neither a purge nor a stop loses track of
a write under way. The disk is a real diskcache; another SQLite connection holding the write lock
stands in for a busy disk (another worker's write, a cull)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from ogshot.cache.disk import Entry, ImageCache
from ogshot.cache.layers import Layers
from ogshot.core.settings import Settings


def layers_at(folder: Path) -> Layers:
    # No memory layer: only the disk, or the write on its way to it, can answer.
    return Layers(Settings(cache_dir=folder, memory_cache_size=0))


@contextlib.contextmanager
def write_locked(database: Path) -> Iterator[sqlite3.Connection]:
    """Hold SQLite's write lock (reads go on: the cache runs in WAL mode)."""
    with contextlib.closing(sqlite3.connect(database, timeout=5)) as db:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        finally:
            db.rollback()


def entry(body: bytes) -> Entry:
    return Entry(body, "e" * 32, round(time.time(), 3))


def test_a_write_under_way_answers_reads_and_lands_when_the_disk_is_free(tmp_path: Path) -> None:
    async def scenario() -> None:
        layers = layers_at(tmp_path)
        await layers.put("first", entry(b"creates the database"))
        await layers.flush()
        image = entry(b"image")
        with write_locked(layers.disk.database):
            await layers.put("k", image)  # returns while the write waits for the lock
            assert layers.disk.get("k") is None
            assert await layers.get("k") == image  # from the write itself
        await layers.flush()
        assert layers.disk.get("k") == image
        await layers.close()

    asyncio.run(scenario())


def test_a_purge_waits_for_the_write_it_would_race(tmp_path: Path) -> None:
    async def scenario() -> None:
        layers = layers_at(tmp_path)
        await layers.put("first", entry(b"creates the database"))
        await layers.flush()
        with write_locked(layers.disk.database):
            await layers.put("k", entry(b"image"))
            purge = asyncio.ensure_future(layers.purge(["k"]))
            await asyncio.sleep(0)  # the purge starts while the write is still waiting
        await purge
        await layers.flush()
        assert layers.disk.get("k") is None  # the write did not land after the delete
        assert await layers.get("k") is None
        await layers.close()

    asyncio.run(scenario())


def test_a_stop_keeps_the_writes_under_way(tmp_path: Path) -> None:
    async def scenario() -> None:
        layers = layers_at(tmp_path)
        for i in range(20):
            await layers.put(f"k{i}", entry(b"image %d" % i))
        await layers.close()

    asyncio.run(scenario())
    cache = ImageCache(Settings(cache_dir=tmp_path))
    try:
        assert [cache.get(f"k{i}") is not None for i in range(20)] == [True] * 20
    finally:
        cache.close()
