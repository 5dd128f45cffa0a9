"""Captured pixels -> PNG, JPEG or WebP bytes with pyvips (and libdeflate for PNG). Pure and
synchronous: run it off the event loop (``starlette.concurrency.run_in_threadpool`` or
``asyncio.to_thread``).

Chromium's capture is read here without libpng: its PNG is 8-bit RGB with every row ``up``
filtered, so libdeflate inflates it (~0.2 ms on a text card against ~3.5 ms for libvips' whole
decode) and numpy adds each row to the one above. The result is already what our PNG writer
deflates (unfiltered scanlines), and a lazy libvips view of it feeds the JPEG and WebP savers. Any
other PNG (alpha, 16-bit, another filter) is decoded by libvips.

With ``jpeg_encoder = "chromium"`` (the default) a JPEG skips this module: Chromium encodes it and
jpeg_repack.py makes it progressive with optimised tables, which gives the bytes the pyvips JPEG
here makes from the same pixels."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import deflate
import pyvips

if TYPE_CHECKING:  # numpy itself is imported when first needed (~70 ms)
    import numpy as np
    from numpy.typing import NDArray

from ogshot.core.formats import (  # re-exported: pipeline uses them
    CONTENT_TYPES,
    FORMATS,
    normalize_format,
)
from ogshot.core.settings import Settings

__all__ = [
    "CONTENT_TYPES",
    "FORMATS",
    "encode",
    "encode_pixels",
    "fallback_image",
    "normalize_format",
]


def encode(captured: bytes, fmt: str, settings: Settings) -> bytes:
    """Encode a capture (PNG bytes from Chromium) as ``fmt``.

    PNG is truecolour, lossless, unfiltered: on rendered cards (flat areas, text, gradients) the
    unfiltered rows deflate about as small as adaptive filtering at a third of the time, and a
    palette (``png_colours``) costs 50-90 ms and is lossy. A photographic capture whose own
    bytes are already as small as ours would be is returned as it is (the photo card: 19 ms
    instead of 52, 1,062 KB instead of 1,121; pixels are the capture's either way).
    """
    lines = Scanlines.read(captured)
    if fmt == "png" and not settings.png_colours and lines is not None:  # no libvips image needed
        level = settings.png_compression
        if _photographic(captured, lines) and _estimated_size(lines, level) >= len(captured):
            return captured
        return lines.png(level)
    if lines is not None:
        image = lines.image()
    else:
        image = pyvips.Image.new_from_buffer(captured, "", access="sequential")
        if image.hasalpha():
            image = image.flatten(background=[255, 255, 255])
    return encode_pixels(image, fmt, settings)


def encode_pixels(image: pyvips.Image, fmt: str, settings: Settings) -> bytes:
    """Encode decoded pixels as ``fmt`` (what ``encode`` does once it has them; the byte budget's
    search calls it at several qualities on the same pixels)."""
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


def warm_up() -> None:
    """Import what the first encode needs (numpy), so that the first image does not wait for it
    (the Renderer calls this in a thread while Chromium starts)."""
    import numpy  # noqa: F401


@dataclass(frozen=True)
class Scanlines:
    """An 8-bit image as PNG scanlines: per row a zero (filter "none") byte, then its pixels."""

    width: int
    height: int
    bands: int
    rows: memoryview

    @classmethod
    def of(cls, image: pyvips.Image) -> Scanlines:
        """The scanlines of an 8-bit libvips image (3 or 4 bands), copied out of libvips once:
        each row folded into one pixel of ``width * bands`` bands, a zero band joined in front."""
        rows = pyvips.Image.black(1, image.height).cast("uchar").bandjoin(image.bandfold())
        return cls(image.width, image.height, image.bands, memoryview(rows.write_to_memory()))

    @classmethod
    def read(cls, png: bytes) -> Scanlines | None:
        """Chromium's capture, unfiltered; None for a PNG that is not 8-bit RGB, non-interlaced,
        with only ``none`` and ``up`` rows (libvips decodes those)."""
        if png[:8] != _PNG_SIGNATURE or png[12:16] != b"IHDR" or len(png) < 33:
            return None
        width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", png[16:29])
        if depth != 8 or colour != 2 or interlace or not width or not height:
            return None
        stride = 1 + 3 * width
        try:
            raw = deflate.zlib_decompress(b"".join(_idat(png)), height * stride)
        except (deflate.DeflateError, struct.error):
            return None
        if len(raw) != height * stride:
            return None
        import numpy as np  # ~70 ms to import: warm_up() does it while Chromium starts

        lines = np.frombuffer(raw, np.uint8).reshape(height, stride)
        kinds = lines[:, 0].copy()
        if not np.isin(kinds, (0, 2)).all():
            return None
        lines[:, 0] = 0
        _undo_up(lines, kinds == 2)
        return cls(width, height, 3, memoryview(raw))

    @property
    def stride(self) -> int:
        return 1 + self.width * self.bands

    def image(self) -> pyvips.Image:
        """A libvips view of the pixels (no copy: the filter bytes are cropped off lazily)."""
        data = pyvips.Image.new_from_memory(self.rows, self.stride, self.height, 1, "uchar")
        pixels = data.crop(1, 0, self.stride - 1, self.height).bandfold(factor=self.bands)
        return pixels.copy(interpretation="srgb")

    def png(self, level: int) -> bytes:
        header = struct.pack(
            ">IIBBBBB", self.width, self.height, 8, 2 if self.bands == 3 else 6, 0, 0, 0
        )
        data = _deflate(self.rows, level)
        return b"".join(
            (_PNG_SIGNATURE, _chunk(b"IHDR", header), _chunk(b"IDAT", data), _chunk(b"IEND", b""))
        )


def png_truecolour(image: pyvips.Image, level: int) -> bytes:
    """A truecolour 8-bit PNG of ``image`` (3 or 4 bands): rows unfiltered, deflated by libdeflate.

    Same pixels as libvips' ``pngsave(filter="none")``, fewer bytes: libdeflate's parser finds the
    repeats in Skia's dithered gradients that libpng's zlib settings miss (gradient card 94 KB
    against 152 KB, flat 27 against 36) for about the same CPU."""
    if image.format != "uchar" or image.bands not in (3, 4):
        image = image.colourspace("srgb").cast("uchar")
    return Scanlines.of(image).png(level)


def _undo_up(lines: NDArray[np.uint8], up: NDArray[np.bool_]) -> None:
    """Decode ``up``-filtered rows in place: each row marked in ``up`` gets the decoded row above
    added to it (filter bytes already zeroed; row 0's ``up`` adds a row of zeros, so it is left).

    A filtered row of zeros is a copy of the row above, and a card is mostly such rows (flat
    backgrounds): each run of them is copied in one step instead of one addition per row (minimal
    card: 0.8 -> 0.3 ms)."""
    import numpy as np

    up = up.copy()
    up[0] = False
    repeat = up & ~lines.any(axis=1)
    bounds = np.flatnonzero(np.diff(repeat.astype(np.int8), prepend=0, append=0))
    run_end = dict(zip(bounds[::2].tolist(), bounds[1::2].tolist(), strict=True))
    todo = up & ~repeat  # the rows to add to, and the first row of each run of repeats
    todo[bounds[::2]] = True
    for y in np.flatnonzero(todo).tolist():
        if y in run_end:
            lines[y : run_end[y]] = lines[y - 1]
        else:
            np.add(lines[y - 1], lines[y], out=lines[y])


def _idat(png: bytes) -> list[bytes]:
    """The IDAT chunks' data, in order (CRCs are not checked: zlib's own checksum covers it)."""
    found, pos = [], 8
    while pos + 8 <= len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind = png[pos + 4 : pos + 8]
        if kind == b"IDAT":
            found.append(png[pos + 8 : pos + 8 + length])
        elif kind == b"IEND":
            break
        pos += 12 + length
    return found


def _deflate(rows: memoryview, level: int) -> bytes:
    # libdeflate levels are 0..12; zlib's 0..9 map onto them unchanged (6 is the default of both).
    return bytes(deflate.zlib_compress(rows, level))


# Chromium's capture is RGB, ``up``-filtered rows at zlib level 1: within a few per cent of the
# best we can do on photographic pixels, and 1.5-8x larger than our unfiltered rows wherever there
# are flat areas or Skia's dithered gradients. A capture larger than this share of the raw pixels
# (the photo card: 47%; gradient 32%, radial 20%, glow 14%, flat 2%) is worth a closer look.
_PHOTOGRAPHIC = 0.35
_SAMPLE_ROWS = 32  # per strip; three strips at 1/4, 1/2 and 3/4 of the height


def _photographic(captured: bytes, lines: Scanlines) -> bool:
    """Whether ``captured`` (an opaque 8-bit RGB PNG) deflated poorly even at Chromium's settings:
    the only kind that may be served as it is."""
    raw = lines.width * lines.height * 3
    return lines.height >= 8 * _SAMPLE_ROWS and len(captured) >= _PHOTOGRAPHIC * raw


def _estimated_size(lines: Scanlines, level: int) -> float:
    """Our PNG's size, extrapolated from three strips of rows (~5 ms on a photo, a tenth of the
    whole deflate)."""
    stride, height = lines.stride, lines.height
    sample = sum(
        len(_deflate(lines.rows[y * stride : (y + _SAMPLE_ROWS) * stride], level))
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
