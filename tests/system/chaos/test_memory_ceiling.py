"""``OGSHOT_BROWSER_MAX_MB``: a Chromium whose processes use more memory than the ceiling is
recycled like one past ``recycle_after`` (a fresh one beside it, the old one closed once its pages
are back), and one under it is left alone."""

from __future__ import annotations

import os
from pathlib import Path

from starlette.testclient import TestClient

from ogshot.app import create_app
from ogshot.engine.pool import Pool
from tests.support.helpers import image_of, make_settings
from tests.support.procs import alive, group_members, wait_for


def pool_of(client: TestClient) -> Pool:
    pool: Pool = client.app.state.renderer.pool  # type: ignore[attr-defined]
    return pool


def render_until(client: TestClient, done: str, *, limit: int = 200) -> int:
    """Render distinct images until the /readyz pool figure ``done`` is above 0; how many."""
    for i in range(limit):
        answer = client.get("/og/minimal.png", params={"title": f"Memory {done} {i}"})
        assert answer.status_code == 200
        assert (image_of(answer.content).width, image_of(answer.content).height) == (1200, 630)
        if client.get("/readyz").json()["pool"][done] > 0:
            return i + 1
    raise AssertionError(f"{done} still 0 after {limit} renders")


def test_a_browser_over_the_ceiling_is_recycled(tmp_path: Path) -> None:
    # Any Chromium uses more than 20 MB (PSS of its browser, zygote, GPU and renderer processes).
    settings = make_settings(tmp_path, pool_size=1, browser_max_mb=20, recycle_after=0)
    with TestClient(create_app(settings)) as client:
        pool = pool_of(client)
        first = pool.browser.pid
        assert first is not None
        first_group = os.getpgid(first)
        render_until(client, "browser_memory_recycles")
        # The recycle runs beside the request that measured: a fresh Chromium starts, then counts.
        assert wait_for(lambda: client.get("/readyz").json()["pool"]["browser_recycles"] >= 1)
        stats = client.get("/readyz").json()["pool"]
        assert stats["browser_max_mb"] == 20
        assert stats["browser_memory_recycles"] >= 1 and stats["browser_recycles"] >= 1
        assert stats["browser_restarts"] == 0  # recycled, not crashed
        assert wait_for(lambda: not group_members(first_group))  # the old Chromium is gone
        current = pool.browser.pid
        assert current is not None and current != first and alive(current)
        answer = client.get("/og/minimal.png", params={"title": "On the fresh Chromium"})
        assert answer.status_code == 200


def test_a_browser_under_the_ceiling_is_left_alone(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, pool_size=1, browser_max_mb=100_000, recycle_after=0)
    with TestClient(create_app(settings)) as client:
        first = pool_of(client).browser.pid
        # Measured at least once (the signal that a check ran), and not recycled for it.
        render_until(client, "browser_memory_mb")
        stats = client.get("/readyz").json()["pool"]
        assert 20 < stats["browser_memory_mb"] < 100_000
        assert stats["browser_memory_recycles"] == 0 and stats["browser_recycles"] == 0
        assert pool_of(client).browser.pid == first
