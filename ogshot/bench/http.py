"""``ogshot bench`` over HTTP: a real ``ogshot serve`` (and the floor app) in subprocesses.

3. hit        cache hits, against the floor (ogshot/benchfloor.py) answering the same bytes from a
              diskcache; both under the same load, alternated, in the same run (wrk when installed)
4. saturation distinct-parameter misses at concurrency 8
5. cold start process start to the first image served
6. memory     start and peak RSS/PSS of the server and its Chromium processes during (4)
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ogshot.bench.servers import ServerProcess, memory_sampler, settings_env
from ogshot.core.settings import Settings

__all__ = ["percentiles", "server_stages"]


def percentiles(samples: Sequence[float]) -> dict[str, float]:
    if not samples:
        return {"p50": 0.0, "p90": 0.0, "p99": 0.0, "n": 0}
    ordered = sorted(samples)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"p50": statistics.median(ordered), "p90": at(0.90), "p99": at(0.99), "n": len(ordered)}


_WRK_LATENCY = re.compile(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_WRK_RATE = re.compile(r"Requests/sec:\s+([\d.]+)")
_WRK_STATUS = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0}

# wrk script: every request asks for a different title, so every request is a miss.
_DISTINCT_LUA = """
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", "%s" .. counter .. "-" .. math.random(1, 1000000000))
end
"""


def wrk(
    url: str, *, connections: int, seconds: float, path_prefix: str | None = None
) -> dict[str, Any]:
    command = [
        "wrk",
        f"-c{connections}",
        f"-t{min(2, connections)}",
        f"-d{max(1, round(seconds))}s",
        "--latency",
        "--timeout",
        "10s",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        if path_prefix is not None:
            script = Path(tmp) / "distinct.lua"
            script.write_text(_DISTINCT_LUA % path_prefix)
            command += ["-s", str(script)]
        out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    latency = {f"p{q}": float(v) * _UNIT[u] for q, v, u in _WRK_LATENCY.findall(out)}
    rate = _WRK_RATE.search(out)
    errors = _WRK_STATUS.search(out)
    return {
        "tool": "wrk",
        "requests_per_s": float(rate.group(1)) if rate else 0.0,
        "ms": latency,
        "non_2xx": int(errors.group(1)) if errors else 0,
    }


async def python_load(
    base: str, paths: Callable[[int], str], *, connections: int, seconds: float
) -> dict[str, Any]:
    """A bounded-concurrency HTTP client for machines without wrk."""
    import httpx

    latencies: list[float] = []
    non_2xx = 0
    counter = iter(range(1 << 62))
    end = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=10) as client:

        async def worker() -> None:
            nonlocal non_2xx
            while time.monotonic() < end:
                started = time.perf_counter()
                response = await client.get(paths(next(counter)))
                latencies.append((time.perf_counter() - started) * 1000)
                if response.status_code >= 400:
                    non_2xx += 1

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.monotonic() - started
    return {
        "tool": "python",
        "requests_per_s": len(latencies) / elapsed,
        "ms": {k: v for k, v in percentiles(latencies).items() if k != "n"},
        "non_2xx": non_2xx,
    }


def load(
    server: ServerProcess,
    *,
    path: str | None,
    prefix: str | None,
    connections: int,
    seconds: float,
) -> dict[str, Any]:
    if shutil.which("wrk"):
        url = server.base + (path or "/")
        return wrk(url, connections=connections, seconds=seconds, path_prefix=prefix)

    def pick(i: int) -> str:
        return path if path is not None else f"{prefix}{i}"

    return asyncio.run(python_load(server.base, pick, connections=connections, seconds=seconds))


def _mean(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Several runs of one load as one: mean rate and latencies, summed errors."""
    return {
        "tool": runs[0]["tool"],
        "requests_per_s": sum(r["requests_per_s"] for r in runs) / len(runs),
        "ms": {q: sum(r["ms"].get(q, 0.0) for r in runs) / len(runs) for q in runs[0]["ms"]},
        "non_2xx": sum(r["non_2xx"] for r in runs),
    }


def _floor(hit_path: str, cache_dir: Path, ogshot: ServerProcess) -> ServerProcess:
    """The floor app, its cache filled with ogshot's answer to ``hit_path``, started."""
    from ogshot.bench.floor import store

    with urllib.request.urlopen(ogshot.base + hit_path, timeout=30) as response:
        headers = response.headers
        body = response.read()
        path, _, query = hit_path.partition("?")
        store(
            str(cache_dir),
            path,
            query,
            body,
            headers["content-type"],
            headers["etag"],
            headers["cache-control"],
        )
    floor = ServerProcess(
        env={"OGSHOT_FLOOR_CACHE_DIR": str(cache_dir)},
        command=[sys.executable, "-m", "ogshot.bench.floor", "--port", "{port}"],
    )
    floor.start()
    status, same = floor.fetch(hit_path)
    if status != 200 or same != body:
        floor.stop()
        raise RuntimeError(f"the floor app does not answer what ogshot does ({status})")
    return floor


