"""JPEG encoded by Chromium itself (``jpeg_encoder = "chromium"``) against today's pyvips path:
same size, pixels as close to the lossless capture, bytes in the same range, its own cache key."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ogshot.cache.disk import cache_key
from ogshot.core.errors import ConfigError
from ogshot.core.settings import Settings
from ogshot.engine.encode import encode
from ogshot.pipeline.renderer import Renderer
from tests.support.helpers import image_of, make_settings, mean_difference

PARAMS = {"title": "Chromium encodes this JPEG", "subtitle": "Gradients, text and a logo"}


def frame_type(jpeg: bytes) -> int:
    """The JPEG's start-of-frame marker: 0xC0 baseline, 0xC2 progressive."""
    at = 2
    while at + 4 <= len(jpeg):
        assert jpeg[at] == 0xFF, "not a JPEG marker"
        marker = jpeg[at + 1]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return marker
        at += 2 + int.from_bytes(jpeg[at + 2 : at + 4], "big")
    raise AssertionError("no start-of-frame marker")


def test_chromium_jpeg_is_as_close_to_the_lossless_capture_as_pyvips(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, pool_size=1, jpeg_encoder="chromium")

    async def main() -> tuple[bytes, bytes]:
        async with Renderer(settings) as renderer:
            png = await renderer.render("article", PARAMS, "png")  # lossless
            jpeg = await renderer.render("article", PARAMS, "jpeg")
        return png, jpeg

    png, jpeg = asyncio.run(main())
    vips = encode(png, "jpeg", settings)  # today's path, from the same pixels
    assert jpeg[:3] == b"\xff\xd8\xff"
    assert frame_type(jpeg) == 0xC0  # baseline, which every crawler decodes
    assert frame_type(vips) == 0xC2  # progressive: so the check above tells the two apart
    image = image_of(jpeg)
    assert (image.width, image.height, image.bands) == (1200, 630, 3)
    ours, theirs = mean_difference(png, jpeg), mean_difference(png, vips)
    assert 0 < ours < 2.0  # lossy, and close: under 2 of 255 per channel on average
    assert ours < theirs * 1.25
    assert 0.75 * len(vips) < len(jpeg) < 1.25 * len(vips)


def test_the_encoder_is_a_setting_and_part_of_the_cache_key(tmp_path: Path) -> None:
    assert Settings.load(environ={}).jpeg_encoder == "vips"
    chromium = Settings.load(environ={"OGSHOT_JPEG_ENCODER": "chromium"})
    assert chromium.jpeg_encoder == "chromium"
    with pytest.raises(ConfigError, match="JPEG_ENCODER"):
        Settings.load(environ={"OGSHOT_JPEG_ENCODER": "mozjpeg"})
    keys = {
        cache_key(template_digest="d", params="p", fmt="jpeg", settings=s)
        for s in (chromium, Settings.load(environ={}))
    }
    assert len(keys) == 2
