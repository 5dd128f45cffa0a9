"""``ogshot bench``: how fast ogshot is, measured against a baseline in the same run.

Stages, each bounded in time, loopback only:

1. baseline   what most Playwright code does: a warm page, ``set_content`` + ``page.screenshot``
2. miss       cache misses through the library API, per stage, for PNG, JPEG and WebP
3. hit        cache hits over HTTP against a running ``ogshot serve`` (wrk when installed)
4. saturation distinct-parameter misses at concurrency 8 over HTTP
5. cold start process start to the first image served
6. memory     peak RSS of the server and its Chromium processes during (4)
7. quality    SSIM of each format against a lossless capture of the same page

Absolute times drift on shared machines; the ratio against the baseline is the headline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pyvips
from playwright.async_api import Route, async_playwright

from . import __version__
from .assets import ORIGIN, Assets
from .chromium import ESSENTIAL_ARGS, find_chromium
from .config import Settings
from .pipeline import Renderer
from .render import capture

__all__ = ["BenchOptions", "run"]

# What every headless Chromium needs here, but none of ogshot's speed flags: the baseline is
# Playwright as most code uses it.
BASELINE_ARGS = ESSENTIAL_ARGS


@dataclass(frozen=True, kw_only=True)
class BenchOptions:
    templates: tuple[str, ...] = ("article",)
    iterations: int = 40
    hit_seconds: float = 10.0
    saturation_seconds: float = 20.0
    connections: int = 32
    concurrency: int = 8
    output: Path | None = None
    settings: Settings = field(default_factory=Settings.load)


def percentiles(samples: Sequence[float]) -> dict[str, float]:
    if not samples:
        return {"p50": 0.0, "p90": 0.0, "p99": 0.0, "n": 0}
    ordered = sorted(samples)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"p50": statistics.median(ordered), "p90": at(0.90), "p99": at(0.99), "n": len(ordered)}


def params_for(template: str, i: int, renderer: Renderer) -> dict[str, Any]:
    """The template's example parameters with the first string parameter made unique."""
    tpl = renderer.catalog.get(template)
    params: dict[str, Any] = dict(tpl.examples())
    for param in tpl.params.values():
        if param.type == "str" and not param.choices:
            params[param.name] = f"Benchmark card number {i}: measured, not guessed"[
                : param.max_length or 200
            ]
            break
    if not tpl.declared:
        params["title"] = f"Benchmark card number {i}"
    return params


# -- 1. baseline -------------------------------------------------------------------------------


async def baseline(html_docs: Sequence[str], settings: Settings) -> dict[str, Any]:
    """Warm page, ``set_content`` + ``page.screenshot``; static files answered from disk by a
    route, as ogshot does, so that both draw the same picture (checked in ``library_stages``)."""
    assets = Assets(settings.static_dir)

    async def serve_static(route: Route) -> None:
        asset = assets.static(route.request.url)
        if asset is not None:
            await route.fulfill(body=asset.body, content_type=asset.content_type)
        elif route.request.url == f"{ORIGIN}/":
            await route.fulfill(body="<!doctype html>", content_type="text/html")
        else:
            await route.abort()

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=settings.executable_path or find_chromium(), args=list(BASELINE_ARGS)
        )
        page = await browser.new_page(viewport={"width": settings.width, "height": settings.height})
        await page.route("**/*", serve_static)
        await page.goto(f"{ORIGIN}/")
        times: list[float] = []
        sizes: list[int] = []
        first = b""
        for i, html in enumerate(html_docs):
            started = time.perf_counter()
            await page.set_content(html)
            png = await page.screenshot(type="png")
            if i:  # the first one warms the page up
                times.append((time.perf_counter() - started) * 1000)
                sizes.append(len(png))
                first = first or png
        await browser.close()
    return {"ms": percentiles(times), "bytes": int(statistics.median(sizes)), "png": first}


# -- 2. cache misses through the library -------------------------------------------------------


async def misses(renderer: Renderer, template: str, iterations: int) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    for fmt in ("png", "jpeg", "webp"):
        totals: list[float] = []
        stages: dict[str, list[float]] = {}
        sizes: list[int] = []
        for i in range(iterations + 1):
            params = params_for(template, i + 10_000 * (len(results) + 1), renderer)
            started = time.perf_counter()
            image = await renderer.image(template, params, fmt)
            elapsed = (time.perf_counter() - started) * 1000
            assert not image.cached
            if i == 0:
                continue  # warm-up: first use of this format
            totals.append(elapsed)
            sizes.append(len(image.body))
            for stage, ms in image.timings.items():
                stages.setdefault(stage, []).append(ms)
        results[fmt] = {
            "ms": percentiles(totals),
            "stages_p50": {k: statistics.median(v) for k, v in stages.items()},
            "bytes": int(statistics.median(sizes)),
        }
    return results


