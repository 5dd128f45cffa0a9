"""The capture reader and the PNG writer (libdeflate, unfiltered rows): Chromium's capture read
without libpng to the same pixels libvips decodes (other PNGs left to libvips), our PNG bit-exact
against it, valid, and no larger than libvips' own unfiltered save."""

from __future__ import annotations

import asyncio
import shutil
import struct
import zlib
from pathlib import Path

import pytest
import pyvips

from ogshot.engine.capture import capture
from ogshot.engine.encode import Scanlines, encode, png_truecolour
from ogshot.pipeline.renderer import Renderer
from tests.support.helpers import ROOT, image_of, make_settings

# A full-page gradient card: Skia dithers the gradient, the case the writer is tuned for.
GRADIENT = """<!doctype html><html><head><style>
html, body { margin: 0; width: 1200px; height: 630px; }
body { background: linear-gradient(135deg, #1e3a8a 0%, #7c3aed 55%, #db2777 100%);
       font: 700 64px Inter, sans-serif; color: white; display: flex; align-items: center;
       padding: 0 80px; box-sizing: border-box; }
</style></head><body>Gradients deflate well unfiltered</body></html>"""


# A full-bleed photo under a dark overlay: Chromium's own PNG is as small as ours can be.
PHOTO = """<!doctype html><html><head><style>
html, body { margin: 0; width: 1200px; height: 630px; }
body { background: linear-gradient(rgba(0, 0, 0, .2), rgba(0, 0, 0, .6)),
       url(/static/photo.jpg) center / cover; font: 700 64px Inter, sans-serif; color: white; }
</style></head><body>A photo card</body></html>"""


@pytest.fixture(scope="module")
def captures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    base = tmp_path_factory.mktemp("compress")
    settings = make_settings(base, pool_size=1)
    shutil.copy(ROOT / "benchmarks" / "cards" / "static" / "photo.jpg", base / "static")

    async def main() -> dict[str, bytes]:
        async with Renderer(settings) as renderer, renderer.pool.lease() as slot:
            return {
                name: (await capture(slot, html, time_limit=10.0)).png
                for name, html in (("gradient", GRADIENT), ("photo", PHOTO))
            }

    return asyncio.run(main())


@pytest.fixture(scope="module")
def gradient_capture(captures: dict[str, bytes]) -> bytes:
    return captures["gradient"]


def pixels(data: bytes) -> tuple[int, int, int, str, bytes]:
    image = image_of(data)
    return image.width, image.height, image.bands, image.format, image.write_to_memory()


def chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    """(type, data) of every chunk, each CRC checked."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    found, at = [], 8
    while at < len(png):
        (length,) = struct.unpack(">I", png[at : at + 4])
        kind, data = png[at + 4 : at + 8], png[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", png[at + 8 + length : at + 12 + length])
        assert crc == zlib.crc32(kind + data), f"bad CRC on {kind!r}"
        found.append((kind, data))
        at += 12 + length
    return found


def test_png_is_bit_exact_with_the_capture_and_valid(
    gradient_capture: bytes, tmp_path: Path
) -> None:
    png = encode(gradient_capture, "png", make_settings(tmp_path))
    assert pixels(png) == pixels(gradient_capture)
    assert pixels(png)[:4] == (1200, 630, 3, "uchar")
    kinds = [kind for kind, _ in chunks(png)]
    assert kinds == [b"IHDR", b"IDAT", b"IEND"]  # no metadata kept
    rows = zlib.decompress(chunks(png)[1][1])
    assert len(rows) == 630 * (1 + 1200 * 3)
    assert all(rows[y * 3601] == 0 for y in range(630))  # every row unfiltered


def test_png_is_no_larger_than_libvips_unfiltered_save(
    gradient_capture: bytes, tmp_path: Path
) -> None:
    png = encode(gradient_capture, "png", make_settings(tmp_path))
    image = image_of(gradient_capture)
    before = image.pngsave_buffer(compression=6, filter="none", keep="none")  # the old encoder
    assert pixels(before) == pixels(png)
    assert len(png) <= len(before)


@pytest.mark.parametrize("level", [0, 1, 6, 9])
def test_every_zlib_level_stays_lossless(gradient_capture: bytes, level: int) -> None:
    image = image_of(gradient_capture).crop(0, 0, 300, 200)
    png = png_truecolour(image, level)
    assert pixels(png) == pixels(image.pngsave_buffer())


def test_alpha_and_16_bit_images_are_written_as_8_bit_truecolour() -> None:
    ramp = pyvips.Image.xyz(64, 32)[0].cast("uchar")
    rgba = ramp.bandjoin([ramp.invert(), ramp, ramp // 2]).copy(interpretation="srgb")
    png = png_truecolour(rgba, 6)
    assert pixels(png) == pixels(rgba.pngsave_buffer())
    assert pixels(png)[:4] == (64, 32, 4, "uchar")
    wide = rgba[:3].cast("ushort").linear(257, 0).cast("ushort").copy(interpretation="rgb16")
    assert pixels(png_truecolour(wide, 6))[:4] == (64, 32, 3, "uchar")


def test_palette_png_keeps_size_and_colour_count(gradient_capture: bytes, tmp_path: Path) -> None:
    png = encode(gradient_capture, "png", make_settings(tmp_path, png_colours=256))
    image = image_of(png)
    assert (image.width, image.height) == (1200, 630)
    rgbx = image[:3].bandjoin_const([0]).write_to_memory()
    assert len(set(memoryview(rgbx).cast("I"))) <= 256
    assert len(png) < len(encode(gradient_capture, "png", make_settings(tmp_path)))


def test_a_photographic_capture_is_served_as_chromium_encoded_it(
    captures: dict[str, bytes], tmp_path: Path
) -> None:
    photo, settings = captures["photo"], make_settings(tmp_path)
    image = image_of(photo)
    ours = png_truecolour(image, settings.png_compression)
    assert pixels(ours) == pixels(photo)
    assert len(photo) < len(ours)  # the photo deflates better with Chromium's `up` filter
    assert encode(photo, "png", settings) == photo  # so its bytes are kept: no re-encode
    # a gradient is the opposite case: re-encoded, far smaller than Chromium's capture
    gradient = encode(captures["gradient"], "png", settings)
    assert len(gradient) < len(captures["gradient"]) / 3


def png_of(rows: bytes, width: int, height: int, colour: int = 2) -> bytes:
    """A hand-made PNG of already-filtered rows (``colour``: 2 RGB, 6 RGBA)."""
    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    parts = [chunk(b"IHDR", header), chunk(b"IDAT", zlib.compress(rows)), chunk(b"IEND", b"")]
    return b"\x89PNG\r\n\x1a\n" + b"".join(parts)


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@pytest.mark.parametrize("name", ["gradient", "photo"])
def test_chromiums_capture_is_read_to_the_pixels_libvips_decodes(
    captures: dict[str, bytes], name: str
) -> None:
    lines = Scanlines.read(captures[name])
    assert lines is not None  # Chromium writes 8-bit RGB, every row `up` filtered
    assert (lines.width, lines.height, lines.bands) == (1200, 630, 3)
    decoded = image_of(captures[name])
    assert lines.image().write_to_memory() == decoded.write_to_memory()
    assert lines.image().interpretation == "srgb"


def test_jpeg_and_webp_from_the_read_capture_match_libvips_decoding_it(
    gradient_capture: bytes, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path)
    image = image_of(gradient_capture)
    jpeg = image.jpegsave_buffer(
        Q=settings.jpeg_quality,
        interlace=True,
        optimize_coding=True,
        keep="none",
        subsample_mode="off" if settings.jpeg_quality >= 90 else "auto",
    )
    assert encode(gradient_capture, "jpeg", settings) == jpeg
    webp = image.webpsave_buffer(Q=settings.webp_quality, effort=0, keep="none")
    assert encode(gradient_capture, "webp", settings) == webp


def test_rows_filtered_none_and_up_mixed_are_read() -> None:
    width, height = 5, 4
    pixels_ = [
        bytes((x * 40 + y * 7 + band) % 256 for x in range(width) for band in range(3))
        for y in range(height)
    ]
    rows = b""
    for y, row in enumerate(pixels_):
        if y % 2:  # `up`: each byte minus the byte above it
            rows += b"\x02" + bytes((a - b) % 256 for a, b in zip(row, pixels_[y - 1], strict=True))
        else:
            rows += b"\x00" + row
    png = png_of(rows, width, height)
    lines = Scanlines.read(png)
    assert lines is not None
    assert lines.image().write_to_memory() == b"".join(pixels_)
    assert lines.image().write_to_memory() == image_of(png).write_to_memory()
    assert bytes(lines.rows) == b"".join(b"\x00" + row for row in pixels_)


@pytest.mark.parametrize(
    "kinds",
    [
        "uuuuuuuuuu",  # every row `up`, as Chromium writes them (row 0 adds a row of zeros)
        "nuuuuunuuu",  # runs of repeats after a `none` row
        "unnnnnnnnu",  # a repeat as the last row, after `none` rows
        "nuunuuuuun",
        "uuuuuuuuun",  # row 0 `up` must not wrap around to the last row
    ],
)
def test_repeated_rows_are_read_in_runs(kinds: str) -> None:
    width = 4
    # rows 1-3 repeat row 0, rows 6-8 repeat row 5, row 9 repeats row 8: flat bands between text
    base = [
        bytes((x * 50 + y * 31 + band * 7) % 256 for x in range(width) for band in range(3))
        for y in range(10)
    ]
    pixels_ = [base[0]] * 4 + [base[4], base[5]] + [base[5]] * 4
    rows = b""
    for y, (kind, row) in enumerate(zip(kinds, pixels_, strict=True)):
        above = pixels_[y - 1] if y else bytes(len(row))
        if kind == "u":
            rows += b"\x02" + bytes((a - b) % 256 for a, b in zip(row, above, strict=True))
        else:
            rows += b"\x00" + row
    png = png_of(rows, width, len(pixels_))
    lines = Scanlines.read(png)
    assert lines is not None
    assert bytes(lines.rows) == b"".join(b"\x00" + row for row in pixels_)
    assert lines.image().write_to_memory() == image_of(png).write_to_memory()


def test_other_pngs_are_left_to_libvips(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    row = bytes(range(15))
    sub = png_of(b"\x01" + row, 5, 1)  # a `sub` row: libvips (libpng) decodes it
    rgba = png_of(b"\x00" + bytes(range(20)), 5, 1, colour=6)
    truncated = png_of((b"\x00" + row) * 2, 5, 2)[:-20]
    for png in (sub, rgba, truncated, b"not a png"):
        assert Scanlines.read(png) is None
    assert pixels(encode(sub, "png", settings)) == pixels(sub)
    white_flattened = image_of(encode(rgba, "png", settings))
    assert (white_flattened.bands, white_flattened.width) == (3, 5)
