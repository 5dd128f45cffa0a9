"""JPEG from Chromium's own encoder against a lossless capture encoded by pyvips:
``.venv/bin/python benchmarks/jpeg.py [--rounds 30] [--quality 88 90]``.

For each template and quality, alternating on one warm page with fresh parameters each time:

- vips: ``Page.captureScreenshot`` as lossless PNG, then ``compress.encode`` (as served with
  ``OGSHOT_JPEG_ENCODER=vips``);
- chromium: ``Page.captureScreenshot`` as JPEG at that quality (as served by default).

Printed: capture+encode milliseconds (median, p90), bytes (median) and SSIM against the lossless
capture of the same document (the worst of R, G, B; ``ogshot.bench.measure.ssim``). Nothing
here fails on a number.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from dataclasses import replace

import pyvips

from ogshot.bench.measure import params_for, ssim
from ogshot.core.settings import Settings
from ogshot.engine.capture import capture
from ogshot.engine.encode import encode
from ogshot.engine.pool import Slot
from ogshot.pipeline.renderer import Renderer


def p(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def vips_path(slot: Slot, doc: str, settings: Settings) -> tuple[bytes, bytes, float]:
    started = time.perf_counter()
    shot = await capture(slot, doc, time_limit=10)
    body = await asyncio.to_thread(encode, shot.png, "jpeg", settings)
    return shot.png, body, (time.perf_counter() - started) * 1000


async def chromium_path(slot: Slot, doc: str, quality: int) -> tuple[bytes, float]:
    started = time.perf_counter()
    shot = await capture(slot, doc, time_limit=10, jpeg_quality=quality)
    return shot.body, (time.perf_counter() - started) * 1000


async def run(templates: list[str], qualities: list[int], rounds: int) -> None:
    settings = replace(Settings.load(), pool_size=1)
    async with Renderer(settings) as renderer:
        n = 0
        for template in templates:
            for quality in qualities:
                vips_settings = replace(settings, jpeg_quality=quality)
                ms: dict[str, list[float]] = {"vips": [], "chromium": []}
                size: dict[str, list[int]] = {"vips": [], "chromium": []}
                score: dict[str, list[float]] = {"vips": [], "chromium": []}
                for i in range(rounds + 1):
                    n += 1
                    job = renderer.prepare(template, params_for(template, n, renderer), "png")
                    html = renderer.catalog.render_html(job.template, job.values)
                    async with renderer.pool.lease() as slot:
                        # Alternate which goes first; the second gets the document changed by a
                        # space, so that a new frame is drawn.
                        if i % 2:
                            png, vips, vips_ms = await vips_path(slot, html, vips_settings)
                            chromium, chromium_ms = await chromium_path(slot, html + " ", quality)
                        else:
                            chromium, chromium_ms = await chromium_path(slot, html, quality)
                            png, vips, vips_ms = await vips_path(slot, html + " ", vips_settings)
                    if i == 0:
                        continue  # warm-up
                    reference = pyvips.Image.new_from_buffer(png, "")[:3]
                    for name, body, took in (
                        ("vips", vips, vips_ms),
                        ("chromium", chromium, chromium_ms),
                    ):
                        decoded = pyvips.Image.new_from_buffer(body, "")
                        ms[name].append(took)
                        size[name].append(len(body))
                        score[name].append(ssim(reference, decoded[:3]))
                for name in ("vips", "chromium"):
                    print(
                        f"{template:10} q{quality} {name:8} "
                        f"ms p50 {statistics.median(ms[name]):6.1f} p90 {p(ms[name], 0.9):6.1f}  "
                        f"bytes {int(statistics.median(size[name])):7d}  "
                        f"ssim {statistics.median(score[name]):.5f}"
                    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--quality", type=int, nargs="+", default=[88])
    parser.add_argument("--template", nargs="+", default=["article", "launch", "minimal"])
    args = parser.parse_args()
    asyncio.run(run(args.template, args.quality, args.rounds))


if __name__ == "__main__":
    main()
