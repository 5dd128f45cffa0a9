"""The page's request router and the per-page document, on a real Chromium page.

What a page asks for while it renders: its document (answered from its own ``Document``), static
files (read off the event loop, memoised by mtime and size, never outside the static folder),
404 for other URLs of the page origin, and nothing from anywhere else."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from playwright.async_api import Page, async_playwright

from ogshot.core.settings import ESSENTIAL_ARGS
from ogshot.engine.assets import Asset, Assets
from ogshot.engine.chromium import find_chromium
from ogshot.engine.page import BLANK_URL, ORIGIN, Document
from ogshot.engine.page_requests import Router

FETCH = """async (url) => {
  try {
    const response = await fetch(url);
    return [response.status, await response.text()];
  } catch (error) {
    return [0, String(error)];
  }
}"""


class RecordingAssets(Assets):
    """The real Assets, noting which thread each static read ran on."""

    def __init__(self, static_dir: Path) -> None:
        super().__init__(static_dir)
        self.threads: list[int] = []

    def static(self, url: str) -> Asset | None:
        self.threads.append(threading.get_ident())
        return super().static(url)


def on_page(assets: Assets, document: Document, test: Callable[[Page], Awaitable[None]]) -> None:
    """Run ``test`` on a Chromium page whose requests ``Router(assets)`` answers."""

    async def main() -> None:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=find_chromium(), args=list(ESSENTIAL_ARGS)
            )
            try:
                context = await browser.new_context()
                await context.route("**/*", Router(assets).for_page(document))
                page = await context.new_page()
                await page.goto(BLANK_URL)
                await test(page)
            finally:
                await browser.close()

    asyncio.run(main())


async def fetch(page: Page, url: str) -> list[Any]:
    result: list[Any] = await page.evaluate(FETCH, url)
    return result


def test_static_files_missing_files_and_other_hosts(tmp_path: Path) -> None:
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "card.css").write_text("h1 { color: red }")
    (tmp_path / "secret.txt").write_text("do not serve")
    assets = RecordingAssets(tmp_path / "static")
    seen: dict[str, list[Any]] = {}

    async def test(page: Page) -> None:
        for name, url in {
            "static": f"{ORIGIN}/static/card.css",
            "missing": f"{ORIGIN}/static/nope.css",
            "escape": f"{ORIGIN}/static/..%2Fsecret.txt",
            "origin": f"{ORIGIN}/elsewhere",
            "remote": "http://127.0.0.1:9/x.css",
        }.items():
            seen[name] = await fetch(page, url)
        seen["loop"] = [threading.get_ident()]

    on_page(assets, Document(1), test)
    assert seen["static"] == [200, "h1 { color: red }"]
    assert seen["missing"] == [404, "not found"]
    assert seen["escape"] == [404, "not found"]  # never the file outside the static folder
    assert seen["origin"] == [404, "not found"]
    assert seen["remote"][0] == 0  # refused: the request never left the browser
    # Every static read (a stat, maybe a read) ran on a worker thread, not the event loop's.
    assert len(assets.threads) >= 3
    assert seen["loop"][0] not in assets.threads


def test_static_memo_follows_mtime_and_size(tmp_path: Path) -> None:
    css = tmp_path / "card.css"
    css.write_text("a { color: red }")
    assets = Assets(tmp_path)
    url = f"{ORIGIN}/static/card.css"
    first = assets.static(url)
    assert first is not None and first.body == b"a { color: red }"
    assert assets.static(url) is first  # unchanged: the memoised copy
    css.write_text("a { color: blue; }")
    stat = css.stat()
    os.utime(css, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    second = assets.static(url)
    assert second is not None and second.body == b"a { color: blue; }"
    assert second.content_type == "text/css"


def test_a_navigation_gets_the_pages_current_document(tmp_path: Path) -> None:
    document = Document(7)
    texts: list[str] = []

    async def test(page: Page) -> None:
        url = document.load(b"<p id=t>first</p><script>1</script>", scripted=True)
        assert url is not None and url.startswith(f"{ORIGIN}/__ogshot__/document/7/")
        await page.goto(url)
        texts.append(await page.inner_text("#t"))
        # The next document needs a fresh window too (the last one ran scripts).
        url = document.load(b"<p id=t>second</p>", scripted=False)
        assert url is not None
        await page.goto(url)
        texts.append(await page.inner_text("#t"))
        # A document after one without scripts is written in place: no URL.
        assert document.load(b"<p id=t>third</p>", scripted=False) is None
        # A page that navigated away from its document must be scrubbed, and its next document
        # gets a fresh window.
        assert not document.needs_scrub(page)
        await page.goto(f"{ORIGIN}/static/nothing")
        assert document.needs_scrub(page)
        assert document.load(b"<p>fourth</p>", scripted=False) is not None

    on_page(Assets(tmp_path), document, test)
    assert texts == ["first", "second"]


def test_a_remote_image_makes_the_page_need_a_scrub(tmp_path: Path) -> None:
    document = Document(1)
    answers: list[bool] = []

    async def test(page: Page) -> None:
        answers.append(document.needs_scrub(page))  # on its blank document: clean
        document.showed_remote()  # what the router notes when it answers with a remote image
        answers.append(document.needs_scrub(page))
        answers.append(document.needs_scrub(page))  # still: its next document is not written
        url = document.load(b"<p>next</p>", scripted=False)  # in place, but in a fresh window
        assert url is not None
        await page.goto(url)
        answers.append(document.needs_scrub(page))

    on_page(Assets(tmp_path), document, test)
    assert answers == [False, True, True, False]


def test_a_changed_static_folder_is_reported_once() -> None:
    document = Document(1)
    assert not document.static_changed("a")  # the first render: nothing cached yet
    assert not document.static_changed("a")
    assert document.static_changed("b")
    assert not document.static_changed("b")
