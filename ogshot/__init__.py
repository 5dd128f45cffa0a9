"""ogshot: Open Graph images from HTML/CSS templates, rendered by warm Chromium pages.

Importing the package is cheap: ``sign_url`` (what a web app calls to build image URLs) needs
neither Playwright nor pyvips, and the heavier names below are imported on first use (PEP 562).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ogshot.core.version import __version__

if TYPE_CHECKING:
    from ogshot.app import create_app
    from ogshot.core.errors import OgshotError
    from ogshot.core.settings import Settings
    from ogshot.pipeline.renderer import Image, Renderer
    from ogshot.templates.meta import meta_tags
    from ogshot.templates.signing import sign_url

__all__ = [
    "Image",
    "OgshotError",
    "Renderer",
    "Settings",
    "__version__",
    "create_app",
    "meta_tags",
    "sign_url",
]

# name -> the module that defines it, imported when the name is first asked for
_LAZY = {
    "Image": "ogshot.pipeline.renderer",
    "OgshotError": "ogshot.core.errors",
    "Renderer": "ogshot.pipeline.renderer",
    "Settings": "ogshot.core.settings",
    "create_app": "ogshot.app",
    # Loads neither Playwright nor pyvips; lazy so that ``import ogshot`` stays ~8 ms, and its
    # warnings point at the caller's line, not at a wrapper here.
    "sign_url": "ogshot.templates.signing",
    "meta_tags": "ogshot.templates.meta",  # light too: sign_url and the html module
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ogshot' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
