"""The Redis adapter against a real redis-server: shared images, one render per key, purges, and a
Redis that dies and comes back."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ogshot.cache.disk import Entry
from ogshot.cache.layers import Layers
from ogshot.cache.redis import ALONE, Fleet, Lease
from ogshot.core.settings import Settings
from tests.support.services import RedisServer


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


def fleet(server: RedisServer, **overrides: float) -> Fleet:
    options: dict[str, float] = {"keep": 60, "lock_ttl": 5.0, "timeout": 0.5, **overrides}
    return Fleet(
        server.url,
        keep=int(options["keep"]),
        lock_ttl=options["lock_ttl"],
        timeout=options["timeout"],
    )


def test_an_image_stored_by_one_node_is_read_by_another(redis_server: RedisServer) -> None:
    async def scenario() -> None:
        a, b = fleet(redis_server, keep=120), fleet(redis_server)
        entry = Entry(body=b"\x89PNG\r\n\x1a\nbytes\n\x00more", etag="e" * 32, stored_at=1234.5)
        await a.set("k-shared", entry)
        assert await b.get("k-shared") == entry
        ttl = await b.redis.ttl("ogshot:img:k-shared")
        assert 100 < ttl <= 120
        assert await b.get("k-absent") is None
        await a.close()
        await b.close()

    asyncio.run(scenario())


def test_one_node_renders_the_others_wait_for_its_image(redis_server: RedisServer) -> None:
    async def scenario() -> None:
        a, b = fleet(redis_server), fleet(redis_server)
        held = await a.lock("k-flight")
        assert held is not None and held is not ALONE
        assert await b.lock("k-flight") is None  # taken

        async def winner() -> None:
            await asyncio.sleep(0.2)
            await a.set("k-flight", Entry(b"body", "t" * 32, time.time()))
            await a.unlock(held)

        waiting = asyncio.ensure_future(b.wait("k-flight", time.monotonic() + 5))
        await winner()
        found = await waiting
        assert found is not None and found.body == b"body"
        again = await b.lock("k-flight")  # released: free for the next render
        assert again is not None
        await b.unlock(again)
        await a.close()
        await b.close()

    asyncio.run(scenario())


def test_a_lock_whose_holder_vanished_expires_and_waiters_render(
    redis_server: RedisServer,
) -> None:
    async def scenario() -> None:
        dead, b = fleet(redis_server, lock_ttl=0.3), fleet(redis_server)
        lease = await dead.lock("k-dead")
        assert isinstance(lease, Lease)
        lease.renewing.cancel()  # its node "died": nobody renews or releases it
        started = time.monotonic()
        assert await b.wait("k-dead", started + 5) is None
        assert time.monotonic() - started < 2  # gave up when the lock expired, not at the deadline
        mine = await b.lock("k-dead")
        assert mine is not None and mine is not ALONE
        await b.unlock(mine)
        await dead.close()
        await b.close()

    asyncio.run(scenario())


def test_a_lease_is_renewed_while_its_holder_lives(redis_server: RedisServer) -> None:
    async def scenario() -> None:
        a, b = fleet(redis_server, lock_ttl=0.3), fleet(redis_server)
        lease = await a.lock("k-lease")
        assert isinstance(lease, Lease)
        await asyncio.sleep(1.2)  # four lease lengths: only renewals keep it
        assert await b.lock("k-lease") is None
        assert 0 < await b.redis.pttl("ogshot:lock:k-lease") <= 300
        await a.unlock(lease)
        assert lease.renewing.done()
        assert await b.redis.exists("ogshot:lock:k-lease") == 0  # released at once
        mine = await b.lock("k-lease")
        assert isinstance(mine, Lease)
        await b.unlock(mine)
        await a.close()
        await b.close()

    asyncio.run(scenario())


def test_a_restart_is_one_outage_for_every_pooled_connection(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Connections broken by a restart are retried on fresh ones when next used: no call fails
    after the restart, though eight connections of the pool were broken by it."""
    caplog.set_level(logging.WARNING, logger="ogshot.fleet")
    server = RedisServer(tmp_path / "redis").start()
    try:

        async def scenario() -> None:
            node = fleet(server)
            await node.set("k", Entry(b"v", "e" * 32, time.time()))
            found = await asyncio.gather(*(node.get("k") for _ in range(8)))
            assert all(f is not None for f in found)
            assert len(node.redis.connection_pool._available_connections) == 8
            server.stop()
            server.start()  # same port, empty: every pooled connection is broken
            for width in range(1, 9):  # each width reaches connections not used since
                assert (
                    await asyncio.gather(*(node.get("k") for _ in range(width))) == [None] * width
                )
            assert node.errors == 0 and node.healthy
            await node.close()

        asyncio.run(scenario())
    finally:
        server.stop()
    assert not [r.getMessage() for r in caplog.records]


