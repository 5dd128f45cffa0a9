"""Three real ``ogshot serve`` nodes, each with its own disk cache, sharing one real redis-server:
shared hits, one render fleet-wide for concurrent identical misses, purges that reach every node,
and Redis killed mid-load then restarted."""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from ogshot.bench.servers import running
from tests.support.helpers import make_settings
from tests.support.procs import Server, serve_env, wait_for
from tests.support.services import RedisServer

TOKEN = "fleet-admin-token"


@pytest.fixture(scope="module")
def redis(module_dir: Path) -> Iterator[RedisServer]:
    with RedisServer(module_dir / "redis") as server:
        yield server


@pytest.fixture(scope="module")
def nodes(module_dir: Path, redis: RedisServer) -> Iterator[tuple[Server, ...]]:
    make_settings(module_dir)  # the templates and static files the nodes serve
    servers = tuple(
        Server(
            env=serve_env(
                module_dir,
                OGSHOT_CACHE_DIR=str(module_dir / f"cache-{name}"),
                OGSHOT_REDIS_URL=redis.url,
                OGSHOT_ADMIN_TOKEN=TOKEN,
            ),
            cwd=module_dir,
        )
        for name in "abc"
    )
    with running(*servers, timeout=120):
        yield servers


def counter(node: Server, name: str, **labels: str) -> float:
    """The sum of a counter's samples on a node's /metrics whose labels include ``labels``."""
    text = node.get("/metrics").text
    total = 0.0
    for match in re.finditer(rf"^{name}_total(?:{{(.*?)}})? (\S+)$", text, re.MULTILINE):
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match.group(2))
    return total


def renders(node: Server) -> float:
    return counter(node, "ogshot_images_rendered")


def generation_seen(node: Server) -> int:
    """The purge generation a node has read from Redis."""
    seen: int = node.get("/readyz").json()["redis"]["purge_generation"]
    return seen


def caught_up(node: Server, generation: int) -> Callable[[], bool]:
    return lambda: generation_seen(node) >= generation


def redis_healthy(node: Server, healthy: bool) -> Callable[[], bool]:
    return lambda: node.get("/readyz").json()["redis"]["healthy"] is healthy


def image(title: str) -> str:
    return "/og/minimal.png?title=" + quote(title)


def test_an_image_rendered_on_one_node_is_a_hit_on_the_others(nodes: tuple[Server, ...]) -> None:
    a, b, c = nodes
    before = [renders(n) for n in nodes]
    first = a.get(image("shared"))
    assert first.status_code == 200 and first.headers["x-ogshot-cache"] == "miss"
    for node in (b, c):
        found = node.get(image("shared"))
        assert found.headers["x-ogshot-cache"] == "hit"
        assert found.content == first.content and found.headers["etag"] == first.headers["etag"]
        assert counter(node, "ogshot_cache_lookups", layer="redis", result="hit") >= 1
    assert [renders(n) for n in nodes] == [before[0] + 1, before[1], before[2]]
    again = b.get(image("shared"))  # now from b's own disk or memory
    assert again.headers["x-ogshot-cache"] == "hit"
    assert renders(b) == before[1]


def test_concurrent_identical_misses_on_three_nodes_render_once(
    nodes: tuple[Server, ...],
) -> None:
    before = sum(renders(n) for n in nodes)
    saved_before = sum(counter(n, "ogshot_singleflight_saved", scope="fleet") for n in nodes)
    url = image("twenty at once")
    start = threading.Barrier(20)

    def fetch(i: int) -> httpx.Response:
        start.wait()
        return nodes[i % 3].get(url)

    with ThreadPoolExecutor(20) as threads:
        answers = list(threads.map(fetch, range(20)))
    assert [r.status_code for r in answers] == [200] * 20
    assert len({r.content for r in answers}) == 1
    assert sum(renders(n) for n in nodes) == before + 1
    # The nodes that lost the race took the winner's image from Redis (unless they came late
    # enough to find it there as a plain hit); either way none of them rendered.
    saved = sum(counter(n, "ogshot_singleflight_saved", scope="fleet") for n in nodes)
    late = sum(r.headers["x-ogshot-cache"] == "hit" for r in answers)
    assert saved - saved_before >= 1 or late > 0


