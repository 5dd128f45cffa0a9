"""The warm Chromium pages: launch once, lend a page, take it back, replace a broken one.

One Chromium process, ``pool_size`` pages, each in its own browser context (separate storage,
separate crash domain). Requests that find no idle page wait in a bounded queue; when the queue
is full, or the wait is longer than ``queue_timeout``, they get :class:`Overloaded` at once.

A page that raised, timed out or crashed is closed and replaced in the background. When Chromium
itself dies, every page of that browser is dropped and a new browser is launched. A health probe
asks the browser a trivial question every ``health_interval`` seconds; a browser that is alive but
does not answer within ``health_timeout`` is killed (and so relaunched). After ``recycle_after``
renders a fresh Chromium is started beside the old one, new renders go to it, and the old one is
closed once its in-flight renders have come back: no request is dropped.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from playwright.async_api import (
    Browser,
    BrowserContext,
    CDPSession,
    Page,
    Playwright,
    Route,
    async_playwright,
)
from playwright.async_api import Error as PlaywrightError

from .assets import DOCUMENT_PREFIX, ORIGIN, Assets
from .chromium import find_chromium
from .config import Settings
from .errors import BrowserError, Overloaded

__all__ = ["Pool", "Slot"]

T = TypeVar("T")

log = logging.getLogger("ogshot.pool")

BLANK_URL = f"{DOCUMENT_PREFIX}blank"
SCRUB_TIMEOUT = 2.0  # seconds to clear a page's storage before it is replaced instead
_BLANK = b"<!doctype html><html><body></body></html>"


@dataclass(eq=False)
class Slot:
    """One warm page and what the pool knows about it."""

    id: int
    generation: int
    context: BrowserContext
    page: Page
    cdp: CDPSession
    document: bytes = _BLANK  # what the next navigation to a document URL is answered with
    scripted: bool = False  # the current document may have left state in the window
    frame_id: str | None = None  # the main frame's CDP id, looked up once
    static_digest: str | None = None  # of the static folder when this page last rendered
    # Set when the page crashes or its browser dies: a raw CDP call would wait for ever then.
    gone: asyncio.Event = field(default_factory=asyncio.Event)
    # A remote image was shown: the document keeps it by URL ("list of available images") even
    # when the bytes behind the URL change, so the next render needs a fresh document.
    showed_remote: bool = False
    renders: int = 0
    broken: bool = False
    busy_since: float | None = None
    _seq: itertools.count[int] = field(default_factory=itertools.count)

    def next_document_url(self) -> str:
        return f"{DOCUMENT_PREFIX}{self.id}/{next(self._seq)}"


class Pool:
    def __init__(self, settings: Settings, assets: Assets) -> None:
        self.settings = settings
        self.assets = assets
        self.size = settings.pool_size
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self._generation = 0
        self._idle: collections.deque[Slot] = collections.deque()
        self._waiters: collections.deque[asyncio.Future[Slot]] = collections.deque()
        self._slots: set[Slot] = set()
        self._starting = 0  # slots being created
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False
        self._relaunch_lock = asyncio.Lock()
        self._browser_pid: int | None = None
        self._probe: CDPSession | None = None
        # Every Chromium we started (pid -> its own process group, if it has one), so that none
        # outlives us.
        self._pids: dict[int, int | None] = {}
        self._browser_renders = 0  # renders on the current browser, for recycling
        self._recycling = False
        self._draining: dict[int, asyncio.Event] = {}  # old generation -> all its pages are back
        self.renders = 0
        self.browser_launches = 0
        self.browser_restarts = 0  # after a crash or a failed health probe
        self.browser_recycles = 0  # after recycle_after renders
        self.probe_failures = 0
        self.pages_replaced = 0
        self.rejected = 0

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._playwright = await async_playwright().start()
        try:
            await self._launch()
            await self._refill()
        except BaseException:
            await self.close()
            raise
        if self.settings.health_interval > 0:
            self._spawn(self._watch())

    async def close(self) -> None:
        self._closing = True
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(Overloaded("ogshot is shutting down", retry_after=5))
        self._waiters.clear()
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._browser is not None:
            await self._close_browser(self._browser, self._browser_pid)
            self._browser = None
        if self._playwright is not None:
            with contextlib.suppress(Exception):
                await self._playwright.stop()
            self._playwright = None
        for pid in list(self._pids):
            self._kill(pid)
        self._idle.clear()
        self._slots.clear()

    @property
    def ready(self) -> bool:
        return self._browser is not None and self._browser.is_connected() and not self._closing

    @property
    def browser_pid(self) -> int | None:
        """The process id of the current Chromium (None when unknown)."""
        return self._browser_pid

    def stats(self) -> dict[str, Any]:
        busy = len(self._slots) - len(self._idle)
        return {
            "size": self.size,
            "idle": len(self._idle),
            "busy": busy,
            "starting": self._starting,
            "queued": sum(1 for w in self._waiters if not w.done()),
            "queue_limit": self.settings.effective_queue_size,
            "renders": self.renders,
            "browser_launches": self.browser_launches,
            "browser_restarts": self.browser_restarts,
            "browser_recycles": self.browser_recycles,
            "browser_renders": self._browser_renders,
            "recycle_after": self.settings.recycle_after,
            "probe_failures": self.probe_failures,
            "pages_replaced": self.pages_replaced,
            "rejected": self.rejected,
        }

    # -- lending ---------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def lease(self) -> AsyncIterator[Slot]:
        """Borrow a page for one render. An exception inside marks the page broken."""
        slot = await self._acquire()
        slot.busy_since = time.monotonic()
        try:
            yield slot
        except BaseException:
            slot.broken = True
            raise
        finally:
            slot.busy_since = None
            slot.renders += 1
            self.renders += 1
            self._count_render(slot)
            self._release(slot)

    async def run(self, work: Callable[[Slot, float], Awaitable[T]], *, time_limit: float) -> T:
        """``await work(slot, seconds_left)`` on a leased page.

        When the page or the whole browser fails under it (BrowserError: a crash, a killed
        Chromium), the work is tried once more on a fresh page within what is left of
        ``time_limit``: a render has no side effects, so repeating it is safe. A timeout is not
        retried: the template itself is slow, and a second try would only double the wait."""
        started: float | None = None
        for attempt in (1, 2):
            try:
                async with self.lease() as slot:
                    if started is None:
                        started = time.monotonic()
                    return await work(slot, time_limit - (time.monotonic() - started))
            except BrowserError as exc:
                left = time_limit - (time.monotonic() - (started or 0.0))
                if attempt == 2 or left < 1.0:
                    raise
                log.warning("render failed (%s); trying once more on a fresh page", exc.message)
        raise AssertionError("unreachable")

    async def _acquire(self) -> Slot:
        if self._closing:
            raise Overloaded("ogshot is shutting down", retry_after=5)
        while self._idle:
            slot = self._idle.popleft()
            if self._usable(slot):
                return slot
            self._discard(slot)
        if len(self._waiters) >= self.settings.effective_queue_size:
            self.rejected += 1
            raise Overloaded(
                f"all {self.size} pages are busy and {len(self._waiters)} requests are waiting",
                retry_after=1,
            )
        waiter: asyncio.Future[Slot] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self.settings.queue_timeout):
                return await waiter
        except BaseException as exc:
            # Timed out or cancelled just as a page was handed over: pass it on.
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._hand_over(waiter.result())
            if isinstance(exc, TimeoutError):
                self.rejected += 1
                raise Overloaded(
                    f"no page became free within {self.settings.queue_timeout:g} s", retry_after=2
                ) from None
            raise
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)

    def _release(self, slot: Slot, *, scrubbed: bool = False) -> None:
        if not self._usable(slot):
            self._discard(slot)
            return
        if not scrubbed and _left_state(slot):
            slot.scripted = True  # so the next render also gets a fresh window
        if slot.scripted and not scrubbed:
            # Its storage is wiped before the next render gets the page (off the request's path:
            # the result is already on its way to the encoder).
            self._spawn(self._scrub_then_release(slot))
            return
        self._hand_over(slot)

    async def _scrub_then_release(self, slot: Slot) -> None:
        try:
            async with asyncio.timeout(SCRUB_TIMEOUT):
                await scrub(slot)
        except (TimeoutError, PlaywrightError) as exc:
            _mark_broken(slot, f"could not clear its storage ({exc or 'timeout'})")
        self._release(slot, scrubbed=True)

    def _hand_over(self, slot: Slot) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(slot)
                return
        self._idle.append(slot)

    def _usable(self, slot: Slot) -> bool:
        return (
            not slot.broken
            and not self._closing
            and slot.generation == self._generation
            and not slot.page.is_closed()
        )

    # -- replacing -------------------------------------------------------------------------

    def _discard(self, slot: Slot) -> None:
        self._slots.discard(slot)
        with contextlib.suppress(ValueError):
            self._idle.remove(slot)
        if self._closing:
            return
        if slot.broken:
            self.pages_replaced += 1
        self._check_drained(slot.generation)
        self._spawn(self._close_context(slot.context))
        self._spawn(self._refill())

    def _check_drained(self, generation: int) -> None:
        drained = self._draining.get(generation)
        if drained is not None and not any(s.generation == generation for s in self._slots):
            drained.set()

    async def _close_context(self, context: BrowserContext) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(context.close(), 5)

    async def _refill(self, delay: float = 0.0) -> None:
        if delay:
            await asyncio.sleep(delay)
        if self._closing or self._browser is None or not self._browser.is_connected():
            return
        missing = self.size - len(self._slots) - self._starting
        if missing > 0:
            # Reserve the places now, so that a refill running beside this one does not open
            # the same pages a second time.
            self._starting += missing
            await asyncio.gather(
                *(self._add_slot() for _ in range(missing)), return_exceptions=True
            )

    async def _add_slot(self) -> None:
        """Open one page in a place already reserved in ``_starting``."""
        try:
            slot = await self._new_slot()
        except Exception as exc:
            log.warning("could not open a page: %s", exc)
            if self._browser is not None and not self._browser.is_connected():
                self._spawn(self._relaunch())
            else:
                self._spawn(self._refill(delay=0.5))
            return
        finally:
            self._starting -= 1
        if self._closing:
            await self._close_context(slot.context)
            return
        self._slots.add(slot)
        self._hand_over(slot)

    async def _new_slot(self) -> Slot:
        browser = self._browser
        if browser is None:
            raise BrowserError("Chromium is not running")
        generation = self._generation
        context = await browser.new_context(
            viewport={"width": self.settings.width, "height": self.settings.height},
            device_scale_factor=self.settings.device_scale_factor,
            java_script_enabled=True,
            service_workers="block",
            accept_downloads=False,
            bypass_csp=False,
        )
        try:
            page = await context.new_page()
            cdp = await context.new_cdp_session(page)
            slot = Slot(
                id=next(self._ids), generation=generation, context=context, page=page, cdp=cdp
            )
            await context.route("**/*", self._router(slot))
            page.on("crash", lambda _page: _mark_gone(slot, "page crashed"))
            page.on("popup", lambda popup: self._spawn(_close_quietly(popup)))
            await page.goto(BLANK_URL)
        except BaseException:
            await self._close_context(context)
            raise
        return slot

    def _router(self, slot: Slot) -> Callable[[Route], Awaitable[None]]:
        assets = self.assets

        async def route(route: Route) -> None:
            url = route.request.url
            try:
                if url.startswith(DOCUMENT_PREFIX) and route.request.is_navigation_request():
                    await route.fulfill(
                        status=200,
                        body=slot.document,
                        headers={"content-type": "text/html; charset=utf-8"},
                    )
                    return
                asset = await assets.answer(url, route.request.resource_type)
                if asset is not None:
                    slot.showed_remote |= asset.remote
                    await route.fulfill(status=200, body=asset.body, headers=asset.headers)
                    return
                if url.startswith(ORIGIN):
                    await route.fulfill(status=404, body=b"not found")
                    return
                await route.abort("blockedbyclient")
            except PlaywrightError:
                pass  # the page went away while we answered

        return route

    # -- the browser -----------------------------------------------------------------------

    async def _launch(self) -> None:
        """Start a Chromium and make it the current one (its pages are opened by the caller)."""
        assert self._playwright is not None
        executable = self.settings.executable_path or find_chromium()
        browser = await self._playwright.chromium.launch(
            executable_path=executable,
            headless=True,
            args=list(self.settings.launch_args),
            handle_sigint=False,
            handle_sigterm=False,
            handle_sighup=False,
        )
        probe: CDPSession | None = None
        pid: int | None = None
        try:
            probe = await browser.new_browser_cdp_session()
            info = await probe.send("SystemInfo.getProcessInfo")
            pid = next(
                (int(p["id"]) for p in info.get("processInfo", []) if p.get("type") == "browser"),
                None,
            )
        except PlaywrightError as exc:
            log.warning("could not learn Chromium's process id: %s", exc)
        if self._closing:
            await self._close_browser(browser, pid)
            raise BrowserError("ogshot is shutting down")
        if pid is not None:
            group: int | None = None
            with contextlib.suppress(OSError):
                group = os.getpgid(pid)
            self._pids[pid] = group if group != os.getpgrp() else None
        self._generation += 1
        self._browser = browser
        self._browser_pid = pid
        self._probe = probe
        self._browser_renders = 0
        self.browser_launches += 1
        generation = self._generation
        browser.on("disconnected", lambda _b: self._on_disconnected(generation))

    def _on_disconnected(self, generation: int) -> None:
        if self._closing or generation != self._generation:
            return
        log.error("Chromium disconnected; relaunching")
        for slot in list(self._slots):
            slot.gone.set()
        self._spawn(self._relaunch())

    async def _relaunch(self) -> None:
        async with self._relaunch_lock:
            if self._closing or (self._browser is not None and self._browser.is_connected()):
                return
            dead_pid = self._browser_pid
            if dead_pid is not None:
                self._kill(dead_pid)  # its renderers and zygote too, should any have survived it
            # Pages of the dead browser: idle ones go now, busy ones when they come back.
            self._idle.clear()
            self._slots.clear()
            try:
                await self._launch()
            except Exception as exc:
                if self._closing:
                    return
                log.error("could not relaunch Chromium: %s", exc)
                await asyncio.sleep(1)
                self._spawn(self._relaunch())
                return
            self.browser_restarts += 1
            await self._refill()

    # -- recycling and the health probe ------------------------------------------------------

    def _count_render(self, slot: Slot) -> None:
        if slot.generation != self._generation:
            return
        self._browser_renders += 1
        limit = self.settings.recycle_after
        if limit and self._browser_renders >= limit and not self._recycling and not self._closing:
            self._recycling = True
            self._spawn(self._recycle())

    async def _recycle(self) -> None:
        """Start a fresh Chromium, move new renders to it, close the old one once drained."""
        try:
            async with self._relaunch_lock:
                old, old_pid, old_generation = self._browser, self._browser_pid, self._generation
                if self._closing or old is None or not old.is_connected():
                    return  # a crash relaunch is due instead
                log.info("recycling Chromium after %d renders", self._browser_renders)
                try:
                    await self._launch()
                except Exception as exc:
                    log.error("could not start a fresh Chromium; keeping the old one: %s", exc)
                    self._browser_renders = 0  # try again after another recycle_after renders
                    return
                self.browser_recycles += 1
                # Idle pages of the old browser go now; busy ones when their render comes back.
                drained = self._draining[old_generation] = asyncio.Event()
                for slot in [s for s in self._idle if s.generation == old_generation]:
                    self._idle.remove(slot)
                    self._slots.discard(slot)
                self._check_drained(old_generation)
                self._spawn(self._refill())
            # A render still running on the old browser ends within its deadline.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.render_timeout + 5):
                    await drained.wait()
            self._draining.pop(old_generation, None)
            await self._close_browser(old, old_pid)
        finally:
            self._recycling = False

    async def _watch(self) -> None:
        """The health probe: kill a Chromium that is alive but does not answer."""
        interval, limit = self.settings.health_interval, self.settings.health_timeout
        while not self._closing:
            await asyncio.sleep(interval)
            browser, probe, pid = self._browser, self._probe, self._browser_pid
            if browser is None or probe is None or not browser.is_connected():
                continue
            try:
                async with asyncio.timeout(limit):
                    await probe.send("Browser.getVersion")
            except (TimeoutError, PlaywrightError) as exc:
                if self._closing or browser is not self._browser or not browser.is_connected():
                    continue  # it went away by itself; the disconnect handler relaunches
                self.probe_failures += 1
                why = f"no answer within {limit:g} s" if isinstance(exc, TimeoutError) else exc
                log.error("Chromium failed its health probe (%s); killing it", why)
                if pid is not None:
                    self._kill(pid)  # the disconnect that follows relaunches it
                else:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(browser.close(), limit)

    async def _close_browser(self, browser: Browser, pid: int | None) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(browser.close(), 10)
        if pid is not None:
            self._kill(pid)

    def _kill(self, pid: int) -> None:
        """SIGKILL a Chromium we started, if it still lives, and forget it.

        Playwright starts Chromium in a process group of its own (led by Chromium or by the
        wrapper script that runs it): killing the group takes its zygote and renderers too, even
        when the browser process is already gone. Otherwise the command line is checked first, so
        that a process id reused by something else is never touched."""
        group = self._pids.pop(pid, None)
        with contextlib.suppress(OSError):
            if group is not None:
                os.killpg(group, signal.SIGKILL)
                return
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"chrom" in f.read().lower():
                    os.kill(pid, signal.SIGKILL)

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def scrub(slot: Slot) -> None:
    """Wipe what a document may have stored for the page origin, so that no render reads what an
    earlier one wrote: cookies, localStorage, sessionStorage, IndexedDB, Cache Storage, ...

    Only needed after a document that could run scripts (``slot.scripted``): without a script a
    page cannot write any of them, since the pool answers every request without Set-Cookie."""
    await asyncio.gather(
        slot.cdp.send("Storage.clearDataForOrigin", {"origin": ORIGIN, "storageTypes": "all"}),
        slot.cdp.send(
            "DOMStorage.clear",
            {"storageId": {"securityOrigin": ORIGIN, "isLocalStorage": False}},
        ),
        slot.context.clear_cookies(),
    )


def _left_state(slot: Slot) -> bool:
    """Whether the document just rendered may have left something for the next one that its text
    did not show (``slot.scripted`` is decided from the text): a frame (an ``<iframe srcdoc>``
    with an escaped parameter in it runs scripts), a navigation away from the document (a meta
    refresh to a /static page), or a remote image, which the document keeps by URL."""
    showed, slot.showed_remote = slot.showed_remote, False
    return showed or len(slot.page.frames) > 1 or not slot.page.url.startswith(DOCUMENT_PREFIX)


def _mark_broken(slot: Slot, why: str) -> None:
    log.warning("page %d: %s", slot.id, why)
    slot.broken = True


def _mark_gone(slot: Slot, why: str) -> None:
    _mark_broken(slot, why)
    slot.gone.set()


async def _close_quietly(page: Page) -> None:
    with contextlib.suppress(Exception):
        await page.close()
