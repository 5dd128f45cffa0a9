"""Page screenshots through the cache: ``/shot`` requests -> key -> layers -> capture -> encode.

A shot is cached like an /og image, in the same layers under a content key (the options, the
format, the size and encoder settings, the byte budget), with a short TTL (``OGSHOT_SHOT_TTL``):
past it, the stale image is served while one background capture replaces it (for
``OGSHOT_STALE_TTL`` more). Its key is purged like any other (``POST /admin/purge`` with the key
or the /shot URL). A failed capture (timeout, refused navigation, error page) is never stored.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ogshot.cache.disk import Entry, cache_key
from ogshot.cache.layers import Layers
from ogshot.core.errors import InvalidFormat, OgshotError
from ogshot.core.events import Events
from ogshot.core.formats import normalize_format
from ogshot.core.settings import Settings
from ogshot.core.stopwatch import Stopwatch
from ogshot.engine.budget import encode_within
from ogshot.engine.encode import encode
from ogshot.engine.page_shot import PageShooter, ShotOptions, parse_shot_options
from ogshot.pipeline.jobs import Image
from ogshot.templates.budgets import BUDGET_PARAM, split_budget

__all__ = ["ShotJob", "Shots"]

log = logging.getLogger("ogshot")

REFRESH_RETRY_AFTER = 10.0  # seconds before a key whose background capture failed is tried again


@dataclass(frozen=True)
class ShotJob:
    options: ShotOptions
    format: str
    key: str
    max_kb: int | None = None


class Shots:
    """The /shot pipeline; the Renderer owns one (its layers, its browser)."""

    def __init__(
        self,
        settings: Settings,
        layers: Layers,
        shooter: PageShooter,
        *,
        metrics: Events | None = None,
    ) -> None:
        self.settings = settings
        self.layers = layers
        self.shooter = shooter
        self.metrics = metrics
        # What a /shot answer promises caches: the no-version policy with the shot's short TTL.
        self.response_settings = settings.replace(max_age=settings.shot_ttl)
        self._inflight: dict[str, asyncio.Task[Image]] = {}
        self._refresh_failed: dict[str, float] = {}
        self._refreshing: set[asyncio.Task[Image]] = set()

    @property
    def enabled(self) -> bool:
        return bool(self.shooter.origins)

    def prepare(self, params: Mapping[str, Any], format: str) -> ShotJob:
        """Validate a /shot request (its query without ``s``) and compute its key; raises 4xx."""
        fmt = normalize_format(format)
        if fmt is None:
            raise InvalidFormat(f"unknown format {format!r} (use png, jpg, jpeg or webp)")
        params, max_kb = split_budget(params)
        options = parse_shot_options(params, self.shooter.origins)
        settings = self.settings
        key = cache_key(
            template_digest="shot",  # no template: the page's URL and options are the key
            params=options.canonical(),
            fmt=fmt,
            settings=settings,
            extra=f"{BUDGET_PARAM}={max_kb}" if max_kb is not None else "",
        )
        return ShotJob(options=options, format=fmt, key=key, max_kb=max_kb)

    async def image(self, params: Mapping[str, Any], format: str) -> Image:
        watch = Stopwatch()
        job = self.prepare(params, format)
        watch.lap("validate")
        hit = await self.layers.get(job.key)
        watch.lap("cache")
        state = self._freshness(hit) if hit is not None else "expired"
        if hit is not None and state != "expired":
            if state == "stale":
                self._refresh(job)
            return Image(
                body=hit.body,
                etag=hit.etag,
                format=job.format,
                cached=True,
                timings=watch.timings,
                stale=state == "stale",
                quality=hit.quality,
            )
        task = self._inflight.get(job.key)
        if task is None:  # single flight: identical concurrent misses share one capture
            task = self._start(job)
        image = await asyncio.shield(task)
        return Image(
            body=image.body,
            etag=image.etag,
            format=image.format,
            cached=False,
            timings={**watch.timings, **image.timings},
            quality=image.quality,
        )

    async def close(self) -> None:
        for task in list(self._refreshing):
            task.cancel()
        self.shooter.close()

    def _start(self, job: ShotJob) -> asyncio.Task[Image]:
        task = asyncio.ensure_future(self._make(job))
        self._inflight[job.key] = task
        task.add_done_callback(lambda _t: self._inflight.pop(job.key, None))
        return task

    def _freshness(self, entry: Entry) -> Literal["fresh", "stale", "expired"]:
        return entry.freshness(self.settings.shot_ttl, self.settings.stale_ttl)

    def _refresh(self, job: ShotJob) -> None:
        """Capture a stale shot again in the background, once at a time, not right after a
        failed attempt; the stale copy stays when it fails."""
        if job.key in self._inflight:
            return
        failed_at = self._refresh_failed.get(job.key)
        if failed_at is not None and time.monotonic() - failed_at < REFRESH_RETRY_AFTER:
            return
        task = self._start(job)
        self._refreshing.add(task)
        task.add_done_callback(self._refreshing.discard)
        task.add_done_callback(lambda t: self._refreshed(job, t))

    def _refreshed(self, job: ShotJob, task: asyncio.Task[Image]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            self._refresh_failed.pop(job.key, None)
        else:
            if len(self._refresh_failed) > 10_000:
                self._refresh_failed.clear()
            self._refresh_failed[job.key] = time.monotonic()
            why = exc.message if isinstance(exc, OgshotError) else f"{type(exc).__name__}: {exc}"
            log.warning("refresh of a stale shot of %s failed (%s)", job.options.url, why)
        if self.metrics is not None:
            self.metrics.refreshed(exc is None)

    async def _make(self, job: ShotJob) -> Image:
        watch = Stopwatch()
        png = await self.shooter.shoot(job.options)
        watch.lap("capture")
        quality = ""
        if job.max_kb is not None:
            fitted = await asyncio.to_thread(
                encode_within, png, job.format, self.settings, job.max_kb
            )
            body, quality = fitted.body, fitted.quality
        else:
            body = await asyncio.to_thread(encode, png, job.format, self.settings)
        watch.lap("encode")
        etag = hashlib.blake2b(body, digest_size=16).hexdigest()
        await self.layers.put(job.key, Entry(body, etag, time.time(), quality=quality))
        watch.lap("store")
        return Image(
            body=body,
            etag=etag,
            format=job.format,
            cached=False,
            timings=watch.timings,
            quality=quality,
        )
