"""The hit path never waits for the disk on the event loop.

A disk read that stalls (a slow or hung volume, a locked file) must hold up only the request that
needs it: hits from memory and /healthz are answered meanwhile.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from starlette.testclient import TestClient

from ogshot.app import create_app
from ogshot.cache.disk import Entry
from ogshot.pipeline.renderer import Renderer
from tests.support.helpers import make_settings, renders
from tests.support.procs import wait_for


def in_thread(call: Callable[[], httpx.Response]) -> tuple[threading.Thread, list[httpx.Response]]:
    answers: list[httpx.Response] = []
    thread = threading.Thread(target=lambda: answers.append(call()), daemon=True)
    thread.start()
    return thread, answers


def open_for_writing_once_read(fifo: Path, within: float = 10.0) -> int:
    """Open the FIFO's write end as soon as a reader is waiting on it (the positive signal that
    the disk read has started and is blocked)."""
    deadline = time.monotonic() + within
    while True:
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO or time.monotonic() > deadline:  # ENXIO: no reader yet
                raise
            time.sleep(0.01)


def test_a_hit_is_answered_while_a_disk_cache_read_is_stuck(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, pool_size=1)
    with TestClient(create_app(settings)) as client:
        renderer: Renderer = client.app.state.renderer  # type: ignore[attr-defined]
        first = client.get("/og/minimal.png", params={"title": "hot"})
        assert first.headers["x-ogshot-cache"] == "miss"  # rendered: now in memory and on disk

        # An image that is only on disk, in a file of its own (diskcache keeps values over 32 KiB
        # in files); the file is swapped for a FIFO, so reading it blocks like a stalled disk.
        cold = renderer.prepare("minimal", {"title": "cold"}, "png")
        payload = os.urandom(100_000)
        assert renderer.cache.set(cold.key, Entry(payload, "cold-etag", time.time()))
        with contextlib.closing(sqlite3.connect(renderer.cache.database)) as db:
            (filename,) = db.execute(
                "SELECT filename FROM Cache WHERE key = ?", (cold.key,)
            ).fetchone()
        value_file = renderer.cache.directory / filename
        value_file.unlink()
        os.mkfifo(value_file)

        stuck, stuck_answer = in_thread(lambda: client.get("/og/minimal.png?title=cold"))
        writer = open_for_writing_once_read(value_file)
        try:
            hit, hit_answer = in_thread(lambda: client.get("/og/minimal.png?title=hot"))
            health, health_answer = in_thread(lambda: client.get("/healthz"))
            hit.join(10)
            health.join(10)
            assert stuck.is_alive()  # the disk read is still waiting...
            assert [r.status_code for r in health_answer] == [200]  # ...and these were answered
            assert [(r.status_code, r.headers["x-ogshot-cache"]) for r in hit_answer] == [
                (200, "hit")
            ]
            assert hit_answer[0].content == first.content
        finally:  # the disk comes back
            os.set_blocking(writer, True)
            rest = memoryview(payload)
            while rest:
                rest = rest[os.write(writer, rest) :]
            os.close(writer)
            stuck.join(10)
        assert [(r.status_code, r.headers["x-ogshot-cache"]) for r in stuck_answer] == [
            (200, "hit")
        ]
        assert stuck_answer[0].content == payload
        assert stuck_answer[0].headers["etag"] == '"cold-etag"'


def test_a_miss_is_answered_before_its_disk_write_lands(tmp_path: Path) -> None:
    """The image is sent while the disk cache takes it; meanwhile this worker answers from the
    write itself, and the write lands once the disk is free."""
    # No memory layer: a repeat can only be answered by the disk or by the write under way.
    settings = make_settings(tmp_path, pool_size=1, memory_cache_size=0)
    with TestClient(create_app(settings)) as client:
        renderer: Renderer = client.app.state.renderer  # type: ignore[attr-defined]
        assert client.get("/og/minimal.png", params={"title": "warm"}).status_code == 200
        key = renderer.prepare("minimal", {"title": "busy disk"}, "png").key
        before = renders(client)
        # Another process holds SQLite's write lock (a long write, a cull): a disk write waits
        # for it, up to the cache's 1 s busy timeout, then gives up.
        with contextlib.closing(sqlite3.connect(renderer.cache.database, timeout=5)) as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                miss = client.get("/og/minimal.png", params={"title": "busy disk"})
                again = client.get("/og/minimal.png", params={"title": "busy disk"})
                on_disk = renderer.cache.get(key)  # reads are not blocked by the write lock
            finally:
                db.rollback()
        assert (miss.status_code, miss.headers["x-ogshot-cache"]) == (200, "miss")
        assert on_disk is None  # the miss was answered before the write could land...
        assert (again.headers["x-ogshot-cache"], again.content) == ("hit", miss.content)
        assert renders(client) == before + 1  # ...and the repeat was answered from the write
        # the write lands once the disk is free
        assert wait_for(lambda: renderer.cache.get(key) is not None)
        assert renderer.cache.get(key).body == miss.content  # type: ignore[union-attr]
