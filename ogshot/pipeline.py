"""The request pipeline: validate -> cache -> HTML -> page -> capture -> encode -> store.

The Renderer owns the long-lived pieces (template catalog, disk cache, browser pool) and is
both the Python API and what the HTTP app calls::

    async with ogshot.Renderer(settings) as r:
        png = await r.render("article", {"title": "Hello"}, format="png")
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

from . import tracking
from .assets import Assets
from .cache import ImageCache, cache_key
from .compress import CONTENT_TYPES, encode, normalize_format
from .config import Settings
from .errors import InvalidFormat, RenderFailed, Unrenderable
from .glyphs import NO_WARNINGS, Coverage, Warnings
from .lru import LRU

if TYPE_CHECKING:
    from .metrics import Metrics
from .pool import Pool, Slot
from .remote import RemoteImages
from .render import Capture, capture
from .router import Router
from .templates import Catalog, Size, Template, canonical_params
from .timing import Stopwatch

__all__ = ["Image", "Renderer"]

log = logging.getLogger("ogshot")


@dataclass(frozen=True)
class Image:
    body: bytes
    etag: str
    format: str
    cached: bool
    timings: Mapping[str, float] = field(default_factory=dict)  # stage -> milliseconds
    # What the render that made it could not draw; kept with the cached image (warnings.py).
    warnings: Warnings = NO_WARNINGS

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]


@dataclass(frozen=True)
class Job:
    """A validated request: everything needed to look up or make one image."""

    template: Template
    values: Mapping[str, Any]
    format: str
    key: str


class Renderer:
    def __init__(self, settings: Settings | None = None, *, metrics: Metrics | None = None) -> None:
        self.settings = settings or Settings.load()
        self.metrics = metrics
        self.catalog = Catalog(
            self.settings.templates_dir,
            self.settings.static_dir,
            max_params=self.settings.max_params,
            max_param_length=self.settings.max_param_length,
            static_interval=0.0 if self.settings.dev else 1.0,
            size=Size(self.settings.width, self.settings.height, self.settings.device_scale_factor),
        )
        self.cache = ImageCache(self.settings)
        self.remote = RemoteImages.from_settings(self.settings)
        # The pages' requests are answered from the static folder and the fetched remote images.
        router = Router(Assets(self.settings.static_dir, remote=self.remote))
        self.pool = Pool(self.settings, router)
        self._inflight: dict[str, asyncio.Task[Image]] = {}
        # The hit path: a repeated request skips validation and hashing (jobs by raw request),
        # and a hot image skips the disk (images by cache key, with their expiry).
        self._jobs: LRU[Job] = LRU(max_entries=10_000)
        self._hot: LRU[tuple[bytes, str, float]] = LRU(
            max_entries=10_000 if self.settings.memory_cache_size else 0,  # 0 turns it off
            max_size=self.settings.memory_cache_size,
            size_of=lambda entry: len(entry[0]),
        )
        # The fonts Chromium can fall back to (read at start), and the warnings of cached images
        # by cache key (an empty Warnings: known clean). A warned image's warnings are also in the
        # disk cache as WARN_PREFIX + key, so that other workers and later runs report them.
        self.coverage: Coverage | None = None
        self._fonts_digest: str | None = None
        self._warned: LRU[Warnings] = LRU(max_entries=10_000)

    async def start(self) -> None:
        # The fonts are read (~0.2 s) while Chromium starts.
        fonts = asyncio.ensure_future(asyncio.to_thread(Coverage.installed))
        try:
            await self.pool.start()
        finally:
            self.coverage = await fonts

    async def close(self) -> None:
        await self.pool.close()
        self.cache.close()

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

    def prepare(
        self, template: str, params: Mapping[str, Any], format: str = "png", *, remote: str = ""
    ) -> Job:
        """Validate a request and compute its cache key; raises 4xx errors. Touches no browser.

        ``remote``: the hashes of the remote images the request uses (``RemoteImages.pin``)."""
        tpl = self.catalog.get(template)
        raw: Hashable | None = (template, format, remote, tuple(params.items()))
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
        values = self.catalog.validate(tpl, params)
        key = cache_key(
            template_digest=tpl.digest,
            params=canonical_params(values),
            fmt=fmt,
            settings=self.settings,
            extra=remote,
            size=str(tpl.size),
        )
        job = Job(template=tpl, values=values, format=fmt, key=key)
        if raw is not None:
            self._jobs.set(raw, job)
        return job

    async def image(self, template: str, params: Mapping[str, Any], format: str = "png") -> Image:
        watch = Stopwatch()
        job = self.prepare(template, params, format)
        pinned = await self.remote.pin(job.values)
        if pinned:  # the remote images' bytes decide the pixels too
            job = self.prepare(template, params, format, remote=pinned)
        watch.lap("validate")
        hit = self._cached(job.key)
        watch.lap("cache")
        if hit is not None:
            body, etag = hit
            return Image(
                body=body,
                etag=etag,
                format=job.format,
                cached=True,
                timings=watch.timings,
                warnings=self.warnings_of(job.key),
            )
        # Single flight: identical concurrent misses share one render. The render runs as its own
        # task so that a client hanging up does not cancel it for the others.
        task = self._inflight.get(job.key)
        if task is None:
            task = asyncio.ensure_future(self._make(job))
            self._inflight[job.key] = task
            task.add_done_callback(lambda _t: self._inflight.pop(job.key, None))
        image = await asyncio.shield(task)
        return Image(
            body=image.body,
            etag=image.etag,
            format=image.format,
            cached=False,
            timings={**watch.timings, **image.timings},
            warnings=image.warnings,
        )

    def _cached(self, key: str) -> tuple[bytes, str] | None:
        hot = self._hot.get(key)
        if hot is not None and hot[2] > time.monotonic():
            if self.metrics is not None:
                self.metrics.lookup("memory", True)
            return hot[0], hot[1]
        found = self.cache.get(key)
        if found is not None:
            self._remember(key, *found)
        if self.metrics is not None:
            self.metrics.lookup("memory", False)
            self.metrics.lookup("disk", found is not None)
        return found

    def warnings_of(self, key: str) -> Warnings:
        """The warnings of the cached image ``key`` (an empty Warnings when it had none)."""
        known = self._warned.get(key)
        if known is None:
            found = self.cache.get(WARN_PREFIX + key)
            known = _parse_warnings(found[0]) if found is not None else Warnings()
            self._warned.set(key, known)
        return known

    def cache_sizes(self) -> list[tuple[str, int, int]]:
        """(layer, entries, bytes) of each cache layer; blocking (the disk cache counts rows)."""
        entries, volume = self.cache.stats()
        return [("memory", len(self._hot), self._hot.size), ("disk", entries, volume)]

    def _remember(self, key: str, body: bytes, etag: str) -> None:
        # A hot copy never outlives the disk cache's TTL.
        expires = time.monotonic() + (self.settings.cache_ttl or float("inf"))
        self._hot.set(key, (body, etag, expires))

    async def _make(self, job: Job) -> Image:
        watch = Stopwatch()
        try:
            html = self.catalog.render_html(job.template, job.values)
            watch.lap("html")
            # With jpeg_encoder "chromium" the capture is the final JPEG: no PNG round trip.
            chromium_jpeg = job.format == "jpeg" and self.settings.jpeg_encoder == "chromium"

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
                attempt, time_limit=self.settings.render_timeout, size=job.template.size
            )
            watch.timings.update(shot.timings)
            watch.restart()
            warnings = await self._check(job, shot)
            if shot.format == job.format == "jpeg":
                body = shot.body
            else:
                body = await asyncio.to_thread(encode, shot.png, job.format, self.settings)
            watch.lap("encode")
        except RenderFailed as exc:
            log.error("render of template %r failed: %s", job.template.name, exc.message)
            if self.metrics is not None:
                self.metrics.render_failed(job.template.name, exc.kind)
            tracking.report(exc, template=job.template.name, key=job.key)
            raise
        etag = hashlib.blake2b(body, digest_size=16).hexdigest()
        self._remember(job.key, body, etag)
        self._warned.set(job.key, warnings)
        await asyncio.to_thread(self._store, job.key, body, etag, warnings)
        watch.lap("store")
        if self.metrics is not None:
            self.metrics.image_rendered(job.template.name, job.format, watch.timings)
        return Image(
            body=body,
            etag=etag,
            format=job.format,
            cached=False,
            timings=watch.timings,
            warnings=warnings,
        )

    def _store(self, key: str, body: bytes, etag: str, warnings: Warnings) -> None:
        if warnings:  # first, so that no hit finds the image without its warnings
            data = json.dumps([list(warnings.missing_glyphs), list(warnings.failed_images)])
            self.cache.set(WARN_PREFIX + key, data.encode(), "warnings")
        self.cache.set(key, body, etag)

    async def _check(self, job: Job, shot: Capture) -> Warnings:
        """The render's warnings: logged and counted; with ``strict``, Unrenderable instead."""
        if self.coverage is None:
            return Warnings(failed_images=tuple(shot.failed_images))
        if shot.codes and self._fonts_digest != job.template.static_digest:
            # The static folder changed: its web fonts may draw other characters now.
            await asyncio.to_thread(self.coverage.use_static, self.settings.static_dir)
            self._fonts_digest = job.template.static_digest
        warnings = Warnings(
            missing_glyphs=tuple(self.coverage.missing(shot.codes)),
            failed_images=tuple(shot.failed_images),
        )
        if not warnings:
            return warnings
        name = job.template.name
        log.warning("render of template %r: %s", name, warnings.message())
        if self.metrics is not None:
            for kind in warnings.kinds:
                self.metrics.render_warning(name, kind)
        if self.settings.strict:
            detail: dict[str, Any] = {"template": name, **warnings.to_json(job.values)}
            culprits = detail["parameters"]
            if culprits:
                detail["parameter"] = next(iter(culprits))
            if self.metrics is not None:
                self.metrics.render_failed(name, Unrenderable.kind)
            raise Unrenderable(f"template {name!r}: {warnings.message()}", detail=detail)
        return warnings


WARN_PREFIX = "warn:"  # disk cache key of a cached image's warnings


def _parse_warnings(data: bytes) -> Warnings:
    try:
        glyphs, images = json.loads(data)
        return Warnings(
            missing_glyphs=tuple(int(c) for c in glyphs), failed_images=tuple(map(str, images))
        )
    except (ValueError, TypeError):
        return Warnings()
