"""What the security measures cost: ``.venv/bin/python benchmarks/security.py [--rounds 200]``.

Printed (median and p95, milliseconds):

- scrub: clearing a page's storage over CDP after a scripted render (runs off the request path);
- back-to-back scripted renders on one page, with the scrub between them and without;
- signing: verifying a signature with one and with three secrets;
- remote images: the hit path of ``RemoteImages.pin`` (memory lookup, no fetch);
- the ``data`` nesting check on a query-length JSON text.

Nothing here fails on a number.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from ogshot.core.settings import Settings
from ogshot.engine.assets import Assets
from ogshot.engine.capture import capture
from ogshot.engine.page_requests import Router
from ogshot.engine.pool import Pool, scrub
from ogshot.engine.remote_images import RemoteImage, RemoteImages
from ogshot.http.og import _nesting
from ogshot.templates.signing import sign, verify

SCRIPTED = """<!doctype html><html><body style="margin:0;background:#123">
<h1 style="color:#fff">scripted {n}</h1><script>
localStorage.setItem("k", "{n}"); sessionStorage.setItem("k", "{n}"); document.cookie = "k={n}";
</script></body></html>"""


def summary(name: str, samples: list[float]) -> None:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    print(f"{name:<48} median {statistics.median(ordered):7.3f} ms   p95 {p95:7.3f} ms")


def timed_sync(fn: Callable[[], object], rounds: int) -> list[float]:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def timed(fn: Callable[[], Awaitable[object]], rounds: int) -> list[float]:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def browser_costs(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.load(environ={}, pool_size=1, cache_dir=Path(tmp) / "c")
        pool = Pool(settings, Router(Assets(Path(tmp))))
        await pool.start()
        try:
            counter = iter(range(10**9))

            async def render() -> None:
                async with pool.lease() as slot:
                    await capture(slot, SCRIPTED.format(n=next(counter)), time_limit=10)

            async def render_without_scrub() -> None:
                async with pool.lease() as slot:
                    await capture(slot, SCRIPTED.format(n=next(counter)), time_limit=10)
                    slot.document.scripted = False  # the pool then hands the page back unscrubbed

            async def scrub_only() -> None:
                async with pool.lease() as slot:
                    started = time.perf_counter()
                    await scrub(slot)
                    scrubs.append((time.perf_counter() - started) * 1000)

            scrubs: list[float] = []
            await timed(render, 10)  # warm up
            summary("scripted render + pool's own scrub (as served)", await timed(render, rounds))
            summary(
                "scripted render, no scrub (baseline)", await timed(render_without_scrub, rounds)
            )
            await timed(scrub_only, rounds)
            summary("scrub alone (storage written just before)", scrubs)
        finally:
            await pool.close()


def python_costs(rounds: int) -> None:
    params = {"title": "Hello world", "subtitle": "x" * 200, "tag": "News", "author": "Ada"}
    sig = sign("a" * 32, "article", params, "png")
    summary(
        "verify, 1 secret",
        timed_sync(lambda: verify(["a" * 32], "article", params, "png", sig), rounds * 10),
    )
    three = ["c" * 32, "b" * 32, "a" * 32]
    summary(
        "verify, 3 secrets (match on the last)",
        timed_sync(lambda: verify(three, "article", params, "png", sig), rounds * 10),
    )

    remote = RemoteImages(["*.example.com"])
    url = "https://img.example.com/avatar.png"
    remote._remember(RemoteImage(url, b"\x89PNG" + b"\0" * 1000, "image/png", "d" * 64))
    values = {"title": "Hello", "avatar": url}
    loop = asyncio.new_event_loop()
    summary(
        "remote pin, memory hit",
        timed_sync(lambda: loop.run_until_complete(remote.pin(values)), rounds * 10),
    )
    loop.close()

    data = json.dumps({f"k{i}": "v" * 200 for i in range(30)})
    summary(
        f"data nesting check, {len(data)} bytes", timed_sync(lambda: _nesting(data), rounds * 10)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    python_costs(args.rounds)
    asyncio.run(browser_costs(args.rounds))


if __name__ == "__main__":
    main()