# -- 7. quality --------------------------------------------------------------------------------


def ssim(a: pyvips.Image, b: pyvips.Image) -> float:
    """Mean SSIM (11x11 Gaussian window, sigma 1.5), the worst of the R, G and B channels."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    worst = 1.0
    for band in range(3):
        x, y = a[band].cast("float"), b[band].cast("float")

        def blur(im: pyvips.Image) -> pyvips.Image:
            return im.gaussblur(1.5, precision="float")

        mx, my = blur(x), blur(y)
        sxx = blur(x * x) - mx * mx
        syy = blur(y * y) - my * my
        sxy = blur(x * y) - mx * my
        index = ((mx * my * 2 + c1) * (sxy * 2 + c2)) / (
            (mx * mx + my * my + c1) * (sxx + syy + c2)
        )
        worst = min(worst, float(index.avg()))
    return worst


async def quality(renderer: Renderer, template: str) -> dict[str, dict[str, float]]:
    params = params_for(template, 424242, renderer)
    job = renderer.prepare(template, params, "png")
    html = renderer.catalog.render_html(job.template, job.values)
    async with renderer.pool.lease() as slot:
        shot = await capture(slot, html, time_limit=renderer.settings.render_timeout)
    reference = pyvips.Image.new_from_buffer(shot.png, "")[:3]  # lossless
    out: dict[str, dict[str, float]] = {}
    for fmt in ("png", "jpeg", "webp"):
        body = await renderer.render(template, params, fmt)
        decoded = pyvips.Image.new_from_buffer(body, "")
        if decoded.bands == 4:
            decoded = decoded.flatten()
        out[fmt] = {"ssim": round(ssim(reference, decoded[:3]), 5), "bytes": len(body)}
    return out


# -- the server: 3-6 -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def tree_memory(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in bytes of a process and all its descendants, from /proc.

    RSS counts a shared page once per process that maps it (Chromium's zygote-forked processes
    share much of theirs), so its sum overstates what the tree uses; PSS divides each shared page
    among its users, so its sum is the tree's real footprint. Both are reported.
    """
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                parent = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry))
    rss = pss = 0
    todo = [pid]
    while todo:
        current = todo.pop()
        todo.extend(children.get(current, []))
        try:
            with open(f"/proc/{current}/smaps_rollup") as fh:
                for line in fh:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1]) * 1024
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1]) * 1024
        except OSError:
            continue
    return rss, pss


class Server:
    """``ogshot serve`` in a subprocess on a free loopback port."""

    def __init__(self, settings: Settings, cache_dir: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "OGSHOT_PORT": str(self.port),
            "OGSHOT_HOST": "127.0.0.1",
            "OGSHOT_CACHE_DIR": str(cache_dir),
            "OGSHOT_TEMPLATES_DIR": str(Path(settings.templates_dir).resolve()),
            "OGSHOT_STATIC_DIR": str(Path(settings.static_dir).resolve()),
            "OGSHOT_POOL_SIZE": str(settings.pool_size),
        }
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the server
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ogshot", "serve"],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def get(self, path: str, timeout: float = 10.0) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.base + path, timeout=timeout) as response:
                return int(response.status), bytes(response.read())
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.read()

    def wait_for(self, path: str, deadline: float = 30.0) -> float:
        """Poll until ``path`` answers 200; seconds since the process started."""
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if self.process.poll() is not None:
                break
            with contextlib.suppress(OSError):
                if self.get(path, timeout=5)[0] == 200:
                    return time.perf_counter() - self.started
            time.sleep(0.02)
        self.log.seek(0)
        raise RuntimeError(
            "ogshot serve did not start:\n" + self.log.read().decode(errors="replace")
        )

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextlib.contextmanager
def memory_sampler(pid: int) -> Iterator[dict[str, int]]:
    rss, pss = tree_memory(pid)
    peak = {"rss_start": rss, "pss_start": pss, "rss_peak": rss, "pss_peak": pss}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            rss, pss = tree_memory(pid)
            peak["rss_peak"] = max(peak["rss_peak"], rss)
            peak["pss_peak"] = max(peak["pss_peak"], pss)
            stop.wait(0.2)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join()


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
    server: Server, *, path: str | None, prefix: str | None, connections: int, seconds: float
) -> dict[str, Any]:
    if shutil.which("wrk"):
        url = server.base + (path or "/")
        return wrk(url, connections=connections, seconds=seconds, path_prefix=prefix)

    def pick(i: int) -> str:
        return path if path is not None else f"{prefix}{i}"

    return asyncio.run(python_load(server.base, pick, connections=connections, seconds=seconds))


