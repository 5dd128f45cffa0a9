"""Captured pixels -> PNG, JPEG or WebP bytes with pyvips. Pure and synchronous: run it off the
event loop (``starlette.concurrency.run_in_threadpool`` or ``asyncio.to_thread``).

With ``jpeg_encoder = "chromium"`` a JPEG skips this module: Chromium's capture is the final image
(baseline, standard Huffman tables). The pyvips JPEG here is progressive with optimised tables,
which is what makes it ~10% smaller at the same quality and SSIM."""

from __future__ import annotations

from functools import lru_cache

import pyvips

from .config import Settings
from .formats import CONTENT_TYPES, FORMATS, normalize_format  # re-exported: pipeline uses them

__all__ = ["CONTENT_TYPES", "FORMATS", "encode", "fallback_image", "normalize_format"]


def encode(captured: bytes, fmt: str, settings: Settings) -> bytes:
    """Encode a capture (PNG bytes from Chromium) as ``fmt``.

    PNG is truecolour, lossless, unfiltered: on rendered cards (flat areas, text, gradients) the
    unfiltered rows deflate about as small as adaptive filtering at a third of the time, and a
    palette (``png_colours``) costs 50-90 ms and bands gradients unless dithered.
    """
    image = pyvips.Image.new_from_buffer(captured, "", access="sequential")
    if image.hasalpha():
        image = image.flatten(background=[255, 255, 255])
    if fmt == "png":
        if settings.png_colours:
            return bytes(
                image.pngsave_buffer(
                    palette=True,
                    bitdepth=_palette_bitdepth(settings.png_colours),
                    Q=100,
                    dither=1.0,
                    effort=1,
                    compression=settings.png_compression,
                    keep="none",
                )
            )
        return bytes(
            image.pngsave_buffer(compression=settings.png_compression, filter="none", keep="none")
        )
    if fmt == "jpeg":
        return bytes(
            image.jpegsave_buffer(
                Q=settings.jpeg_quality,
                interlace=True,
                optimize_coding=True,
                subsample_mode="off" if settings.jpeg_quality >= 90 else "auto",
                keep="none",
            )
        )
    if fmt == "webp":
        # effort 0: 6 ms faster than 2 for ~15% more bytes on a card that is already ~15 KB.
        return bytes(image.webpsave_buffer(Q=settings.webp_quality, effort=0, keep="none"))
    raise ValueError(f"unknown format {fmt!r}")


def _palette_bitdepth(colours: int) -> int:
    """libvips sizes a palette by bit depth: 2, 4, 16 or 256 colours."""
    bits = (colours - 1).bit_length()
    return next(depth for depth in (1, 2, 4, 8) if depth >= bits)


@lru_cache(maxsize=4)
def fallback_image(width: int = 1200, height: int = 630) -> bytes:
    """A plain PNG shown instead of a failed render: dark, with a thin accent line, no text."""
    base = pyvips.Image.black(width, height, bands=3).linear(1, [24, 26, 33])
    stripe = pyvips.Image.black(width, 8, bands=3).linear(1, [220, 80, 80])
    image = base.insert(stripe, 0, height - 8).cast("uchar")
    return bytes(image.pngsave_buffer(compression=6, keep="none"))
