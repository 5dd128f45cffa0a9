"""The image formats ogshot serves and their names. No pyvips here: URL signing needs the names,
and a web app that only builds URLs must not load an image library."""

from __future__ import annotations

from typing import Final

__all__ = ["CONTENT_TYPES", "FORMATS", "normalize_format"]

CONTENT_TYPES: Final = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
FORMATS: Final = tuple(CONTENT_TYPES)
_ALIASES: Final = {"png": "png", "jpg": "jpeg", "jpeg": "jpeg", "webp": "webp"}


def normalize_format(text: str) -> str | None:
    """'png' | 'jpg' | 'jpeg' | 'webp' (any case) -> the canonical name, else None."""
    return _ALIASES.get(text.lower())
