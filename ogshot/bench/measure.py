"""``ogshot bench``: how fast ogshot is, measured against a baseline in the same run.

Stages, each bounded in time, loopback only:

1. baseline   what most Playwright code does: a warm page, ``set_content`` + ``page.screenshot``
2. miss       cache misses through the library API, per stage, for PNG, JPEG and WebP
3-6.          over HTTP against a running ``ogshot serve`` (ogshot/benchhttp.py): cache hits
              against a bare Starlette + diskcache floor, saturation, cold start, memory
7. quality    SSIM of each format against a lossless capture of the same page

Absolute times drift on shared machines; the ratio against the baseline is the headline.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyvips
from playwright.async_api import Route, async_playwright

from ogshot.bench.http import metrics_cost, percentiles, server_stages
from ogshot.core.settings import ESSENTIAL_ARGS, Settings
from ogshot.core.version import __version__
from ogshot.engine.assets import ORIGIN, Assets
from ogshot.engine.capture import capture
from ogshot.engine.chromium import find_chromium
from ogshot.engine.encode import encode
from ogshot.pipeline.renderer import Renderer

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
    html = renderer.catalog.render_html(job.template, job.variables)
    async with renderer.pool.lease() as slot:
        # the same static digest as the renders below: a different one empties the page's cache
        # first, and Chromium's first paint of a just-fetched SVG differs in a few edge pixels
        shot = await capture(
            slot,
            html,
            time_limit=renderer.settings.render_timeout,
            template=template,
            static_digest=job.template.static_digest,
        )
    reference = pyvips.Image.new_from_buffer(shot.png, "")[:3]  # lossless
    out: dict[str, dict[str, float]] = {}
    for fmt in ("png", "jpeg", "webp"):
        # The encoders' loss on this very capture: a second capture is not bit-identical (Chromium
        # dithers gradients), so comparing against one would blame the encoder for the noise.
        body = await asyncio.to_thread(encode, shot.png, fmt, renderer.settings)
        decoded = pyvips.Image.new_from_buffer(body, "")
        if decoded.bands == 4:
            decoded = decoded.flatten()
        out[fmt] = {"ssim": round(ssim(reference, decoded[:3]), 5), "bytes": len(body)}
    return out


# -- the whole run ------------------------------------------------------------------------------


async def library_stages(options: BenchOptions, cache_dir: Path) -> dict[str, Any]:
    settings = options.settings.replace(cache_dir=cache_dir / "library")
    out: dict[str, Any] = {}
    async with Renderer(settings) as renderer:
        for template in options.templates:
            docs = []
            for i in range(options.iterations + 1):
                job = renderer.prepare(template, params_for(template, i, renderer), "png")
                docs.append(renderer.catalog.render_html(job.template, job.variables))
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


def run(options: BenchOptions) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ogshot-bench-") as tmp:
        cache_dir = Path(tmp)
        library = asyncio.run(library_stages(options, cache_dir))
        server = server_stages(
            options.settings,
            cache_dir,
            template=options.templates[0],
            connections=options.connections,
            concurrency=options.concurrency,
            hit_seconds=options.hit_seconds,
            saturation_seconds=options.saturation_seconds,
        )
        server["metrics_cost"] = metrics_cost(
            options.settings,
            cache_dir,
            template=options.templates[0],
            connections=options.connections,
            seconds=options.hit_seconds / 2,
        )
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
    hit, floor, sat = server["hit"], server["floor_hit"], server["saturation"]
    lines += [
        "",
        f"cache hit over HTTP ({hit['tool']}, 32 connections): {hit['requests_per_s']:.0f} req/s, "
        f"p50 {hit['ms'].get('p50', 0):.2f} ms, p99 {hit['ms'].get('p99', 0):.2f} ms, "
        f"non-2xx {hit['non_2xx']}",
        f"  floor (bare Starlette + diskcache, same bytes): {floor['requests_per_s']:.0f} req/s, "
        f"p50 {floor['ms'].get('p50', 0):.2f} ms, p99 {floor['ms'].get('p99', 0):.2f} ms; "
        f"ogshot/floor {server['hit_vs_floor']:.2f}x (median of rounds: "
        + ", ".join(f"{r:.2f}" for r in server["hit_vs_floor_rounds"])
        + ")",
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
