"""ogshot: Open Graph images from HTML/CSS templates, rendered by warm Chromium pages."""

from __future__ import annotations

__version__ = "0.1.0"

from .config import Settings
from .errors import OgshotError
from .pipeline import Image, Renderer

__all__ = ["Image", "OgshotError", "Renderer", "Settings", "__version__", "create_app"]


def create_app(settings: Settings | None = None):  # type: ignore[no-untyped-def]
    from .app import create_app as _create_app

    return _create_app(settings)
