"""The fleet on one machine: real ``ogshot serve`` nodes sharing a real redis-server.

    .venv/bin/python benchmarks/fleet.py                 # about two minutes
    .venv/bin/python benchmarks/fleet.py --images 200 --misses 120

1. **Hit from Redis vs hit from disk**, same run, same images: node A renders ``--images``
   distinct images; node B (memory cache off, so that its hits come from disk) is then asked for
   each twice, one at a time: the first is an L1 miss / L2 hit (Redis, copied to B's disk), the
   second a disk hit. p50 and p90 of each, over HTTP on loopback.
2. **Distinct misses, 1 node vs 3 nodes**: ``--misses`` distinct images at ``--concurrency``,
   sent to one node alone, then spread over three nodes sharing Redis; renders/s for each. Every
   node has the same pool size, so on a machine with fewer cores than 3 nodes' pages this shows the
   fleet's overhead (lock, Redis writes, more Chromium processes competing), not a speed-up.

Prints a table and writes ``benchmarks/results/fleet.json``. Nothing here fails on a number.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from ogshot.bench.http import percentiles
from ogshot.bench.servers import ServerProcess, free_port, running

ROOT = Path(__file__).resolve().parent.parent


class Redis:
    """redis-server on a free loopback port, no persistence, its own folder."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        binary = shutil.which("redis-server", path="/usr/bin:/usr/sbin:/bin")
        if binary is None:
            raise SystemExit("redis-server not found (Debian package redis-server)")
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(folder),
             "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        self.close()
        raise SystemExit("redis-server did not start")

    def memory(self) -> int:
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
            sock.sendall(b"MEMORY STATS\r\n")
            sock.settimeout(2)
            raw = sock.recv(65536).decode(errors="replace")
        lines = raw.split("\r\n")
        for i, line in enumerate(lines):
            if line == "dataset.bytes" and i + 1 < len(lines):
                return int(lines[i + 1].lstrip(":"))
        return 0

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


def node(base: Path, name: str, redis_url: str, pool_size: int, **extra: str) -> ServerProcess:
    env = {
        "OGSHOT_TEMPLATES_DIR": str(ROOT / "html_templates"),
        "OGSHOT_STATIC_DIR": str(ROOT / "static"),
        "OGSHOT_CACHE_DIR": str(base / f"cache-{name}"),
        "OGSHOT_POOL_SIZE": str(pool_size),
        "OGSHOT_REDIS_URL": redis_url,
        "OGSHOT_METRICS": "0",
        **extra,
    }
    env = {k: v for k, v in env.items() if v}
    os.environ.pop("OGSHOT_CONFIG", None)
    return ServerProcess(env=env, log=base / f"serve-{name}.log")


def url(tag: str, i: int) -> str:
    return f"/og/article.png?title={quote(f'{tag} image {i}')}&subtitle=fleet+benchmark"


async def timed(client: httpx.AsyncClient, full: str, expect: str) -> float:
    started = time.perf_counter()
    response = await client.get(full)
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200 or response.headers.get("x-ogshot-cache") != expect:
        raise SystemExit(
            f"{full}: {response.status_code} {response.headers.get('x-ogshot-cache')}, "
            f"expected 200 {expect}"
        )
    return elapsed


async def layers(a: ServerProcess, b: ServerProcess, images: int, tag: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=60) as client:
        misses = [await timed(client, a.base + url(tag, i), "miss") for i in range(images)]
        redis_hits, disk_hits = [], []
        for i in range(images):
            redis_hits.append(await timed(client, b.base + url(tag, i), "hit"))
            disk_hits.append(await timed(client, b.base + url(tag, i), "hit"))
    return {
        "miss_ms": percentiles(misses),
        "redis_hit_ms": percentiles(redis_hits),
        "disk_hit_ms": percentiles(disk_hits),
    }


async def misses(servers: Sequence[ServerProcess], count: int, concurrency: int, tag: str) -> float:
    """Renders/s of ``count`` distinct misses spread round robin over ``servers``."""
    queue = list(range(count))
    async with httpx.AsyncClient(timeout=120) as client:

        async def worker() -> None:
            while queue:
                i = queue.pop()
                await timed(client, servers[i % len(servers)].base + url(tag, i), "miss")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=100, help="images for part 1")
    parser.add_argument("--misses", type=int, default=60, help="distinct misses for part 2")
    parser.add_argument("--concurrency", type=int, default=6)
    parser.add_argument("--pool-size", type=int, default=2, help="pages per node")
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "benchmarks/results/fleet.json")
    args = parser.parse_args()
    tag = uuid.uuid4().hex[:8]  # fresh keys, whatever a previous run left
    result: dict[str, Any] = {"cores": os.cpu_count(), "pool_size": args.pool_size}
    with tempfile.TemporaryDirectory(prefix="ogshot-fleet-") as folder:
        base = Path(folder)
        (base / "redis").mkdir()
        redis = Redis(base / "redis")
        try:
            a = node(base, "a", redis.url, args.pool_size)
            b = node(base, "b", redis.url, args.pool_size, OGSHOT_MEMORY_CACHE_SIZE="0")
            c = node(base, "c", redis.url, args.pool_size)
            with running(a, b, c, timeout=120):
                result["layers"] = asyncio.run(layers(a, b, args.images, tag))
                result["redis_dataset_bytes"] = redis.memory()
                result["images_in_redis"] = args.images
                # Warm each node's pages first so the two runs start alike.
                asyncio.run(misses([a, b, c], 6, 6, tag + "warm"))
                one = asyncio.run(misses([a], args.misses, args.concurrency, tag + "one"))
                three = asyncio.run(misses([a, b, c], args.misses, args.concurrency, tag + "three"))
                result["misses"] = {
                    "count": args.misses,
                    "concurrency": args.concurrency,
                    "one_node_renders_per_s": one,
                    "three_nodes_renders_per_s": three,
                    "ratio": three / one,
                }
        finally:
            redis.close()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    lay, mis = result["layers"], result["misses"]
    print(f"{result['cores']} cores, {args.pool_size} pages per node")
    print(f"{'':24} {'p50 ms':>8} {'p90 ms':>8}")
    for name, key in (("miss (render on A)", "miss_ms"), ("hit from Redis (on B)", "redis_hit_ms"),
                      ("hit from disk (on B)", "disk_hit_ms")):  # fmt: skip
        print(f"{name:24} {lay[key]['p50']:8.1f} {lay[key]['p90']:8.1f}")
    per_image = result["redis_dataset_bytes"] / max(1, result["images_in_redis"])
    print(f"Redis dataset: {result['redis_dataset_bytes']:,} bytes ({per_image:,.0f} per image)")
    print(
        f"{mis['count']} distinct misses at concurrency {mis['concurrency']}: "
        f"1 node {mis['one_node_renders_per_s']:.1f}/s, 3 nodes "
        f"{mis['three_nodes_renders_per_s']:.1f}/s (x{mis['ratio']:.2f})"
    )
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
