"""ogshot: Open Graph images from HTML/CSS templates, rendered by warm Chromium pages.

Importing the package is cheap: ``sign_url`` (what a web app calls to build image URLs) needs
neither Playwright nor pyvips, and the heavier names below are imported on first use (PEP 562).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .version import __version__

if TYPE_CHECKING:
    from .app import create_app
    from .config import Settings
    from .errors import OgshotError
    from .pipeline import Image, Renderer
    from .signing import sign_url

__all__ = [
    "Image",
    "OgshotError",
    "Renderer",
    "Settings",
    "__version__",
    "create_app",
    "sign_url",
]

# name -> the module that defines it, imported when the name is first asked for
_LAZY = {
    "Image": ".pipeline",
    "OgshotError": ".errors",
    "Renderer": ".pipeline",
    "Settings": ".config",
    "create_app": ".app",
    # Loads neither Playwright nor pyvips; lazy so that ``import ogshot`` stays ~8 ms, and its
    # warnings point at the caller's line, not at a wrapper here.
    "sign_url": ".signing",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ogshot' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
