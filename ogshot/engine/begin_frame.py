"""Pages that draw only the frames we ask for (``OGSHOT_BEGIN_FRAME``).

A normal page draws on its own clock; with ``--disable-frame-rate-limit`` (which saves a capture
the wait for a vsync tick) Chromium goes on drawing for 10-20 ms after every capture, ~15 ms of
browser and ~17 ms of GPU-process CPU a render. A page created with ``enableBeginFrameControl``
draws nothing until it is sent ``HeadlessExperimental.beginFrame``, and that call can return the
frame's pixels itself: one frame drawn a render, and it is the capture.

What that takes:

- Chromium launched with ``--run-all-compositor-stages-before-draw`` and the rest of
  :data:`LAUNCH_ARGS`: a begin frame then runs the main frame (style, layout, paint, rAF
  callbacks) and rasterises all of it before it draws, so the frame shows the whole current
  document. Without it Chromium refuses the call. ``--disable-frame-rate-limit`` goes
  (:data:`DROPPED_ARGS`).
- The page created by ``Target.createTarget`` in the context's browserContextId over a browser
  CDP session: Playwright's ``new_page`` has no such option. Playwright attaches to the target
  like to any other of its context, so the ``Page`` it gives keeps the context's routes (the
  page's request router), viewport, crash and popup events.
- Frames while the page waits to be ready: ``requestAnimationFrame`` callbacks and CSS animations
  only advance on a frame, so :func:`pump` sends frames while the readiness promise is pending; a
  template that draws in rAF and resolves ``window.ogshotReady`` after it still gets its frames.
  They are ordinary frames: with ``noDisplayUpdates`` the page committed its new content without
  drawing it, and the capture frames after it reported no damage, no pixels, and then the
  previous document's pixels.
- A frame can show the page as it was a frame earlier: a plain frame is drawn before the captured
  one, and a scripted document is captured until two frames agree (see :func:`shot_frame`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from playwright.async_api import BrowserContext, Page

from ogshot.core.errors import BrowserError

__all__ = ["DROPPED_ARGS", "LAUNCH_ARGS", "open_page", "pump", "shot_frame"]

T = TypeVar("T")

# Headless Chromium's own --deterministic-mode, less --enable-begin-frame-control (which would put
# every page under begin-frame control, page screenshots of URLs included): images decoded in
# the frame that first shows them rather than a later one (checker imaging), animations advanced
# on the main thread by our frames only.
LAUNCH_ARGS = (
    "--run-all-compositor-stages-before-draw",
    "--disable-checker-imaging",
    "--disable-threaded-animation",
    "--disable-threaded-scrolling",
    "--disable-image-animation-resync",
    "--disable-new-content-rendering-timeout",
)
# Switches of playwright.config.json's launch_args dropped under begin-frame control. Measured:
# with --disable-frame-rate-limit beside --run-all-compositor-stages-before-draw an idle Chromium
# with one begin-frame page used 200-600 ms of CPU a second (the display compositor drawing
# without a limit); without it, none. Our pages draw only when asked, so it saves them nothing.
DROPPED_ARGS = ("--disable-frame-rate-limit",)

# Seconds a readiness wait runs before frames are pumped for it: most documents are ready within
# a few ms without one (fonts and images load and decode without frames), and a pumped frame
# costs a main frame of CPU.
PUMP_AFTER = 0.004
PUMP_EVERY = 1 / 60  # then one frame per display tick, as a page on its own clock would get
# Frames asked for before a capture without pixels is given up (Chromium returns no screenshot
# when it could not draw one, e.g. while the page is being torn down).
FRAME_TRIES = 3
SETTLE_FRAMES = 8  # frames a scripted document is given to show the same pixels twice

Send = Callable[[str, "dict[str, Any] | None"], Awaitable[dict[str, Any]]]


async def open_page(context: BrowserContext) -> Page:
    """A page of ``context`` under begin-frame control, as Playwright's own ``Page``.

    Playwright does not tell a context's CDP id, so a first page is opened to ask for it, then
    closed: it costs the slot's creation ~10-20 ms, never a render."""
    first = await context.new_page()
    session = await context.new_cdp_session(first)
    info = await session.send("Target.getTargetInfo")
    await session.detach()
    browser = context.browser
    if browser is None:  # only a persistent context has none; the pool never makes one
        raise BrowserError("a begin-frame page needs a browser context of a launched browser")
    target = await browser.new_browser_cdp_session()
    try:
        async with context.expect_page() as opened:
            await target.send(
                "Target.createTarget",
                {
                    "url": "about:blank",
                    "browserContextId": info["targetInfo"]["browserContextId"],
                    "enableBeginFrameControl": True,
                },
            )
        page = await opened.value
    finally:
        await target.detach()
    await first.close()
    return page


async def pump(send: Send, waiting: Awaitable[T]) -> T:
    """Await ``waiting`` (the readiness evaluation), sending the page frames that draw nothing
    while it runs, so rAF callbacks, animations and transitions advance."""
    task = asyncio.ensure_future(waiting)
    try:
        done, _ = await asyncio.wait({task}, timeout=PUMP_AFTER)
        while not done:
            await send("HeadlessExperimental.beginFrame", {})
            done, _ = await asyncio.wait({task}, timeout=PUMP_EVERY)
        return task.result()
    finally:
        if not task.done():
            task.cancel()
        elif not task.cancelled():
            task.exception()  # a crash fails both at once: the frame's error is the one raised


async def shot_frame(send: Send, screenshot: dict[str, Any], *, scripted: bool) -> str:
    """Draw the frame to capture and return its pixels (base64, in ``screenshot``'s format).

    The first frame after the document is ready can show the page as it was before: seen, with
    the readiness promise already resolved, the previous document (the first frame after
    ``Page.setDocumentContent``), a card without its CSS-masked glow image, a canvas as an earlier
    rAF callback left it. So one frame is drawn first without pixels (no readback, no encode),
    then the captured one; frames that come without pixels (``hasDamage`` false) are asked again.

    ``scripted``: a document that ran scripts can still change between frames (a canvas filled in
    the last rAF callback came out one callback late even after plain frames, under load), so
    frames are captured until two in a row agree, at most :data:`SETTLE_FRAMES`; a page that
    never stops changing (an endless animation) gets its latest frame."""
    await send("HeadlessExperimental.beginFrame", {})
    last: str | None = None
    empty = 0
    for _ in range(SETTLE_FRAMES if scripted else FRAME_TRIES):
        frame = await send("HeadlessExperimental.beginFrame", {"screenshot": screenshot})
        data = frame.get("screenshotData")
        if not isinstance(data, str) or not data:
            empty += 1
            if empty >= FRAME_TRIES:
                break
            continue
        if not scripted or data == last:
            return data
        last = data
    if last is not None:
        return last
    raise BrowserError(f"Chromium drew no frame with pixels in {empty} begin frames")
