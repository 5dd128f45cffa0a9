"""Lending warm pages: one per render, taken back after, replaced when broken.

``pool_size`` pages, each in its own browser context (separate storage, separate crash domain),
on the Chromium that browser.py supervises; each page's requests are answered by the router the
pipeline hands in. Requests that find no idle page wait in a bounded queue; when the queue is
full, or the wait is longer than ``queue_timeout``, they get :class:`Overloaded` at once.

A page that raised, timed out or crashed is closed and replaced in the background; a page whose
document could have left state behind is scrubbed before it is lent again. Pages of a browser that
died or was recycled are dropped as they come back, and the current browser gets new ones.

Background work (warming, refresh-ahead) borrows with a :class:`Ticket`: it waits in a line of its
own that is served only when no live work runs (no live request renders or waits, and none has for
:data:`LIVE_QUIET` seconds: see :meth:`Pool.live`), and never takes the last idle page of a pool
of two or more, so a live miss finds a page at once. Two renders share the machine's cores, so
background work that started while live work ran would slow it (measured on 2 cores,
benchmarks/warm.py: back-to-back live misses +19 % at p50 with 500 warm items queued when warm
renders could start between them, unchanged with this rule).

A live request that arrives while a background render runs shares the cores with it. Live requests
arriving at random find background work running for the share of the time it runs, so while live
traffic flows (live work ended less than :data:`LIVE_ACTIVE` seconds ago) background work is held
to :data:`BACKGROUND_SHARE` of the time: after a background render of ``d`` seconds (page and
encode), the next starts ``d x (1 / share - 1)`` later at the earliest. Once live traffic has
stopped for ``LIVE_ACTIVE``, background work runs back to back again. Measured on 2 cores
(benchmarks/warm.py, live misses arriving at random 150 ms apart on average, idle and busy runs
interleaved): p50 1.14-1.16x and p90 1.16-1.24x an idle node's without this rule; 0.98-1.07x and
1.07-1.14x with a share of 10 %; 0.99-1.01x and 1.03-1.06x with 5 %, the benchmark's own noise
(nothing queued) being 1.00x and 0.96x.
A live request that comes to need a background render's image promotes its ticket into the live
line.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from playwright.async_api import BrowserContext, CDPSession, Page
from playwright.async_api import Error as PlaywrightError

from ogshot.core.errors import BrowserError, Overloaded
from ogshot.core.settings import Settings
from ogshot.engine import begin_frame
from ogshot.engine.page import BLANK_URL, ORIGIN, Document
from ogshot.engine.page_requests import Router
from ogshot.engine.supervisor import Chromium
from ogshot.templates.declarations import Size

__all__ = ["Pool", "Slot", "Ticket", "scrub"]

T = TypeVar("T")

log = logging.getLogger("ogshot.pool")

SCRUB_TIMEOUT = 2.0  # seconds to clear a page's storage before it is replaced instead
# Renders on a page between the full garbage collections it is given (see _collect_then_release).
COLLECT_EVERY = 50
# Background work starts only after live work has been quiet this long: a crawler's requests come
# in bursts, and the next one of a burst, arriving a few ms after the last, should find the cores
# free rather than a warm render just begun.
LIVE_QUIET = 0.05
# While live traffic flows (live work ended less than LIVE_ACTIVE seconds ago), background work
# takes at most this share of the time (module docstring).
BACKGROUND_SHARE = 0.05
LIVE_ACTIVE = 1.0


@dataclass(eq=False)
class Slot:
    """One warm page and what the pool knows about it."""

    id: int
    generation: int  # of the browser it lives on
    context: BrowserContext
    page: Page
    cdp: CDPSession
    document: Document
    # Set when the page crashes or its browser dies: a raw CDP call would wait for ever then.
    gone: asyncio.Event = field(default_factory=asyncio.Event)
    renders: int = 0
    broken: bool = False
    busy_since: float | None = None
    # The page draws only the frames a render asks for (see begin_frame.py).
    begin_frame: bool = False


class Ticket:
    """A background render's place in line (see the module docstring)."""

    def __init__(self) -> None:
        self.urgent = False  # a live request waits for this render: it borrows as one
        self.lent_at: float | None = None  # monotonic time it got a page as background work
        self._pool: Pool | None = None
        self._waiter: asyncio.Future[Slot] | None = None

    def promote(self) -> None:
        self.urgent = True
        if self._pool is not None and self._waiter is not None:
            self._pool._promote(self._waiter)


