"""The hot path: a cache hit of a URL answered before, sent from memory in two ``send`` calls,
without routing, parsing, signature checks or the middleware stack.

The first answer of a URL goes the whole way (``og_image``): its query is parsed, its signature
checked, its image found or rendered. That answer is remembered here under the URL's exact raw path
and query (a signed URL is remembered with exactly the signature that was checked, so a tampered
one is never found here), as the headers a hit of it sends and the cache key and ETag of its image.
The image itself stays in the memory layer only: this table holds no body.

A later GET or HEAD of that exact URL is answered here when all of these still hold, else it goes
the whole way (and is remembered again):

- the memory layer holds the same copy (same ETag and ``stored_at``): a purge, an eviction or a
  newer render makes a new copy or none;
- the copy is fresh (a stale one is the pipeline's: it serves it and refreshes it);
- no purge this worker knows of killed it (``Layers.alive``; a purge by key elsewhere in the
  fleet is asked of Redis by the whole way);
- the template's digest is the one it was made with (an edit makes a new version, a new key);
- the request carries no ``Range`` header.

What the whole way adds to a hit is kept: ``If-None-Match`` -> 304, the same headers in the same
order (``Server-Timing`` names the lookup's ``cache`` stage, then ``hot``), ``X-Request-ID``, the
request counts (plain integers, added to the Prometheus counters at each metrics sync and scrape),
the alerter's outcome, the JSON log line, refresh-ahead's fetch count and the edge's record of the
URI. Off in dev mode (the studio) and when the memory layer is off (``OGSHOT_MEMORY_CACHE_SIZE=0``).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from ogshot.cache.disk import Entry
from ogshot.core.errors import OgshotError
from ogshot.core.lru import LRU
from ogshot.core.settings import Settings
from ogshot.http.edge import Edge
from ogshot.http.middleware import log_request
from ogshot.http.responses import etag_matches, image_headers
from ogshot.ops.alerts import Alerter
from ogshot.ops.logs import REQUEST_ID, request_id_from
from ogshot.ops.metrics import Metrics, platform_of
from ogshot.pipeline.jobs import Image, Job
from ogshot.pipeline.renderer import Renderer

__all__ = ["HOT_URLS", "HotAnswer", "HotPath", "HotTable", "hot_key"]

HOT_URLS = 10_000  # URLs remembered per worker (headers and a key each; no image bytes)

# (status, template, platform, variant, format) -> [requests, bytes sent]
_CountKey = tuple[int, str, str | None, str, str | None]


def hot_key(scope: Scope) -> tuple[bytes, bytes]:
    """A request's URL exactly as the client sent it: raw path, raw query."""
    path: bytes = scope.get("raw_path") or scope["path"].encode()
    return path, scope.get("query_string", b"")


@dataclass(frozen=True, slots=True)
class HotAnswer:
    """A URL's hit, as the whole way answered it: which copy of which image, and its headers."""

    key: str  # the image's cache key: its body is the memory layer's entry under it
    etag: str
    stored_at: float  # of the copy answered: another copy is another answer
    fresh_until: float  # wall-clock seconds (inf: no TTL)
    template: str
    digest: str  # the template's digest when it was answered
    job: Job  # for refresh-ahead's count
    request: tuple[str, Mapping[str, Any], str]  # (template, parameters, format), the same
    full: list[tuple[bytes, bytes]]  # the headers of a 200 (content length and type last)
    not_modified: list[tuple[bytes, bytes]]  # of a 304
    timing: int  # where Server-Timing is among them (its stages are this answer's own)
    timing_tail: bytes  # what follows the stages in it
    format: str  # the metrics' format label
    variant: str  # the metrics' variant label
    uri: str  # the edge's record of what it may cache


