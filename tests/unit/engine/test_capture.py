"""engine/capture.py on a real page: a document written in place or navigated to, the viewport's
pixels, the page's probe of what it could not draw, a size switch, Chromium's own JPEG, and the
deadline."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import pytest

from ogshot.core.errors import RenderTimeout
from ogshot.engine.capture import Capture, capture
from ogshot.engine.pool import Slot
from ogshot.templates.declarations import Size
from tests.support.helpers import image_of, pixel
from tests.support.pages import on_a_page

T = TypeVar("T")

RED = '<html><body style="margin:0;background:#ff0000"></body></html>'


def test_documents_are_captured_written_in_place_or_navigated_to(tmp_path: Path) -> None:
    async def work(slot: Slot) -> list[Capture]:
        plain = await capture(slot, RED, time_limit=10)
        scripted = await capture(
            slot,
            '<html><body style="margin:0"><script>document.body.style.background="#0000ff"'
            "</script></body></html>",
            time_limit=10,
        )
        return [plain, scripted]

    plain, scripted = on_a_page(tmp_path, work)
    assert plain.format == "png" and plain.png[:8] == b"\x89PNG\r\n\x1a\n"
    assert (image_of(plain.png).width, image_of(plain.png).height) == (1200, 630)
    assert pixel(plain.png, 600, 300) == [255, 0, 0]
    assert pixel(scripted.png, 10, 10) == [0, 0, 255]  # its script ran in a fresh window
    assert {"load", "ready", "capture"} <= set(plain.timings)


def test_the_probe_reports_text_and_images_that_did_not_draw(tmp_path: Path) -> None:
    html = (
        '<html><body style="margin:0"><p>caf\u00e9 \u2603</p>'
        '<p style="display:none">\u00df</p><img src="/static/missing.png"></body></html>'
    )
    shot = on_a_page(tmp_path, lambda slot: capture(slot, html, time_limit=10))
    assert sorted(shot.codes) == [0xE9, 0x2603]  # visible non-ASCII only
    assert shot.failed_images == ["http://ogshot.invalid/static/missing.png"]


def test_a_size_switch_and_chromiums_own_jpeg(tmp_path: Path) -> None:
    async def work(slot: Slot) -> tuple[Capture, Capture, Capture]:
        square = await capture(slot, RED, time_limit=10, size=Size(400, 400, 2.0))
        back = await capture(slot, RED, time_limit=10)  # no size: the settings' own again
        jpeg = await capture(slot, RED, time_limit=10, jpeg_quality=80)
        return square, back, jpeg

    square, back, jpeg = on_a_page(tmp_path, work)
    assert (image_of(square.png).width, image_of(square.png).height) == (800, 800)
    assert (image_of(back.png).width, image_of(back.png).height) == (1200, 630)
    assert jpeg.format == "jpeg" and jpeg.body[:2] == b"\xff\xd8"
    with pytest.raises(ValueError, match="not a lossless PNG"):
        _ = jpeg.png
    r, g, b = pixel(jpeg.body, 600, 300)
    assert r > 240 and g < 16 and b < 16


def test_a_document_that_never_gets_ready_times_out_and_breaks_the_page(
    tmp_path: Path,
) -> None:
    never = "<html><body><script>window.ogshotReady = new Promise(() => {});</script></body></html>"

    async def work(slot: Slot) -> bool:
        with pytest.raises(RenderTimeout, match="within 1 s"):
            await capture(slot, never, time_limit=1)
        return slot.broken

    assert on_a_page(tmp_path, work)
