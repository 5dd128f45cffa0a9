"""Encoding within a byte budget, on real pyvips pixels: the highest JPEG/WebP quality that fits,
a palette PNG before a 422 that names the smallest size and suggests JPEG."""

from __future__ import annotations

from pathlib import Path

import pytest
import pyvips

from ogshot.core.errors import OverBudget
from ogshot.core.settings import Settings
from ogshot.engine.budget import encode_within
from ogshot.engine.encode import encode
from tests.support.helpers import image_of, make_settings


def capture_of(image: pyvips.Image) -> bytes:
    """A PNG as Chromium captures one: 8-bit RGB."""
    return bytes(image.cast("uchar").pngsave_buffer(compression=1, keep="none"))


@pytest.fixture(scope="module")
def photo() -> bytes:
    """Photo-like pixels: smooth shapes under fine noise, the worst case for every encoder."""
    noise = pyvips.Image.gaussnoise(1200, 630, sigma=40, mean=128)
    xy = pyvips.Image.xyz(1200, 630)
    shapes = ((xy[0] * 0.2 + xy[1] * 0.3) % 256).cast("float")
    rgb = (noise * 0.6 + shapes * 0.4).bandjoin([shapes, noise])
    return capture_of(rgb)


@pytest.fixture(scope="module")
def flat() -> bytes:
    """A card background: smooth gradients, many colours but no noise (a palette fits it)."""
    xy = pyvips.Image.xyz(1200, 630)
    red, green, blue = xy[0] / 1200 * 255, xy[1] / 630 * 255, (xy[0] + xy[1]) / 1830 * 255
    return capture_of(red.bandjoin([green, blue]))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.mark.parametrize("fmt", ["jpeg", "webp"])
def test_the_highest_quality_that_fits_is_chosen(
    photo: bytes, settings: Settings, fmt: str
) -> None:
    fitted = encode_within(photo, fmt, settings, 60)
    quality = int(fitted.quality)
    assert len(fitted.body) <= 60_000
    assert image_of(fitted.body).get("vips-loader").startswith(fmt)
    field = f"{fmt}_quality"
    top = getattr(settings, field)
    assert 1 <= quality < top  # the configured quality was over; a lower one fits
    # One step up does not fit: the search took the highest that does.
    above = encode(photo, fmt, settings.replace(**{field: quality + 1}))
    assert len(above) > 60_000
    assert encode(photo, fmt, settings.replace(**{field: quality})) == fitted.body
    # Deterministic: the same pixels give the same answer (it is cached under the key).
    assert encode_within(photo, fmt, settings, 60) == fitted


def test_an_image_that_fits_keeps_the_configured_quality(flat: bytes, settings: Settings) -> None:
    fitted = encode_within(flat, "jpeg", settings, 1000)
    assert fitted.quality == str(settings.jpeg_quality)
    assert fitted.body == encode(flat, "jpeg", settings)


def test_png_fits_by_a_palette(flat: bytes, settings: Settings) -> None:
    truecolour = encode(flat, "png", settings)
    budget = len(truecolour) // 1000 - 1  # just under the truecolour PNG
    assert budget >= 10
    fitted = encode_within(flat, "png", settings, budget)
    assert fitted.quality.startswith("palette-")
    assert len(fitted.body) <= budget * 1000
    assert image_of(fitted.body).get("palette") == 1


def test_png_that_fits_is_truecolour(flat: bytes, settings: Settings) -> None:
    fitted = encode_within(flat, "png", settings, 10_000)
    assert (fitted.quality, fitted.body) == ("truecolour", encode(flat, "png", settings))


def test_png_over_budget_is_a_422_naming_the_smallest_and_suggesting_jpeg(
    photo: bytes, settings: Settings
) -> None:
    with pytest.raises(OverBudget) as caught:
        encode_within(photo, "png", settings, 60)
    error = caught.value
    assert error.status == 422
    detail = error.detail
    assert detail["max_kb"] == 60 and detail["suggestion"] == "jpeg"
    assert set(detail["tried"]) == {"truecolour", "palette-256", "palette-16"}
    assert detail["smallest_bytes"] == min(detail["tried"].values()) > 60_000
    assert f"{detail['smallest_bytes'] / 1000:.1f} KB" in error.message
    assert "JPEG" in error.message


def test_jpeg_that_cannot_fit_even_at_quality_1_is_a_422(settings: Settings) -> None:
    # Large and pure noise: even quality 1 is far over 10 KB.
    noise = capture_of(pyvips.Image.gaussnoise(2400, 1260, sigma=90, mean=128).bandjoin([0, 255]))
    with pytest.raises(OverBudget) as caught:
        encode_within(noise, "jpeg", settings, 10)
    assert caught.value.detail["quality"] == 1
    assert caught.value.detail["smallest_bytes"] > 10_000
