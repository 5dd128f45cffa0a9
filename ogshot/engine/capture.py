"""One page + one HTML document -> the captured pixels, within a deadline.

How the document gets into the page decides most of the cost of a render:

- ``set_content`` (``document.write`` into the warm page) takes ~8 ms; a navigation, which builds a
  fresh window, takes ~40 ms. A template without scripts leaves nothing behind in the window, so it
  is written into the page; a document with scripts (or following one) gets a fresh navigation, so
  no global, timer or listener of one render survives into the next.
- We then wait for web fonts, images and an optional ``window.ogshotReady`` promise. No animation
  frame is awaited: the capture itself produces a fresh frame.
- The capture goes over CDP (``Page.captureScreenshot`` with ``optimizeForSpeed``, a fast lossless
  PNG), not Playwright's ``page.screenshot``. Every format starts from it (encode.py encodes),
  except a JPEG with ``jpeg_encoder = "chromium"`` (the default): Chromium then encodes a baseline
  JPEG at ``jpeg_quality`` itself (a fifth of the PNG's bytes to relay, no encode after), which
  jpeg_repack.py makes progressive losslessly.

The page's document state (which document a navigation gets, whether it ran scripts, the static
folder it last saw) lives in the page's :class:`~ogshot.engine.page.Document`; this module loads
documents through it.

With ``begin_frame`` (``OGSHOT_BEGIN_FRAME``) the page draws no frame until asked: frames are sent
while it gets ready, and the capture comes from ``HeadlessExperimental.beginFrame`` with the same
format options instead (begin_frame.py).
"""

from __future__ import annotations

import asyncio
import base64
import re
from dataclasses import dataclass, field
from typing import Any

from playwright.async_api import Error as PlaywrightError

from ogshot.core.errors import BrowserError, RenderTimeout, TemplateError
from ogshot.core.stopwatch import Stopwatch
from ogshot.engine import begin_frame
from ogshot.engine.page_scripts import FIT_JS, PROBE_JS
from ogshot.engine.pool import Slot
from ogshot.templates.declarations import Size

__all__ = ["Capture", "capture"]

# Resolves when the page is ready to be photographed: loaded, web fonts ready, every image decoded
# (``<img>`` and images that only CSS asks for: backgrounds, masks, borders, ``content``, on
# elements and their ::before/::after; those may be fetched only when style is first computed,
# after the load event). Templates that draw with JavaScript can set ``window.ogshotReady`` to a
# promise; it is awaited too.
READY_JS = r"""(async () => {
  if (document.readyState !== "complete") {
    await new Promise((resolve) => window.addEventListener("load", resolve, { once: true }));
  }
  // A document written in place can report "complete" before its stylesheets have arrived.
  await Promise.all(Array.from(document.querySelectorAll('link[rel~="stylesheet"]'), (link) =>
    link.sheet ? null : new Promise((resolve) => {
      link.addEventListener("load", resolve, { once: true });
      link.addEventListener("error", resolve, { once: true });
    })));
  await document.fonts.ready;
  const urls = new Set();
  const collect = (value) => {
    for (const match of (value || "").matchAll(/url\(\s*(["']?)(.*?)\1\s*\)/g)) urls.add(match[2]);
  };
  for (const element of document.querySelectorAll("*")) {
    for (const pseudo of [null, "::before", "::after"]) {
      const style = getComputedStyle(element, pseudo);
      collect(style.backgroundImage);
      collect(style.maskImage || style.webkitMaskImage);
      collect(style.borderImageSource);
      collect(style.listStyleImage);
      collect(style.content);
    }
  }
  const decode = (img) => img.decode().catch(() => null);
  await Promise.all([...urls].map((url) => {
    const img = new Image();
    img.src = url;
    return decode(img);
  }));
  await Promise.all(Array.from(document.images, (img) => img.complete ? null : decode(img)));
  if (window.ogshotReady && typeof window.ogshotReady.then === "function") {
    await window.ogshotReady;
  }
})()"""
READY_JS = f"{READY_JS}.then(() => {{ {FIT_JS} }})"  # then shrink text to fit: see fit.py
# ...and then look at what is on the page for glyphs.py, in the same round trip (~2 ms less than
# a second Runtime.evaluate): the promise resolves to PROBE_JS's answer.
READY_JS = f"{READY_JS}.then(() => {PROBE_JS})"

# Anything that can run code in the page. Parameters are escaped before they reach the HTML, so a
# match comes from the template itself (or, harmlessly, from escaped text that only looks like it).
_SCRIPTED = re.compile(rb"<script\b|\son[a-z]+\s*=|javascript:", re.IGNORECASE)


@dataclass
class Capture:
    body: bytes  # a lossless PNG, or the final JPEG when Chromium was asked to encode one
    format: str = "png"
    timings: dict[str, float] = field(default_factory=dict)  # stage -> milliseconds
    # What glyphs.py checks: the visible text's non-ASCII code points, and the images that
    # failed (refused or 404 by the router, or an <img> that decoded to nothing).
    codes: list[int] = field(default_factory=list)
    failed_images: list[str] = field(default_factory=list)
    # Stylesheets, scripts, fonts and frames that were refused or got a 404.
    failed_resources: list[str] = field(default_factory=list)

    @property
    def png(self) -> bytes:
        """The lossless capture."""
        if self.format != "png":
            raise ValueError(f"this capture is a {self.format}, not a lossless PNG")
        return self.body


