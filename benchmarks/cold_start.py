"""Where cold start goes: ``python benchmarks/cold_start.py [--pool-size 2] [--rounds 3]``.

Cold start is what ``ogshot bench`` measures: process start of ``ogshot serve`` to the first
image served over HTTP. This prints, on the gallery templates (``ogshot init``'s, with the
Tailwind card) and an empty cache folder each round:

- end to end: spawn -> ``/readyz`` 200, spawn -> first ``/og`` image (a real ``ogshot serve``);
- the pieces, each timed on its own in a fresh process: ``import ogshot.app`` (the server's
  import), the catalog's first read with and without the Tailwind compile, the Playwright driver,
  the Chromium launch, opening one page and the pool's pages (concurrently, as the pool does), and
  the first render's one-time costs (first render minus the second).

The pieces overlap in the server (the catalog is read while Chromium starts), so they do not sum
to the end-to-end figure; they say what each costs. The 1-minute load average is printed at start
and end: figures from a loaded machine are not comparable with a quiet one's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote

from ogshot.bench.servers import ServerProcess

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the repository: benchmarks.peers
from benchmarks.peers import split_cpu  # noqa: E402

GALLERY = ROOT / "ogshot" / "scaffold"

# Run in a fresh interpreter: each piece's cost as the server pays it, nothing imported before.
_PIECES = r"""
import asyncio, json, sys, time
t0 = time.perf_counter()
import ogshot.app  # noqa: F401  (what uvicorn's factory imports)
out = {"import ogshot.app": time.perf_counter() - t0}
from pathlib import Path
from ogshot.core.settings import Settings
from ogshot.pipeline.renderer import Renderer
from ogshot.templates.catalog import Catalog
templates, static, cache, pool_size = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
t = time.perf_counter()
Catalog(Path(templates), Path(static), compile_css=False).refresh()
out["catalog read (no CSS)"] = time.perf_counter() - t
t = time.perf_counter()
Catalog(Path(templates), Path(static), css_cache=cache / "tw").refresh()
out["catalog read + Tailwind compile (empty cache)"] = time.perf_counter() - t
t = time.perf_counter()
Catalog(Path(templates), Path(static), css_cache=cache / "tw").refresh()
out["catalog read + Tailwind CSS from cache"] = time.perf_counter() - t
from ogshot.engine import encode
t = time.perf_counter()
encode.warm_up()
out["encode.warm_up (numpy)"] = time.perf_counter() - t

async def browser() -> None:
    from playwright.async_api import async_playwright
    from ogshot.engine.chromium import find_chromium
    t = time.perf_counter()
    pw = await async_playwright().start()
    out["Playwright driver start"] = time.perf_counter() - t
    t = time.perf_counter()
    b = await pw.chromium.launch(executable_path=find_chromium(), headless=True)
    out["Chromium launch"] = time.perf_counter() - t
    async def page() -> None:
        context = await b.new_context()
        p = await context.new_page()
        await p.goto("about:blank")
    t = time.perf_counter()
    await page()
    out["one page"] = time.perf_counter() - t
    t = time.perf_counter()
    await asyncio.gather(*(page() for _ in range(pool_size)))
    out[f"{pool_size} pages at once"] = time.perf_counter() - t
    await b.close()
    await pw.stop()

asyncio.run(browser())

async def renders() -> None:
    settings = Settings(
        templates_dir=templates, static_dir=static, cache_dir=str(cache / "r"),
        pool_size=pool_size, memory_cache_size=0,
    )
    t = time.perf_counter()
    async with Renderer(settings, watch=False) as r:
        out["Renderer.start (pool + catalog, overlapped)"] = time.perf_counter() - t
        t = time.perf_counter()
        await r.render("article", {"title": "First"}, "png")
        out["first render"] = time.perf_counter() - t
        t = time.perf_counter()
        await r.render("article", {"title": "Second"}, "png")
        out["second render"] = time.perf_counter() - t

asyncio.run(renders())
print(json.dumps(out))
"""


def load() -> float:
    return os.getloadavg()[0]


def end_to_end(pool_size: int, tmp: Path) -> tuple[float, float, tuple[float, float, float]]:
    """Seconds from spawn to /readyz, from spawn to the first image (a second server), and the
    CPU seconds the second server's processes (its Python, Playwright's driver, Chromium) had
    used when its first image arrived: what cold start costs the machine, whatever the cores."""
    env = {
        "OGSHOT_TEMPLATES_DIR": str(GALLERY / "html_templates"),
        "OGSHOT_STATIC_DIR": str(GALLERY / "static"),
        "OGSHOT_CACHE_DIR": str(tmp),
        "OGSHOT_POOL_SIZE": str(pool_size),
    }
    image = f"/og/article.png?title={quote('Cold start')}"
    ready = ServerProcess(env=env).spawn()
    try:
        to_ready = ready.wait_ready()
    finally:
        ready.stop()
    shutil.rmtree(tmp, ignore_errors=True)
    first = ServerProcess(env=env).spawn()
    try:
        to_image = first.wait_ready(path=image)
        assert first.process is not None
        cpu = split_cpu(first.process.pid)
    finally:
        first.stop()
    shutil.rmtree(tmp, ignore_errors=True)
    return to_ready, to_image, cpu


def pieces(pool_size: int, tmp: Path) -> dict[str, float]:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _PIECES,
            str(GALLERY / "html_templates"),
            str(GALLERY / "static"),
            str(tmp),
            str(pool_size),
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    shutil.rmtree(tmp, ignore_errors=True)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pool-size", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"load average (1 min) at start: {load():.2f} on {os.cpu_count()} cores")
    readies, images, cpus = [], [], []
    parts: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="ogshot-cold-") as folder:
        tmp = Path(folder) / "cache"
        for _ in range(args.rounds):
            to_ready, to_image, cpu = end_to_end(args.pool_size, tmp)
            readies.append(to_ready)
            images.append(to_image)
            cpus.append(cpu)
            for name, seconds in pieces(args.pool_size, tmp).items():
                parts.setdefault(name, []).append(seconds)
    print(f"\nend to end, median of {args.rounds} (pool of {args.pool_size}, empty cache):")
    print(f"  spawn -> /readyz 200        {statistics.median(readies) * 1000:7.0f} ms")
    print(f"  spawn -> first /og image    {statistics.median(images) * 1000:7.0f} ms")
    own, driver, chromium = (statistics.median(c[i] for c in cpus) * 1000 for i in range(3))
    total, cores = own + driver + chromium, os.cpu_count() or 1
    print(
        f"  CPU to the first image      {total:7.0f} ms "
        f"(Python {own:.0f}, Playwright's driver and other children {driver:.0f}, Chromium "
        f"{chromium:.0f} ms of CPU: "
        f"on {cores} cores, at best {total / cores:.0f} ms of wall time)"
    )
    print("\npieces, each on its own in a fresh process (they overlap in the server):")
    for name, samples in parts.items():
        print(f"  {name:<48} {statistics.median(samples) * 1000:7.0f} ms")
    print(f"\nload average (1 min) at end: {load():.2f}")


if __name__ == "__main__":
    main()
