"""What the layers below ``ops`` report as they work, and nothing about how it is counted.

The cache layers and the pipeline are handed an :class:`Events` (``ops.metrics.Metrics`` is one)
and call it; they never import ``ops``. ``None`` where nothing listens."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

__all__ = ["ErrorReport", "Events"]


class Events(Protocol):
    def lookup(self, layer: str, hit: bool) -> None:
        """A cache lookup in ``layer`` (memory, disk, redis)."""

    def cache_error(self, layer: str) -> None:
        """A cache operation in ``layer`` failed."""

    def purged(self, keys: int) -> None: ...

    def stale_served(self) -> None:
        """An image was served past its TTL while one refresh runs."""

    def refreshed(self, ok: bool) -> None: ...

    def singleflight_saved(self, scope: str) -> None:
        """A render was not needed: an identical one ran in this worker (local) or the fleet."""

    def render_failed(self, template: str, kind: str) -> None: ...

    def render_warning(self, template: str, kind: str) -> None: ...

    def image_rendered(self, template: str, fmt: str, timings: Mapping[str, float]) -> None: ...

    def warm_rendered(self, refresh: bool) -> None:
        """The warm lane made an image: warmed ahead of its first request, or (``refresh``)
        made again before it aged (refresh-ahead)."""

    def warm_queue(self, depth: int) -> None:
        """Items waiting in the warm lane's queue (the fleet's, with Redis), or being made."""


class ErrorReport(Protocol):
    """Where an unexpected render failure is sent (``ops.sentry.report`` in the server)."""

    def __call__(self, exc: BaseException, *, template: str, key: str = "") -> None: ...
