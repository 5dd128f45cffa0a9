"""The request pipeline: validate -> cache -> HTML -> page -> capture -> encode -> store.

The Renderer owns the long-lived pieces (template catalog, disk cache, browser pool) and is
both the Python API and what the HTTP app calls::

    async with ogshot.Renderer(settings) as r:
        png = await r.render("article", {"title": "Hello"}, format="png")
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import time
from collections.abc import Hashable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from ogshot.cache.disk import Entry, ImageCache, cache_key
from ogshot.cache.layers import Layers
from ogshot.core.errors import (
    InvalidFormat,
    OgshotError,
    RenderFailed,
    TemplateNotFound,
)
from ogshot.core.events import ErrorReport, Events
from ogshot.core.lru import LRU
from ogshot.core.settings import Settings
from ogshot.core.stopwatch import Stopwatch
from ogshot.engine import encode as compress
from ogshot.engine.assets import Assets
from ogshot.engine.budget import encode_within
from ogshot.engine.capture import Capture, capture
from ogshot.engine.encode import encode, normalize_format
from ogshot.engine.jpeg_repack import available as jpeg_repack_available
from ogshot.engine.jpeg_repack import progressive
from ogshot.engine.page_requests import Router
from ogshot.engine.page_shot import PageShooter
from ogshot.engine.pool import Pool, Slot, Ticket
from ogshot.engine.remote_images import RemoteImages
from ogshot.pipeline.jobs import Image, Job
from ogshot.pipeline.shots import Shots
from ogshot.pipeline.warm import WarmItem, WarmLane
from ogshot.pipeline.warnings import GlyphCheck, dump_warnings
from ogshot.templates.budgets import BUDGET_PARAM, split_budget
from ogshot.templates.catalog import Catalog, Size, Template, canonical_params
from ogshot.templates.variants import choose_variant
from ogshot.templates.versions import split_version
from ogshot.templates.watch import Watcher

if TYPE_CHECKING:
    from ogshot.cache.redis import Fleet

__all__ = ["Image", "Renderer"]

log = logging.getLogger("ogshot")

# Seconds before a key whose refresh failed is tried again: a failure can be instant (an
# overloaded pool), and a hot stale URL must not turn into one failing render per request.
REFRESH_RETRY_AFTER = 10.0
# Seconds a fleet render lease lives without renewal (renewed every third of it).
LEASE_SECONDS = 3.0


class Renderer:
    def __init__(
        self,
        settings: Settings | None = None,
        *,
        metrics: Events | None = None,
        report_error: ErrorReport | None = None,
        watch: bool = True,
    ) -> None:
        """``metrics`` hears what happens (cache lookups, renders, failures); ``report_error`` gets
        each render that failed unexpectedly (the server hands in Sentry's reporter); ``watch``:
        follow template and static edits (a one-shot build reads them once)."""
        self.settings = settings or Settings.load()
        self.metrics = metrics
        self.report_error = report_error
        self.catalog = Catalog(
            self.settings.templates_dir,
            self.settings.static_dir,
            max_params=self.settings.max_params,
            max_param_length=self.settings.max_param_length,
            size=Size(self.settings.width, self.settings.height, self.settings.device_scale_factor),
            css_cache=Path(self.settings.cache_dir) / "tailwind",  # compiled once per version
        )
        # The one change detector, in production too: a deploy that edits templates in place is
        # picked up. The studio's live reload listens to the same watcher.
        self.watcher = Watcher(
            [self.settings.templates_dir, self.settings.static_dir],
            on_change=self.catalog.refresh,
        )
        self._watch = watch
        self.layers = Layers(self.settings, fleet=_fleet(self.settings), metrics=metrics)
        self.remote = RemoteImages.from_settings(self.settings)
        # The pages' requests are answered from the static folder and the fetched remote images.
        router = Router(Assets(self.settings.static_dir, remote=self.remote))
        self.pool = Pool(self.settings, router)
        # Page screenshots (/shot): fresh contexts on the same browser, images in the same layers.
        self.shots = Shots(
            self.settings,
            self.layers,
            PageShooter(self.pool.browser, self.settings),
            metrics=metrics,
        )
        self._inflight: dict[str, asyncio.Task[Image]] = {}
        # The hit path: a repeated request skips validation and hashing (jobs by raw request).
        self._jobs: LRU[Job] = LRU(max_entries=10_000)
        self.glyphs = GlyphCheck(self.settings, metrics)  # what a render could not draw
        self._refresh_failed: LRU[float] = LRU(max_entries=10_000)  # key -> monotonic time
        self._refreshing: set[asyncio.Task[Any]] = set()  # background refreshes, for close()
        self._refresh_timers: set[asyncio.TimerHandle] = set()  # refresh-ahead, for close()
        # Renders of the warm lane that wait for a page: a live request that needs one of them
        # promotes its ticket, so it never waits behind warm work.
        self._tickets: dict[str, Ticket] = {}
        self._chromium_jpeg = False  # Chromium encodes JPEGs: decided at start
        # key -> (stored_at of the copy served, its fetches, refresh queued): refresh-ahead.
        self._fetches: LRU[tuple[float, int, bool]] = LRU(max_entries=10_000)
        ttl, ahead = self.settings.cache_ttl, self.settings.refresh_ahead
        self._refresh_ahead_at = ttl * ahead if ttl and ahead else 0.0  # age, seconds; 0: off
        self.warm = WarmLane(self)  # started by the server (``warm.start()``)
        self._css: asyncio.Future[None] | None = None  # the deferred Tailwind compile (start)

    @property
    def cache(self) -> ImageCache:
        """This node's disk cache."""
        return self.layers.disk

    async def start(self) -> None:
        await self.layers.start()
        # The templates (~0.1 s) and the fonts Chromium can fall back to (~0.1 s) are read, and
        # numpy imported (~0.07 s), in threads while Chromium starts (~0.5 s). Tailwind CSS never
        # compiled before is not waited for (~0.3 s a template): it compiles once the pool is
        # open and live work leaves the cores, or first for a render that needs it (with_css).
        reads = asyncio.gather(
            self._read_templates(),
            asyncio.to_thread(compress.warm_up),
            self.glyphs.start(),
            self._choose_jpeg_encoder(),
        )
        try:
            await self.pool.start()
        finally:
            await reads
        self._css = asyncio.ensure_future(self._compile_css())

    async def _read_templates(self) -> None:
        if self._watch:  # first, so that nothing saved during the first read is missed
            await self.watcher.start()
        await asyncio.to_thread(self.catalog.refresh, defer_css=True)

    async def _compile_css(self) -> None:
        await self.pool.spare()
        try:
            await asyncio.to_thread(self.catalog.compile_pending)
        except Exception:  # a template that does not compile is stored as its error, not raised
            log.exception("compiling Tailwind CSS failed")

    async def _choose_jpeg_encoder(self) -> None:
        """With ``jpeg_encoder = "chromium"``, Chromium's JPEG is made progressive by libturbojpeg
        (engine/jpeg_repack.py); without that library JPEGs are encoded by libvips instead, the
        same pixels and bytes at ~20-40 ms more CPU a miss."""
        if self.settings.jpeg_encoder != "chromium":
            return
        self._chromium_jpeg = await asyncio.to_thread(jpeg_repack_available)
        if not self._chromium_jpeg:
            log.warning(
                "libturbojpeg is not installed (Debian: libturbojpeg0): JPEGs are encoded by "
                "libvips, which costs more CPU a miss (OGSHOT_JPEG_ENCODER=vips chooses that "
                "without this warning)"
            )

    async def close(self) -> None:
        if self._css is not None:
            self._css.cancel()  # a compile already running ends in its thread, unwaited
        await self.warm.close()
        for timer in self._refresh_timers:
            timer.cancel()
        for task in list(self._refreshing):  # requests are done by now: spare the browser
            task.cancel()
        if self._watch:
            await self.watcher.close()
        await self.shots.close()
        await self.pool.close()
        await self.layers.close()

    async def __aenter__(self) -> Renderer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def render(self, template: str, params: Mapping[str, Any], format: str = "png") -> bytes:
        """The encoded image's bytes (from the cache when it has them)."""
        return (await self.image(template, params, format)).body

    async def template(self, name: str) -> Template:
        """The template ``name``. One saved a moment ago, before the file watcher reported it,
        is looked for on disk, in a thread."""
        try:
            return self.catalog.get(name)
        except TemplateNotFound:
            if not await asyncio.to_thread(self.catalog.discover, name):
                raise
            return self.catalog.get(name)

    def prepare(
        self,
        template: str,
        params: Mapping[str, Any],
        format: str = "png",
        *,
        remote: str = "",
        variant: str | None = None,
    ) -> Job:
        """Validate a request and compute its cache key; raises 4xx errors. Touches no browser.

        The version parameter ``v`` (freshness.py) is checked and set aside: every version gets
        the current image. ``remote``: the hashes of the remote images the request uses
        (``RemoteImages.pin``). ``variant``: force this A/B variant instead of the page's own
        (the studio's side by side)."""
        tpl = self.catalog.get(template)
        params, _requested = split_version(params)
        raw: Hashable | None = (template, format, remote, variant, tuple(params.items()))
        try:
            hash(raw)
        except TypeError:  # JSON data with lists or objects inside: not memoised
            raw = None
        if raw is not None:
            known = self._jobs.get(raw)
            if known is not None and known.template.digest == tpl.digest:
                return known
        fmt = normalize_format(format)
        if fmt is None:
            raise InvalidFormat(f"unknown format {format!r} (use png, jpg, jpeg or webp)")
        # Split after the memo lookup: its raw request keeps max_kb, which changes the key.
        params, requested_budget = split_budget(params)
        values = self.catalog.validate(tpl, params)
        drawn = choose_variant(tpl.name, tpl.variants, values, variant)
        max_kb = requested_budget if requested_budget is not None else tpl.max_kb
        job = Job(
            template=tpl,
            values=values,
            format=fmt,
            key=self._key(tpl, values, fmt, drawn, remote, max_kb),
            variant=drawn,
            max_kb=max_kb,
        )
        if raw is not None:
            self._jobs.set(raw, job)
        return job

    async def resolve(
        self,
        template: str,
        params: Mapping[str, Any],
        format: str = "png",
        *,
        variant: str | None = None,
    ) -> Job:
        """The job of a request, its cache key final: remote images pinned (what ``image`` and
        a purge by URL both use)."""
        await self.template(template)  # one saved a moment ago is looked for; else 404
        return await self.pinned(self.prepare(template, params, format, variant=variant))

    async def pinned(self, job: Job) -> Job:
        """``job`` with its key final: the bytes of the remote images it shows are fetched (or
        found in memory) and decide the key too, since they decide the pixels."""
        remote = await self.remote.pin(job.values)
        if not remote:
            return job
        key = self._key(job.template, job.values, job.format, job.variant, remote, job.max_kb)
        return dataclasses.replace(job, key=key)

    def _key(
        self,
        tpl: Template,
        values: Mapping[str, Any],
        fmt: str,
        variant: str,
        remote: str,
        max_kb: int | None,
    ) -> str:
        # The parameters decide the variant, but a forced one does not follow from them.
        extra = f"{remote}\x1fvariant={variant}" if variant else remote
        if max_kb is not None:  # the budget decides the encoding, and so the bytes
            extra += f"\x1f{BUDGET_PARAM}={max_kb}"
        return cache_key(
            template_digest=tpl.digest,
            params=canonical_params(values),
            fmt=fmt,
            settings=self.settings,
            extra=extra,
            size=str(tpl.size),
        )

    async def image(
        self,
        template: str,
        params: Mapping[str, Any],
        format: str = "png",
        *,
        variant: str | None = None,
    ) -> Image:
        watch = Stopwatch()
        job = await self.resolve(template, params, format, variant=variant)
        watch.lap("validate")
        return await self.answer(job, watch, request=(template, params, format))

    async def answer(
        self,
        job: Job,
        watch: Stopwatch | None = None,
        *,
        request: tuple[str, Mapping[str, Any], str] | None = None,
    ) -> Image:
        """The image of a resolved ``job``: from the cache, or rendered once (see :meth:`image`).
        ``request``: the (template, parameters, format) it was resolved from, which refresh-ahead
        queues to make it again (without it, the image is not refreshed ahead)."""
        watch = watch or Stopwatch()
        hit = await self.layers.get(job.key, template=job.template.name)
        watch.lap("cache")
        state = self._freshness(hit) if hit is not None else "expired"
        if hit is not None and state != "expired":
            if state == "stale":  # served now; one render in the background replaces it
                self._refresh(job)
                if self.metrics is not None:
                    self.metrics.stale_served()
            elif self._refresh_ahead_at and request is not None:
                self._count_fetch(job, hit, *request)
            return Image.of(job, hit, cached=True, timings=watch.timings, stale=state == "stale")
        # Single flight: identical concurrent misses share one render. The render runs as its own
        # task so that a client hanging up does not cancel it for the others.
        task = self._inflight.get(job.key)
        if task is None:
            task = asyncio.ensure_future(self._make(job))
            self._inflight[job.key] = task
            task.add_done_callback(lambda _t: self._inflight.pop(job.key, None))
        else:
            ticket = self._tickets.get(job.key)
            if ticket is not None:  # a warm render: it borrows as a live request from now on
                ticket.promote()
            if self.metrics is not None:
                self.metrics.singleflight_saved("local")
        image = await asyncio.shield(task)
        if self._refresh_ahead_at:
            self._fetches.set(job.key, (0.0, 1, False))  # the copy it made: fetched once
        # The render's own stages after this request's (its key: same format, variant, version).
        return dataclasses.replace(image, timings={**watch.timings, **image.timings})

    def served(self, job: Job, entry: Entry, request: tuple[str, Mapping[str, Any], str]) -> None:
        """A fresh hit of ``job`` answered without :meth:`answer` (the HTTP hot path): counted
        for refresh-ahead as :meth:`answer` counts its own."""
        if self._refresh_ahead_at:
            self._count_fetch(job, entry, *request)

    def _freshness(self, entry: Entry) -> Literal["fresh", "stale", "expired"]:
        return entry.freshness(self.settings.cache_ttl, self.settings.stale_ttl)

    def _refresh(self, job: Job) -> None:
        """Render a stale entry's key again in the background, unless a render of it already
        runs. It is the key's single flight, so a miss meanwhile waits for it; no client holds
        it, so none hanging up cancels it; when it fails the stale entry stays."""
        if job.key in self._inflight:
            return
        failed_at = self._refresh_failed.get(job.key)
        if failed_at is not None and time.monotonic() - failed_at < REFRESH_RETRY_AFTER:
            return
        task = asyncio.ensure_future(self._make(job))
        self._inflight[job.key] = task
        self._refreshing.add(task)
        task.add_done_callback(lambda _t: self._inflight.pop(job.key, None))
        task.add_done_callback(self._refreshing.discard)
        task.add_done_callback(lambda t: self._refreshed(job, t))

    def _refreshed(self, job: Job, task: asyncio.Task[Image]) -> None:
        if task.cancelled():  # shutting down
            return
        exc = task.exception()  # retrieved here: no "exception was never retrieved" later
        if exc is None:
            self._refresh_failed.pop(job.key)
        else:
            self._refresh_failed.set(job.key, time.monotonic())
            why = exc.message if isinstance(exc, OgshotError) else f"{type(exc).__name__}: {exc}"
            log.warning(
                "refresh of a stale %r image failed (%s); the stale copy is served until one "
                "succeeds",
                job.template.name,
                why,
            )
        if self.metrics is not None:
            self.metrics.refreshed(exc is None)

    def _count_fetch(
        self, job: Job, entry: Entry, template: str, params: Mapping[str, Any], format: str
    ) -> None:
        """Refresh-ahead: once a copy is fetched a second time, its render through the warm lane
        is planned for when it is ``refresh_ahead`` x TTL old, so that a popular image is made
        again before it turns stale, whenever its next request comes."""
        stored_at, fetches, planned = self._fetches.get(job.key) or (entry.stored_at, 0, False)
        if planned and stored_at == entry.stored_at:
            return  # the hit path of a popular image: one dictionary read
        if stored_at not in (entry.stored_at, 0.0):  # a newer copy: a new lifetime
            fetches, planned = 0, False
        fetches += 1
        plan = fetches > 1 and not planned and self.warm.running
        self._fetches.set(job.key, (entry.stored_at, fetches, planned or plan))
        if not plan:
            return
        item = WarmItem(template, dict(params), format, refresh=True)
        delay = max(0.0, entry.stored_at + self._refresh_ahead_at - time.time())
        timer: asyncio.TimerHandle | None = None

        def submit() -> None:
            if timer is not None:
                self._refresh_timers.discard(timer)
            task = asyncio.ensure_future(self.warm.submit([(job.key, item)]))
            self._refreshing.add(task)
            task.add_done_callback(self._refreshing.discard)
            task.add_done_callback(_queued)

        timer = asyncio.get_running_loop().call_later(delay, submit)
        self._refresh_timers.add(timer)

    async def prewarm(self, item: WarmItem) -> str:
        """Make ``item``'s image unless it is cached (fresh, or for a refresh: younger than
        refresh-ahead): ``"cached"``, ``"joined"`` (a render of it was running) or
        ``"rendered"``. Borrows pages as background work (see ``engine/pool.py``)."""
        job = await self.resolve(item.template, item.params, item.format)
        if not await self._wanted(job, item.refresh):
            return "cached"
        task = self._inflight.get(job.key)
        if task is not None:
            with contextlib.suppress(Exception):  # its own requester hears of a failure
                await asyncio.shield(task)
            return "joined"
        ticket = Ticket()
        task = asyncio.ensure_future(self._make(job, ticket=ticket))
        self._inflight[job.key] = task
        self._tickets[job.key] = ticket
        task.add_done_callback(lambda _t: self._inflight.pop(job.key, None))
        task.add_done_callback(lambda _t: self._tickets.pop(job.key, None))
        self._refreshing.add(task)  # cancelled by close(), like a refresh
        task.add_done_callback(self._refreshing.discard)
        task.add_done_callback(_retrieved)  # the lane reports a failure; no asyncio warning
        await asyncio.shield(task)
        if self.metrics is not None:
            self.metrics.warm_rendered(item.refresh)
        return "rendered"

    async def _wanted(self, job: Job, refresh: bool) -> bool:
        """Whether a warm item still needs a render: nothing cached, or (refresh) a copy old
        enough that another node has not already replaced it in Redis."""
        entry = await self.layers.get(job.key, template=job.template.name)
        if entry is None:
            return True
        if not refresh:
            return self._freshness(entry) != "fresh"
        # Half the refresh age: a copy that young was made again already (a timer firing a
        # moment early must not count its own copy as new).
        young = self._refresh_ahead_at / 2
        if time.time() - entry.stored_at < young:
            return False
        fleet = self.layers.fleet
        if fleet is not None:
            shared = await fleet.get(job.key)
            if shared is not None and shared.stored_at > entry.stored_at:
                await self.layers.put(job.key, shared, shared=False)
                return time.time() - shared.stored_at >= young
        return True

    def cache_sizes(self) -> list[tuple[str, int, int]]:
        """(layer, entries, bytes) of this node's cache layers; blocking."""
        return self.layers.sizes()

    async def _make(self, job: Job, *, ticket: Ticket | None = None) -> Image:
        """Render ``job``, once fleet-wide: with Redis, the node that takes the key's lock renders
        and the others wait for its image (and render themselves if it goes away without one)."""
        fleet = self.layers.fleet
        if fleet is None:
            return await self._render(job, ticket)
        watch = Stopwatch()
        # A waiter gives up when a render of its own would have had to be done.
        deadline = time.monotonic() + self.settings.queue_timeout + self.settings.render_timeout
        lock = await fleet.lock(job.key)
        while lock is None and time.monotonic() < deadline:
            found = await fleet.wait(job.key, deadline, newer_than=self._made_after(job))
            if found is not None:
                await self.layers.put(job.key, found, shared=False)
                watch.lap("fleet")
                if self.metrics is not None:
                    self.metrics.singleflight_saved("fleet")
                return Image.of(job, found, cached=False, timings=watch.timings)
            lock = await fleet.lock(job.key)  # its holder went away: one waiter takes over
        try:
            return await self._render(job, ticket)
        finally:
            await fleet.unlock(lock)

    def _made_after(self, job: Job) -> float:
        """An image of ``job`` made before this is not the one being waited for: stale (a refresh
        is running) or purged."""
        ttl = self.settings.cache_ttl
        return max(time.time() - ttl if ttl else 0.0, self.layers.made_after(job.template.name))

    async def _render(self, job: Job, ticket: Ticket | None = None) -> Image:
        # A live render holds back warm work until it is over, encode included; a warm render's
        # length, encode included, sets the pause before the next one (engine/pool.py).
        with self.pool.live() if ticket is None else self.pool.background(ticket):
            return await self._render_now(job, ticket)

    async def styled(self, template: Template) -> Template:
        """``template`` with its Tailwind CSS: compiled in a thread first when it was deferred at
        start (``Catalog.with_css``), as is, without leaving the loop, otherwise."""
        if self.catalog.css_deferred(template):
            return await asyncio.to_thread(self.catalog.with_css, template)
        return template

    async def _render_now(self, job: Job, ticket: Ticket | None) -> Image:
        watch = Stopwatch()
        try:
            template = await self.styled(job.template)
            html = self.catalog.render_html(template, job.variables)
            watch.lap("html")
            # With jpeg_encoder "chromium" Chromium encodes the JPEG: no PNG round trip.
            chromium_jpeg = (
                job.format == "jpeg"
                and self._chromium_jpeg
                and job.max_kb is None  # a budget searches qualities on the PNG's pixels
            )

            async def attempt(slot: Slot, seconds_left: float) -> Capture:
                watch.lap("queue")
                return await capture(
                    slot,
                    html,
                    time_limit=seconds_left,
                    template=job.template.name,
                    static_digest=job.template.static_digest,
                    jpeg_quality=self.settings.jpeg_quality if chromium_jpeg else None,
                    size=job.template.size,
                )

            # On a crashed page or a killed Chromium, the pool tries once more on a fresh page.
            shot = await self.pool.run(
                attempt,
                time_limit=self.settings.render_timeout,
                size=job.template.size,
                ticket=ticket,
            )
            watch.timings.update(shot.timings)
            watch.restart()
            warnings = await self.glyphs.check(job.template, job.values, shot)
            quality = ""
            if shot.format == job.format == "jpeg":
                body = await asyncio.to_thread(progressive, shot.body)
            elif job.max_kb is not None:
                fitted = await asyncio.to_thread(
                    encode_within, shot.png, job.format, self.settings, job.max_kb
                )
                body, quality = fitted.body, fitted.quality
            else:
                body = await asyncio.to_thread(encode, shot.png, job.format, self.settings)
            watch.lap("encode")
        except RenderFailed as exc:
            log.error("render of template %r failed: %s", job.template.name, exc.message)
            if self.metrics is not None:
                self.metrics.render_failed(job.template.name, exc.kind)
            if self.report_error is not None:
                self.report_error(exc, template=job.template.name, key=job.key)
            raise
        etag = hashlib.blake2b(body, digest_size=16).hexdigest()
        entry = Entry(body, etag, time.time(), warnings=dump_warnings(warnings), quality=quality)
        await self.layers.put(job.key, entry, template=job.template.name)
        watch.lap("store")
        if self.metrics is not None:
            self.metrics.image_rendered(job.template.name, job.format, watch.timings)
        return Image.of(job, entry, cached=False, timings=watch.timings, warnings=warnings)


def _retrieved(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


def _queued(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("queueing a refresh-ahead failed: %s", task.exception())


def _fleet(settings: Settings) -> Fleet | None:
    """The fleet's shared cache when ``OGSHOT_REDIS_URL`` is set (redis-py imported only then)."""
    if not settings.redis_url:
        return None
    from ogshot.cache.redis import Fleet

    return Fleet(
        settings.redis_url,
        keep=settings.cache_ttl + settings.stale_ttl if settings.cache_ttl else 0,
        # A lease its holder renews while it renders: a node that dies mid-render frees the key
        # within this, and a waiter takes over (it held it for a whole render deadline before).
        lock_ttl=LEASE_SECONDS,
    )