async def capture(
    slot: Slot,
    html: str,
    *,
    time_limit: float,
    template: str = "",
    static_digest: str = "",
    jpeg_quality: int | None = None,
    size: Size | None = None,
) -> Capture:
    """Render ``html`` in ``slot`` and capture the viewport: a lossless PNG, or with
    ``jpeg_quality`` a baseline JPEG that Chromium encodes itself (faster than capturing a PNG and
    encoding it again, at the same SSIM and size).

    ``static_digest`` names the static folder's content: a warm page keeps the static files it
    has loaded (Blink's memory cache survives a rewritten document), so when the folder changed
    since the page's last render its cache is emptied first, or the new cache key would get an
    image drawn with the old CSS.

    ``size``: the template's viewport and scale (None: the page's own, from the settings); the
    page is switched to it when it shows another (``Emulation.setDeviceMetricsOverride``, one CDP
    call)."""
    watch = Stopwatch()
    document = slot.document
    body = html.encode()
    if jpeg_quality is None:
        shot_params: dict[str, Any] = {"format": "png", "optimizeForSpeed": True}
    else:
        shot_params = {"format": "jpeg", "quality": jpeg_quality, "optimizeForSpeed": True}
    try:
        async with asyncio.timeout(time_limit):
            if document.static_changed(static_digest):
                await _send(slot, "Network.clearBrowserCache")
            wanted = size or document.base_size
            if slot.begin_frame and wanted is not None and wanted.scale != 1:
                # A begin frame's screenshot is in CSS pixels: the image would come out 1x.
                raise TemplateError(
                    f"scale {wanted.scale:g} cannot be drawn with OGSHOT_BEGIN_FRAME on "
                    "(begin-frame captures are at scale 1); declare scale = 1 or turn it off",
                    template=template,
                )
            if wanted is not None and document.size != wanted:
                await _resize(slot, wanted)
                watch.lap("resize")
            url = document.load(body, scripted=_SCRIPTED.search(body) is not None)
            if url is not None:
                await slot.page.goto(url, wait_until="load", timeout=0)
            else:
                await _write(slot, html)
            watch.lap("load")
            if slot.begin_frame:
                probe = _probe(await begin_frame.pump(_sender(slot), _ready(slot, template)))
                watch.lap("ready")
                data = await begin_frame.shot_frame(
                    _sender(slot), shot_params, scripted=document.scripted
                )
            else:
                probe = _probe(await _ready(slot, template))
                watch.lap("ready")
                data = (await _send(slot, "Page.captureScreenshot", shot_params))["data"]
            watch.lap("capture")
    except TimeoutError:
        slot.broken = True
        raise RenderTimeout(f"render did not finish within {time_limit:g} s") from None
    except PlaywrightError as exc:
        slot.broken = True
        raise BrowserError(f"browser error: {_first_line(exc)}") from exc
    failed = [*document.failed_images, *probe.get("broken", [])]
    return Capture(
        base64.b64decode(data),
        shot_params["format"],
        watch.timings,
        codes=probe.get("codes", []),
        failed_images=list(dict.fromkeys(failed)),
        failed_resources=list(document.failed_resources),
    )


async def _send(slot: Slot, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """A CDP call on the slot's page that fails fast when the page crashes or Chromium dies.

    Playwright's own page methods notice a crash; a raw CDP session keeps waiting for ever."""
    call = asyncio.ensure_future(slot.cdp.send(method, params))
    gone = asyncio.ensure_future(slot.gone.wait())
    try:
        await asyncio.wait((call, gone), return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not call.done():
            call.cancel()
    if call.done() and not call.cancelled():
        result: dict[str, Any] = call.result()
        return result
    raise BrowserError("the page crashed or Chromium died during the render")


def _sender(slot: Slot) -> begin_frame.Send:
    async def send(method: str, params: dict[str, Any] | None) -> dict[str, Any]:
        return await _send(slot, method, params)

    return send


async def _write(slot: Slot, html: str) -> None:
    """Replace the page's document in place: one CDP call, where Playwright's ``set_content``
    makes several round trips (measured: 5.7 ms against 8.4 ms with the readiness wait)."""
    document = slot.document
    if document.frame_id is None:
        tree = await _send(slot, "Page.getFrameTree")
        document.frame_id = tree["frameTree"]["frame"]["id"]
    await _send(slot, "Page.setDocumentContent", {"frameId": document.frame_id, "html": html})


async def _resize(slot: Slot, size: Size) -> None:
    params = {
        "width": size.width,
        "height": size.height,
        "deviceScaleFactor": size.scale,
        "mobile": False,
    }
    await _send(slot, "Emulation.setDeviceMetricsOverride", params)
    slot.document.size = size


def _probe(value: Any) -> dict[str, Any]:
    """What glyphs.py checks (PROBE_JS's answer, at the end of READY_JS), made safe to use."""
    if not isinstance(value, dict):  # a template's script may have replaced what PROBE_JS uses
        return {}
    codes, broken = value.get("codes"), value.get("broken")
    codes = codes if isinstance(codes, list) else []
    broken = broken if isinstance(broken, list) else []
    return {
        "codes": [c for c in codes if isinstance(c, int) and 0 <= c <= 0x10FFFF],
        "broken": [u for u in broken if isinstance(u, str)][:64],
    }


async def _ready(slot: Slot, template: str) -> Any:
    """Wait until the page is ready to be photographed; PROBE_JS's answer."""
    result = await _send(
        slot,
        "Runtime.evaluate",
        {"expression": READY_JS, "awaitPromise": True, "returnByValue": True},
    )
    details = result.get("exceptionDetails")
    if details:  # window.ogshotReady rejected: the template's own failure, not the browser's
        exception = details.get("exception", {})
        message = exception.get("description") or details.get("text") or "rejected"
        raise TemplateError(
            f"window.ogshotReady failed: {_first_line(Exception(message))}", template=template
        )
    return result.get("result", {}).get("value")


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
