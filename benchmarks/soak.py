"""Soak: a real ``ogshot serve`` under loopback load for a bounded time, then its figures.

    .venv/bin/python benchmarks/soak.py                      # 2 minutes, 64 clients, half hits
    .venv/bin/python benchmarks/soak.py --duration 300 --kill-every 60 --recycle-after 2000

Mixed traffic: a hot set of URLs (hits once rendered) and unique URLs (misses), over both templates
and all formats. Printed: status counts, latency percentiles for hits and misses, throughput, the
resident memory of the server and all its Chromium processes at start, during and at the end (RSS
sum and PSS, which counts shared pages once), PSS per process type (the server, Playwright's
driver, Chromium's browser, renderer, GPU and utility processes) with its slope in KiB per render
(a count, not a timing: valid on a loaded machine), renders, browser restarts and recycles, and
whether any process was left behind after SIGTERM. ``--kill-every`` SIGKILLs the browser process on
a timer and reports how long until the next render succeeded. Nothing here fails on a number.

    .venv/bin/python benchmarks/soak.py --duration 600 --hit-ratio 0 --concurrency 8 \
        --recycle-after 0                                    # where memory goes, per render
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from ogshot.bench.servers import ServerProcess, processes_memory
from ogshot.engine.memory import process_kind

ROOT = Path(__file__).resolve().parent.parent
FORMATS = ("png", "jpg", "webp")
EXPECTED_5XX = {503}  # backpressure, with Retry-After: what the service is meant to answer


@dataclass
class Tally:
    statuses: Counter[int] = field(default_factory=Counter)
    latencies: dict[str, list[float]] = field(default_factory=lambda: {"hit": [], "miss": []})
    unexpected: list[str] = field(default_factory=list)
    requests: int = 0


# -- processes ----------------------------------------------------------------------------------


def memory(pids: set[int]) -> tuple[float, float]:
    """(sum of RSS, sum of PSS) in MiB over live processes."""
    rss, pss = processes_memory([psutil.Process(pid) for pid in pids if psutil.pid_exists(pid)])
    return rss / 2**20, pss / 2**20


def pss_by_kind(server: ServerProcess) -> dict[str, float]:
    """PSS in MiB per process type: ``server`` (ogshot's Python processes), ``driver``
    (Playwright's node), ``browser``, ``renderer``, ``gpu-process``, ``zygote``, ``utility:...``."""
    found: dict[str, float] = {}
    for pid in server.family():
        try:
            process = psutil.Process(pid)
            kind = process_kind(process)
            if kind == "other" and "python" in os.path.basename(process.cmdline()[0]).lower():
                kind = "server"
            pss = process.memory_full_info().pss / 2**20
        except (psutil.Error, IndexError):
            continue
        found[kind] = found.get(kind, 0.0) + pss
    return {kind: round(found[kind], 1) for kind in sorted(found)}


def slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (x, y) points; None with fewer than two distinct x."""
    if len({x for x, _ in points}) < 2:
        return None
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    return sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x, _ in points)


def browser_pid(server: ServerProcess) -> int | None:
    """The Chromium browser process (not the wrapper script, a zygote or a renderer)."""
    for pid in server.marked():
        with contextlib.suppress(psutil.Error):
            argv = psutil.Process(pid).cmdline()
            exe = os.path.basename(argv[0]).lower() if argv else ""
            if "chrom" in exe and not any(a.startswith("--type=") for a in argv):
                return pid
    return None


# -- load ----------------------------------------------------------------------------------------


def url_for(rng: random.Random, title: str) -> str:
    fmt = rng.choice(FORMATS)
    if rng.random() < 0.5:
        return f"/og/minimal.{fmt}?title={title}&size={rng.randint(40, 110)}"
    return f"/og/article.{fmt}?title={title}&author=Soak&tag=t{rng.randint(0, 9)}"


async def client_loop(
    client: httpx.AsyncClient,
    rng: random.Random,
    hot: list[str],
    unique: itertools.count[int],
    hit_ratio: float,
    until: float,
    tally: Tally,
    run_id: str,
) -> None:
    while time.monotonic() < until:
        if rng.random() < hit_ratio:
            path = rng.choice(hot)
        else:
            path = url_for(rng, f"miss-{run_id}-{next(unique)}")
        started = time.perf_counter()
        try:
            response = await client.get(path)
        except httpx.HTTPError as exc:
            stamp = time.strftime("%H:%M:%S")
            tally.unexpected.append(f"{stamp} {type(exc).__name__} {exc!r} on {path}")
            continue
        elapsed = time.perf_counter() - started
        tally.requests += 1
        tally.statuses[response.status_code] += 1
        if response.status_code == 200:
            kind = response.headers.get("x-ogshot-cache", "miss")
            tally.latencies[kind].append(elapsed)
        elif response.status_code >= 500 and response.status_code not in EXPECTED_5XX:
            tally.unexpected.append(
                f"{response.status_code} {path}: {response.headers.get('x-ogshot-error', '')}"
            )


async def killer(server: ServerProcess, every: float, until: float, log: list[str]) -> None:
    """SIGKILL the browser every `every` seconds; time until the pool is full again (a new
    browser, all its pages open) by /readyz. Under load a fresh request would also wait its turn
    in the queue, which measures the backlog rather than the recovery."""
    async with httpx.AsyncClient(base_url=server.base, timeout=60) as client:
        while time.monotonic() + every < until:
            await asyncio.sleep(every)
            pid = browser_pid(server)
            if pid is None:
                continue
            restarts = (await client.get("/readyz")).json()["pool"]["browser_restarts"]
            os.kill(pid, signal.SIGKILL)
            killed = time.monotonic()
            while time.monotonic() < until:
                pool = (await client.get("/readyz")).json()["pool"]
                full = pool["idle"] + pool["busy"] == pool["size"]
                if pool["browser_restarts"] > restarts and full:
                    took = time.monotonic() - killed
                    log.append(f"SIGKILL of Chromium {pid}: pool full again after {took:.2f} s")
                    break
                await asyncio.sleep(0.02)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


@dataclass
class Run:
    work: Path
    server: ServerProcess

    @property
    def base(self) -> str:
        return self.server.base


def start(args: argparse.Namespace) -> Run:
    work = Path(tempfile.mkdtemp(prefix="ogshot-soak-"))
    shutil.copytree(ROOT / "html_templates", work / "html_templates")
    shutil.copytree(ROOT / "static", work / "static")
    env = {
        "OGSHOT_TEMPLATES_DIR": str(work / "html_templates"),
        "OGSHOT_STATIC_DIR": str(work / "static"),
        "OGSHOT_CACHE_DIR": str(work / "cache"),
    }
    for option, variable in (
        ("pool_size", "OGSHOT_POOL_SIZE"),
        ("queue_size", "OGSHOT_QUEUE_SIZE"),
        ("recycle_after", "OGSHOT_RECYCLE_AFTER"),
        ("memory_cache", "OGSHOT_MEMORY_CACHE_SIZE"),
        ("browser_max_mb", "OGSHOT_BROWSER_MAX_MB"),
    ):
        if getattr(args, option) is not None:
            env[variable] = str(getattr(args, option))
    server = ServerProcess(env=env, cwd=work, log=work / "server.log")
    try:
        server.start(timeout=60)
    except RuntimeError as exc:
        raise SystemExit(str(exc)) from None
    return Run(work, server)


def stop(run: Run, result: dict[str, Any], keep: bool) -> None:
    """SIGTERM, as a process manager would; then count what is left of the server's processes."""
    server = run.server
    if server.process is not None and server.process.poll() is None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.terminate(60)
    deadline = time.monotonic() + 10
    while server.family() and time.monotonic() < deadline:
        time.sleep(0.1)
    result["processes_left_after_sigterm"] = len(server.family())
    server.close()  # SIGKILL for anything left
    if keep:
        print(f"kept {run.work}")
    else:
        shutil.rmtree(run.work, ignore_errors=True)


async def load(args: argparse.Namespace, run: Run) -> dict[str, Any]:
    result: dict[str, Any] = {"duration_s": args.duration, "concurrency": args.concurrency}
    async with httpx.AsyncClient(
        base_url=run.base,
        timeout=120,
        # Idle connections are dropped before uvicorn's 5 s keep-alive ends, so that a request is
        # never sent on a connection the server is closing at that moment (a client-side race).
        limits=httpx.Limits(max_connections=args.concurrency + 4, keepalive_expiry=2.0),
    ) as client:
        rng = random.Random(args.seed)
        run_id = uuid.uuid4().hex[:8]
        hot = [url_for(rng, f"hot-{run_id}-{i}") for i in range(args.hot)]
        for i in range(0, len(hot), 8):  # render the hot set first: they are hits from now
            await asyncio.gather(*(client.get(u) for u in hot[i : i + 8]))
        before = (await client.get("/readyz")).json()["pool"]
        start_mem = memory(run.server.family())
        start_server = memory({run.server.pid})
        print(
            f"server pid {run.server.pid}, {len(run.server.family())} processes, "
            f"RSS {start_mem[0]:.0f} MiB, PSS {start_mem[1]:.0f} MiB at start",
            flush=True,
        )
        tally = Tally()
        unique = itertools.count()
        began = time.monotonic()
        until = began + args.duration
        samples: list[tuple[float, float, float, float, int]] = []
        kinds: list[tuple[int, dict[str, float]]] = [
            (0, await asyncio.to_thread(pss_by_kind, run.server))
        ]

        async def sampler() -> None:
            while time.monotonic() < until:
                await asyncio.sleep(min(15.0, args.duration / 8))
                rss, pss = memory(run.server.family())
                server_rss = memory({run.server.pid})[0]
                samples.append((time.monotonic() - began, rss, pss, server_rss, tally.requests))
                done = (await client.get("/readyz")).json()["pool"]["renders"] - before["renders"]
                by_kind = await asyncio.to_thread(pss_by_kind, run.server)
                kinds.append((done, by_kind))
                print(
                    f"  t={samples[-1][0]:5.0f}s  requests {tally.requests:7d}  "
                    f"RSS {rss:6.0f} MiB  PSS {pss:6.0f} MiB  server RSS {server_rss:5.0f} MiB",
                    flush=True,
                )
                print(f"           renders {done:6d}  PSS MiB {by_kind}", flush=True)

        kills: list[str] = []
        tasks = [
            client_loop(
                client,
                random.Random(args.seed + i),
                hot,
                unique,
                args.hit_ratio,
                until,
                tally,
                run_id,
            )
            for i in range(args.concurrency)
        ]
        extra = [sampler()]
        if args.kill_every:
            extra.append(killer(run.server, args.kill_every, until, kills))
        await asyncio.gather(*tasks, *extra)
        elapsed = time.monotonic() - began
        after_pool = (await client.get("/readyz")).json()["pool"]
        end_mem = memory(run.server.family())
        end_server = memory({run.server.pid})
    renders = after_pool["renders"] - before["renders"]
    result.update(
        requests=tally.requests,
        throughput_rps=round(tally.requests / elapsed, 1),
        statuses=dict(sorted(tally.statuses.items())),
        unexpected_5xx_or_errors=len(tally.unexpected),
        unexpected_examples=tally.unexpected[:5],
        hits=len(tally.latencies["hit"]),
        misses=len(tally.latencies["miss"]),
        renders=renders,
        renders_per_s=round(renders / elapsed, 1),
        browser_restarts=after_pool["browser_restarts"],
        browser_recycles=after_pool["browser_recycles"],
        pages_replaced=after_pool["pages_replaced"],
        rejected_503=after_pool["rejected"],
        kills=kills,
        rss_mib_start=round(start_mem[0]),
        rss_mib_end=round(end_mem[0]),
        pss_mib_start=round(start_mem[1]),
        pss_mib_end=round(end_mem[1]),
        server_rss_mib_start=round(start_server[0]),
        server_rss_mib_end=round(end_server[0]),
        memory_samples=[
            {"t": round(t), "rss": round(r), "pss": round(p), "server_rss": round(v), "requests": n}
            for t, r, p, v, n in samples
        ],
        pss_by_kind=[{"renders": n, **by_kind} for n, by_kind in kinds],
        pss_kib_per_render={
            kind: round(value * 1024, 1)
            for kind in sorted({k for _, row in kinds for k in row})
            if (value := slope([(n, row[kind]) for n, row in kinds if kind in row])) is not None
        },
        browser_memory_recycles=after_pool.get("browser_memory_recycles", 0),
        load_average=os.getloadavg(),
    )
    for kind in ("hit", "miss"):
        values = tally.latencies[kind]
        result[f"{kind}_ms"] = {
            "p50": round(pct(values, 0.50), 1),
            "p90": round(pct(values, 0.90), 1),
            "p99": round(pct(values, 0.99), 1),
            "max": round(max(values) * 1000, 1) if values else None,
        }
    return result


def report(result: dict[str, Any]) -> None:
    print()
    print(
        f"requests        {result['requests']:,} in {result['duration_s']} s at concurrency "
        f"{result['concurrency']} ({result['throughput_rps']} req/s)"
    )
    print(f"statuses        {result['statuses']}")
    print(
        f"unexpected      {result['unexpected_5xx_or_errors']} (5xx other than 503, or "
        f"transport errors) {result['unexpected_examples']}"
    )
    print(f"hits / misses   {result['hits']:,} / {result['misses']:,}")
    for kind in ("hit", "miss"):
        s = result[f"{kind}_ms"]
        print(
            f"{kind + ' latency':15} p50 {s['p50']} ms  p90 {s['p90']} ms  p99 {s['p99']} ms  "
            f"max {s['max']} ms"
        )
    print(
        f"renders         {result['renders']:,} ({result['renders_per_s']}/s); browser restarts "
        f"{result['browser_restarts']}, recycles {result['browser_recycles']}, pages replaced "
        f"{result['pages_replaced']}, 503s {result['rejected_503']}"
    )
    for line in result["kills"]:
        print(f"chaos           {line}")
    print(
        f"memory          RSS {result['rss_mib_start']} -> {result['rss_mib_end']} MiB, "
        f"PSS {result['pss_mib_start']} -> {result['pss_mib_end']} MiB (server + Chromium); "
        f"the server process alone {result['server_rss_mib_start']} -> "
        f"{result['server_rss_mib_end']} MiB (its in-memory hot cache fills up to "
        "OGSHOT_MEMORY_CACHE_SIZE)"
    )
    first, last = result["pss_by_kind"][0], result["pss_by_kind"][-1]
    for kind, per_render in result["pss_kib_per_render"].items():
        print(
            f"PSS {kind:20} {first.get(kind, 0):7.1f} -> {last.get(kind, 0):7.1f} MiB over "
            f"{last['renders']:,} renders: {per_render:+.1f} KiB/render"
        )
    if result["browser_memory_recycles"]:
        print(
            f"memory ceiling  {result['browser_memory_recycles']} recycles over "
            "OGSHOT_BROWSER_MAX_MB"
        )
    print(f"after SIGTERM   {result['processes_left_after_sigterm']} processes left")
    print(f"load average    {result['load_average']} (other work on the machine skews timings)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=120, help="seconds (default 120)")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--hit-ratio", type=float, default=0.5)
    parser.add_argument("--hot", type=int, default=200, help="URLs in the hot (hit) set")
    parser.add_argument("--pool-size", type=int, default=None, help="OGSHOT_POOL_SIZE")
    parser.add_argument("--queue-size", type=int, default=None, help="OGSHOT_QUEUE_SIZE")
    parser.add_argument("--recycle-after", type=int, default=None, help="OGSHOT_RECYCLE_AFTER")
    parser.add_argument("--memory-cache", default=None, help="OGSHOT_MEMORY_CACHE_SIZE")
    parser.add_argument("--browser-max-mb", type=int, default=None, help="OGSHOT_BROWSER_MAX_MB")
    parser.add_argument("--kill-every", type=float, default=0, help="SIGKILL Chromium every N s")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep the work folder and server log")
    args = parser.parse_args()
    run = start(args)
    result: dict[str, Any] = {}
    try:
        result = asyncio.run(load(args, run))
    finally:
        stop(run, result, args.keep)
    report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
