"""Captured pixels -> PNG, JPEG or WebP bytes with pyvips. Pure and synchronous: run it off the
event loop (``starlette.concurrency.run_in_threadpool`` or ``asyncio.to_thread``).

With ``jpeg_encoder = "chromium"`` a JPEG skips this module: Chromium's capture is the final image
(baseline, standard Huffman tables). The pyvips JPEG here is progressive with optimised tables,
which is what makes it ~10% smaller at the same quality and SSIM."""

from __future__ import annotations

import struct
import zlib
from functools import lru_cache

import deflate
import pyvips

from .config import Settings
from .formats import CONTENT_TYPES, FORMATS, normalize_format  # re-exported: pipeline uses them

__all__ = ["CONTENT_TYPES", "FORMATS", "encode", "fallback_image", "normalize_format"]


def encode(captured: bytes, fmt: str, settings: Settings) -> bytes:
    """Encode a capture (PNG bytes from Chromium) as ``fmt``.

    PNG is truecolour, lossless, unfiltered: on rendered cards (flat areas, text, gradients) the
    unfiltered rows deflate about as small as adaptive filtering at a third of the time, and a
    palette (``png_colours``) costs 50-90 ms and bands gradients.
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
                    # undithered is smaller and closer to the capture (radial card: 82 KB, SSIM
                    # 0.994 against 114 KB, 0.984 dithered; benchmarks/peers/FINDINGS.md)
                    dither=0.0,
                    effort=1,
                    compression=settings.png_compression,
                    keep="none",
                )
            )
        return png_truecolour(image, settings.png_compression)
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


def png_truecolour(image: pyvips.Image, level: int) -> bytes:
    """A truecolour 8-bit PNG of ``image`` (3 or 4 bands): rows unfiltered, deflated by libdeflate.

    Same pixels as libvips' ``pngsave(filter="none")``, fewer bytes: libdeflate's parser finds the
    repeats in Skia's dithered gradients that libpng's zlib settings miss (gradient card 94 KB
    against 152 KB, flat 27 against 36) for about the same CPU. libvips prepends each row's filter
    byte (each row folded into one pixel of ``width * bands`` bands, a zero band joined in front),
    so the pixels are copied out of libvips once."""
    width, height, bands = image.width, image.height, image.bands
    if image.format != "uchar" or bands not in (3, 4):
        image = image.colourspace("srgb").cast("uchar")
        width, height, bands = image.width, image.height, image.bands
    rows = pyvips.Image.black(1, height).cast("uchar").bandjoin(image.bandfold())
    # libdeflate levels are 0..12; zlib's 0..9 map onto them unchanged (6 is the default of both).
    data = bytes(deflate.zlib_compress(rows.write_to_memory(), level))
    header = struct.pack(">IIBBBBB", width, height, 8, 2 if bands == 3 else 6, 0, 0, 0)
    return b"".join(
        (_PNG_SIGNATURE, _chunk(b"IHDR", header), _chunk(b"IDAT", data), _chunk(b"IEND", b""))
    )


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(data, zlib.crc32(kind))
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


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
