"""JPEG encoded by Chromium and made progressive by libturbojpeg (``jpeg_encoder = "chromium"``,
the default) against the pyvips path: the same bytes, the rewrite lossless, its own cache key."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ogshot.cache.disk import cache_key
from ogshot.core.errors import ConfigError
from ogshot.core.settings import Settings
from ogshot.engine import jpeg_repack
from ogshot.engine.encode import encode
from ogshot.engine.jpeg_repack import progressive
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


def test_chromium_jpeg_made_progressive_is_the_libvips_jpeg(tmp_path: Path) -> None:
    """The default path (Chromium's JPEG, rewritten losslessly by libturbojpeg) gives the very
    bytes libvips makes from the lossless capture of the same pixels."""
    settings = make_settings(tmp_path, pool_size=1, jpeg_encoder="chromium")

    async def main() -> tuple[bytes, bytes, bytes]:
        async with Renderer(settings) as renderer:
            png = await renderer.render("article", PARAMS, "png")  # lossless
            jpeg = await renderer.render("article", PARAMS, "jpeg")
            budget = await renderer.render("article", {**PARAMS, "max_kb": 500}, "jpeg")
        return png, jpeg, budget

    png, jpeg, budget = asyncio.run(main())
    vips = encode(png, "jpeg", settings)  # the other path, from the same pixels
    assert jpeg[:3] == b"\xff\xd8\xff"
    assert frame_type(jpeg) == 0xC2  # progressive
    assert jpeg == vips
    image = image_of(jpeg)
    assert (image.width, image.height, image.bands) == (1200, 630, 3)
    assert 0 < mean_difference(png, jpeg) < 2.0  # lossy, and close
    assert frame_type(budget) == 0xC2  # a byte budget searches on the PNG: libvips' JPEG


def test_the_rewrite_keeps_the_pixels_and_refuses_what_is_not_a_jpeg(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, pool_size=1, jpeg_encoder="vips")

    async def main() -> bytes:
        async with Renderer(settings) as renderer:
            return await renderer.render("article", PARAMS, "png")

    png = asyncio.run(main())
    baseline = bytes(
        image_of(png).jpegsave_buffer(Q=88, interlace=False, optimize_coding=False, keep="none")
    )
    assert frame_type(baseline) == 0xC0
    rewritten = progressive(baseline)
    assert frame_type(rewritten) == 0xC2
    assert len(rewritten) < 0.97 * len(baseline)  # optimised tables: smaller
    before, after = image_of(baseline), image_of(rewritten)
    assert before.write_to_memory() == after.write_to_memory()  # lossless
    with pytest.raises(ValueError, match="could not rewrite the JPEG"):
        progressive(png)


def test_without_libturbojpeg_libvips_encodes_the_same_jpeg(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A machine without libturbojpeg0: the renderer says so and encodes with libvips."""
    monkeypatch.setattr(jpeg_repack, "_library", lambda: None)
    settings = make_settings(tmp_path, pool_size=1, jpeg_encoder="chromium")

    async def main() -> tuple[bytes, bytes]:
        async with Renderer(settings) as renderer:
            png = await renderer.render("article", PARAMS, "png")
            return png, await renderer.render("article", PARAMS, "jpeg")

    png, jpeg = asyncio.run(main())
    assert jpeg == encode(png, "jpeg", settings)


def test_the_encoder_is_a_setting_and_part_of_the_cache_key(tmp_path: Path) -> None:
    assert Settings.load(environ={}).jpeg_encoder == "chromium"
    vips = Settings.load(environ={"OGSHOT_JPEG_ENCODER": "vips"})
    assert vips.jpeg_encoder == "vips"
    with pytest.raises(ConfigError, match="JPEG_ENCODER"):
        Settings.load(environ={"OGSHOT_JPEG_ENCODER": "mozjpeg"})
    keys = {
        cache_key(template_digest="d", params="p", fmt="jpeg", settings=s)
        for s in (vips, Settings.load(environ={}))
    }
    assert len(keys) == 2
