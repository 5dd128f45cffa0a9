"""The file watcher behind /preview's live reload: both backends, on real files."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ogshot.watch import Watcher


@pytest.mark.parametrize("polling", [False, True], ids=["watchfiles", "polling"])
def test_a_saved_file_bumps_the_version_and_names_the_file(tmp_path: Path, polling: bool) -> None:
    templates, static = tmp_path / "html_templates", tmp_path / "static"
    (static / "css").mkdir(parents=True)
    templates.mkdir()
    (templates / "card.html").write_text("<h1>one</h1>")

    async def scenario() -> None:
        async with Watcher([templates, static], polling=polling) as watcher:
            assert watcher.backend == ("polling" if polling else "watchfiles")
            await asyncio.sleep(0.3)  # let the backend take its first look
            assert await watcher.wait(0, within=0.3) == 0  # nothing changed: a timeout
            (templates / "card.html").write_text("<h1>two</h1>")
            assert await watcher.wait(0, within=10) >= 1
            assert "html_templates/card.html" in watcher.changed
            await asyncio.sleep(0.3)  # let the backend settle the first batch
            seen = watcher.version
            (static / "css" / "site.css").write_text("body { color: red }")
            assert await watcher.wait(seen, within=10) > seen
            assert "static/css/site.css" in watcher.changed

    asyncio.run(asyncio.wait_for(scenario(), timeout=30))


def test_many_waiters_are_all_woken(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Watcher([tmp_path], polling=True) as watcher:
            await asyncio.sleep(0.3)
            waiters = [asyncio.create_task(watcher.wait(0, within=10)) for _ in range(5)]
            await asyncio.sleep(0.05)
            (tmp_path / "new.html").write_text("x")
            assert await asyncio.gather(*waiters) == [1] * 5

    asyncio.run(asyncio.wait_for(scenario(), timeout=30))


def test_missing_folders_fall_back_to_polling_and_close_cleanly(tmp_path: Path) -> None:
    async def scenario() -> None:
        watcher = Watcher([tmp_path / "absent"])
        await watcher.start()
        await asyncio.sleep(0.2)
        assert watcher.backend == "polling"
        await watcher.close()
        await watcher.close()  # twice is harmless

    asyncio.run(asyncio.wait_for(scenario(), timeout=30))
