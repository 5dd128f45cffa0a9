"""One page + one HTML document -> the captured pixels (PNG bytes), within a deadline.

The document is navigated to (a fresh window each time, so no script or timer of the previous
render survives), then we wait until web fonts, images and an optional ``window.ogshotReady``
promise have settled and one frame has been painted, and capture the viewport over CDP.
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass, field

from playwright.async_api import Error as PlaywrightError

from .errors import BrowserError, RenderTimeout
from .pool import Slot
from .timing import Stopwatch

__all__ = ["Capture", "capture"]

# Resolves when the page is ready to be photographed. Templates that draw with JavaScript can set
# ``window.ogshotReady`` to a promise; it is awaited too.
READY_JS = """async () => {
  await document.fonts.ready;
  await Promise.all(Array.from(document.images, (img) =>
      img.complete ? null : img.decode().catch(() => null)));
  if (window.ogshotReady && typeof window.ogshotReady.then === "function") {
    await window.ogshotReady;
  }
  await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
}"""


@dataclass
class Capture:
    png: bytes
    timings: dict[str, float] = field(default_factory=dict)  # stage -> milliseconds


async def capture(slot: Slot, html: str, *, time_limit: float) -> Capture:
    """Render ``html`` in ``slot`` and return a lossless capture of the viewport."""
    watch = Stopwatch()
    try:
        async with asyncio.timeout(time_limit):
            slot.document = html.encode()
            await slot.page.goto(slot.next_document_url(), wait_until="load", timeout=0)
            watch.lap("load")
            await slot.page.evaluate(READY_JS)
            watch.lap("ready")
            shot = await slot.cdp.send(
                "Page.captureScreenshot",
                {"format": "png", "optimizeForSpeed": True, "captureBeyondViewport": False},
            )
            watch.lap("capture")
    except TimeoutError:
        slot.broken = True
        raise RenderTimeout(f"render did not finish within {time_limit:g} s") from None
    except PlaywrightError as exc:
        slot.broken = True
        raise BrowserError(f"browser error: {_first_line(exc)}") from exc
    return Capture(base64.b64decode(shot["data"]), watch.timings)


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