class HotTable:
    """The URLs the hot path may answer, and the counts of what it answered since the last sync.

    Written by ``og_image`` (:meth:`remember`), read by :class:`HotPath`; the app's lifespan
    attaches the Renderer."""

    def __init__(
        self,
        settings: Settings,
        *,
        metrics: Metrics | None,
        alerter: Alerter | None = None,
        edge: Edge | None = None,
        log_requests: bool = False,
    ) -> None:
        self.settings = settings
        self.on = bool(settings.memory_cache_size) and not settings.dev
        self.urls: LRU[HotAnswer] = LRU(max_entries=HOT_URLS if self.on else 0)
        self.metrics = metrics
        self.alerter = alerter
        self.edge = edge if edge is not None and edge.on else None
        self.log_requests = log_requests
        self.renderer: Renderer | None = None
        self.served = 0  # hot hits since the start
        self._counts: dict[_CountKey, list[int]] = {}
        self._unsynced = 0  # hot hits since the last flush

    def attach(self, renderer: Renderer | None) -> None:
        """The Renderer whose memory layer and catalog answers are checked against (None: the
        app stopped; nothing is answered hot)."""
        self.renderer = renderer
        self.urls.clear()

    def remember(
        self,
        scope: Scope,
        image: Image,
        request: tuple[str, Mapping[str, Any], str],
        requested: str | None,
    ) -> None:
        """``image`` answered the request in ``scope`` the whole way (its signature checked):
        its URL may be answered hot from now on, while its copy stays in memory and fresh.
        ``request``: its (template, parameters, format); ``requested``: the ``v`` it carries."""
        renderer = self.renderer
        if not self.on or renderer is None or image.stale:
            return
        template, params, fmt = request
        try:
            job = renderer.prepare(template, params, fmt)  # the memo of the request just answered
        except OgshotError:  # the template changed since, into one that fails: not remembered
            return
        if job.key != image.key:  # remote images decide its key, or the template changed since
            return
        entry = renderer.layers.memory.get(image.key)
        if entry is None or entry.body is not image.body:  # not (or no longer) this copy
            return
        # A hit's headers, whatever this answer was (a miss is a hit from now on).
        hit = dataclasses.replace(image, cached=True, stale=False, timings={})
        headers = image_headers(hit, self.settings, requested, template=template)
        timing = [name for name, _ in headers].index(b"server-timing")
        tail = headers[timing][1]  # what follows the stages (the variant), if anything
        ttl = self.settings.cache_ttl
        path, query = hot_key(scope)
        self.urls.set(
            (path, query),
            HotAnswer(
                key=image.key,
                etag=entry.etag,
                stored_at=entry.stored_at,
                fresh_until=entry.stored_at + ttl if ttl else math.inf,
                template=template,
                digest=job.template.digest,
                job=job,
                request=request,
                full=[
                    *headers,
                    (b"content-length", b"%d" % len(entry.body)),
                    (b"content-type", image.content_type.encode()),
                ],
                not_modified=headers,
                timing=timing,
                timing_tail=b", " + tail if tail else b"",
                format=image.format,
                variant=image.variant[:32],
                uri=(path + (b"?" + query if query else b"")).decode("latin-1"),
            ),
        )

    def current(self, url: tuple[bytes, bytes]) -> tuple[HotAnswer, Entry] | None:
        """The answer remembered for ``url`` and the copy it sends, when both still hold (see
        the module docstring); else None, and the URL goes the whole way."""
        answer = self.urls.get(url)
        renderer = self.renderer
        if answer is None or renderer is None:
            return None
        entry = renderer.layers.memory.get(answer.key)
        if (
            entry is None
            or entry.stored_at != answer.stored_at
            or entry.etag != answer.etag
            or time.time() >= answer.fresh_until
            or renderer.layers.alive(answer.key, entry, answer.template) is not True
            or not self._same_template(renderer, answer)
        ):
            self.urls.pop(url)
            return None
        return answer, entry

    @staticmethod
    def _same_template(renderer: Renderer, answer: HotAnswer) -> bool:
        try:
            return renderer.catalog.get(answer.template).digest == answer.digest
        except OgshotError:  # deleted, or now broken: the whole way says so
            return False

    def count(self, status: int, answer: HotAnswer, platform: str | None, nbytes: int) -> None:
        """One hot hit, as the request telemetry (http/middleware.py) would count it."""
        self.served += 1
        if self.metrics is None:
            return
        self._unsynced += 1
        key = (
            status,
            answer.template[:64] if platform is not None else "",
            platform,
            answer.variant,
            None if status == 304 else answer.format,
        )
        counted = self._counts.get(key)
        if counted is None:
            self._counts[key] = [1, nbytes]
        else:
            counted[0] += 1
            counted[1] += nbytes

    def flush(self) -> None:
        """Add the hot hits counted since the last flush to the Prometheus counters."""
        if self.metrics is None or not self._unsynced:
            return
        counts, self._counts = self._counts, {}
        hits, self._unsynced = self._unsynced, 0
        for (status, template, platform, variant, fmt), (times, nbytes) in counts.items():
            self.metrics.request(
                "og",
                status,
                "hit",
                template=template,
                platform=platform,
                variant=variant,
                fmt=fmt,
                nbytes=nbytes,
                times=times,
            )
        self.metrics.lookup("memory", True, times=hits)
        self.metrics.hot_served(hits)


