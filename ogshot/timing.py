"""Stage timings for Server-Timing headers and benchmarks."""

from __future__ import annotations

import time

__all__ = ["Stopwatch"]


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
