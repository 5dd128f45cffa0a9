"""A node that dies mid-render: its render lease in Redis runs out within seconds, and a node that
was waiting for the same image renders it itself. Two real ``ogshot serve`` nodes, a real
redis-server, a template that takes four seconds to be ready, and a SIGKILL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis as redis_py

from ogshot.pipeline.renderer import LEASE_SECONDS
from tests.support.helpers import image_of, make_settings
from tests.support.procs import Server, serve_env, wait_for
from tests.support.services import RedisServer

READY_AFTER = 4.0  # seconds the template's page takes to be ready
SLOW = """{#ogshot
description = "Ready four seconds after it loads."

[params.title]
type = "str"
required = true
#}
<!doctype html>
<html><body style="margin:0;background:#204080;color:#fff;font:80px sans-serif">
<p>{{ title }}</p>
<script>window.ogshotReady = new Promise((resolve) => setTimeout(resolve, 4000));</script>
</body></html>
"""


@pytest.fixture(scope="module")
def redis(module_dir: Path) -> Iterator[RedisServer]:
    with RedisServer(module_dir / "redis") as server:
        yield server


@pytest.fixture(scope="module")
def nodes(module_dir: Path, redis: RedisServer) -> Iterator[tuple[Server, Server]]:
    make_settings(module_dir)
    (module_dir / "html_templates" / "slow.html").write_text(SLOW)
    a, b = (
        Server(
            env=serve_env(
                module_dir,
                OGSHOT_CACHE_DIR=str(module_dir / f"cache-{name}"),
                OGSHOT_REDIS_URL=redis.url,
                OGSHOT_RENDER_TIMEOUT="20",  # the machine may be loaded: room for 4 s of waiting
            ),
            cwd=module_dir,
        )
        for name in "ab"
    )
    try:
        a.start(timeout=120)
        b.start(timeout=120)
        yield a, b
    finally:
        a.close()
        b.close()


def rendered(node: Server) -> float:
    text = node.get("/metrics").text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("ogshot_images_rendered_total")
    )


def test_a_waiter_takes_over_within_seconds_of_the_holder_dying(
    nodes: tuple[Server, Server], redis: RedisServer
) -> None:
    a, b = nodes
    url = "/og/slow.png?title=Held%20by%20a%20node%20that%20dies"
    client = redis_py.Redis.from_url(redis.url)
    try:
        with ThreadPoolExecutor(2) as pool:
            doomed = pool.submit(a.get, url)
            # A holds the key's lease once its render started.
            assert wait_for(lambda: bool(client.keys("ogshot:lock:*")), timeout=30)
            (lock,) = client.keys("ogshot:lock:*")
            # A lease, not a lock for a whole render deadline (20 s + queue here).
            assert 0 < client.pttl(lock) <= LEASE_SECONDS * 1000
            time.sleep(LEASE_SECONDS)  # a render past its first lease: A renewed it
            assert client.exists(lock) and 0 < client.pttl(lock) <= LEASE_SECONDS * 1000
            before = rendered(b)
            waiting = pool.submit(b.get, url)
            time.sleep(0.5)  # B finds the lease taken and waits for A's image
            assert not waiting.done()
            a.process.kill()  # type: ignore[union-attr]  # SIGKILL: no release, no renewal
            killed = time.monotonic()
            answer = waiting.result(timeout=60)
            took = time.monotonic() - killed
            with pytest.raises(Exception):  # noqa: B017 - A never answered
                doomed.result(timeout=10)
    finally:
        client.close()
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-ogshot-cache"] == "miss"
    assert (image_of(answer.content).width, image_of(answer.content).height) == (1200, 630)
    assert rendered(b) == before + 1  # B rendered it itself
    # At most one lease for A's lease to run out, then B's own 4-second render, and room for a
    # loaded machine. With the old lock (queue + render timeout + 5 s) it took over 25 s.
    assert took < LEASE_SECONDS + READY_AFTER + 6, took