def test_a_lock_left_by_a_dead_node_expires_and_the_waiter_renders(
    nodes: tuple[Server, ...], redis: RedisServer
) -> None:
    import redis as redis_py

    a, b, c = nodes
    url = image("the node that held this died")
    # The key, as the server computes it (purging an image that is not there changes nothing).
    answer = httpx.post(
        f"{a.base}/admin/purge",
        json={"url": url},
        headers={"authorization": f"Bearer {TOKEN}"},
        timeout=30,
    )
    (key,) = answer.json()["keys"]
    client = redis_py.Redis.from_url(redis.url)
    try:  # a node took the lock and died: nobody releases it, it expires
        assert client.set(f"ogshot:lock:{key}", "dead-node-token", px=1500, nx=True)
        before = renders(b)
        found = b.get(url)
        assert found.status_code == 200 and found.headers["x-ogshot-cache"] == "miss"
        assert client.pttl(f"ogshot:lock:{key}") < 0  # b answered after the lock expired
        assert renders(b) == before + 1  # and rendered itself
        assert c.get(url).headers["x-ogshot-cache"] == "hit"
    finally:
        client.close()


def test_a_purge_on_one_node_reaches_every_node(nodes: tuple[Server, ...]) -> None:
    a, b, c = nodes
    url = image("purge everywhere")
    a.get(url)
    for node in (b, c):  # copies in b's and c's own disk and memory
        assert node.get(url).headers["x-ogshot-cache"] == "hit"
        assert node.get(url).headers["x-ogshot-cache"] == "hit"
    before = [renders(n) for n in nodes]
    response = httpx.post(
        f"{a.base}/admin/purge",
        json={"url": url},
        headers={"authorization": f"Bearer {TOKEN}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    generation = response.json()["generation"]
    for node in (b, c):  # each learns of it within about a second
        assert wait_for(
            caught_up(node, generation),
            timeout=10,
        )
    assert b.get(url).headers["x-ogshot-cache"] == "miss"
    assert renders(b) == before[1] + 1  # rendered again, its old copies refused
    assert c.get(url).headers["x-ogshot-cache"] == "hit"  # b's new render, through Redis
    assert a.get(url).headers["x-ogshot-cache"] == "hit"
    assert [renders(n) for n in (a, c)] == [before[0], before[2]]


def test_ogshot_purge_of_a_template_reaches_every_node(nodes: tuple[Server, ...]) -> None:
    a, b, c = nodes
    quotes = [f"/og/quote.png?quote={quote(f'cli purge {i}')}" for i in range(2)]
    kept = image("not a quote")
    for url in [*quotes, kept]:
        a.get(url)
        assert b.get(url).headers["x-ogshot-cache"] == "hit"  # copied to b's disk and memory
    env = {**os.environ, "OGSHOT_ADMIN_TOKEN": TOKEN}
    env.pop("OGSHOT_CONFIG", None)
    done = subprocess.run(
        [sys.executable, "-m", "ogshot", "purge", "quote", "--server", a.base],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["template"] == "quote" and answer["deleted"] == 2
    for node in (b, c):
        assert wait_for(
            caught_up(node, answer["generation"]),
            timeout=10,
        )
    assert b.get(quotes[0]).headers["x-ogshot-cache"] == "miss"
    assert c.get(quotes[1]).headers["x-ogshot-cache"] == "miss"
    assert c.get(quotes[0]).headers["x-ogshot-cache"] == "hit"  # b's new render
    assert b.get(kept).headers["x-ogshot-cache"] == "hit"


def test_redis_killed_mid_load_then_restarted(
    nodes: tuple[Server, ...], redis: RedisServer
) -> None:
    a, b, c = nodes
    # From here: a Redis call that timed out earlier on a loaded machine (at startup, say) is
    # another outage, logged as one; this test counts the outage it causes.
    seen = [len(node.output()) for node in nodes]
    for node in nodes:
        assert wait_for(redis_healthy(node, True))
    statuses: list[int] = []
    stop = threading.Event()

    def load(n: int) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            url = image(f"load {n} {i % 4}")  # misses, then hits
            statuses.append(nodes[(n + i) % 3].get(url).status_code)

    threads = [threading.Thread(target=load, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    try:
        assert wait_for(lambda: len(statuses) >= 10, timeout=60)
        redis.stop()  # SIGKILL, mid-load
        for node in nodes:  # each notices by itself, and stays ready
            assert wait_for(redis_healthy(node, False))
            assert node.get("/readyz").status_code == 200
        during = len(statuses)
        assert wait_for(lambda: len(statuses) >= during + 10, timeout=60)
        # New images while Redis is down: rendered and served by whichever node is asked.
        alone = a.get(image("while redis is down"))
        assert alone.status_code == 200 and alone.headers["x-ogshot-cache"] == "miss"
        redis.start()  # same port, empty
        for node in nodes:  # each reconnects by itself
            assert wait_for(redis_healthy(node, True))
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    assert statuses and set(statuses) == {200}, sorted(set(statuses))
    for node, start in zip(nodes, seen, strict=True):  # logged once when it went, once back
        output = node.output()[start:]
        assert len(re.findall(r"Redis at \S+ unavailable", output)) == 1, output[-3000:]
        assert len(re.findall(r"Redis at \S+ is back after", output)) == 1, output[-3000:]
    # Shared again: what a renders now is a hit on b.
    before_b = renders(b)
    assert a.get(image("after the restart")).headers["x-ogshot-cache"] == "miss"
    assert b.get(image("after the restart")).headers["x-ogshot-cache"] == "hit"
    assert renders(b) == before_b
    assert c.get("/readyz").json()["redis"]["errors"] > 0


def test_a_redis_restart_under_load_is_one_outage_per_node(
    nodes: tuple[Server, ...], redis: RedisServer
) -> None:
    """A restart breaks every pooled connection of every node. Each node logs one outage and one
    recovery, not one more each time a connection broken by the restart is next used."""
    seen = [len(node.output()) for node in nodes]
    for node in nodes:
        assert wait_for(redis_healthy(node, True))
    statuses: list[int] = []
    problems: list[str] = []

    def purge_nothing(node: Server) -> int:
        """A purge by key: cheap, and one pooled Redis connection while it runs."""
        key = os.urandom(32).hex()
        answer = httpx.post(
            f"{node.base}/admin/purge",
            json={"keys": [key]},
            headers={"authorization": f"Bearer {TOKEN}"},
            timeout=30,
        )
        if answer.status_code != 200:
            problems.append(answer.text)
        return answer.status_code

    def burst(round_: int) -> None:
        """Many Redis calls at once on every node: each node's pool grows to that many
        connections, and a later burst uses connections that sat idle since."""
        calls: list[Callable[[], int]] = [
            functools.partial(purge_nothing, node) for node in nodes for _ in range(6)
        ]
        calls += [
            functools.partial(lambda n, u: n.get(u).status_code, node, image(f"restart {round_}"))
            for node in nodes
        ]
        with ThreadPoolExecutor(len(calls)) as pool:
            statuses.extend(pool.map(lambda call: call(), calls))

    burst(0)
    redis.stop()
    for node in nodes:  # each sees the outage while its pooled connections sit idle
        assert wait_for(redis_healthy(node, False))
    redis.start()  # same port, empty
    for node in nodes:
        assert wait_for(redis_healthy(node, True))
    for round_ in range(1, 4):  # past RETRY_AFTER (2 s) between bursts: each could be an outage
        burst(round_)
        time.sleep(2.5)
    assert statuses and set(statuses) == {200}, problems[:3]
    for node, start in zip(nodes, seen, strict=True):
        output = node.output()[start:]
        assert len(re.findall(r"Redis at \S+ unavailable", output)) == 1, output[-3000:]
        assert len(re.findall(r"Redis at \S+ is back after", output)) == 1, output[-3000:]
