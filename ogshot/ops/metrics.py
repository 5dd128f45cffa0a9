"""Prometheus metrics: what ogshot renders and serves, how fast each stage is, what fails, how well
each cache layer works, and which platforms fetch the images.

prometheus_client does the counting. With several workers (``ogshot serve --workers N``) it runs in
its multiprocess mode: the CLI gives the workers a fresh folder for their files
(``PROMETHEUS_MULTIPROC_DIR``) and removes it at exit, so what one port answers adds up across
workers. That variable must be set before prometheus_client is imported, which is why this module
is imported only by the app, never by ``import ogshot``.

Label values come from bounded sets only: routes, status codes, cache results, formats, stages,
error kinds, platforms (a classified User-Agent, never the raw one) and template names, which are
only ever taken from a template that was found (an unknown name is a 404 counted by route), so a
scanner cannot blow up the number of series.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

__all__ = [
    "CONTENT_TYPE_LATEST",
    "FETCHES",
    "IMAGES_RENDERED",
    "PLATFORMS",
    "RENDER_SECONDS",
    "STAGE_SECONDS",
    "TEMPLATE_REQUESTS",
    "Metrics",
    "platform_of",
]

# 5 ms to 10 s: a hit-path stage is a few ms, a miss tens of ms, a deadline 10 s.
BUCKETS = (0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# (label, substrings of the User-Agent), first match wins. Apple's iMessage fetches with a UA that
# names both Facebook's and X's crawlers, so it is tested before either.
_PLATFORM_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("facebook", ("facebookexternalhit", "facebookcatalog", "facebot")),
    ("telegram", ("telegrambot",)),  # "TelegramBot (like TwitterBot)": before X's
    ("twitter", ("twitterbot",)),
    ("linkedin", ("linkedinbot",)),
    ("slack", ("slackbot", "slack-imgproxy")),
    ("discord", ("discordbot",)),
    ("whatsapp", ("whatsapp/",)),
    ("mastodon", ("mastodon/",)),
    ("bluesky", ("bluesky", "cardyb")),
    ("google", ("googlebot", "google-inspectiontool")),
)
PLATFORMS = ("imessage", *(label for label, _ in _PLATFORM_RULES), "other")

# Metric names other modules read back (the studio's Activity page reads the exposition).
TEMPLATE_REQUESTS = "ogshot_template_requests"
IMAGES_RENDERED = "ogshot_images_rendered"
FETCHES = "ogshot_fetches"
RENDER_SECONDS = "ogshot_render_seconds"
STAGE_SECONDS = "ogshot_render_stage_seconds"

# Pool events and the Pool.stats() totals they are read from.
POOL_EVENTS = {
    "overloaded": "rejected",
    "page_replaced": "pages_replaced",
    "browser_restart": "browser_restarts",
    "browser_recycle": "browser_recycles",
    "browser_memory_recycle": "browser_memory_recycles",  # of those, over browser_max_mb
    "probe_failure": "probe_failures",
}


@functools.lru_cache(maxsize=1024)  # on every image served; crawlers send a few agents each
def platform_of(user_agent: str) -> str:
    """The platform a User-Agent belongs to, from :data:`PLATFORMS`."""
    ua = user_agent.lower()
    if "facebookexternalhit" in ua and "twitterbot" in ua:
        return "imessage"
    for label, needles in _PLATFORM_RULES:
        if any(needle in ua for needle in needles):
            return label
    return "other"


class Metrics:
    """ogshot's metrics in a registry of their own (one per app; tests build many apps)."""

    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        # In multiprocess mode the values live in the shared folder and are read back by a
        # collector at scrape time; registering the objects too would count them twice.
        own = None if self.multiprocess else CollectorRegistry(auto_describe=True)
        self.registry = own
        self.requests = Counter(
            "ogshot_requests",
            "HTTP requests by route, status and cache result.",
            ["route", "status", "cache"],
            registry=own,
        )
        self.fetches = Counter(
            FETCHES,
            "Image fetches by template, the platform that fetched them (classified User-Agent) "
            "and the A/B variant served (empty when the template declares none).",
            ["template", "platform", "variant"],
            registry=own,
        )
        self.template_requests = Counter(
            TEMPLATE_REQUESTS,
            "Images served (status < 400) by template and cache result (hit, miss).",
            ["template", "cache"],
            registry=own,
        )
        self.served_bytes = Counter(
            "ogshot_served_bytes",
            "Image bytes sent, by format.",
            ["format"],
            registry=own,
        )
        self.rendered = Counter(
            IMAGES_RENDERED,
            "Images rendered (cache misses that reached the browser), by template and format.",
            ["template", "format"],
            registry=own,
        )
        self.render_seconds = Histogram(
            RENDER_SECONDS,
            "Time to make one image on a miss (html to store), by template.",
            ["template"],
            buckets=BUCKETS,
            registry=own,
        )
        self.stage_seconds = Histogram(
            STAGE_SECONDS,
            "Time spent in each stage of a render (queue, html, resize, load, ready, "
            "capture, encode, store).",
            ["stage"],
            buckets=BUCKETS,
            registry=own,
        )
        self.failures = Counter(
            "ogshot_render_failures",
            "Renders that failed, by template and error kind.",
            ["template", "kind"],
            registry=own,
        )
        self.warnings = Counter(
            "ogshot_render_warnings",
            "Renders that drew a character no font has (missing_glyphs), lost an image "
            "(failed_images) or a stylesheet, script, font or frame (failed_resources), by "
            "template and kind.",
            ["template", "kind"],
            registry=own,
        )
        self.lookups = Counter(
            "ogshot_cache_lookups",
            "Cache lookups by layer (memory, disk, redis) and result (hit, miss).",
            ["layer", "result"],
            registry=own,
        )
        self.cache_errors = Counter(
            "ogshot_cache_errors",
            "Cache operations that failed, by layer.",
            ["layer"],
            registry=own,
        )
        self.singleflight = Counter(
            "ogshot_singleflight_saved",
            "Renders saved because an identical render was already running (local: this "
            "worker; fleet: another node, through Redis).",
            ["scope"],
            registry=own,
        )
        self.stale = Counter(
            "ogshot_stale_served",
            "Images served past their TTL while one refresh runs.",
            registry=own,
        )
        self.refreshes = Counter(
            "ogshot_refreshes",
            "Background refreshes of stale images, by result.",
            ["result"],
            registry=own,
        )
        self.purges = Counter("ogshot_purged_keys", "Cache keys removed by purges.", registry=own)
        self.hot_hits = Counter(
            "ogshot_hot_hits",
            "Cache hits answered by the hot path (a URL answered before, its image still in "
            "memory and fresh), without routing; also counted in ogshot_requests as hits.",
            registry=own,
        )
        self.warm_renders = Counter(
            "ogshot_warm_renders",
            "Images the warm lane made ahead of their first request (POST /admin/warm).",
            registry=own,
        )
        self.refresh_ahead_renders = Counter(
            "ogshot_refresh_ahead_renders",
            "Popular images the warm lane made again before they aged (OGSHOT_REFRESH_AHEAD).",
            registry=own,
        )
        self.warm_queue_depth = Gauge(
            "ogshot_warm_queue_depth",
            "Warm items queued or being made (with Redis: the fleet's queue, the same on every "
            "node).",
            multiprocess_mode="max",
            registry=own,
        )
        # Read from the pool and the caches, which keep their own totals (see ``sync``).
        self.pages = Gauge(
            "ogshot_pool_pages",
            "Warm pages by state: idle, busy, or starting (being opened: after start, a crash "
            "or a browser restart).",
            ["state"],
            multiprocess_mode="livesum",
            registry=own,
        )
        self.queue = Gauge(
            "ogshot_pool_queue_depth",
            "Requests waiting for a page.",
            multiprocess_mode="livesum",
            registry=own,
        )
        self.pool_events = Counter(
            "ogshot_pool_events",
            "Pool events: overloaded (503), page_replaced (crashed, timed out or broken), "
            "browser_restart, browser_recycle, probe_failure.",
            ["event"],
            registry=own,
        )
        self.cache_entries = Gauge(
            "ogshot_cache_entries",
            "Images held, by layer.",
            ["layer"],
            multiprocess_mode="max",
            registry=own,
        )
        self.cache_bytes = Gauge(
            "ogshot_cache_bytes",
            "Bytes held, by layer.",
            ["layer"],
            multiprocess_mode="max",
            registry=own,
        )
        self._seen: dict[str, float] = {}
        # The hit path's label children, found once: ``labels()`` validates and locks each time,
        # which costs more than the increment itself. Keys come from bounded label values.
        self._request_children: dict[tuple[Any, ...], tuple[Any, Any, Any, Any]] = {}
        self._lookup_children: dict[tuple[str, bool], Any] = {}
        for state in ("busy", "idle", "starting"):
            self.pages.labels(state)
        for event in POOL_EVENTS:
            self.pool_events.labels(event)

    # -- events ------------------------------------------------------------------------------

    def image_rendered(self, template: str, fmt: str, timings: Mapping[str, float]) -> None:
        self.rendered.labels(template, fmt).inc()
        total = 0.0
        for stage, ms in timings.items():
            if stage in ("validate", "cache"):
                continue  # the request's, not the render's
            self.stage_seconds.labels(stage).observe(ms / 1000)
            total += ms
        self.render_seconds.labels(template).observe(total / 1000)

    def cache_error(self, layer: str) -> None:
        self.cache_errors.labels(layer).inc()

    def purged(self, keys: int) -> None:
        self.purges.inc(keys)

    def stale_served(self) -> None:
        self.stale.inc()

    def refreshed(self, ok: bool) -> None:
        self.refreshes.labels("ok" if ok else "error").inc()

    def warm_rendered(self, refresh: bool) -> None:
        (self.refresh_ahead_renders if refresh else self.warm_renders).inc()

    def warm_queue(self, depth: int) -> None:
        self.warm_queue_depth.set(depth)

    def singleflight_saved(self, scope: str) -> None:
        self.singleflight.labels(scope).inc()

    def render_failed(self, template: str, kind: str) -> None:
        self.failures.labels(template, kind).inc()

    def render_warning(self, template: str, kind: str) -> None:
        self.warnings.labels(template, kind).inc()

    def lookup(self, layer: str, hit: bool, *, times: int = 1) -> None:
        child = self._lookup_children.get((layer, hit))
        if child is None:
            child = self.lookups.labels(layer, "hit" if hit else "miss")
            self._lookup_children[(layer, hit)] = child
        child.inc(times)

    def hot_served(self, times: int) -> None:
        """``times`` hits answered by the hot path (http/hot.py), counted since the last call."""
        self.hot_hits.inc(times)

    def request(
        self,
        route: str,
        status: int,
        cache: str,
        *,
        template: str = "",
        platform: str | None = None,
        variant: str = "",
        fmt: str | None = None,
        nbytes: int = 0,
        times: int = 1,
    ) -> None:
        """One HTTP request (``times`` alike: the hot path's, added up); ``platform`` (and
        ``template``) only for an image served."""
        key = (route, status, cache, template, platform, variant, fmt)
        children = self._request_children.get(key)
        if children is None:
            if len(self._request_children) > 10_000:  # label sets are bounded; this is a guard
                self._request_children.clear()
            children = (
                self.requests.labels(route, str(status), cache),
                None if platform is None else self.fetches.labels(template, platform, variant),
                None if platform is None else self.template_requests.labels(template, cache),
                None if fmt is None else self.served_bytes.labels(fmt),
            )
            self._request_children[key] = children
        counted, fetched, served, sent = children
        counted.inc(times)
        if fetched is not None:
            fetched.inc(times)
        if served is not None:
            served.inc(times)
        if sent is not None and nbytes:
            sent.inc(nbytes)

    # -- totals kept by others -----------------------------------------------------------------

    def sync(self, pool: Mapping[str, Any], caches: Iterable[tuple[str, int, int]] = ()) -> None:
        """Copy the pool's state and totals (``Pool.stats()``) and the caches' sizes
        (layer, entries, bytes) into the metrics. Totals become counter increments, so they add
        up across workers like every other counter."""
        self.pages.labels("busy").set(pool.get("busy", 0))
        self.pages.labels("idle").set(pool.get("idle", 0))
        self.pages.labels("starting").set(pool.get("starting", 0))
        self.queue.set(pool.get("queued", 0))
        for event, total_key in POOL_EVENTS.items():
            total = float(pool.get(total_key, 0))
            grown = total - self._seen.get(event, 0.0)
            if grown > 0:
                self.pool_events.labels(event).inc(grown)
            self._seen[event] = total
        for layer, entries, size in caches:
            self.cache_entries.labels(layer).set(entries)
            self.cache_bytes.labels(layer).set(size)

    def exposition(self) -> bytes:
        return generate_latest(self._readable())

    def samples(self) -> Iterator[tuple[str, dict[str, str], float]]:
        """Every sample as (name, labels, value), as a scrape would see it (all workers')."""
        for family in self._readable().collect():
            for sample in family.samples:
                yield sample.name, sample.labels, sample.value

    def _readable(self) -> CollectorRegistry:
        if self.registry is not None:
            return self.registry
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry

    @staticmethod
    def worker_exited(pid: int) -> None:
        """Drop a finished worker's live gauges (its counters stay counted)."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