def hits(
    ogshot: ServerProcess, floor: ServerProcess, hit_path: str, connections: int, seconds: float
) -> tuple[dict[str, Any], dict[str, Any], list[float]]:
    """The same hit under the same load against both, alternated in rounds of about 4 s
    (ogshot, floor, ogshot, floor...) so that a change in the machine's other load falls on both
    alike; the ratio of each round's pair too, whose median is the headline."""
    rounds = max(1, min(5, int(seconds // 4)))
    ours: list[dict[str, Any]] = []
    theirs: list[dict[str, Any]] = []
    for _ in range(rounds):
        for server, runs in ((ogshot, ours), (floor, theirs)):
            runs.append(
                load(
                    server,
                    path=hit_path,
                    prefix=None,
                    connections=connections,
                    seconds=seconds / rounds,
                )
            )
    ratios = [
        a["requests_per_s"] / max(b["requests_per_s"], 1e-9)
        for a, b in zip(ours, theirs, strict=True)
    ]
    return _mean(ours), _mean(theirs), ratios


def server_stages(
    settings: Settings,
    cache_dir: Path,
    *,
    template: str,
    connections: int,
    concurrency: int,
    hit_seconds: float,
    saturation_seconds: float,
) -> dict[str, Any]:
    server = ServerProcess(env=settings_env(settings, cache_dir / "server"))
    hit_path = f"/og/{template}.png?title={quote('Cache hit benchmark')}"
    try:
        server.spawn()
        cold = server.wait_ready(path=hit_path)
        status, body = server.fetch(hit_path)
        assert status == 200 and body[:4] == b"\x89PNG"
        floor = _floor(hit_path, cache_dir / "floor", server)
        try:
            hit, floor_hit, ratios = hits(server, floor, hit_path, connections, hit_seconds)
        finally:
            floor.stop()
        prefix = f"/og/{template}.png?title=Saturation%20"
        with memory_sampler(server.pid) as memory:
            saturation = load(
                server,
                path=None,
                prefix=prefix,
                connections=concurrency,
                seconds=saturation_seconds,
            )
        _, ready = server.fetch("/readyz")
        saturation["pool"] = json.loads(ready).get("pool", {})
    finally:
        server.stop()
    return {
        "cold_start_s": cold,
        "hit": hit,
        "floor_hit": floor_hit,
        "hit_vs_floor": statistics.median(ratios),
        "hit_vs_floor_rounds": ratios,
        "saturation": saturation,
        "memory_mb": {k: round(v / 2**20, 1) for k, v in memory.items()},
    }


def metrics_cost(
    settings: Settings,
    cache_dir: Path,
    *,
    template: str,
    connections: int,
    seconds: float,
    rounds: int = 3,
) -> dict[str, Any]:
    """Cache-hit req/s with metrics (and the request telemetry they feed) on and off: two warm
    servers, loaded in alternation (on, off, on, off...) so that a drift in the machine's speed
    falls on both alike; the median of each back-to-back pair's ratio is the headline."""
    hit_path = f"/og/{template}.png?title={quote('Metrics cost benchmark')}"
    servers = {
        label: ServerProcess(
            env={**settings_env(settings, cache_dir / f"metrics-{label}"), "OGSHOT_METRICS": on}
        )
        for label, on in (("on", "1"), ("off", "0"))
    }
    rates: dict[str, list[float]] = {label: [] for label in servers}
    try:
        for server in servers.values():
            server.spawn()
            server.wait_ready(path=hit_path)
        for _ in range(rounds):
            for label, server in servers.items():
                result = load(
                    server, path=hit_path, prefix=None, connections=connections, seconds=seconds
                )
                rates[label].append(result["requests_per_s"])
        metrics_off_status = servers["off"].fetch("/metrics")[0]
    finally:
        for server in servers.values():
            server.stop()
    pairs = [a / b for a, b in zip(rates["on"], rates["off"], strict=True) if b]
    return {
        "hit_req_per_s_on": statistics.mean(rates["on"]),
        "hit_req_per_s_off": statistics.mean(rates["off"]),
        "rounds": rates,
        "on_vs_off": statistics.median(pairs) if pairs else 0.0,
        "metrics_off_status": metrics_off_status,  # 404: the "off" server really had them off
    }
