"""Finding the Chromium binary: the system's first, Playwright's own download as a fallback.

``python -m ogshot.engine.chromium`` prints the path and exits 0, or exits 1 when there is none;
the setup script uses it to decide whether ``playwright install chromium`` is needed.
"""

from __future__ import annotations

import glob
import os
import shutil
import sys

__all__ = ["find_chromium", "raster_thread_args"]

# Chromium rasterises a page's tiles on (cores / 2) threads, at least 1 and at most 4. On fewer
# than 4 cores that is one thread, and a lone miss on a blur or a big shadow draws on one core
# while the other waits. Two threads, what Chromium itself picks on 4 cores, measured on 2 cores
# (benchmarks/peers/profile.py flags, quiet, 20-30 misses each): capture 65.9 -> 42.4 and 80.0 ->
# 53.0 ms on the glow card, 55.7 -> 45.6 on the radial one, the flat, gradient and photo cards
# unchanged (flat +1 ms), the same CPU per render; saturated, 7-8 % fewer glow renders a second
# in two runs (radial +4 %): a little throughput on blurs under full load for a third off a miss.
MIN_RASTER_THREADS = 2

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


def raster_thread_args(args: list[str], cores: int | None = None) -> list[str]:
    """The switch that gives Chromium :data:`MIN_RASTER_THREADS` raster threads where it would
    pick fewer, or nothing when ``args`` already say how many (the operator's choice stands)."""
    cores = cores if cores is not None else (os.cpu_count() or 1)
    if any(a.split("=", 1)[0] == "--num-raster-threads" for a in args):
        return []
    if cores // 2 >= MIN_RASTER_THREADS:
        return []
    return [f"--num-raster-threads={MIN_RASTER_THREADS}"]


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
