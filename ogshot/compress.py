"""Captured pixels -> PNG, JPEG or WebP bytes with pyvips (and libdeflate for PNG). Pure and
synchronous: run it off the event loop (``starlette.concurrency.run_in_threadpool`` or
``asyncio.to_thread``).

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
    palette (``png_colours``) costs 50-90 ms and is lossy. A photographic capture whose own
    bytes are already as small as ours would be is returned as it is (the photo card: 19 ms
    instead of 52, 1,062 KB instead of 1,121; pixels are the capture's either way).
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
        if _photographic(captured, image):
            rows = _png_rows(image)
            if _estimated_size(rows, image.height, settings.png_compression) >= len(captured):
                return captured
            return _png_file(image, _deflate(rows, settings.png_compression))
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
    if image.format != "uchar" or image.bands not in (3, 4):
        image = image.colourspace("srgb").cast("uchar")
    return _png_file(image, _deflate(_png_rows(image), level))


def _png_rows(image: pyvips.Image) -> memoryview:
    """The PNG scanlines of an 8-bit image: a zero (filter "none") byte, then the row's pixels."""
    rows = pyvips.Image.black(1, image.height).cast("uchar").bandjoin(image.bandfold())
    return memoryview(rows.write_to_memory())


def _deflate(rows: memoryview, level: int) -> bytes:
    # libdeflate levels are 0..12; zlib's 0..9 map onto them unchanged (6 is the default of both).
    return bytes(deflate.zlib_compress(rows, level))


def _png_file(image: pyvips.Image, data: bytes) -> bytes:
    header = struct.pack(
        ">IIBBBBB", image.width, image.height, 8, 2 if image.bands == 3 else 6, 0, 0, 0
    )
    return b"".join(
        (_PNG_SIGNATURE, _chunk(b"IHDR", header), _chunk(b"IDAT", data), _chunk(b"IEND", b""))
    )


# Chromium's capture is RGB, ``up``-filtered rows at zlib level 1: within a few per cent of the
# best we can do on photographic pixels, and 1.5-8x larger than our unfiltered rows wherever there
# are flat areas or Skia's dithered gradients. A capture larger than this share of the raw pixels
# (the photo card: 47%; gradient 32%, radial 20%, glow 14%, flat 2%) is worth a closer look.
_PHOTOGRAPHIC = 0.35
_SAMPLE_ROWS = 32  # per strip; three strips at 1/4, 1/2 and 3/4 of the height


def _photographic(captured: bytes, image: pyvips.Image) -> bool:
    """Whether ``captured`` is an opaque 8-bit RGB PNG that deflated poorly even at Chromium's
    settings: the only kind that may be served as it is."""
    plain = captured[12:16] == b"IHDR" and captured[24:26] == b"\x08\x02"
    raw = image.width * image.height * 3
    return plain and image.height >= 8 * _SAMPLE_ROWS and len(captured) >= _PHOTOGRAPHIC * raw


def _estimated_size(rows: memoryview, height: int, level: int) -> float:
    """Our PNG's size, extrapolated from three strips of rows (~5 ms on a photo, a tenth of the
    whole deflate)."""
    stride = len(rows) // height
    sample = sum(
        len(_deflate(rows[y * stride : (y + _SAMPLE_ROWS) * stride], level))
        for y in (height // 4, height // 2, 3 * height // 4)
    )
    return sample * height / (3 * _SAMPLE_ROWS)


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
