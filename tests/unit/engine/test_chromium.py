"""Chromium's launch switches that depend on the machine."""

from __future__ import annotations

import pytest

from ogshot.engine.chromium import raster_thread_args


@pytest.mark.parametrize(
    ("cores", "expected"),
    [
        (1, ["--num-raster-threads=2"]),
        (2, ["--num-raster-threads=2"]),
        (3, ["--num-raster-threads=2"]),
        (4, []),  # Chromium picks 2 itself
        (16, []),  # and 4 here
    ],
)
def test_two_raster_threads_where_chromium_would_pick_one(cores: int, expected: list[str]) -> None:
    assert raster_thread_args(["--no-sandbox"], cores) == expected


@pytest.mark.parametrize("given", ["--num-raster-threads=1", "--num-raster-threads=3"])
def test_an_operators_own_raster_threads_stand(given: str) -> None:
    assert raster_thread_args(["--no-sandbox", given], 2) == []