# -- the whole run ------------------------------------------------------------------------------


async def library_stages(options: BenchOptions, cache_dir: Path) -> dict[str, Any]:
    settings = options.settings.replace(cache_dir=cache_dir / "library")
    out: dict[str, Any] = {}
    async with Renderer(settings) as renderer:
        for template in options.templates:
            docs = []
            for i in range(options.iterations + 1):
                job = renderer.prepare(template, params_for(template, i, renderer), "png")
                docs.append(renderer.catalog.render_html(job.template, job.values))
            base = await baseline(docs, settings)
            # The baseline's first measured picture (document 1) against ogshot's of document 1:
            # the speed-up only means something if both draw the same thing.
            ours = await renderer.render(template, params_for(template, 1, renderer), "png")
            base["same_picture_ssim"] = round(
                ssim(
                    pyvips.Image.new_from_buffer(base.pop("png"), "")[:3],
                    pyvips.Image.new_from_buffer(ours, "")[:3],
                ),
                5,
            )
            miss = await misses(renderer, template, options.iterations)
            out[template] = {
                "baseline": base,
                "miss": miss,
                "speedup_png_p50": base["ms"]["p50"] / miss["png"]["ms"]["p50"],
                "quality": await quality(renderer, template),
            }
    return out


def server_stages(options: BenchOptions, cache_dir: Path) -> dict[str, Any]:
    template = options.templates[0]
    server = Server(options.settings, cache_dir / "server")
    try:
        hit_path = f"/og/{template}.png?title={quote('Cache hit benchmark')}"
        cold = server.wait_for(hit_path)
        status, body = server.get(hit_path)
        assert status == 200 and body[:4] == b"\x89PNG"
        hit = load(
            server,
            path=hit_path,
            prefix=None,
            connections=options.connections,
            seconds=options.hit_seconds,
        )
        prefix = f"/og/{template}.png?title=Saturation%20"
        with memory_sampler(server.process.pid) as memory:
            saturation = load(
                server,
                path=None,
                prefix=prefix,
                connections=options.concurrency,
                seconds=options.saturation_seconds,
            )
        _, ready = server.get("/readyz")
        saturation["pool"] = json.loads(ready).get("pool", {})
    finally:
        server.stop()
    return {
        "cold_start_s": cold,
        "hit": hit,
        "saturation": saturation,
        "memory_mb": {k: round(v / 2**20, 1) for k, v in memory.items()},
    }


def metrics_cost(options: BenchOptions, cache_dir: Path, rounds: int = 3) -> dict[str, Any]:
    """Cache-hit req/s with metrics (and the request telemetry they feed) on and off.

    Two servers, one per setting, both warm; the load alternates between them (on, off, on,
    off...) so that a drift in the machine's speed falls on both alike."""
    template = options.templates[0]
    hit_path = f"/og/{template}.png?title={quote('Metrics cost benchmark')}"
    servers: dict[str, Server] = {}
    try:
        for label, value in (("on", "true"), ("off", "false")):
            previous = os.environ.get("OGSHOT_METRICS")
            os.environ["OGSHOT_METRICS"] = value  # the server's environment is copied now
            try:
                servers[label] = Server(options.settings, cache_dir / f"metrics-{label}")
            finally:
                if previous is None:
                    os.environ.pop("OGSHOT_METRICS", None)
                else:
                    os.environ["OGSHOT_METRICS"] = previous
        for server in servers.values():
            server.wait_for(hit_path)
            server.get(hit_path)
        rates: dict[str, list[float]] = {label: [] for label in servers}
        for _ in range(rounds):
            for label, server in servers.items():
                result = load(
                    server,
                    path=hit_path,
                    prefix=None,
                    connections=options.connections,
                    seconds=options.hit_seconds / 2,
                )
                rates[label].append(result["requests_per_s"])
        metrics_off = servers["off"].get("/metrics")[0]
    finally:
        for server in servers.values():
            server.stop()
    on, off = statistics.mean(rates["on"]), statistics.mean(rates["off"])
    # Each round's pair ran back to back: the median of their ratios resists a drifting machine.
    pairs = [a / b for a, b in zip(rates["on"], rates["off"], strict=True) if b]
    return {
        "hit_req_per_s_on": on,
        "hit_req_per_s_off": off,
        "rounds": rates,
        "on_vs_off": statistics.median(pairs) if pairs else 0.0,
        "metrics_off_status": metrics_off,  # 404: the "off" server really had them off
    }


