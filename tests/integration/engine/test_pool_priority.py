"""The pool lends to live requests first: background work (a Ticket) gets a page only when no
live request waits and one is idle beyond the reserve; a promoted ticket borrows as a live
request. Real Chromium pages."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from ogshot.engine.pool import BACKGROUND_SHARE, LIVE_ACTIVE, LIVE_QUIET, Pool, Slot, Ticket
from ogshot.pipeline.renderer import Renderer
from tests.support.helpers import make_settings


async def _borrow(renderer: Renderer, order: list[str], name: str, ticket: Ticket | None) -> Slot:
    async with renderer.pool.lease(ticket=ticket) as slot:
        order.append(name)
        await asyncio.sleep(0.05)
        return slot


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_a_live_request_that_came_later_gets_the_page_before_background_work(
    tmp_path: Path,
) -> None:
    async def scenario() -> list[str]:
        async with Renderer(make_settings(tmp_path, pool_size=1)) as renderer:
            order: list[str] = []
            assert renderer.pool.reserve == 0  # a single page is lent to background work too
            async with renderer.pool.lease():  # the only page, busy
                background = asyncio.ensure_future(_borrow(renderer, order, "warm", Ticket()))
                await _settle()
                live = asyncio.ensure_future(_borrow(renderer, order, "live", None))
                await _settle()
                stats = renderer.pool.stats()
                assert (stats["queued"], stats["background_queued"]) == (1, 1)
            await asyncio.gather(background, live)
            return order

    assert asyncio.run(scenario()) == ["live", "warm"]


def test_background_work_leaves_one_page_idle_for_live_requests(tmp_path: Path) -> None:
    async def hold(pool: Pool, got: asyncio.Event, done: asyncio.Event) -> None:
        async with pool.lease(ticket=Ticket()):
            got.set()
            await done.wait()

    async def scenario() -> None:
        async with Renderer(make_settings(tmp_path, pool_size=2)) as renderer:
            pool = renderer.pool
            assert pool.reserve == 1
            await asyncio.wait_for(pool.spare(), 10)  # two idle pages: one to spare
            first_got, second_got, done = asyncio.Event(), asyncio.Event(), asyncio.Event()
            first = asyncio.ensure_future(hold(pool, first_got, done))
            await asyncio.wait_for(first_got.wait(), 10)
            assert pool.stats()["idle"] == 1
            second = asyncio.ensure_future(hold(pool, second_got, done))
            spare = asyncio.ensure_future(pool.spare())
            await _settle()
            assert not second_got.is_set()  # the last idle page is kept for live requests
            assert not spare.done()
            async with pool.lease():  # a live request takes it at once
                assert pool.stats()["idle"] == 0
            await _settle()
            assert not second_got.is_set()  # one idle page again: still the reserve
            done.set()  # the first background lease ends: two idle, one for the second
            await asyncio.wait_for(second_got.wait(), 10)
            await asyncio.gather(first, second)
            await asyncio.wait_for(spare, 10)

    asyncio.run(scenario())


def test_a_promoted_ticket_joins_the_live_line(tmp_path: Path) -> None:
    async def scenario() -> list[str]:
        async with Renderer(make_settings(tmp_path, pool_size=1)) as renderer:
            order: list[str] = []
            async with renderer.pool.lease():
                ticket = Ticket()
                warm = asyncio.ensure_future(_borrow(renderer, order, "warm", ticket))
                await _settle()
                ticket.promote()  # a live request now waits for this render
                later = asyncio.ensure_future(_borrow(renderer, order, "live", None))
                await _settle()
                assert renderer.pool.stats()["queued"] == 2
            await asyncio.gather(warm, later)
            return order

    assert asyncio.run(scenario()) == ["warm", "live"]


def test_background_work_waits_until_live_work_has_been_quiet(tmp_path: Path) -> None:
    """Two idle pages, one beyond the reserve: background work would get it, but not while live
    work runs (a live render's encode holds ``pool.live()`` after its page is back), and only
    LIVE_QUIET seconds after the last live work ended."""

    async def scenario() -> None:
        async with Renderer(make_settings(tmp_path, pool_size=2)) as renderer:
            pool = renderer.pool
            await asyncio.wait_for(pool.spare(), 10)  # two idle pages: one to spare
            got = asyncio.Event()
            got_at: list[float] = []

            async def background() -> None:
                async with pool.lease(ticket=Ticket()):
                    got_at.append(time.monotonic())
                    got.set()

            with pool.live():
                warm = asyncio.ensure_future(background())
                await _settle()
                stats = pool.stats()
                # It is waiting, with two idle pages that it would otherwise have been lent.
                assert (stats["idle"], stats["background_queued"]) == (2, 1)
                await asyncio.sleep(LIVE_QUIET * 2)
                assert not got.is_set()
                ended = time.monotonic()
            await asyncio.wait_for(got.wait(), 10)
            await warm
            assert got_at[0] - ended >= LIVE_QUIET * 0.9

    asyncio.run(scenario())


def test_while_live_traffic_flows_background_work_takes_only_its_share_of_the_time(
    tmp_path: Path,
) -> None:
    """After a background render of d seconds, the next starts d x (1 / BACKGROUND_SHARE - 1)
    later while live work keeps coming; without live traffic they run back to back."""

    async def scenario() -> None:
        async with Renderer(make_settings(tmp_path, pool_size=2)) as renderer:
            pool = renderer.pool
            await asyncio.wait_for(pool.spare(), 10)

            async def render(hold: float) -> tuple[float, float]:
                """A background render holding its page ``hold`` s: (got a page, ended)."""
                ticket = Ticket()
                with pool.background(ticket):
                    async with pool.lease(ticket=ticket):
                        got = time.monotonic()
                        await asyncio.sleep(hold)
                return got, time.monotonic()

            # No live traffic: back to back.
            _, first_end = await render(0.1)
            second_got, _ = await render(0.0)
            assert second_got - first_end < 0.05

            # Live traffic flows: live work every 0.1 s while it runs.
            live_ended: list[float] = []

            async def traffic(stop: asyncio.Event) -> None:
                while not stop.is_set():
                    with pool.live():
                        await asyncio.sleep(0.01)
                    live_ended.append(time.monotonic())
                    await asyncio.sleep(0.1)

            stop = asyncio.Event()
            flowing = asyncio.ensure_future(traffic(stop))
            await asyncio.sleep(0.05)
            started, ended = await render(0.1)
            got, _ = await render(0.0)
            stop.set()
            await flowing
            pause = (ended - started) * (1 / BACKGROUND_SHARE - 1)
            assert got - ended >= pause * 0.95, (got - ended, pause)

            # Live traffic stops just after a background render that would put the next off by
            # 2.7 s: the pause ends LIVE_ACTIVE after the last live work.
            stop = asyncio.Event()
            flowing = asyncio.ensure_future(traffic(stop))
            await asyncio.sleep(0.05)
            started, ended = await render(0.3)
            stop.set()
            await flowing
            got, _ = await render(0.0)
            assert (ended - started) * (1 / BACKGROUND_SHARE - 1) > 2.5
            assert LIVE_ACTIVE * 0.95 <= got - live_ended[-1] < LIVE_ACTIVE + 0.5

    asyncio.run(scenario())
