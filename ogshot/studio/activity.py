"""The studio's Activity page: the last hour of the app's own metrics, as the page's charts need.

The numbers come from the same counters and histograms ``/metrics`` exposes (``Metrics``), so the
page and a Prometheus dashboard cannot disagree. Counters only go up; "the last hour" is the
difference between now and a snapshot taken an hour ago. A background task keeps a ring of
snapshots, one every ``EVERY`` seconds for ``WINDOW`` seconds; each API call adds a fresh one for
"now". Quantiles are read from histogram bucket differences, interpolated within a bucket exactly
as PromQL's ``histogram_quantile`` does.

    GET /preview/_activity        the page
    GET /preview/_api/activity    the numbers (JSON)
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import logging
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ogshot.ops.metrics import (
    FETCHES,
    IMAGES_RENDERED,
    RENDER_SECONDS,
    STAGE_SECONDS,
    TEMPLATE_REQUESTS,
)

if TYPE_CHECKING:
    from ogshot.ops.metrics import Metrics

__all__ = ["Activity", "histogram_quantile", "routes"]

# Sample names in the exposition (a counter's samples end in _total, a histogram's in _bucket).
TEMPLATE_REQUESTS_TOTAL = f"{TEMPLATE_REQUESTS}_total"
IMAGES_RENDERED_TOTAL = f"{IMAGES_RENDERED}_total"
FETCHES_TOTAL = f"{FETCHES}_total"
RENDER_SECONDS_BUCKET = f"{RENDER_SECONDS}_bucket"
STAGE_SECONDS_BUCKET = f"{STAGE_SECONDS}_bucket"

log = logging.getLogger("ogshot")

ASSETS = Path(__file__).with_name("assets")
NO_STORE = {"cache-control": "no-store"}
EVERY = 10.0  # seconds between snapshots
WINDOW = 3600.0  # what the page covers
POINTS = 60  # chart points: one per minute
# Only these are kept in a snapshot (sample name -> its label names, in order).
_KEPT = (
    TEMPLATE_REQUESTS_TOTAL,
    IMAGES_RENDERED_TOTAL,
    FETCHES_TOTAL,
    RENDER_SECONDS_BUCKET,
    STAGE_SECONDS_BUCKET,
)

Key = tuple[str, tuple[tuple[str, str], ...]]  # (sample name, sorted labels)
Values = dict[Key, float]


def histogram_quantile(q: float, buckets: Iterable[tuple[float, float]]) -> float | None:
    """The q-quantile (0..1) of a histogram given as (upper bound, cumulative count) pairs,
    ``+Inf`` included; None when it holds no observation.

    PromQL's interpolation: the rank ``q * total`` falls in the first bucket whose cumulative
    count reaches it, and is placed linearly between that bucket's lower and upper bound (the
    first bucket starts at 0). A rank in the ``+Inf`` bucket answers the highest finite bound."""
    ordered = sorted(buckets)
    if not ordered or not math.isinf(ordered[-1][0]):
        return None
    total = ordered[-1][1]
    if total <= 0 or math.isnan(q):
        return None
    if q <= 0:
        return 0.0 if ordered[0][0] > 0 else ordered[0][0]
    if q >= 1:
        return ordered[-2][0] if len(ordered) > 1 else None
    rank = q * total
    counts = [count for _, count in ordered]
    index = bisect.bisect_left(counts, rank)
    if index == len(ordered) - 1:
        return ordered[-2][0] if len(ordered) > 1 else None
    upper, count = ordered[index]
    lower, below = (0.0, 0.0) if index == 0 else ordered[index - 1]
    if index == 0 and upper <= 0:
        return upper
    inside = count - below
    if inside <= 0:
        return upper
    return lower + (upper - lower) * (rank - below) / inside


@dataclass
class Snapshot:
    at: float  # time.time()
    values: Values


@dataclass
class Activity:
    """A ring of counter snapshots over the last ``window`` seconds."""

    metrics: Metrics | None
    every: float = EVERY
    window: float = WINDOW
    clock: Callable[[], float] = time.time
    ring: deque[Snapshot] = field(default_factory=deque)
    dropped: bool = False  # once the ring has let go of a snapshot, "since start" is gone

    def snapshot(self) -> Snapshot:
        """The kept counters now; blocking (in multiprocess mode it reads the workers' files)."""
        values: Values = {}
        if self.metrics is not None:
            for name, labels, value in self.metrics.samples():
                if name in _KEPT:
                    values[(name, tuple(sorted(labels.items())))] = value
        return Snapshot(self.clock(), values)

    def keep(self, snap: Snapshot) -> None:
        self.ring.append(snap)
        while self.ring and self.ring[0].at < snap.at - self.window - self.every:
            self.ring.popleft()
            self.dropped = True

    async def run(self) -> None:
        while True:
            self.keep(await asyncio.to_thread(self.snapshot))
            await asyncio.sleep(self.every)

    @classmethod
    @contextlib.asynccontextmanager
    async def running(cls, metrics: Metrics | None) -> AsyncIterator[Activity]:
        activity = cls(metrics)
        task = asyncio.ensure_future(activity.run()) if metrics is not None else None
        try:
            yield activity
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    # -- the numbers ---------------------------------------------------------------------------

    def report(
        self, now: Snapshot, ring: Sequence[Snapshot] | None = None, points: int = POINTS
    ) -> dict[str, Any]:
        """What the page shows, from the ring (or a copy of it) and a fresh snapshot ``now``."""
        ring = [s for s in (self.ring if ring is None else ring) if s.at <= now.at]
        step = self.window / points
        edges = [now.at - self.window + k * step for k in range(points)] + [now.at]
        at_edges = [self._values_at(ring, edge) for edge in edges[:-1]] + [now.values]
        base = at_edges[0]
        delta = {key: value - base.get(key, 0.0) for key, value in now.values.items()}

        def series(pick: Callable[[Key], str | None]) -> dict[str, list[float]]:
            """Per-interval increases, summed by group."""
            out: dict[str, list[float]] = {}
            for index, (before, after) in enumerate(itertools.pairwise(at_edges)):
                for key, value in after.items():
                    group = pick(key)
                    if group is not None:
                        row = out.setdefault(group, [0.0] * points)
                        row[index] += value - before.get(key, 0.0)
            # A counter that restarted (a worker replaced) is not a negative rate.
            return {group: [max(0.0, v) for v in row] for group, row in out.items()}

        hits = series(lambda k: _label(k, TEMPLATE_REQUESTS_TOTAL, "template", cache="hit"))
        renders = series(lambda k: _label(k, IMAGES_RENDERED_TOTAL, "template"))
        by_platform = series(lambda k: _label(k, FETCHES_TOTAL, "platform"))
        templates = sorted(
            {*hits, *renders} | set(_distinct(delta, TEMPLATE_REQUESTS_TOTAL, "template"))
        )
        return {
            "enabled": self.metrics is not None,
            "window_s": self.window,
            "step_s": step,
            "since": max(edges[0], ring[0].at) if ring and not self.dropped else edges[0],
            "templates": [
                {
                    "name": name,
                    "hits": _sum(delta, TEMPLATE_REQUESTS_TOTAL, template=name, cache="hit"),
                    "misses": _sum(delta, TEMPLATE_REQUESTS_TOTAL, template=name, cache="miss"),
                    "renders": _sum(delta, IMAGES_RENDERED_TOTAL, template=name),
                    **_quantiles(delta, RENDER_SECONDS_BUCKET, template=name),
                    "series": {
                        "hits": hits.get(name, [0.0] * points),
                        "renders": renders.get(name, [0.0] * points),
                    },
                }
                for name in templates
            ],
            "stages": [
                {
                    "stage": stage,
                    **_quantiles(delta, STAGE_SECONDS_BUCKET, stage=stage),
                }
                for stage in _distinct(delta, STAGE_SECONDS_BUCKET, "stage")
            ],
            "platforms": [
                {
                    "platform": platform,
                    "fetches": _sum(delta, FETCHES_TOTAL, platform=platform),
                    "series": by_platform.get(platform, [0.0] * points),
                }
                for platform in _distinct(delta, FETCHES_TOTAL, "platform")
                if _sum(delta, FETCHES_TOTAL, platform=platform) > 0
            ],
            "variants": [
                {**labels, "fetches": value}
                for labels, value in _grouped(
                    delta, FETCHES_TOTAL, ("template", "variant", "platform")
                )
                if labels["variant"] and value > 0
            ],
        }

    def _values_at(self, ring: Sequence[Snapshot], when: float) -> Values:
        """The counters as they were at ``when``: the last snapshot taken by then; before the
        first one, zero if the ring still reaches back to the start, else its oldest."""
        index = bisect.bisect_right([s.at for s in ring], when)
        if index:
            return ring[index - 1].values
        if not self.dropped or not ring:
            return {}
        return ring[0].values


def _label(key: Key, name: str, label: str, **match: str) -> str | None:
    if key[0] != name:
        return None
    labels = dict(key[1])
    if any(labels.get(k) != v for k, v in match.items()):
        return None
    return labels.get(label)


def _sum(values: Values, name: str, **match: str) -> float:
    return sum(
        value
        for (sample, labels), value in values.items()
        if sample == name and all(dict(labels).get(k) == v for k, v in match.items())
    )


def _distinct(values: Values, name: str, label: str) -> list[str]:
    return sorted({dict(k[1])[label] for k in values if k[0] == name and label in dict(k[1])})


def _grouped(
    values: Values, name: str, labels: Sequence[str]
) -> list[tuple[dict[str, str], float]]:
    sums: dict[tuple[str, ...], float] = {}
    for key, value in values.items():
        if key[0] == name:
            found = dict(key[1])
            group = tuple(found.get(label, "") for label in labels)
            sums[group] = sums.get(group, 0.0) + value
    return [(dict(zip(labels, group, strict=True)), value) for group, value in sorted(sums.items())]


def _quantiles(values: Values, name: str, **match: str) -> dict[str, Any]:
    buckets: dict[float, float] = {}
    for key, value in values.items():
        if key[0] != name:
            continue
        labels = dict(key[1])
        if any(labels.get(k) != v for k, v in match.items()):
            continue
        bound = float(labels["le"])
        buckets[bound] = buckets.get(bound, 0.0) + value
    observed = buckets.get(math.inf, 0.0)
    out: dict[str, Any] = {"count": observed}
    for label, q in (("p50_ms", 0.5), ("p95_ms", 0.95)):
        found = histogram_quantile(q, buckets.items())
        out[label] = None if found is None else round(found * 1000, 2)
    return out


# -- HTTP --------------------------------------------------------------------------------------


def routes() -> list[BaseRoute]:
    # "_" paths never collide with a template's studio (template names cannot start with "_").
    return [
        Route("/preview/_activity", activity_page, methods=["GET"]),
        Route("/preview/_api/activity", activity_json, methods=["GET"]),
    ]


async def activity_page(request: Request) -> Response:
    return FileResponse(ASSETS / "activity.html", headers=NO_STORE)


async def activity_json(request: Request) -> Response:
    activity: Activity = request.state.activity

    ring = tuple(activity.ring)  # copied on the loop, where the ring grows

    def measure() -> dict[str, Any]:
        return activity.report(activity.snapshot(), ring)

    return JSONResponse(await asyncio.to_thread(measure), headers=NO_STORE)
