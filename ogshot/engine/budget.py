"""An encode that fits a byte budget (``max_kb``, see ``ogshot.templates.budgets``).

- JPEG and WebP: the highest quality at or below the configured one whose bytes fit, found by a
  binary search over the quality on the same pixels (deterministic: the same capture gives the
  same answer, which is why the result may be cached under a key that names the budget). The
  configured quality is tried first, so an image that already fits costs one encode.
- PNG: truecolour first, then palettes of decreasing colours (256, 16), undithered; when even the
  smallest palette is over, OverBudget (422) names the smallest size reached and suggests JPEG.

Pure and synchronous, like ``encode``: run it off the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyvips

from ogshot.core.errors import OverBudget
from ogshot.core.settings import Settings
from ogshot.engine.encode import Scanlines, encode, encode_pixels
from ogshot.templates.budgets import BUDGET_PARAM, KB

__all__ = ["PALETTES", "Fitted", "encode_within"]

PALETTES = (256, 16)  # colours tried in turn when a truecolour PNG is over its budget
LOWEST_QUALITY = 1


@dataclass(frozen=True)
class Fitted:
    body: bytes
    # What was chosen, for the X-Ogshot-Quality header: the JPEG/WebP quality ("72"), or for PNG
    # "truecolour" or "palette-256".
    quality: str


def encode_within(captured: bytes, fmt: str, settings: Settings, max_kb: int) -> Fitted:
    """Encode ``captured`` (Chromium's PNG) as ``fmt`` in at most ``max_kb`` KB, or OverBudget."""
    limit = max_kb * KB
    if fmt == "png":
        return _png_within(captured, settings, limit, max_kb)
    top = settings.jpeg_quality if fmt == "jpeg" else settings.webp_quality
    field = "jpeg_quality" if fmt == "jpeg" else "webp_quality"
    image = _pixels(captured)  # decoded once, encoded at each quality tried

    def at(quality: int) -> bytes:
        return encode_pixels(image, fmt, settings.replace(**{field: quality}))

    body = at(top)
    if len(body) <= limit:
        return Fitted(body, str(top))
    smallest = at(LOWEST_QUALITY)
    if len(smallest) > limit:
        raise OverBudget(
            f"the smallest {fmt.upper()} of this image is {_kb(len(smallest))} (quality "
            f"{LOWEST_QUALITY}), over {BUDGET_PARAM}={max_kb}: raise {BUDGET_PARAM} or simplify "
            "the design (photos and noise cost the most bytes)",
            detail={
                BUDGET_PARAM: max_kb,
                "smallest_bytes": len(smallest),
                "format": fmt,
                "quality": LOWEST_QUALITY,
            },
        )
    # Invariant: quality `low` fits (its bytes in `best`), `high` does not.
    low, high, best = LOWEST_QUALITY, top, smallest
    while high - low > 1:
        middle = (low + high) // 2
        body = at(middle)
        if len(body) <= limit:
            low, best = middle, body
        else:
            high = middle
    return Fitted(best, str(low))


def _pixels(captured: bytes) -> pyvips.Image:
    lines = Scanlines.read(captured)
    if lines is not None:
        return lines.image().copy_memory()
    image = pyvips.Image.new_from_buffer(captured, "")
    if image.hasalpha():
        image = image.flatten(background=[255, 255, 255])
    return image.copy_memory()


def _png_within(captured: bytes, settings: Settings, limit: int, max_kb: int) -> Fitted:
    first = f"palette-{settings.png_colours}" if settings.png_colours else "truecolour"
    body = encode(captured, "png", settings)
    if len(body) <= limit:
        return Fitted(body, first)
    tried = [(first, len(body))]
    for colours in PALETTES:
        if settings.png_colours and colours >= settings.png_colours:
            continue  # no smaller than what was just tried
        body = encode(captured, "png", settings.replace(png_colours=colours))
        if len(body) <= limit:
            return Fitted(body, f"palette-{colours}")
        tried.append((f"palette-{colours}", len(body)))
    how, smallest = min(tried, key=lambda t: t[1])
    raise OverBudget(
        f"no PNG of this image fits {BUDGET_PARAM}={max_kb}: the smallest is {_kb(smallest)} "
        f"({how}); use JPEG (.jpg), which fits photographic images into far fewer bytes, or "
        f"raise {BUDGET_PARAM}",
        detail={
            BUDGET_PARAM: max_kb,
            "smallest_bytes": smallest,
            "format": "png",
            "tried": dict(tried),
            "suggestion": "jpeg",
        },
    )


def _kb(size: int) -> str:
    return f"{size / KB:.1f} KB"