class HotPath:
    """The outermost ASGI layer: answers a hot URL (see the module docstring), passes the rest
    on to the app."""

    def __init__(self, app: ASGIApp, *, table: HotTable) -> None:
        self.app = app
        self.table = table

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in ("GET", "HEAD")
            or not scope["path"].startswith("/og")
        ):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        found = self.table.current(hot_key(scope))
        if found is None:
            await self.app(scope, receive, send)
            return
        answer, entry = found
        if_none_match = request_id = user_agent = None
        for name, value in scope["headers"]:
            if name == b"if-none-match":
                if_none_match = value
            elif name == b"x-request-id" and request_id is None:  # the first, as telemetry reads
                request_id = value
            elif name == b"user-agent" and user_agent is None:
                user_agent = value
            elif name == b"range":  # byte ranges are the whole way's
                await self.app(scope, receive, send)
                return
        rid = request_id_from(None if request_id is None else request_id.decode("latin-1"))
        get = scope["method"] == "GET"
        if if_none_match is not None and etag_matches(if_none_match.decode("latin-1"), answer.etag):
            status, headers, body = 304, answer.not_modified, b""
        else:
            status, headers, body = 200, answer.full, entry.body if get else b""
        # The whole way's hit names its stages (validate, cache); the hot path has one: the
        # lookup in memory, and says it was hot.
        at = answer.timing
        took = (time.perf_counter() - started) * 1000
        timing = b"cache;dur=%.1f, hot%s" % (took, answer.timing_tail)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    *headers[:at],
                    (b"server-timing", timing),
                    *headers[at + 1 :],
                    (b"x-request-id", rid.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
        self._after(scope, answer, entry, status, get, user_agent, rid, len(body), started)

    def _after(
        self,
        scope: Scope,
        answer: HotAnswer,
        entry: Entry,
        status: int,
        get: bool,
        user_agent: bytes | None,
        request_id: str,
        sent: int,
        started: float,
    ) -> None:
        """What the whole way does after a hit: counts, alert outcome, log line, refresh-ahead's
        fetch count, the edge's record."""
        table = self.table
        platform = platform_of(user_agent.decode("latin-1") if user_agent else "") if get else None
        table.count(status, answer, platform, sent)
        if table.alerter is not None:
            table.alerter.outcome(answer.template, ok=True)
        renderer = table.renderer
        if renderer is not None:
            renderer.served(answer.job, entry, answer.request)
            if table.edge is not None:
                table.edge.remember(
                    renderer.layers.fleet, answer.uri, key=answer.key, template=answer.template
                )
        if table.log_requests:
            token = REQUEST_ID.set(request_id)
            try:
                info = {"template": answer.template, "format": answer.format, "timings": {}}
                fmt = None if status == 304 else answer.format
                log_request(scope, info, request_id, "og", status, "hit", fmt, sent, started)
            finally:
                REQUEST_ID.reset(token)
