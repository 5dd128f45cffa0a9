"""The fleet's warm queue in a real redis-server, consumed by two real ``ogshot serve`` nodes:
each item is rendered once by whichever node takes it, and the items a node took when it was
SIGKILLed are taken over by the other after the claim timeout."""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import redis as redis_py

from ogshot.bench.servers import running
from ogshot.pipeline.warm_queues import GROUP, STREAM
from tests.support.helpers import make_settings
from tests.support.procs import Server, alive, serve_env, wait_for
from tests.support.services import RedisServer

TOKEN = "warm-fleet-token"


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path / "redis") as server:
        yield server


@pytest.fixture
def nodes(tmp_path: Path, redis: RedisServer) -> Iterator[tuple[Server, Server]]:
    make_settings(tmp_path)
    a, b = (
        Server(
            env=serve_env(
                tmp_path,
                OGSHOT_CACHE_DIR=str(tmp_path / f"cache-{name}"),
                OGSHOT_REDIS_URL=redis.url,
                OGSHOT_ADMIN_TOKEN=TOKEN,
                # An item a dead node took is taken over 2 x 6 + 5 = 17 s after it was taken.
                OGSHOT_RENDER_TIMEOUT="6",
            ),
            cwd=tmp_path,
        )
        for name in "ab"
    )
    with running(a, b, timeout=120):
        yield a, b


def warm_renders(node: Server) -> float:
    text = node.get("/metrics").text
    found = re.search(r"^ogshot_warm_renders_total (\S+)$", text, re.MULTILINE)
    assert found is not None
    return float(found.group(1))


def post(node: Server, urls: list[str]) -> dict[str, object]:
    answer = httpx.post(
        f"{node.base}/admin/warm",
        json={"urls": urls},
        headers={"authorization": f"Bearer {TOKEN}"},
        timeout=60,
    )
    assert answer.status_code == 202, answer.text
    body: dict[str, object] = answer.json()
    return body


def urls(prefix: str, count: int) -> list[str]:
    return [f"/og/minimal.png?title={quote(f'{prefix} {i}')}" for i in range(count)]


def test_each_item_is_rendered_once_by_one_of_the_nodes(
    nodes: tuple[Server, Server], redis: RedisServer
) -> None:
    a, b = nodes
    targets = urls("fleet", 16)
    body = post(a, targets)
    assert body["lane"] == "fleet" and body["refused"] == []
    client = redis_py.Redis.from_url(redis.url)
    assert wait_for(lambda: warm_renders(a) + warm_renders(b) >= len(targets), timeout=180)
    assert wait_for(lambda: client.xlen(STREAM) == 0, timeout=30)
    assert warm_renders(a) + warm_renders(b) == len(targets)  # none twice
    for node in (a, b):  # what one node made is a hit on both (Redis)
        for target in targets:
            assert node.get(target).headers["x-ogshot-cache"] == "hit", (node.port, target)


def test_items_of_a_node_killed_mid_way_are_finished_by_the_other(
    nodes: tuple[Server, Server], redis: RedisServer
) -> None:
    client = redis_py.Redis.from_url(redis.url)
    targets = urls("survives a dead node", 20)
    post(nodes[0], targets)
    by_pid = {node.pid: node for node in nodes}

    def claimed() -> list[int]:
        """The pids of the nodes holding an item they took."""
        pending = client.xpending_range(STREAM, GROUP, min="-", max="+", count=100)
        return [pid for pid in (_pid(p["consumer"]) for p in pending) if pid in by_pid]

    # Mid-way: some items are made, and a node holds one it took.
    assert wait_for(lambda: sum(warm_renders(n) for n in nodes) >= 2 and bool(claimed()), 180)
    victim = by_pid[claimed()[0]]
    survivor = next(node for node in nodes if node is not victim)
    victim.graceful_exit = False
    assert victim.process is not None
    victim.process.send_signal(signal.SIGKILL)
    victim.process.wait(10)
    victim.kill()  # its Chromium too
    assert not alive(victim.pid)
    # The survivor takes over what the victim held, after the claim timeout, and finishes all.
    assert wait_for(lambda: client.xlen(STREAM) == 0, timeout=240), client.xlen(STREAM)
    assert client.xpending(STREAM, GROUP)["pending"] == 0
    missing = [t for t in targets if survivor.get(t).headers["x-ogshot-cache"] != "hit"]
    assert not missing, missing


def _pid(consumer: object) -> int:
    """The pid in a consumer's name (``host-pid-random``)."""
    name = consumer.decode() if isinstance(consumer, bytes) else str(consumer)
    return int(name.rsplit("-", 2)[-2])
