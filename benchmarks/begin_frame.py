"""CPU per render with and without begin-frame control (``OGSHOT_BEGIN_FRAME``).

    python benchmarks/begin_frame.py [--cards gradient,flat] [-n 40] [--rounds 2] [--gap 0.05]

Two renderers, one per mode, each with one warm page; rounds alternate the modes (A B A B) so a
change in the machine's load falls on both alike. Each batch renders ``n`` fresh titles of a card
through ``engine.capture`` (document written in place, readiness, capture) with ``gap`` seconds
between renders, the way a server that is not saturated sees misses: a page on its own clock goes
on drawing after a capture, and that CPU lands in the gap. Printed per render: CPU ms of Chromium
(all its processes) and wall ms (p50, only meaningful on a quiet
machine), with the 1-minute load average at the start and end. CPU comes in 10 ms ticks: the
means over a batch are what converge.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.peers import cpu_seconds, make_templates, unique  # noqa: E402
from ogshot import Renderer  # noqa: E402
from ogshot.engine.capture import capture  # noqa: E402

MODES = {"clock": False, "begin-frame": True}


async def batch(r: Renderer, card: str, n: int, gap: float, start: int) -> tuple[float, float]:
    """(Chromium CPU ms per render, wall ms p50) of ``n`` renders."""
    pid = r.pool.browser.pid
    assert pid is not None
    template = r.catalog.get(card)
    walls: list[float] = []
    async with r.pool.lease() as slot:
        before = cpu_seconds([pid])
        for i in range(n):
            params = unique(
                {k: v for k, v in template.examples().items() if v is not None}, start + i
            )
            html = r.catalog.render_html(template, r.catalog.validate(template, params))
            began = time.perf_counter()
            await capture(slot, html, time_limit=30, template=card)
            walls.append((time.perf_counter() - began) * 1000)
            await asyncio.sleep(gap)
        spent = cpu_seconds([pid]) - before
    return spent * 1000 / n, statistics.median(walls)


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cards", default="gradient,flat")
    parser.add_argument("-n", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--gap", type=float, default=0.05)
    args = parser.parse_args(argv)
    cards = [c for c in args.cards.split(",") if c]
    print(f"load average at start: {os.getloadavg()[0]:.1f}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        renderers: dict[str, Renderer] = {}
        for mode, on in MODES.items():
            base = Path(tmp) / mode
            base.mkdir()
            settings = make_templates(base, cards)
            settings = dataclasses.replace(settings, pool_size=1, begin_frame=on)
            renderers[mode] = await Renderer(settings).__aenter__()
        try:
            for card in cards:
                for r in renderers.values():  # one warm-up batch each, not counted
                    await batch(r, card, 5, args.gap, 0)
                cpu: dict[str, list[float]] = {mode: [] for mode in MODES}
                wall: dict[str, list[float]] = {mode: [] for mode in MODES}
                for round_ in range(args.rounds):
                    for mode, r in renderers.items():
                        chromium, p50 = await batch(r, card, args.n, args.gap, 1000 * (round_ + 1))
                        print(f"  {card} round {round_ + 1} {mode}: {chromium:.1f} ms", flush=True)
                        cpu[mode].append(chromium)
                        wall[mode].append(p50)
                for mode in MODES:
                    rounds = " / ".join(f"{c:.1f}" for c in cpu[mode])
                    print(
                        f"| {card} | {mode} | Chromium CPU ms per render {rounds} "
                        f"| wall p50 {statistics.median(wall[mode]):.0f} ms |"
                    )
        finally:
            for r in renderers.values():
                await r.__aexit__(None, None, None)
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    asyncio.run(main())