def run(options: BenchOptions) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ogshot-bench-") as tmp:
        cache_dir = Path(tmp)
        library = asyncio.run(library_stages(options, cache_dir))
        server = server_stages(options, cache_dir)
        server["metrics_cost"] = metrics_cost(options, cache_dir)
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "ogshot": __version__,
        "machine": {
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "chromium": options.settings.executable_path or find_chromium(),
            "pool_size": options.settings.pool_size,
        },
        "library": library,
        "server": server,
    }
    if options.output is not None:
        options.output.parent.mkdir(parents=True, exist_ok=True)
        options.output.write_text(json.dumps(result, indent=2))
    return result


def report(result: dict[str, Any]) -> str:
    lines = [
        f"ogshot {result['ogshot']} bench, {result['date']}, {result['machine']['cores']} cores, "
        f"pool {result['machine']['pool_size']}",
    ]
    for template, data in result["library"].items():
        base = data["baseline"]
        lines.append(
            f"\n[{template}] cache miss, library API (ms)      p50     p90     p99    bytes"
        )
        lines.append(
            f"  baseline set_content+page.screenshot {base['ms']['p50']:7.1f}"
            f" {base['ms']['p90']:7.1f} {base['ms']['p99']:7.1f} {base['bytes']:8d}"
        )
        for fmt, miss in data["miss"].items():
            ms = miss["ms"]
            lines.append(
                f"  ogshot {fmt:<30s} {ms['p50']:7.1f} {ms['p90']:7.1f} {ms['p99']:7.1f}"
                f" {miss['bytes']:8d}"
            )
            stages = ", ".join(f"{k} {v:.1f}" for k, v in miss["stages_p50"].items())
            lines.append(f"      stages p50: {stages}")
        lines.append(
            f"  speed-up vs baseline (PNG p50): {data['speedup_png_p50']:.1f}x "
            f"(same picture: SSIM {base['same_picture_ssim']:.4f})"
        )
        quality = ", ".join(
            f"{k} SSIM {v['ssim']:.4f} ({v['bytes']} B)" for k, v in data["quality"].items()
        )
        lines.append(f"  quality vs lossless capture: {quality}")
    server = result["server"]
    hit, sat = server["hit"], server["saturation"]
    lines += [
        "",
        f"cache hit over HTTP ({hit['tool']}, 32 connections): {hit['requests_per_s']:.0f} req/s, "
        f"p50 {hit['ms'].get('p50', 0):.2f} ms, p99 {hit['ms'].get('p99', 0):.2f} ms, "
        f"non-2xx {hit['non_2xx']}",
        f"saturation (distinct misses, concurrency 8, {sat['tool']}): {sat['requests_per_s']:.1f} "
        f"renders/s, p50 {sat['ms'].get('p50', 0):.1f} ms, p99 {sat['ms'].get('p99', 0):.1f} ms, "
        f"non-2xx {sat['non_2xx']}",
        f"cold start to first image: {server['cold_start_s']:.2f} s",
        *_metrics_cost_lines(server.get("metrics_cost")),
        "memory of server + Chromium + driver (MB): "
        + ", ".join(f"{k} {v}" for k, v in server["memory_mb"].items()),
    ]
    return "\n".join(lines)


def _metrics_cost_lines(cost: dict[str, Any] | None) -> list[str]:
    if not cost:
        return []
    return [
        f"cache hit with metrics on: {cost['hit_req_per_s_on']:.0f} req/s, off: "
        f"{cost['hit_req_per_s_off']:.0f} req/s (on/off, median of {len(cost['rounds']['on'])} "
        f"back-to-back pairs: {cost['on_vs_off']:.3f})"
    ]
