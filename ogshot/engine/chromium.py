"""Finding the Chromium binary: the system's first, Playwright's own download as a fallback.

``python -m ogshot.engine.chromium`` prints the path and exits 0, or exits 1 when there is none;
the setup script uses it to decide whether ``playwright install chromium`` is needed.
"""

from __future__ import annotations

import glob
import os
import shutil
import sys

__all__ = ["find_chromium"]

# Headless shell first: it starts faster and carries no UI; then the full browsers.
_CANDIDATES = (
    "chromium-headless-shell",
    "chromium",
    "chromium-browser",
    "google-chrome-stable",
    "google-chrome",
)


def find_chromium() -> str | None:
    """Return the path of a usable Chromium, or None to let Playwright use its own download."""
    for name in _CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _playwright_download() -> str | None:
    base = os.environ.get("PLAYWRIGHT_BROWSERS_PATH") or os.path.expanduser(
        "~/.cache/ms-playwright"
    )
    found = sorted(glob.glob(os.path.join(base, "chromium*", "*", "chrome*")))
    return found[-1] if found else None


if __name__ == "__main__":
    path = find_chromium() or _playwright_download()
    if path is None:
        sys.exit(1)
    print(path)
