"""One real warm page from a real Pool, for the engine's tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from ogshot.engine.assets import Assets
from ogshot.engine.page_requests import Router
from ogshot.engine.pool import Pool, Slot
from tests.support.helpers import make_settings

T = TypeVar("T")


def on_a_page(tmp_path: Path, work: Callable[[Slot], Awaitable[T]], **overrides: Any) -> T:
    async def scenario() -> T:
        settings = make_settings(tmp_path, **{"pool_size": 1, **overrides})
        pool = Pool(settings, Router(Assets(settings.static_dir)))
        await pool.start()
        try:
            async with pool.lease() as slot:
                return await work(slot)
        finally:
            await pool.close()

    return asyncio.run(scenario())
