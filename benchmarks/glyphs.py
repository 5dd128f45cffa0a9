"""What the missing-glyph/failed-image check and per-template sizes cost a miss:
``.venv/bin/python benchmarks/glyphs.py [--rounds 40]``.

On one warm page (pool_size 1), with fresh parameters each time (every request is a miss):

- check: PROBE_JS evaluated on the page a miss just rendered (it runs at the end of the readiness
  script, in the same round trip; evaluated alone here, so its round trip is counted too), against
  a bare ``Runtime.evaluate("1")`` round trip on the same page, the Python side
  (``Coverage.missing`` on the code points found), and the whole miss;
- sizes: misses that keep the page's size, against misses that alternate between 1200x630 and
  1080x1080 (each pays ``Emulation.setDeviceMetricsOverride``: the ``resize`` stage, and a capture
  of a freshly resized surface); then the same alternation with two pages, where each render finds
  an idle page of its size.

Text: mixed scripts (Latin, CJK, Arabic, Devanagari, emoji ZWJ sequences) so that the probe has
work. Printed as median and p90 milliseconds; nothing here fails on a number.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from ogshot.core.settings import Settings
from ogshot.engine.page_scripts import PROBE_JS
from ogshot.engine.pool import Slot
from ogshot.pipeline.renderer import Renderer

CARD = """{#ogshot
%s
[params.title]
type = "str"
#}
<!doctype html><html><body style="margin:0;padding:60px;font:56px Inter;background:#fafafa">
<h1>{{ title }}</h1><p>日本語のテキスト · مرحبا بالعالم · नमस्ते दुनिया · 👩🏽‍💻 👨‍👩‍👧‍👦</p>
</body></html>
"""


def p(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def line(label: str, samples: list[float]) -> str:
    median, p90 = statistics.median(samples), p(samples, 0.9)
    return f"  {label:<34} median {median:7.2f} ms   p90 {p90:7.2f} ms"


async def round_trip(renderer: Renderer, expression: str = "1") -> float:
    async def work(slot: Slot, _left: float) -> float:
        started = time.perf_counter()
        await slot.cdp.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        return (time.perf_counter() - started) * 1000

    return await renderer.pool.run(work, time_limit=5)


async def run(rounds: int) -> None:
    base = Path(tempfile.mkdtemp(prefix="ogshot-typography-"))
    (base / "t").mkdir()
    (base / "s").mkdir()
    (base / "t" / "card.html").write_text(CARD % "")
    (base / "t" / "square.html").write_text(CARD % "width = 1080\nheight = 1080")
    settings = Settings.load(
        templates_dir=base / "t", static_dir=base / "s", cache_dir=base / "cache", pool_size=1
    )
    async with Renderer(settings) as renderer:
        assert renderer.glyphs.coverage is not None
        for i in range(5):  # warm up
            await renderer.image("card", {"title": f"warm {i}"})
        check, bare, python, miss = [], [], [], []
        for i in range(rounds):
            image = await renderer.image("card", {"title": f"Check {i} — ünïcödé"})
            check.append(await round_trip(renderer, PROBE_JS))
            miss.append(sum(v for k, v in image.timings.items() if k not in ("validate", "cache")))
            bare.append(await round_trip(renderer))
            codes = [ord(c) for c in set(CARD + f"Check {i} — ünïcödé") if ord(c) > 0x7F]
            started = time.perf_counter()
            renderer.glyphs.coverage.missing(codes)
            python.append((time.perf_counter() - started) * 1000)
        print(f"check ({rounds} misses, mixed scripts)")
        print(line("PROBE_JS alone (with its round trip)", check))
        print(line("bare Runtime.evaluate round trip", bare))
        print(line("Coverage.missing (Python)", python))
        print(line("whole miss", miss))
        walk = max(0.0, statistics.median(check) - statistics.median(bare))
        share = walk / statistics.median(miss) * 100
        print(f"  the walk itself (probe - bare round trip): {walk:.2f} ms, {share:.1f}% of a miss")

        same, alternating, resize = [], [], []
        for i in range(rounds):
            image = await renderer.image("card", {"title": f"Same {i}"})
            same.append(sum(v for k, v in image.timings.items() if k not in ("validate", "cache")))
        for i in range(rounds):
            name = "square" if i % 2 else "card"
            image = await renderer.image(name, {"title": f"Alternating {i}"})
            alternating.append(
                sum(v for k, v in image.timings.items() if k not in ("validate", "cache"))
            )
            resize.append(image.timings.get("resize", 0.0))
        print(f"sizes ({rounds} misses each)")
        print(line("same size every render", same))
        print(line("alternating 1200x630 / 1080x1080", alternating))
        print(line("resize stage when alternating", resize))
    # Two pages: each size finds an idle page that already has it (Pool.lease prefers one).
    settings = settings.replace(pool_size=2, cache_dir=base / "cache2")
    async with Renderer(settings) as renderer:
        for i in range(4):
            await renderer.image("square" if i % 2 else "card", {"title": f"warm {i}"})
        two, resized = [], 0
        for i in range(rounds):
            name = "square" if i % 2 else "card"
            image = await renderer.image(name, {"title": f"Two pages {i}"})
            two.append(sum(v for k, v in image.timings.items() if k not in ("validate", "cache")))
            resized += "resize" in image.timings
        print(line("alternating, 2 pages", two))
        print(f"  renders that had to resize: {resized} of {rounds}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    asyncio.run(run(args.rounds))


if __name__ == "__main__":
    main()
