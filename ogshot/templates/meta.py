"""``meta_tags``: the ``<meta>`` tags that make an ogshot image a page's link preview.

``og:image`` (the URL signed and versioned by :func:`ogshot.templates.signing.sign_url`),
``og:image:type``, ``og:image:width``, ``og:image:height``, ``og:image:alt``, ``twitter:card``
(``summary_large_image``: without it Discord and X show a thumbnail), ``twitter:image`` and
``twitter:image:alt``; one per line, every value HTML-escaped. The output is byte for byte what
clients/js ``metaTags`` writes for the same inputs. The contrib helpers (Jinja, Django) wrap it.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from ogshot.core.errors import InvalidFormat, OgshotError
from ogshot.core.formats import CONTENT_TYPES, normalize_format
from ogshot.core.settings import Settings
from ogshot.templates.signing import local_catalog, sign_url

__all__ = ["meta_tags"]


def meta_tags(
    template: str,
    params: Mapping[str, Any],
    *,
    base: str,
    format: str = "png",
    alt: str | None = None,
    secret: str | None = None,
    version: str | None = None,
    settings: Settings | None = None,
    width: int | None = None,
    height: int | None = None,
) -> str:
    """The tags as HTML (safe to put in a page's ``<head>`` as is).

    ``base``, ``format``, ``secret``, ``version`` and ``settings`` are sign_url's: the URL is
    signed with ``secret`` or the first ``OGSHOT_SECRET`` and carries the template's current
    version. ``width``/``height`` default to the pixels of the template in
    ``settings.templates_dir`` (its declared size times its scale), else of the settings' size.
    ``alt``: the image's description (og:image:alt, twitter:image:alt), left out when empty."""
    settings = settings or Settings.load()
    fmt = normalize_format(format or "png")
    if fmt is None:
        raise InvalidFormat(f"unknown format {format!r} (use png, jpg, jpeg or webp)")
    url = sign_url(
        template, params, format, base=base, secret=secret, settings=settings, version=version
    )
    if width is None or height is None:
        pixels = _pixels(settings, template)
        width = pixels[0] if width is None else width
        height = pixels[1] if height is None else height
    tags = [
        ("property", "og:image", url),
        ("property", "og:image:type", CONTENT_TYPES[fmt]),
        ("property", "og:image:width", str(width)),
        ("property", "og:image:height", str(height)),
    ]
    if alt:
        tags.append(("property", "og:image:alt", alt))
    tags += [("name", "twitter:card", "summary_large_image"), ("name", "twitter:image", url)]
    if alt:
        tags.append(("name", "twitter:image:alt", alt))
    return "\n".join(
        f'<meta {attr}="{key}" content="{html.escape(value, quote=True)}">'
        for attr, key, value in tags
    )


def _pixels(settings: Settings, template: str) -> tuple[int, int]:
    try:
        return local_catalog(settings).get(template).size.pixels
    except OgshotError:  # not on this machine: sign_url has warned; the server's default size
        scale = settings.device_scale_factor
        return round(settings.width * scale), round(settings.height * scale)
