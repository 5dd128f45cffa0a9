"""Benchmark the warm lane: ``python benchmarks/warm.py [--misses 30] [--queued 500] [--gap-ms N]``.

Starts a real ``ogshot serve`` (pool of ``--pool-size`` pages, an admin token) and measures live
cache misses (distinct ``article`` cards, one at a time) on an idle node, then while ``--queued``
warm items (POST /admin/warm) wait in the lane, each in two arrival patterns:

- back to back: the next miss is sent as soon as the last one is answered (a crawler's burst);
- spaced: a random pause (exponential, mean ``--gap-ms``, same seed in both runs) before each, so
  that warm renders start between live ones and a live miss can arrive while one runs.

Prints, for each, the p50 and p90 of the whole request and of the ``queue`` stage from
Server-Timing (the wait for a page), how many warm renders ran during each busy measurement, and
the 1-minute load average at start and end: figures from a loaded machine are not comparable.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import httpx

from ogshot.bench.http import percentiles
from ogshot.bench.servers import ServerProcess

ROOT = Path(__file__).resolve().parent.parent

TOKEN = "bench-warm-token"


def misses(
    server: ServerProcess, label: str, count: int, gap_ms: float = 0.0
) -> tuple[list[float], list[float]]:
    """(total ms, queue ms) of ``count`` sequential misses, each after a random pause of mean
    ``gap_ms`` (none when 0). Runs that are compared use labels of the same length: the label
    is the card's title, and a longer title costs the card more to lay out."""
    totals, queues = [], []
    pauses = random.Random(1)
    with httpx.Client(base_url=server.base, timeout=60) as client:
        for i in range(count):
            if gap_ms:
                time.sleep(pauses.expovariate(1000 / gap_ms))
            started = time.perf_counter()
            response = client.get(f"/og/article.png?title={quote(f'{label} {i}')}")
            totals.append((time.perf_counter() - started) * 1000)
            if response.headers.get("x-ogshot-cache") != "miss":
                sys.exit(f"expected a miss, got {response.status_code} {response.headers}")
            found = re.search(r"queue;dur=([\d.]+)", response.headers.get("server-timing", ""))
            queues.append(float(found.group(1)) if found else 0.0)
    return totals, queues


def warm_renders(server: ServerProcess) -> float:
    text = httpx.get(f"{server.base}/metrics", timeout=10).text
    found = re.search(r"^ogshot_warm_renders_total (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def summary(name: str, totals: list[float], queues: list[float]) -> str:
    total, queue = percentiles(totals), percentiles(queues)
    return (
        f"{name}: total p50 {total['p50']:.1f} ms, p90 {total['p90']:.1f} ms; "
        f"queue p50 {queue['p50']:.2f} ms, p90 {queue['p90']:.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--misses", type=int, default=30)
    parser.add_argument("--queued", type=int, default=500)
    parser.add_argument("--pool-size", type=int, default=2)
    parser.add_argument("--gap-ms", type=float, default=150.0)
    args = parser.parse_args()
    load_start = os.getloadavg()[0]
    print(f"load average (1 min) at start: {load_start:.1f}; cores: {os.cpu_count()}")
    with tempfile.TemporaryDirectory(prefix="ogshot-warm-bench-") as tmp:
        env = {
            "OGSHOT_CACHE_DIR": str(Path(tmp) / "cache"),
            "OGSHOT_POOL_SIZE": str(args.pool_size),
            "OGSHOT_ADMIN_TOKEN": TOKEN,
            "OGSHOT_TEMPLATES_DIR": str(ROOT / "html_templates"),
            "OGSHOT_STATIC_DIR": str(ROOT / "static"),
        }
        with ServerProcess(env=env, cwd=ROOT) as server:
            misses(server, "warm", 3)  # first renders pay for fonts and code paths
            idle = misses(server, "idle", args.misses)
            idle_spaced = misses(server, "idle spaced", args.misses, args.gap_ms)
            items = [
                {"template": "article", "params": {"title": f"queued {i}"}}
                for i in range(args.queued)
            ]
            for start in range(0, len(items), 1000):
                answer = httpx.post(
                    f"{server.base}/admin/warm",
                    json={"items": items[start : start + 1000]},
                    headers={"authorization": f"Bearer {TOKEN}"},
                    timeout=120,
                )
                answer.raise_for_status()
            before = warm_renders(server)
            busy = misses(server, "busy", args.misses)
            during = warm_renders(server) - before
            before = warm_renders(server)
            busy_spaced = misses(server, "busy spaced", args.misses, args.gap_ms)
            during_spaced = warm_renders(server) - before
    print(f"pool size: {args.pool_size}, misses per run: {args.misses}, queued: {args.queued}")
    print("back to back:")
    print(summary("  idle node      ", *idle))
    print(summary("  deep warm queue", *busy))
    print(f"  warm renders meanwhile: {during:.0f}")
    print(f"spaced (random pauses, mean {args.gap_ms:g} ms):")
    print(summary("  idle node      ", *idle_spaced))
    print(summary("  deep warm queue", *busy_spaced))
    print(f"  warm renders meanwhile: {during_spaced:.0f}")
    print(f"load average (1 min) at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
