"""Begin-frame control (``OGSHOT_BEGIN_FRAME``): pages that draw only the frame a render captures
give the same pixels as pages on their own clock, keep their routing, readiness and crash
handling, and still run templates that draw in ``requestAnimationFrame``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from ogshot.app import create_app
from ogshot.core.errors import BrowserError, TemplateError
from ogshot.engine.assets import Assets
from ogshot.engine.capture import capture
from ogshot.engine.page_requests import Router
from ogshot.engine.pool import Pool, Slot
from ogshot.templates.catalog import Catalog
from ogshot.templates.declarations import Size
from tests.support.helpers import image_of, make_settings, pixel
from tests.support.pages import on_a_page

# A canvas drawn over three animation frames (red, red, then green), ready after the last: without
# frames pumped while the page waits, rAF never fires and the render times out; a capture of a
# frame drawn before the last callback shows red.
RAF = """{#ogshot
description = "draws in requestAnimationFrame"
[params.colour]
type = "str"
default = "#00ff00"
#}
<html><body style="margin:0"><canvas id="c" width="1200" height="630"></canvas>
<div style="position:absolute;left:40px;top:40px;font:700 64px sans-serif">{{ colour }}</div>
<script>
window.ogshotReady = new Promise((resolve) => {
  let n = 0;
  const step = () => {
    n += 1;
    const g = document.getElementById("c").getContext("2d");
    g.fillStyle = n < 3 ? "#ff0000" : "{{ colour }}";
    g.fillRect(0, 0, 1200, 630);
    if (n < 3) requestAnimationFrame(step); else resolve();
  };
  requestAnimationFrame(step);
});
</script></body></html>
"""

# Gallery templates: web fonts (all of them), images (CSS masks and <img>), the square size and
# the card size alternating; the rAF template (navigations) between documents written in place.
ORDER: list[tuple[str, dict[str, str]]] = [
    ("article", {}),
    ("quote-square", {}),
    ("docs", {}),
    ("raf", {}),
    ("product", {}),
    ("quote-square", {"quote": "Second square, on a page that drew others"}),
    ("profile", {}),
    ("raf", {"colour": "#0000ff"}),
    ("minimal", {}),
]


def _client(base: Path, begin_frame: bool) -> TestClient:
    settings = make_settings(base, pool_size=1, begin_frame=begin_frame)
    (settings.templates_dir / "raf.html").write_text(RAF)
    return TestClient(create_app(settings))


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, TestClient]]:
    clock_dir, frames_dir = tmp_path_factory.mktemp("clock"), tmp_path_factory.mktemp("frames")
    with _client(clock_dir, False) as clock, _client(frames_dir, True) as frames:
        yield clock, frames


def _params(client: TestClient, name: str, overrides: dict[str, str]) -> dict[str, str]:
    catalog: Catalog = client.app.state.renderer.catalog  # type: ignore[attr-defined]
    values = {**catalog.get(name).examples(), **overrides}
    return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in values.items()}


def test_begin_frame_pages_give_the_same_pixels(both: tuple[TestClient, TestClient]) -> None:
    clock, frames = both
    for name, overrides in ORDER:
        params = _params(clock, name, overrides)
        ours = frames.get(f"/og/{name}.png", params=params)
        theirs = clock.get(f"/og/{name}.png", params=params)
        assert ours.status_code == theirs.status_code == 200, (name, ours.text, theirs.text)
        assert ours.headers["x-ogshot-cache"] == "miss", name
        a, b = image_of(ours.content), image_of(theirs.content)
        assert (a.width, a.height) == (b.width, b.height), name
        assert a.write_to_memory() == b.write_to_memory(), f"{name} {overrides}: pixels differ"
        assert ours.content == theirs.content, f"{name} {overrides}: PNG bytes differ"
        if name == "raf":  # the last animation frame's colour, not an earlier one's
            want = [0, 0, 255] if overrides else [0, 255, 0]
            assert pixel(ours.content, 600, 500) == want


def test_a_crash_during_a_begin_frame_render_fails_fast_and_the_page_is_replaced(
    tmp_path: Path,
) -> None:
    """The page's renderer is killed while frames are pumped for a document that never gets
    ready: the render fails with BrowserError at once (not at its 10 s deadline), and the pool
    lends a fresh begin-frame page that renders."""
    never = "<html><body><script>window.ogshotReady = new Promise(() => {});</script></body></html>"
    red = '<html><body style="margin:0;background:#ff0000"></body></html>'

    async def scenario() -> None:
        settings = make_settings(tmp_path, pool_size=1, begin_frame=True)
        pool = Pool(settings, Router(Assets(settings.static_dir)))
        await pool.start()
        try:
            started = time.monotonic()
            with pytest.raises(BrowserError):
                async with pool.lease() as slot:
                    crashed = slot.id
                    render = asyncio.ensure_future(capture(slot, never, time_limit=10))
                    await asyncio.sleep(0.5)  # pumping frames by now
                    assert not render.done()
                    killer = await slot.context.new_cdp_session(slot.page)
                    crash = asyncio.ensure_future(killer.send("Page.crash"))
                    await render
            crash.cancel()  # its answer never comes: the renderer is gone
            assert time.monotonic() - started < 5
            async with pool.lease() as slot:
                assert slot.id != crashed and slot.begin_frame
                shot = await capture(slot, red, time_limit=10)
            assert pixel(shot.png, 600, 300) == [255, 0, 0]
            assert pool.stats()["pages_replaced"] == 1
        finally:
            await pool.close()

    asyncio.run(scenario())


def test_sizes_navigations_and_jpeg_on_a_begin_frame_page(tmp_path: Path) -> None:
    red = '<html><body style="margin:0;background:#ff0000"></body></html>'
    scripted = (
        '<html><body style="margin:0"><script>document.body.style.background="#0000ff"'
        "</script></body></html>"
    )

    async def work(slot: Slot) -> list[bytes]:
        assert slot.begin_frame
        with pytest.raises(TemplateError, match="scale 2 cannot be drawn with OGSHOT_BEGIN_FRAME"):
            await capture(slot, red, time_limit=10, size=Size(400, 400, 2.0), template="hi")
        shots = [
            await capture(slot, red, time_limit=10, size=Size(800, 800, 1.0)),
            await capture(slot, scripted, time_limit=10),
            await capture(slot, red, time_limit=10),
            await capture(slot, red, time_limit=10, jpeg_quality=80),
        ]
        return [shot.body for shot in shots]

    square, blue, back, jpeg = on_a_page(tmp_path, work, begin_frame=True)
    assert (image_of(square).width, image_of(square).height) == (800, 800)
    assert pixel(square, 799, 799) == [255, 0, 0]
    assert pixel(blue, 10, 10) == [0, 0, 255]  # its script ran in a fresh window
    assert (image_of(back).width, image_of(back).height) == (1200, 630)
    assert pixel(back, 600, 300) == [255, 0, 0]
    assert jpeg[:2] == b"\xff\xd8"
    r, g, b = pixel(jpeg, 600, 300)
    assert r > 240 and g < 16 and b < 16