def test_purge_removes_keys_for_every_node_and_bumps_the_generation(
    redis_server: RedisServer,
) -> None:
    async def scenario() -> None:
        a, b = fleet(redis_server), fleet(redis_server)
        before = await b.generation()
        assert before is not None
        made = time.time()
        for key in ("p1", "p2", "p3"):
            await a.set(key, Entry(key.encode(), "x" * 32, made))
        generation = await a.purge(["p1", "p2"])
        assert generation == before + 1
        assert await b.generation() == generation
        assert await b.get("p1") is None and await b.get("p2") is None
        assert (await b.get("p3")) is not None
        # What b's copies are checked against: when each key was purged.
        state = await b.refresh_purges()
        assert state.generation == generation and state.keys_at > made
        purged_at = await b.purged_at("p1")
        assert purged_at is not None and purged_at >= state.keys_at - 0.001
        assert await b.purged_at("p3") == 0.0
        await a.close()
        await b.close()

    asyncio.run(scenario())


def test_purge_by_template_deletes_its_indexed_images_only(redis_server: RedisServer) -> None:
    async def scenario() -> None:
        a, b = fleet(redis_server, keep=120), fleet(redis_server)
        made = time.time()
        await a.set("t1", Entry(b"1", "x" * 32, made), template="card")
        await a.set("t2", Entry(b"2", "x" * 32, made), template="card")
        await a.set("t3", Entry(b"3", "x" * 32, made), template="other")
        assert 100 < await a.redis.ttl("ogshot:tpl:card") <= 120  # the index expires too
        generation, deleted = await b.purge_template("card")
        assert deleted == 2
        assert await a.get("t1") is None and await a.get("t2") is None
        assert await a.get("t3") is not None
        state = await a.refresh_purges()
        assert state.generation == generation
        assert state.templates["card"] > made and "other" not in state.templates
        await a.close()
        await b.close()

    asyncio.run(scenario())


def test_redis_killed_then_restarted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="ogshot.fleet")
    server = RedisServer(tmp_path / "redis").start()
    try:

        async def scenario() -> None:
            node = fleet(server, timeout=0.3)
            node.RETRY_AFTER = 0.2
            await node.set("k", Entry(b"v", "e" * 32, time.time()))
            assert (await node.get("k")) is not None and node.healthy

            server.stop()
            for _ in range(5):  # every call answers at once, as a miss
                started = time.monotonic()
                assert await node.get("k") is None
                assert time.monotonic() - started < 1.0
                assert await node.lock("k") is ALONE  # render alone
                await asyncio.sleep(0.05)
            assert not node.healthy
            assert await node.generation() is None
            assert await node.purged_at("k") is None  # unknown, not "never purged"
            with pytest.raises(Exception):  # noqa: B017 - a purge must not look done
                await node.purge(["k"])

            server.start()  # same port, empty
            for _ in range(100):  # redis-py reconnects by itself
                if await node.ping():
                    break
                await asyncio.sleep(0.1)  # polling a server, not waiting for an event
            assert node.healthy
            await node.set("k2", Entry(b"v2", "e" * 32, time.time()))
            found = await node.get("k2")
            assert found is not None and found.body == b"v2"
            await node.close()

        asyncio.run(scenario())
    finally:
        server.stop()
    downs = [r for r in caplog.records if "unavailable" in r.getMessage()]
    backs = [r for r in caplog.records if "is back after" in r.getMessage()]
    assert len(downs) == 1 and len(backs) == 1, [r.getMessage() for r in caplog.records]


def test_copies_on_another_node_die_with_a_purge(redis_server: RedisServer, tmp_path: Path) -> None:
    """Node b holds copies (memory and disk) of what node a made; a's purges reach them."""

    async def scenario() -> None:
        a = Layers(Settings(cache_dir=tmp_path / "a"), fleet=fleet(redis_server))
        b = Layers(Settings(cache_dir=tmp_path / "b"), fleet=fleet(redis_server))
        await a.start()
        await b.start()
        old = Entry(b"old image", "o" * 32, round(time.time(), 3))  # as the layers keep it
        for key, template in (("n1", "tpl-a"), ("n2", "tpl-a"), ("n3", "tpl-b")):
            await a.put(key, old, template=template)
            assert await b.get(key, template=template) == old  # from Redis, copied nearer
        await b.flush()  # the copy's disk write is not waited for
        assert b.disk.get("n1") == old and b.memory.get("n1") == old

        async def learnt(layers: Layers, generation: int | None) -> None:
            assert generation is not None and layers.fleet is not None
            for _ in range(100):  # b reads the purge record about once a second
                if layers.fleet.purges.generation >= generation:
                    return
                await asyncio.sleep(0.05)
            raise AssertionError(f"generation {generation} not seen")

        await learnt(b, await a.purge(["n1"]))
        assert await b.get("n1", template="tpl-a") is None
        assert b.disk.get("n1") is None and b.memory.get("n1") is None  # removed, not skipped
        assert await b.get("n2", template="tpl-a") == old  # checked against Redis: not purged

        generation, deleted = await a.purge_template("tpl-a")
        assert deleted == 1  # n2 (n1 was purged already)
        await learnt(b, generation)
        assert await b.get("n2", template="tpl-a") is None
        assert await b.get("n3", template="tpl-b") == old

        new = Entry(b"new image", "n" * 32, round(time.time(), 3))  # made after the purges
        await a.put("n2", new, template="tpl-a")
        assert await b.get("n2", template="tpl-a") == new
        await a.close()
        await b.close()

    asyncio.run(scenario())
