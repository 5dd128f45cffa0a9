"""engine/pool.py on a real Chromium: pages lent one at a time, a bounded queue that answers
Overloaded at once when full, a broken page replaced, a failed page's work tried once more."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ogshot.core.errors import BrowserError, Overloaded
from ogshot.engine.assets import Assets
from ogshot.engine.page_requests import Router
from ogshot.engine.pool import Pool, Slot
from tests.support.helpers import make_settings


def pool_of(tmp_path: Path, **overrides: object) -> Pool:
    settings = make_settings(tmp_path, **overrides)
    return Pool(settings, Router(Assets(settings.static_dir)))


def test_pages_are_lent_one_at_a_time_and_the_queue_is_bounded(tmp_path: Path) -> None:
    async def scenario() -> None:
        pool = pool_of(tmp_path, pool_size=1, queue_size=1, queue_timeout=5.0)
        await pool.start()
        try:
            assert pool.stats()["idle"] == 1
            order: list[str] = []
            holding, release = asyncio.Event(), asyncio.Event()

            async def hold() -> None:
                async with pool.lease() as slot:
                    order.append(f"first {slot.id}")
                    holding.set()
                    await release.wait()

            first = asyncio.ensure_future(hold())
            await holding.wait()
            assert pool.stats()["busy"] == 1

            async def wait_for_page() -> None:
                async with pool.lease() as slot:
                    order.append(f"second {slot.id}")

            second = asyncio.ensure_future(wait_for_page())
            await asyncio.sleep(0)  # it runs up to its wait for a page
            assert pool.stats()["queued"] == 1
            with pytest.raises(Overloaded, match="1 requests are waiting"):  # the queue is full
                async with pool.lease():
                    pass
            assert pool.stats()["rejected"] == 1
            release.set()
            await asyncio.gather(first, second)
            assert order == ["first 1", "second 1"]  # the same page, handed over in turn
            assert pool.stats()["renders"] == 2
        finally:
            await pool.close()

    asyncio.run(scenario())


def test_a_wait_longer_than_the_queue_timeout_is_overloaded(tmp_path: Path) -> None:
    async def scenario() -> None:
        pool = pool_of(tmp_path, pool_size=1, queue_timeout=0.3)
        await pool.start()
        try:
            async with pool.lease():
                with pytest.raises(Overloaded, match=r"no page became free within 0\.3 s"):
                    async with pool.lease():
                        pass
        finally:
            await pool.close()

    asyncio.run(scenario())


def test_a_page_that_raised_is_replaced_and_browser_errors_are_tried_once_more(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        pool = pool_of(tmp_path, pool_size=1)
        await pool.start()
        try:
            with pytest.raises(RuntimeError):
                async with pool.lease() as slot:
                    broken = slot.id
                    raise RuntimeError("the render failed")
            async with pool.lease() as slot:  # waits for the replacement
                assert slot.id != broken
                replacement = slot.id
            assert pool.stats()["pages_replaced"] == 1

            tries: list[int] = []

            async def flaky(slot: Slot, seconds_left: float) -> str:
                tries.append(slot.id)
                if len(tries) == 1:
                    raise BrowserError("the page crashed")
                state: str = await slot.page.evaluate("() => document.readyState")
                return state

            assert await pool.run(flaky, time_limit=10.0) == "complete"
            assert tries[0] == replacement and tries[1] != replacement  # on a fresh page
        finally:
            await pool.close()

    asyncio.run(scenario())
