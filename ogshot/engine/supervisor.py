"""Supervising Chromium: one current browser, launched, relaunched, recycled, probed, killed.

Every browser we start gets a *generation* number; pages opened on it carry it, so the pool knows
which of its pages belong to a browser that is gone or retired. The pool is told through
:class:`Tenant` when that happens.

When Chromium dies, the pool is told its pages are lost and a new browser is launched. A health
probe asks the browser a trivial question every ``health_interval`` seconds; a browser that is
alive but does not answer within ``health_timeout`` is killed (and so relaunched). After
``recycle_after`` renders, or once its processes use more than ``browser_max_mb`` (PSS, measured
every ``MEMORY_CHECK_EVERY`` seconds at most while it renders), a fresh Chromium is started beside
the old one, new pages open on it, and the old one is closed once the pool has every page it lent
on it back: no request is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Awaitable
from typing import Any, Protocol

from playwright.async_api import Browser, BrowserContext, CDPSession, Playwright, async_playwright
from playwright.async_api import Error as PlaywrightError

from ogshot.core.errors import BrowserError
from ogshot.core.settings import Settings
from ogshot.engine import begin_frame
from ogshot.engine.chromium import find_chromium, raster_thread_args
from ogshot.engine.memory import tree_memory

__all__ = ["Chromium", "Tenant"]

log = logging.getLogger("ogshot.browser")

MEMORY_CHECK_EVERY = 2.0  # seconds between measurements of Chromium's memory, at most


class Tenant(Protocol):
    """Who keeps pages on the browser (the pool), told what happens to it."""

    def browser_lost(self, generation: int) -> None:
        """The browser of ``generation`` died: its pages will not answer any more."""

    def browser_started(self, generation: int) -> None:
        """A browser of ``generation`` is now the current one; pages of older ones are retired."""

    async def browser_drained(self, generation: int) -> None:
        """Return once no page of ``generation`` is in use."""


class Chromium:
    def __init__(self, settings: Settings, tenant: Tenant) -> None:
        self.settings = settings
        self.tenant = tenant
        self.generation = 0
        self.pid: int | None = None  # of the current browser process, when known
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self._probe: CDPSession | None = None
        self._lock = asyncio.Lock()  # one launch at a time
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False
        # Every Chromium we started (pid -> its own process group, if it has one), so that none
        # outlives us.
        self._pids: dict[int, int | None] = {}
        self._recycling = False
        self.renders = 0  # on the current browser, for recycling
        self.launches = 0
        self.restarts = 0  # after a crash or a failed health probe
        self.recycles = 0  # after recycle_after renders or over browser_max_mb
        self.memory_recycles = 0  # of those, over browser_max_mb
        self.memory_mb = 0.0  # PSS of the current Chromium's processes when last measured
        self._memory_checked = 0.0  # monotonic
        self.probe_failures = 0

    @property
    def connected(self) -> bool:
        return self._browser is not None and self._browser.is_connected() and not self._closing

    async def start(self) -> None:
        self._playwright = await async_playwright().start()
        try:
            await self._launch()
        except BaseException:
            await self.close()
            raise
        if self.settings.health_interval > 0:
            self._spawn(self._watch())

    async def close(self) -> None:
        self._closing = True
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._browser is not None:
            await self._close_browser(self._browser, self.pid)
            self._browser = None
        if self._playwright is not None:
            with contextlib.suppress(Exception):
                await self._playwright.stop()
            self._playwright = None
        for pid in list(self._pids):
            self._kill(pid)

    async def new_context(self, **options: Any) -> tuple[BrowserContext, int]:
        """A fresh browser context on the current browser, and that browser's generation."""
        browser, generation = self._browser, self.generation
        if browser is None or self._closing:
            raise BrowserError("Chromium is not running")
        return await browser.new_context(**options), generation

    def revive(self) -> bool:
        """Relaunch the current browser in the background if it died; False when it is alive."""
        if self._browser is None or self._browser.is_connected() or self._closing:
            return False
        self._spawn(self._relaunch())
        return True

    def count_render(self, generation: int) -> None:
        """One render ended on a page of ``generation``; recycle after ``recycle_after``."""
        if generation != self.generation:
            return
        self.renders += 1
        limit = self.settings.recycle_after
        if limit and self.renders >= limit and not self._recycling and not self._closing:
            self._recycling = True
            self._spawn(self._recycle(f"after {self.renders} renders"))
        now = time.monotonic()
        if self.settings.browser_max_mb and now - self._memory_checked >= MEMORY_CHECK_EVERY:
            self._memory_checked = now
            self._spawn(self._check_memory(generation))

    async def _check_memory(self, generation: int) -> None:
        """Recycle the browser of ``generation`` when its processes use over browser_max_mb."""
        pid = self.pid
        if pid is None:
            return
        _rss, pss = await asyncio.to_thread(tree_memory, pid)  # reads smaps: off the loop
        if generation != self.generation:
            return
        self.memory_mb = pss / 2**20
        limit = self.settings.browser_max_mb
        if self.memory_mb > limit and not self._recycling and not self._closing:
            self._recycling = True
            self.memory_recycles += 1
            self._spawn(self._recycle(f"at {self.memory_mb:.0f} MB (browser_max_mb {limit})"))

    # -- launching ---------------------------------------------------------------------------

    async def _launch(self) -> None:
        """Start a Chromium and make it the current one (the tenant opens its pages)."""
        assert self._playwright is not None
        executable = self.settings.executable_path or find_chromium()
        args = list(self.settings.launch_args)
        if self.settings.begin_frame:
            args = [a for a in args if a not in begin_frame.DROPPED_ARGS]
            args += [a for a in begin_frame.LAUNCH_ARGS if a not in args]
        args += raster_thread_args(args)
        browser = await self._playwright.chromium.launch(
            executable_path=executable,
            headless=True,
            args=args,
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
            await asyncio.to_thread(lower_priority, pid, self.settings.browser_nice)
        self.generation += 1
        self._browser = browser
        self.pid = pid
        log.info(
            "Chromium started (pid %s, generation %d)",
            pid,
            self.generation,
            extra={"event": "browser_start", "fields": {"pid": pid}},
        )
        self._probe = probe
        self.renders = 0
        self.launches += 1
        generation = self.generation
        browser.on("disconnected", lambda _b: self._on_disconnected(generation))
        self.tenant.browser_started(generation)

    def _on_disconnected(self, generation: int) -> None:
        if self._closing or generation != self.generation:
            return
        log.error("Chromium disconnected; relaunching", extra={"event": "browser_restart"})
        self.tenant.browser_lost(generation)
        self._spawn(self._relaunch())

    async def _relaunch(self) -> None:
        async with self._lock:
            if self._closing or (self._browser is not None and self._browser.is_connected()):
                return
            dead_pid = self.pid
            if dead_pid is not None:
                self._kill(dead_pid)  # its renderers and zygote too, should any have survived it
            try:
                await self._launch()
            except Exception as exc:
                if self._closing:
                    return
                log.error("could not relaunch Chromium: %s", exc)
                await asyncio.sleep(1)
                self._spawn(self._relaunch())
                return
            self.restarts += 1

    # -- recycling and the health probe ------------------------------------------------------

    async def _recycle(self, why: str) -> None:
        """Start a fresh Chromium, move new pages to it, close the old one once drained."""
        try:
            async with self._lock:
                old, old_pid, old_generation = self._browser, self.pid, self.generation
                if self._closing or old is None or not old.is_connected():
                    return  # a crash relaunch is due instead
                log.info("recycling Chromium %s", why, extra={"event": "browser_recycle"})
                try:
                    await self._launch()
                except Exception as exc:
                    log.error("could not start a fresh Chromium; keeping the old one: %s", exc)
                    self.renders = 0  # try again after another recycle_after renders
                    return
                self.recycles += 1
            # A render still running on the old browser ends within its deadline.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.render_timeout + 5):
                    await self.tenant.browser_drained(old_generation)
            await self._close_browser(old, old_pid)
        finally:
            self._recycling = False

    async def _watch(self) -> None:
        """The health probe: kill a Chromium that is alive but does not answer."""
        interval, limit = self.settings.health_interval, self.settings.health_timeout
        while not self._closing:
            await asyncio.sleep(interval)
            browser, probe, pid = self._browser, self._probe, self.pid
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
                log.error(
                    "Chromium failed its health probe (%s); killing it",
                    why,
                    extra={"event": "browser_unresponsive"},
                )
                if pid is not None:
                    self._kill(pid)  # the disconnect that follows relaunches it
                else:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(browser.close(), limit)

    # -- stopping ------------------------------------------------------------------------------

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


def lower_priority(pid: int, nice: int) -> None:
    """Run the Chromium whose browser process is ``pid`` at CPU priority ``nice`` (0..19; 0 leaves
    it level with ogshot).

    Right after a capture, Chromium's browser and GPU processes go on drawing frames for ~10-20 ms
    (``--disable-frame-rate-limit``, which saves a capture the wait for a vsync tick). At equal
    priority they share the two cores with the encode of the image just captured, and a PNG encode
    of 5 ms CPU took 7-9 ms; below ogshot, it takes its 5 ms. Under load the same holds for hits:
    ogshot's own work comes first, Chromium takes the rest.

    Playwright starts Chromium in a session of its own, which Linux schedules as one group
    (``/proc/PID/autogroup``): that group's nice is set, and it decides Chromium's share against
    ogshot. For kernels without autogroups every thread of its processes gets the nice too; the
    processes it starts later inherit it, though Chromium may raise some threads of its own
    afterwards when it may (as root it runs its display threads at -8). Raising a nice value
    needs no privilege; whatever fails is logged and left."""
    if nice <= 0:
        return
    import psutil  # a few ms to import, paid at a launch rather than at import time

    try:
        autogroup = f"/proc/{pid}/autogroup"
        if os.getsid(pid) != os.getsid(0) and os.path.exists(autogroup):  # a group of its own
            with open(autogroup, "w") as f:
                f.write(str(nice))
        browser = psutil.Process(pid)
        for process in [browser, *browser.children(recursive=True)]:
            for thread in process.threads():
                with contextlib.suppress(ProcessLookupError):  # a thread that just ended
                    if os.getpriority(os.PRIO_PROCESS, thread.id) < nice:
                        os.setpriority(os.PRIO_PROCESS, thread.id, nice)
    except (OSError, psutil.Error) as exc:
        log.warning("could not lower Chromium's CPU priority: %s", exc)
