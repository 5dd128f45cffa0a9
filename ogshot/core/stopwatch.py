"""Stage timings for Server-Timing headers and benchmarks."""

from __future__ import annotations

import time
from collections.abc import Mapping

__all__ = ["Stopwatch", "server_timing"]


def server_timing(timings: Mapping[str, float]) -> str:
    """Stage timings (ms) as a ``Server-Timing`` header value."""
    return ", ".join([f"{stage};dur={ms:.1f}" for stage, ms in timings.items()])


class Stopwatch:
    """``lap(stage)`` records the milliseconds since the previous lap (or since creation)."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._mark = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.timings[stage] = self.timings.get(stage, 0.0) + (now - self._mark) * 1000
        self._mark = now

    def restart(self) -> None:
        self._mark = time.perf_counter()