class Pool:
    def __init__(self, settings: Settings, router: Router) -> None:
        self.settings = settings
        self.router = router
        self.size = settings.pool_size
        self.browser = Chromium(settings, self)
        self._idle: collections.deque[Slot] = collections.deque()
        self._waiters: collections.deque[asyncio.Future[Slot]] = collections.deque()
        self._background: collections.deque[asyncio.Future[Slot]] = collections.deque()
        # Idle pages background work leaves alone: one, unless the pool has only one page.
        self.reserve = 1 if self.size > 1 else 0
        self._spare: list[asyncio.Future[None]] = []  # see spare()
        self._live = 0  # live work running (see live())
        self._live_ended = -math.inf  # monotonic time the last live work ended
        self._background_next = -math.inf  # earliest next background start while live flows
        self._quiet_timer: asyncio.TimerHandle | None = None
        self._slots: set[Slot] = set()
        self._starting = 0  # slots being created
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False
        self._opening_first = False  # start() opens the first page, then the others (_refill)
        self._draining: dict[int, asyncio.Event] = {}  # old generation -> all its pages are back
        self.renders = 0
        self.pages_replaced = 0
        self.rejected = 0

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Return once Chromium runs and one page is open: the server is ready then. The other
        pages open in the background after that one (beside it, they would slow it down); a
        request that comes meanwhile waits for a page as it would when all are busy."""
        self._opening_first = True
        try:
            await self.browser.start()
            await self._open_first()
        except BaseException:
            await self.close()
            raise
        finally:
            self._opening_first = False
        self._spawn(self._refill())

    async def _open_first(self) -> None:
        self._starting += 1
        try:
            slot = await self._new_slot()
        except Exception as exc:
            raise BrowserError(f"could not open a page on Chromium: {exc}") from exc
        finally:
            self._starting -= 1
        self._slots.add(slot)
        self._hand_over(slot)

    async def close(self) -> None:
        self._closing = True
        if self._quiet_timer is not None:
            self._quiet_timer.cancel()
            self._quiet_timer = None
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(Overloaded("ogshot is shutting down", retry_after=5))
        self._waiters.clear()
        for waiter in self._background:
            if not waiter.done():
                waiter.set_exception(Overloaded("ogshot is shutting down", retry_after=5))
        self._background.clear()
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.browser.close()
        self._idle.clear()
        self._slots.clear()

    @property
    def ready(self) -> bool:
        return self.browser.connected and not self._closing

    def stats(self) -> dict[str, Any]:
        busy = len(self._slots) - len(self._idle)
        return {
            "size": self.size,
            "idle": len(self._idle),
            "busy": busy,
            "starting": self._starting,
            "queued": sum(1 for w in self._waiters if not w.done()),
            "background_queued": sum(1 for w in self._background if not w.done()),
            "queue_limit": self.settings.effective_queue_size,
            "renders": self.renders,
            "browser_launches": self.browser.launches,
            "browser_restarts": self.browser.restarts,
            "browser_recycles": self.browser.recycles,
            "browser_renders": self.browser.renders,
            "recycle_after": self.settings.recycle_after,
            "browser_memory_recycles": self.browser.memory_recycles,
            "browser_memory_mb": round(self.browser.memory_mb, 1),
            "browser_max_mb": self.settings.browser_max_mb,
            "probe_failures": self.browser.probe_failures,
            "pages_replaced": self.pages_replaced,
            "rejected": self.rejected,
        }

    # -- lending ---------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def lease(
        self, size: Size | None = None, *, ticket: Ticket | None = None
    ) -> AsyncIterator[Slot]:
        """Borrow a page for one render. An exception inside marks the page broken.

        ``size``: an idle page that already shows this size is preferred, since switching a page
        to another size costs a render ~15-25 ms (README, "Writing templates"). ``ticket``:
        background work, lent a page only when live requests leave one (module docstring)."""
        background = ticket is not None and not ticket.urgent
        with contextlib.nullcontext() if background else self.live():
            if ticket is not None and background:
                slot = await self._acquire_background(ticket)
                ticket.lent_at = time.monotonic()
            else:
                slot = await self._acquire(size)
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
                self.browser.count_render(slot.generation)
                self._release(slot)

    @contextlib.contextmanager
    def live(self) -> Iterator[None]:
        """Live work runs inside: no background render starts until it is over and
        :data:`LIVE_QUIET` has passed. A live lease holds it; the renderer holds it around a live
        render's whole way (its encode runs after the page is back)."""
        self._live += 1
        try:
            yield
        finally:
            self._live -= 1
            if self._live == 0:
                self._live_ended = time.monotonic()
                self._feed_background()  # schedules itself for when the quiet has passed

    @contextlib.contextmanager
    def background(self, ticket: Ticket) -> Iterator[None]:
        """Background work with ``ticket`` runs inside, its page's lease and its encode: when it
        ends, the next background start is put off so that, while live traffic flows, background
        work takes :data:`BACKGROUND_SHARE` of the time at most (module docstring)."""
        try:
            yield
        finally:
            if ticket.lent_at is not None and not ticket.urgent:
                ended = time.monotonic()
                pause = (ended - ticket.lent_at) * (1 / BACKGROUND_SHARE - 1)
                self._background_next = max(self._background_next, ended + pause)

    async def run(
        self,
        work: Callable[[Slot, float], Awaitable[T]],
        *,
        time_limit: float,
        size: Size | None = None,
        ticket: Ticket | None = None,
    ) -> T:
        """``await work(slot, seconds_left)`` on a leased page.

        When the page or the whole browser fails under it (BrowserError: a crash, a killed
        Chromium), the work is tried once more on a fresh page within what is left of
        ``time_limit``: a render has no side effects, so repeating it is safe. A timeout is not
        retried: the template itself is slow, and a second try would only double the wait."""
        started: float | None = None
        for attempt in (1, 2):
            try:
                async with self.lease(size, ticket=ticket) as slot:
                    if started is None:
                        started = time.monotonic()
                    return await work(slot, time_limit - (time.monotonic() - started))
            except BrowserError as exc:
                left = time_limit - (time.monotonic() - (started or 0.0))
                if attempt == 2 or left < 1.0:
                    raise
                log.warning("render failed (%s); trying once more on a fresh page", exc.message)
        raise AssertionError("unreachable")

    async def _acquire(self, size: Size | None = None) -> Slot:
        if self._closing:
            raise Overloaded("ogshot is shutting down", retry_after=5)
        if size is not None:
            for slot in self._idle:
                if slot.document.size == size and self._usable(slot):
                    self._idle.remove(slot)
                    return slot
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

    async def _acquire_background(self, ticket: Ticket) -> Slot:
        """A page for background work: waits (without a deadline) until live requests leave one
        idle beyond the reserve, or until the ticket is promoted to the live line."""
        if self._closing:
            raise Overloaded("ogshot is shutting down", retry_after=5)
        waiter: asyncio.Future[Slot] = asyncio.get_running_loop().create_future()
        self._background.append(waiter)
        ticket._pool, ticket._waiter = self, waiter
        self._feed_background()
        try:
            return await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._hand_over(waiter.result())
            raise
        finally:
            ticket._pool = ticket._waiter = None
            with contextlib.suppress(ValueError):
                self._background.remove(waiter)
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)

    def _quiet_left(self) -> float:
        """Seconds until background work may start (inf while live work runs)."""
        if self._live:
            return math.inf
        now = time.monotonic()
        left = self._live_ended + LIVE_QUIET - now
        # While live traffic flows, the pause after the last background render; it ends when
        # live traffic has stopped for LIVE_ACTIVE.
        share = min(self._background_next, self._live_ended + LIVE_ACTIVE) - now
        return max(0.0, left, share)

    def _feed_after_quiet(self) -> None:
        self._quiet_timer = None
        self._feed_background()

    def _feed_background(self) -> None:
        """Lend idle pages beyond the reserve to background waiters, when no live work runs."""
        left = self._quiet_left()
        if left > 0:
            if left != math.inf and self._quiet_timer is None and (self._background or self._spare):
                loop = asyncio.get_running_loop()
                self._quiet_timer = loop.call_later(left, self._feed_after_quiet)
            return
        while self._background and not self._waiters and len(self._idle) > self.reserve:
            waiter = self._background.popleft()
            if waiter.done():
                continue
            slot = self._idle.popleft()
            if not self._usable(slot):
                self._background.appendleft(waiter)
                self._discard(slot)
                continue
            waiter.set_result(slot)
        if self._spare and self._has_spare():
            for ready in self._spare:
                if not ready.done():
                    ready.set_result(None)
            self._spare.clear()

    def _has_spare(self) -> bool:
        return (
            not self._waiters
            and self._quiet_left() == 0
            and not any(not w.done() for w in self._background)
            and len(self._idle) > self.reserve
        )

    async def spare(self) -> None:
        """Return once background work would be lent a page at once (what a warm worker waits
        for before it takes an item, so that a busy node leaves items to idle ones)."""
        while not self._has_spare():
            ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._spare.append(ready)
            self._feed_background()  # wakes it once live work has been quiet long enough
            try:
                await ready
            finally:
                if ready in self._spare:
                    self._spare.remove(ready)

    def _promote(self, waiter: asyncio.Future[Slot]) -> None:
        """A background waiter joins the live line (a live request now waits for its render)."""
        if waiter.done():
            return
        with contextlib.suppress(ValueError):
            self._background.remove(waiter)
        self._waiters.append(waiter)
        while self._idle and not waiter.done():
            slot = self._idle.popleft()
            if self._usable(slot):
                self._hand_over(slot)
            else:
                self._discard(slot)

    def _release(self, slot: Slot, *, scrubbed: bool = False, collected: bool = False) -> None:
        if not self._usable(slot):
            self._discard(slot)
            return
        if not scrubbed and slot.document.needs_scrub(slot.page):
            # Its storage is wiped before the next render gets the page (off the request's path:
            # the result is already on its way to the encoder).
            self._spawn(self._scrub_then_release(slot))
            return
        if not collected and slot.renders % COLLECT_EVERY == 0:
            self._spawn(self._collect_then_release(slot))  # off the request's path too
            return
        self._hand_over(slot)

    async def _scrub_then_release(self, slot: Slot) -> None:
        try:
            async with asyncio.timeout(SCRUB_TIMEOUT):
                await scrub(slot)
        except (TimeoutError, PlaywrightError) as exc:
            _mark_broken(slot, f"could not clear its storage ({exc or 'timeout'})")
        self._release(slot, scrubbed=True)

    async def _collect_then_release(self, slot: Slot) -> None:
        """A full garbage collection in the page's renderer, then the page back to the pool.

        A document written in place (``Page.setDocumentContent``) leaves the previous one's DOM
        nodes behind as garbage that Blink frees only in V8's garbage collections, and templates
        allocate too little JavaScript for V8 to start one: measured (Memory.getDOMCounters),
        21-34 nodes a render piled up (10,353 after 300 renders of three templates), and the
        renderer's PSS grew with them without end. One collection frees them all (a few ms:
        the heap is small). What was left growing is caches and freed memory the allocator
        keeps (the memory cache, decoded images and fonts, PartitionAlloc's free lists), which
        a critical memory-pressure signal hands back; the static files are fetched from the
        router again after it, once. docs/operations/memory.md has the figures."""
        try:
            async with asyncio.timeout(SCRUB_TIMEOUT):
                await slot.cdp.send("HeapProfiler.collectGarbage")
                await slot.cdp.send("Memory.simulatePressureNotification", {"level": "critical"})
        except (TimeoutError, PlaywrightError) as exc:
            _mark_broken(slot, f"could not collect its garbage ({exc or 'timeout'})")
        self._release(slot, scrubbed=True, collected=True)

    def _hand_over(self, slot: Slot) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(slot)
                return
        self._idle.append(slot)
        self._feed_background()

    def _usable(self, slot: Slot) -> bool:
        return (
            not slot.broken
            and not self._closing
            and slot.generation == self.browser.generation
            and not slot.page.is_closed()
        )

    # -- what the browser tells us (browser.Tenant) ----------------------------------------

    def browser_lost(self, generation: int) -> None:
        for slot in list(self._slots):
            if slot.generation == generation:
                slot.gone.set()  # a render on it fails now, and is retried on a fresh page
        self._drop_idle(lambda slot: slot.generation == generation)

    def browser_started(self, generation: int) -> None:
        # Idle pages of older browsers go now; busy ones when their render comes back.
        self._drop_idle(lambda slot: slot.generation != generation)
        for old in list(self._draining):
            self._check_drained(old)
        if not self._opening_first:
            self._spawn(self._refill())

    async def browser_drained(self, generation: int) -> None:
        drained = self._draining[generation] = asyncio.Event()
        try:
            self._check_drained(generation)
            await drained.wait()
        finally:
            self._draining.pop(generation, None)

    def _drop_idle(self, which: Callable[[Slot], bool]) -> None:
        for slot in [s for s in self._idle if which(s)]:
            self._idle.remove(slot)
            self._slots.discard(slot)

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
        if self._closing or not self.browser.connected:
            return
        current = sum(1 for s in self._slots if s.generation == self.browser.generation)
        missing = self.size - current - self._starting
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
            if not self.browser.revive():
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
        context, generation = await self.browser.new_context(
            viewport={"width": self.settings.width, "height": self.settings.height},
            device_scale_factor=self.settings.device_scale_factor,
            java_script_enabled=True,
            service_workers="block",
            accept_downloads=False,
            bypass_csp=False,
        )
        try:
            if self.settings.begin_frame:
                page = await begin_frame.open_page(context)
            else:
                page = await context.new_page()
            cdp = await context.new_cdp_session(page)
            page_id = next(self._ids)
            slot = Slot(
                id=page_id,
                generation=generation,
                context=context,
                page=page,
                cdp=cdp,
                document=Document(
                    page_id,
                    Size(
                        self.settings.width,
                        self.settings.height,
                        self.settings.device_scale_factor,
                    ),
                ),
                begin_frame=self.settings.begin_frame,
            )
            await context.route("**/*", self.router.for_page(slot.document))
            page.on("crash", lambda _page: _mark_gone(slot, "page crashed"))
            page.on("popup", lambda popup: self._spawn(_close_quietly(popup)))
            await page.goto(BLANK_URL)
        except BaseException:
            await self._close_context(context)
            raise
        return slot

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def scrub(slot: Slot) -> None:
    """Wipe what a document may have stored for the page origin, so that no render reads what an
    earlier one wrote: cookies, localStorage, sessionStorage, IndexedDB, Cache Storage, ...

    Only needed when ``Document.needs_scrub`` says so: without a script a page cannot write any
    of them, since the router answers every request without Set-Cookie."""
    await asyncio.gather(
        slot.cdp.send("Storage.clearDataForOrigin", {"origin": ORIGIN, "storageTypes": "all"}),
        slot.cdp.send(
            "DOMStorage.clear",
            {"storageId": {"securityOrigin": ORIGIN, "isLocalStorage": False}},
        ),
        slot.context.clear_cookies(),
    )


def _mark_broken(slot: Slot, why: str) -> None:
    log.warning("page %d: %s", slot.id, why)
    slot.broken = True


def _mark_gone(slot: Slot, why: str) -> None:
    _mark_broken(slot, why)
    slot.gone.set()


async def _close_quietly(page: Page) -> None:
    with contextlib.suppress(Exception):
        await page.close()
