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

Then, with ``--blocks N`` (default 10), the spaced pattern again, interleaved: N blocks, each a
run of ``--block-misses`` spaced misses on an idle node and one while ``--block-queued`` warm
items are queued (in alternating order, the queue drained before each idle run). Idle and busy
then share the same minutes, so the machine's drift (10-30 % between runs minutes apart on a
shared VM) falls on both alike. ``--block-queued 0`` queues nothing: both phases are then idle,
and the ratio printed is the benchmark's own noise (an A/A run).
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


def queue_warm(server: ServerProcess, titles: list[str]) -> None:
    if not titles:  # --block-queued 0: both phases idle, what the ratio's noise is
        return
    items = [{"template": "article", "params": {"title": title}} for title in titles]
    for start in range(0, len(items), 1000):
        answer = httpx.post(
            f"{server.base}/admin/warm",
            json={"items": items[start : start + 1000]},
            headers={"authorization": f"Bearer {TOKEN}"},
            timeout=120,
        )
        answer.raise_for_status()


def drained(server: ServerProcess, renders: float, timeout: float = 300.0) -> None:
    """Wait until the warm lane has made ``renders`` renders in all."""
    deadline = time.monotonic() + timeout
    while warm_renders(server) < renders:
        if time.monotonic() > deadline:
            sys.exit(f"the warm queue did not drain within {timeout:g} s")
        time.sleep(0.1)


def interleaved(
    server: ServerProcess, blocks: int, per_block: int, queued: int, gap_ms: float
) -> tuple[list[float], list[float], float]:
    """(idle ms, busy ms, warm renders during the busy runs) of ``blocks`` alternating blocks."""
    idle: list[float] = []
    busy: list[float] = []
    during = 0.0
    made = warm_renders(server)
    for block in range(blocks):
        for phase in ("idle", "busy") if block % 2 == 0 else ("busy", "idle"):
            label = f"{phase} {block:02d}"  # the same length in both phases
            if phase == "idle":
                idle += misses(server, label, per_block, gap_ms)[0]
                continue
            queue_warm(server, [f"queued {block:02d} {i:04d}" for i in range(queued)])
            before = warm_renders(server)
            busy += misses(server, label, per_block, gap_ms)[0]
            during += warm_renders(server) - before
            made += queued
            drained(server, made)
    return idle, busy, during


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
    parser.add_argument("--blocks", type=int, default=10)
    parser.add_argument("--block-misses", type=int, default=10)
    parser.add_argument("--block-queued", type=int, default=40)
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
            first = warm_renders(server)
            queue_warm(server, [f"queued {i}" for i in range(args.queued)])
            before = warm_renders(server)
            busy = misses(server, "busy", args.misses)
            during = warm_renders(server) - before
            before = warm_renders(server)
            busy_spaced = misses(server, "busy spaced", args.misses, args.gap_ms)
            during_spaced = warm_renders(server) - before
            mixed = None
            if args.blocks:
                drained(server, first + args.queued)  # the deep queue, all made
                mixed = interleaved(
                    server, args.blocks, args.block_misses, args.block_queued, args.gap_ms
                )
    print(f"pool size: {args.pool_size}, misses per run: {args.misses}, queued: {args.queued}")
    print("back to back:")
    print(summary("  idle node      ", *idle))
    print(summary("  deep warm queue", *busy))
    print(f"  warm renders meanwhile: {during:.0f}")
    print(f"spaced (random pauses, mean {args.gap_ms:g} ms):")
    print(summary("  idle node      ", *idle_spaced))
    print(summary("  deep warm queue", *busy_spaced))
    print(f"  warm renders meanwhile: {during_spaced:.0f}")
    if mixed is not None:
        idle_ms, busy_ms, during_mixed = mixed
        idle_p, busy_p = percentiles(idle_ms), percentiles(busy_ms)
        print(
            f"spaced, interleaved: {args.blocks} blocks of {args.block_misses} misses each way, "
            f"{args.block_queued} warm items queued per busy run:"
        )
        print(f"  idle node      : total p50 {idle_p['p50']:.1f} ms, p90 {idle_p['p90']:.1f} ms")
        print(f"  warm queued    : total p50 {busy_p['p50']:.1f} ms, p90 {busy_p['p90']:.1f} ms")
        print(
            f"  busy / idle    : p50 {busy_p['p50'] / idle_p['p50']:.2f}x, "
            f"p90 {busy_p['p90'] / idle_p['p90']:.2f}x; warm renders meanwhile: {during_mixed:.0f}"
        )
    print(f"load average (1 min) at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
