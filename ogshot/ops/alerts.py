"""Alerts: a JSON POST to ``OGSHOT_ALERT_WEBHOOK`` when an operator must act, and one when it ends.

Conditions, checked every ``alert_check_every`` seconds over the last ``alert_window`` seconds:

- ``template_errors:NAME``: a template's renders fail at ``alert_error_ratio`` or more (with at
  least ``alert_min_requests`` requests in the window);
- ``browser_restarts``: Chromium restarted ``alert_restarts`` times or more (crashes, failed
  health probes);
- ``cache_unavailable`` / ``redis_unavailable``: the disk cache or Redis does not work;
- ``queue_full``: requests were turned away with 503 because every page was busy and the queue full.

Each condition posts once when it starts, again at most once per ``alert_interval`` while it lasts,
and once "resolved" when it ends. The body is Slack-compatible (a ``text`` field) with the details
beside it. The webhook is the operator's and may be on a private network: ogshot posts to it from
its own process; rendering pages cannot reach it (they reach no network at all).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ogshot.core.settings import Settings

if TYPE_CHECKING:  # httpx is imported by start(): only a server with a webhook needs it
    import httpx

__all__ = ["Alerter", "Health"]

log = logging.getLogger("ogshot.alerts")


@dataclass(frozen=True)
class Health:
    """What the alerter reads on each check: ``Pool.stats()`` and the caches' health."""

    pool: Mapping[str, Any]
    cache_healthy: bool
    redis_healthy: bool | None  # None: no Redis configured


class Alerter:
    def __init__(self, settings: Settings, health: Callable[[], Health]) -> None:
        self.url = settings.alert_webhook
        self.window = settings.alert_window
        self.interval = settings.alert_interval
        self.error_ratio = settings.alert_error_ratio
        self.min_requests = settings.alert_min_requests
        self.restarts = settings.alert_restarts
        self.check_every = settings.alert_check_every
        self.health = health
        self.node = socket.gethostname()
        self._outcomes: collections.deque[tuple[float, str, bool]] = collections.deque()
        self._totals: collections.deque[tuple[float, int, int]] = collections.deque()
        self._firing: dict[str, float] = {}  # condition -> when it was last posted
        self._client: httpx.AsyncClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._post_failed = False
        self.sent: list[dict[str, Any]] = []  # what was posted, newest last (for /readyz, tests)

    # -- inputs --------------------------------------------------------------------------------

    def outcome(self, template: str, ok: bool) -> None:
        """A request for an existing template ended: rendered or served (ok) or failed (5xx)."""
        self._outcomes.append((time.monotonic(), template, ok))

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        import httpx

        self._client = httpx.AsyncClient(timeout=5.0, follow_redirects=False)
        self._task = asyncio.ensure_future(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.check_every)
            try:
                await self.check()
            except Exception:  # an alerting bug must never take the server down
                log.exception("alert check failed")

    # -- conditions ------------------------------------------------------------------------------

    def conditions(self, now: float) -> dict[str, str]:
        """The conditions that hold now -> a sentence for the operator."""
        horizon = now - self.window
        while self._outcomes and self._outcomes[0][0] < horizon:
            self._outcomes.popleft()
        health = self.health()
        pool = health.pool
        self._totals.append(
            (now, int(pool.get("browser_restarts", 0)), int(pool.get("rejected", 0)))
        )
        while len(self._totals) > 1 and self._totals[1][0] <= horizon:
            self._totals.popleft()
        found: dict[str, str] = {}
        counts: dict[str, list[int]] = {}
        for _at, template, ok in self._outcomes:
            seen = counts.setdefault(template, [0, 0])
            seen[0] += 1
            seen[1] += not ok
        for template, (total, failed) in sorted(counts.items()):
            if total >= self.min_requests and failed / total >= self.error_ratio:
                found[f"template_errors:{template}"] = (
                    f"template {template!r}: {failed} of {total} requests failed in the last "
                    f"{self.window:g} s"
                )
        _first, restarts_then, rejected_then = self._totals[0]
        _now, restarts_now, rejected_now = self._totals[-1]
        if restarts_now - restarts_then >= self.restarts:
            found["browser_restarts"] = (
                f"Chromium restarted {restarts_now - restarts_then} times in the last "
                f"{self.window:g} s"
            )
        if rejected_now > rejected_then:
            found["queue_full"] = (
                f"{rejected_now - rejected_then} requests turned away (503): every page busy and "
                f"the queue full, in the last {self.window:g} s"
            )
        if not health.cache_healthy:
            found["cache_unavailable"] = "the disk cache is unavailable; rendering every request"
        if health.redis_healthy is False:
            found["redis_unavailable"] = "Redis is unreachable; this node serves alone"
        return found

    async def check(self) -> None:
        now = time.monotonic()
        holding = self.conditions(now)
        for condition, text in holding.items():
            last = self._firing.get(condition)
            if last is None or now - last >= self.interval:
                self._firing[condition] = now
                await self._post(condition, "firing", text)
        for condition in [c for c in self._firing if c not in holding]:
            del self._firing[condition]
            await self._post(condition, "resolved", f"resolved: {condition}")

    async def _post(self, condition: str, status: str, text: str) -> None:
        import httpx

        icon = ":rotating_light:" if status == "firing" else ":white_check_mark:"
        body = {
            "text": f"{icon} ogshot on {self.node}: {text}",
            "condition": condition,
            "status": status,
            "node": self.node,
            "detail": text,
        }
        self.sent.append(body)
        if self._client is None:
            return
        try:
            response = await self._client.post(self.url, json=body)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            if not self._post_failed:
                log.error("could not post an alert to the webhook: %s", exc)
            self._post_failed = True
            return
        if self._post_failed:
            log.warning("alert webhook reachable again")
        self._post_failed = False
