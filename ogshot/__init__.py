"""ogshot: Open Graph images from HTML/CSS templates, rendered by warm Chromium pages."""

from __future__ import annotations

__version__ = "0.1.0"

from collections.abc import Mapping
from typing import Any

from .config import Settings
from .errors import OgshotError
from .pipeline import Image, Renderer

__all__ = [
    "Image",
    "OgshotError",
    "Renderer",
    "Settings",
    "__version__",
    "create_app",
    "sign_url",
]


def create_app(settings: Settings | None = None):  # type: ignore[no-untyped-def]
    from .app import create_app as _create_app

    return _create_app(settings)


def sign_url(
    template: str,
    params: Mapping[str, Any],
    format: str = "png",
    *,
    base: str = "",
    secret: str | None = None,
    settings: Settings | None = None,
    validate: bool = False,
) -> str:
    """The /og URL of ``template`` with ``params`` (see ``ogshot.signing.sign_url``)."""
    from .signing import sign_url as _sign_url

    return _sign_url(
        template,
        params,
        format,
        base=base,
        secret=secret,
        settings=settings,
        validate=validate,
    )
