"""The Chromium supervisor's own behaviour that other modules do not show: Chromium runs below
ogshot's CPU priority (relaunches and recycling: tests/test_chaos.py)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from ogshot.engine.chromium import raster_thread_args
from ogshot.pipeline.renderer import Renderer
from tests.support.helpers import make_settings


def priority_of(pid: int) -> tuple[int, str | None]:
    """(nice of the process's main thread, its autogroup line when the kernel has autogroups)."""
    autogroup = Path(f"/proc/{pid}/autogroup")
    return os.getpriority(os.PRIO_PROCESS, pid), (
        autogroup.read_text().strip() if autogroup.exists() else None
    )


@pytest.mark.parametrize("nice", [7, 0])
def test_chromium_runs_at_the_configured_nice(tmp_path: Path, nice: int) -> None:
    ours = priority_of(os.getpid())

    async def scenario() -> tuple[int, str | None]:
        async with Renderer(make_settings(tmp_path, pool_size=1, browser_nice=nice)) as renderer:
            assert (await renderer.render("minimal", {"title": "x"}))[:4] == b"\x89PNG"
            pid = renderer.pool.browser.pid
            assert pid is not None
            return priority_of(pid)

    main_thread, autogroup = asyncio.run(scenario())
    if nice:
        assert main_thread == nice
        if autogroup is not None and autogroup != ours[1]:  # Chromium's own group
            assert autogroup.endswith(f"nice {nice}")
    elif autogroup is not None:  # left as Chromium set itself (as root it raises some threads)
        assert autogroup.endswith("nice 0")
    assert priority_of(os.getpid()) == ours  # ogshot's own priority is left alone


@pytest.mark.parametrize("own", [(), ("--num-raster-threads=1",)])
def test_chromium_is_launched_with_its_raster_threads(tmp_path: Path, own: tuple[str, ...]) -> None:
    """On fewer than 4 cores ogshot asks for two raster threads (Chromium would pick one); a
    count in the operator's launch_args is passed as given, and only once."""
    settings = make_settings(tmp_path, pool_size=1)
    settings = settings.replace(launch_args=(*settings.launch_args, *own))

    async def scenario() -> bytes:
        async with Renderer(settings) as renderer:
            assert (await renderer.render("minimal", {"title": "x"}))[:4] == b"\x89PNG"
            pid = renderer.pool.browser.pid
            assert pid is not None
            return await asyncio.to_thread(Path(f"/proc/{pid}/cmdline").read_bytes)

    cmdline = asyncio.run(scenario()).decode().split("\0")
    switches = [a for a in cmdline if a.startswith("--num-raster-threads")]
    assert switches == (list(own) or raster_thread_args([], os.cpu_count()))
