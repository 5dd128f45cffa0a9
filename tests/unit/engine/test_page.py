"""engine/page.py's Document: the one record of what a warm page shows, and when a page must be
scrubbed and given a fresh window before the next render."""

from __future__ import annotations

from pathlib import Path

from ogshot.engine.capture import capture
from ogshot.engine.page import BLANK_URL, DOCUMENT_PREFIX, Document
from ogshot.engine.pool import Slot
from tests.support.pages import on_a_page


def test_documents_without_scripts_are_written_in_place() -> None:
    doc = Document(7)
    assert doc.answer(BLANK_URL).startswith(b"<!doctype html>")  # type: ignore[union-attr]
    assert doc.load(b"<p>one</p>", scripted=False) is None  # written into the current window
    assert doc.load(b"<p>two</p>", scripted=False) is None


def test_a_scripted_document_and_the_one_after_it_get_fresh_windows() -> None:
    doc = Document(7)
    first = doc.load(b"<script>1</script>", scripted=True)
    assert first is not None and first.startswith(f"{DOCUMENT_PREFIX}7/")
    assert doc.answer(first) == b"<script>1</script>"
    after = doc.load(b"<p>plain</p>", scripted=False)  # the window may hold the script's state
    assert after is not None and after != first
    assert doc.answer(after) == b"<p>plain</p>"
    assert doc.load(b"<p>plain again</p>", scripted=False) is None
    assert doc.answer("http://ogshot.invalid/static/x.css") is None


def test_failed_images_are_listed_once_per_document_and_bounded() -> None:
    doc = Document(1)
    for i in range(100):
        doc.failed_image(f"https://img.example/{i % 70}.png")
        doc.failed_image("https://img.example/0.png")
    assert len(doc.failed_images) == 64 and len(set(doc.failed_images)) == 64
    doc.load(b"<p>next</p>", scripted=False)
    assert doc.failed_images == []


def test_static_changes_are_seen_from_the_second_render_on() -> None:
    doc = Document(1)
    assert not doc.static_changed("a")  # the first render: nothing cached before it
    assert not doc.static_changed("a")
    assert doc.static_changed("b")


def test_a_page_that_left_its_document_or_showed_remote_images_is_scrubbed(
    tmp_path: Path,
) -> None:
    async def work(slot: Slot) -> list[bool]:
        doc, page = slot.document, slot.page
        await capture(slot, "<p>x</p>", time_limit=10)
        await capture(slot, "<p>y</p>", time_limit=10)
        seen = [doc.needs_scrub(page)]  # on its document, one frame, nothing remote
        doc.showed_remote()
        seen.append(doc.needs_scrub(page))  # a remote image is kept by URL: fresh window next
        await capture(slot, "<p>z</p>", time_limit=10)  # in that fresh window
        await capture(slot, "<p>w</p>", time_limit=10)
        seen.append(doc.needs_scrub(page))
        await page.goto("about:blank")  # navigated away from the document (a meta refresh, say)
        seen.append(doc.needs_scrub(page))
        return seen

    assert on_a_page(tmp_path, work) == [False, True, False, True]
