"""The file watcher, ogshot's one change detector: both watchfiles backends, on real files."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Collection
from pathlib import Path

import pytest

from ogshot.templates.watch import Watcher


@pytest.mark.parametrize("polling", [False, True], ids=["inotify", "polling"])
def test_a_saved_file_bumps_the_version_and_names_the_file(tmp_path: Path, polling: bool) -> None:
    templates, static = tmp_path / "html_templates", tmp_path / "static"
    (static / "css").mkdir(parents=True)
    templates.mkdir()
    (templates / "card.html").write_text("<h1>one</h1>")
    # Saved long ago: watchfiles' polling compares modification times in whole seconds, so an
    # edit within the second of the file's creation would go unseen.
    os.utime(templates / "card.html", (1_000_000_000, 1_000_000_000))

    async def scenario() -> None:
        async with Watcher([templates, static], polling=polling) as watcher:
            assert watcher.backend == ("polling" if polling else "watchfiles")
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


def test_the_change_is_handled_before_anyone_is_woken(tmp_path: Path) -> None:
    """on_change (the catalog reading the files again) finishes before a waiter (the studio's
    live reload) hears of the change, or a browser could fetch the image from before it."""
    handled: list[Collection[str]] = []
    in_thread: list[bool] = []

    def on_change(paths: Collection[str]) -> None:
        in_thread.append(threading.current_thread() is not threading.main_thread())
        threading.Event().wait(0.3)  # a slow read of the folder
        handled.append(paths)

    async def scenario() -> None:
        async with Watcher([tmp_path], on_change=on_change) as watcher:
            waiter = asyncio.create_task(watcher.wait(0, within=10))
            (tmp_path / "card.html").write_text("x")
            assert await waiter == 1
            assert [sorted(p) for p in handled] == [[str((tmp_path / "card.html").resolve())]]
            assert in_thread == [True]

    asyncio.run(asyncio.wait_for(scenario(), timeout=30))


def test_a_failing_handler_does_not_stop_the_watch(tmp_path: Path) -> None:
    calls: list[int] = []

    def on_change(paths: Collection[str]) -> None:
        calls.append(len(calls))
        if len(calls) == 1:
            raise OSError("a folder half-written")

    async def scenario() -> None:
        async with Watcher([tmp_path], on_change=on_change) as watcher:
            (tmp_path / "a.html").write_text("x")
            assert await watcher.wait(0, within=10) == 1
            await asyncio.sleep(0.3)
            seen = watcher.version
            (tmp_path / "a.html").write_text("y")
            assert await watcher.wait(seen, within=10) > seen
            assert calls[:2] == [0, 1]

    asyncio.run(asyncio.wait_for(scenario(), timeout=30))


def test_many_waiters_are_all_woken(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Watcher([tmp_path], polling=True) as watcher:
            waiters = [asyncio.create_task(watcher.wait(0, within=10)) for _ in range(5)]
            await asyncio.sleep(0.05)
            (tmp_path / "new.html").write_text("x")
            assert await asyncio.gather(*waiters) == [1] * 5

    asyncio.run(asyncio.wait_for(scenario(), timeout=30))


def test_missing_folders_are_skipped_and_close_cleanly(tmp_path: Path) -> None:
    (tmp_path / "here").mkdir()

    async def scenario() -> None:
        watcher = Watcher([tmp_path / "absent", tmp_path / "here"])
        await watcher.start()
        (tmp_path / "here" / "a.html").write_text("x")
        assert await watcher.wait(0, within=10) == 1
        await watcher.close()
        await watcher.close()  # twice is harmless
        nothing = Watcher([tmp_path / "absent"])
        await nothing.start()
        await nothing.close()

    asyncio.run(asyncio.wait_for(scenario(), timeout=30))
