"""Purges that reach the caches in front of the nodes: nginx (``OGSHOT_EDGE_PURGE_URL``) and CDNs
(``OGSHOT_PURGE_WEBHOOK``, and the ``Surrogate-Key`` / ``Cache-Tag`` headers of every image).

An edge cache keeps each image under the URI it was asked for (deploy/nginx.conf:
``proxy_cache_key $request_uri``), and one image can be asked for under many URIs (parameters in
another order, a signature, ``v``). Debian's cache-purge module (2.3) purges one exact key per
request: it has no wildcard. So every node remembers which URIs it answered for which image and
template (in Redis, shared by the fleet; without Redis, in this worker's memory), and a purge
sends ``PURGE <base><uri>`` for each of them to every edge base. A node sees every URI the edge
caches, since the edge caches only what a node answered.

A CDN purges by tag instead: each image carries ``Surrogate-Key: ogshot tmpl-NAME key-KEY``
(Fastly) and ``Cache-Tag: ogshot,tmpl-NAME,key-KEY`` (Cloudflare), and the webhook receives each
purge as ``{"event": "purge", "urls", "keys", "templates", "tags", "generation"}`` for the glue
that calls the CDN's API.

An edge or webhook that fails does not undo the purge of the nodes: the failures are logged and
reported in the answer (``edge.failed``), and ``ogshot purge`` exits non-zero.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ogshot.core.lru import LRU
from ogshot.core.settings import Settings

if TYPE_CHECKING:
    import httpx

    from ogshot.cache.redis import Fleet

__all__ = ["Edge", "EdgeReport", "tags"]

log = logging.getLogger("ogshot.edge")

PARALLEL = 16  # PURGE requests in flight to the edges at once
TIMEOUT = 10.0  # seconds per PURGE or webhook POST
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
REMEMBERED = 10_000  # URIs this worker remembers having recorded (and, without Redis, keeps)


def tags(template: str, key: str) -> list[str]:
    """The cache tags of an image: every ogshot image, its template's, its own (header-safe:
    a template name's other characters become ``_``)."""
    return ["ogshot", f"tmpl-{_UNSAFE.sub('_', template)}", f"key-{key}"]


@dataclass
class EdgeReport:
    """What a purge did beyond the nodes: URIs purged at each edge, webhook posted, failures."""

    uris: list[str] = field(default_factory=list)
    purged: int = 0  # PURGE answered 200 (the edge had it)
    absent: int = 0  # PURGE answered 404 (the edge did not have it)
    webhook: bool = False
    failed: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "uris": self.uris,
            "purged": self.purged,
            "absent": self.absent,
            "webhook": self.webhook,
            "failed": self.failed,
        }


class Edge:
    def __init__(self, settings: Settings) -> None:
        self.bases = [base.rstrip("/") for base in settings.edge_purge_url]
        self.webhook = settings.purge_webhook
        self._recorded: LRU[bool] = LRU(max_entries=REMEMBERED)  # (uri, key): sent to Redis
        # Without Redis: key or template -> the URIs this worker answered for it.
        self._local: LRU[set[str]] = LRU(max_entries=REMEMBERED)
        self._pending: set[asyncio.Task[None]] = set()

    @property
    def on(self) -> bool:
        return bool(self.bases or self.webhook)

    def remember(self, fleet: Fleet | None, uri: str, *, key: str, template: str) -> None:
        """``uri`` was answered with image ``key`` of ``template`` (an edge may now hold it).

        Off the answer's path: the Redis write runs as a task, once per URI and key per worker."""
        if not self.bases or not key or self._recorded.get((uri, key)) is not None:
            return
        self._recorded.set((uri, key), True)
        if fleet is None:
            for name in (f"key:{key}", f"tpl:{template}"):
                known = self._local.get(name)
                if known is None:
                    known = set()
                    self._local.set(name, known)
                if len(known) < REMEMBERED:
                    known.add(uri)
            return
        task = asyncio.ensure_future(fleet.remember_uri(uri, key=key, template=template))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def purge(
        self,
        fleet: Fleet | None,
        *,
        uris: list[str],
        keys: list[str],
        templates: list[str],
        generation: int | None,
    ) -> EdgeReport:
        """Purge ``uris`` and every URI known for ``keys`` and ``templates`` at every edge, and
        post the purge to the webhook."""
        report = EdgeReport()
        if self.bases:
            await asyncio.gather(*self._pending)  # what was answered just before is purged too
            known = set(uris)
            if fleet is not None:
                known |= await fleet.uris(keys=keys, templates=templates)
            for name in [f"key:{k}" for k in keys] + [f"tpl:{t}" for t in templates]:
                known |= self._local.get(name) or set()
            report.uris = sorted(known)
        import httpx  # ~0.1 s to import: paid at the first purge, not at every server start

        async with httpx.AsyncClient(timeout=TIMEOUT) as client:
            if report.uris:
                await self._purge_edges(client, report)
            if self.webhook:
                await self._post(client, report, uris, keys, templates, generation)
        for failure in report.failed:
            log.error("edge purge: %s", failure)
        return report

    async def _purge_edges(self, client: httpx.AsyncClient, report: EdgeReport) -> None:
        import httpx  # imported by purge() already

        slots = asyncio.Semaphore(PARALLEL)

        async def one(base: str, uri: str) -> None:
            async with slots:
                try:
                    answer = await client.request("PURGE", base + uri)
                except httpx.HTTPError as exc:
                    report.failed.append(f"PURGE {base}{uri}: {type(exc).__name__}: {exc}")
                    return
            if answer.status_code == 200:
                report.purged += 1
            elif answer.status_code == 404:
                report.absent += 1
            else:
                report.failed.append(f"PURGE {base}{uri}: answered {answer.status_code}")

        await asyncio.gather(*(one(base, uri) for base in self.bases for uri in report.uris))

    async def _post(
        self,
        client: httpx.AsyncClient,
        report: EdgeReport,
        uris: list[str],
        keys: list[str],
        templates: list[str],
        generation: int | None,
    ) -> None:
        import httpx  # imported by purge() already

        names = [f"tmpl-{_UNSAFE.sub('_', t)}" for t in templates] + [f"key-{k}" for k in keys]
        payload = {
            "event": "purge",
            "urls": sorted(set(uris) | set(report.uris)),
            "keys": keys,
            "templates": templates,
            "tags": names,
            "generation": generation,
        }
        try:
            answer = await client.post(self.webhook, json=payload)
        except httpx.HTTPError as exc:
            report.failed.append(f"webhook {self.webhook}: {type(exc).__name__}: {exc}")
            return
        if answer.is_success:
            report.webhook = True
        else:
            report.failed.append(f"webhook {self.webhook}: answered {answer.status_code}")
