"""Where a cache miss spends its time on the peer cards, and what would make it cheaper.

    python benchmarks/peers/profile.py [capture] [encode] [flags] [bake] [--cards a,b] [-n 10]

Prototypes only: nothing here changes ogshot. Sections (all by default):

capture  per CDP ``Page.captureScreenshot`` variant (PNG with/without optimizeForSpeed, JPEG, WebP):
         time after a content change (raster + readback + encode), time of the same call again with
         nothing changed (readback + encode, no raster), bytes, pyvips decode time, SSIM vs PNG.
encode   pyvips PNG save of one lossless capture per zlib level x row filter, a lossless palette
         where the capture has <= 256 colours, and the JPEG/WebP saves ogshot uses.
flags    Chromium switches on top of ogshot's launch args: capture p50 per card, every variant's
         browser running at once and the misses interleaved round-robin so load hits all alike;
         then saturated renders/s per variant.
bake     "static decoration baked once": the card's parameter-independent layer captured once as a
         PNG and used as the page background; miss p50 and SSIM against the original.
relay    "skip the relay": the same PNG capture through Playwright (Chromium -> Node driver ->
         Python, base64 in JSON twice) and over a CDP WebSocket from this process straight to
         Chromium's page (what a direct connection for captures would do); CPU per capture of
         Chromium, the driver and this process, interleaved. Not in the defaults: it opens a
         debugging port on loopback for the run.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import functools
import importlib
import itertools
import json
import os
import re
import shutil
import socket
import statistics
import struct
import sys
import tempfile
import time
import zlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pyvips
import websockets

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))  # the repository: benchmarks and ogshot

from benchmarks.peers import (  # noqa: E402
    CARDS,
    card_names,
    cpu_seconds,
    decode,
    make_templates,
    split_cpu,
    unique,
)
from ogshot import Renderer, Settings  # noqa: E402
from ogshot.bench.measure import ssim  # noqa: E402
from ogshot.engine.capture import _ready, _send, _write  # noqa: E402
from ogshot.engine.encode import encode  # noqa: E402
from ogshot.engine.pool import Slot  # noqa: E402


def p50(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def mean(xs: list[float]) -> float:
    """CPU times come in 10 ms ticks: their mean, not their median, converges."""
    return statistics.fmean(xs) if xs else float("nan")


def timed(fn: Callable[[], Any], repeat: int = 3) -> tuple[float, Any]:
    """Median CPU milliseconds (this process, all threads) of ``repeat`` calls, and the last
    result."""
    times, out = [], None
    for _ in range(repeat):
        started = time.process_time()
        out = fn()
        times.append((time.process_time() - started) * 1000)
    return p50(times), out


async def load(r: Renderer, slot: Slot, card: str, i: int) -> str:
    tpl = r.catalog.get(card)
    params = unique({k: v for k, v in tpl.examples().items() if v is not None}, i)
    html = r.catalog.render_html(tpl, r.catalog.validate(tpl, params))
    await _write(slot, html)
    await _ready(slot, card)
    return html


def chromium_cpu(r: Renderer) -> float:
    """CPU seconds used so far by the renderer's Chromium (all its processes and threads)."""
    pid = r.pool.browser.pid
    return cpu_seconds([pid]) if pid else 0.0


async def shot(
    slot: Slot, params: dict[str, Any], r: Renderer | None = None
) -> tuple[float, bytes]:
    """(Chromium CPU ms when ``r`` is given, else wall ms; the captured bytes)."""
    cpu = chromium_cpu(r) if r else 0.0
    started = time.perf_counter()
    answer = await _send(slot, "Page.captureScreenshot", params)
    if r:
        return (chromium_cpu(r) - cpu) * 1000, base64.b64decode(answer["data"])
    return (time.perf_counter() - started) * 1000, base64.b64decode(answer["data"])


def decode_ms(body: bytes) -> float:
    return timed(lambda: pyvips.Image.new_from_buffer(body, "").copy_memory())[0]


CAPTURES: dict[str, dict[str, Any]] = {
    "png fast (ogshot)": {"format": "png", "optimizeForSpeed": True},
    "png default": {"format": "png"},
    "jpeg q88 fast": {"format": "jpeg", "quality": 88, "optimizeForSpeed": True},
    "jpeg q95 fast": {"format": "jpeg", "quality": 95, "optimizeForSpeed": True},
    "jpeg q100 fast": {"format": "jpeg", "quality": 100, "optimizeForSpeed": True},
    "webp q88": {"format": "webp", "quality": 88},
    "webp q100": {"format": "webp", "quality": 100},
}


async def profile_capture(cards: list[str], n: int) -> None:
    print("\n## capture: CDP Page.captureScreenshot variants (p50 of", n, "each)")
    print("CPU ms of the whole Chromium tree per call (wall time is meaningless on a loaded box)")
    print(
        "| card | variant | Chromium CPU ms after a change | unchanged | bytes | decode ms "
        "| SSIM vs lossless | as PNG z6 |"
    )
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        async with Renderer(make_templates(Path(tmp), cards)) as r, r.pool.lease() as slot:
            for card in cards:
                refs: dict[str, pyvips.Image] = {}
                rows: dict[str, dict[str, list[float]]] = {}
                last: dict[str, bytes] = {}
                for i in range(n + 1):
                    for name, params in CAPTURES.items():  # interleaved
                        await load(r, slot, card, 1000 * i + len(rows.get(name, {})))
                        changed, body = await shot(slot, params, r)
                        again, _ = await shot(slot, params, r)
                        if i == n:  # the same document, lossless
                            _, lossless = await shot(slot, CAPTURES["png fast (ogshot)"])
                            refs[name] = decode(lossless)
                        if i == 0:
                            continue
                        row = rows.setdefault(name, {"changed": [], "again": [], "bytes": []})
                        row["changed"].append(changed)
                        row["again"].append(again)
                        row["bytes"].append(len(body))
                        last[name] = body
                for name, row in rows.items():
                    body = last[name]
                    dec = decode_ms(body)
                    same = ssim(refs[name], decode(body))
                    as_png = len(decode(body).pngsave_buffer(compression=6, filter=8))
                    print(
                        f"| {card} | {name} | {mean(row['changed']):.0f} | "
                        f"{mean(row['again']):.0f} | {int(p50(row['bytes'])) // 1000} KB | "
                        f"{dec:.1f} | {same:.4f} | {as_png // 1000} KB |"
                    )


FILTERS = {"none": 0x08, "sub": 0x10, "up": 0x20, "paeth": 0x80, "all": 0xF8}


def colours(image: pyvips.Image) -> int:
    raw = bytes(image.write_to_memory())
    return len(set(zip(raw[0::3], raw[1::3], raw[2::3], strict=True)))


async def profile_encode(cards: list[str]) -> None:
    print("\n## encode: pyvips on one lossless capture (CPU ms, median of 3)")
    with tempfile.TemporaryDirectory() as tmp:
        async with Renderer(make_templates(Path(tmp), cards)) as r:
            captures = {}
            async with r.pool.lease() as slot:
                for card in cards:
                    await load(r, slot, card, 0)
                    captures[card] = (await shot(slot, CAPTURES["png fast (ogshot)"]))[1]
    print("| card | setting | ms (decode + save) | bytes |")
    print("|---|---|---|---|")
    for card, png in captures.items():
        encode_card(card, png)


def encode_card(card: str, png: bytes) -> None:
    dec, image = timed(lambda: decode(png).copy_memory())
    raw = pyvips.Image.new_from_buffer(png, "")
    inflate, _ = timed(lambda: pyvips.Image.new_from_buffer(png, "").copy_memory())
    print(
        f"| {card} | decode only: inflate {inflate:.1f} ms, {raw.bands} bands, then flatten "
        f"and drop alpha | {dec:.1f} | Chromium's PNG {len(png):,} |"
    )

    def row(label: str, save: Callable[[], bytes]) -> bytes:
        ms, body = timed(save)
        print(f"| {card} | {label} | {dec + ms:.1f} | {len(body):,} |")
        return bytes(body)

    for level in (1, 3, 6, 9):
        for fname, flag in FILTERS.items():
            if level in (1, 9) and fname != "none":
                continue  # filtered rows at z9 take seconds on these images
            mark = " (ogshot before 2026-11-26)" if (level, fname) == (6, "none") else ""
            row(
                f"png z{level} {fname}{mark}",
                lambda lv=level, fl=flag: image.pngsave_buffer(  # type: ignore[misc]
                    compression=lv, filter=fl, keep="none"
                ),
            )
    settings = Settings.load()
    ms, today = timed(lambda: encode(png, "png", settings))
    print(f"| {card} | png, ogshot today (compress.encode) | {ms:.1f} | {len(today):,} |")
    count = colours(image)
    if count <= 256:
        body = row(
            f"png lossless palette ({count} colours)",
            lambda: image.pngsave_buffer(
                palette=True, Q=100, dither=0, effort=1, compression=6, keep="none"
            ),
        )
        diff = float((decode(body).cast("uchar") - image).abs().max())
        print(f"| {card} | (palette max pixel difference: {diff:g}) | | |")
    else:
        print(f"| {card} | palette: not lossless ({count:,} colours) | | |")
    row(
        "jpeg q88 (ogshot today)",
        lambda: image.jpegsave_buffer(
            Q=88, interlace=True, optimize_coding=True, subsample_mode="auto", keep="none"
        ),
    )
    row("jpeg q88 baseline, no optimize", lambda: image.jpegsave_buffer(Q=88, keep="none"))
    encode_custom(card, image, dec)
    encode_deflaters(card, image, dec)
    row(
        "webp q88 effort 0 (ogshot today)",
        lambda: image.webpsave_buffer(Q=88, effort=0, keep="none"),
    )


FLAG_SETS: dict[str, tuple[str, ...]] = {
    "ogshot today": (),
    "--num-raster-threads=1": ("--num-raster-threads=1",),
    "--num-raster-threads=2": ("--num-raster-threads=2",),
    "--num-raster-threads=4": ("--num-raster-threads=4",),
    "--disable-partial-raster": ("--disable-partial-raster",),
    "--enable-zero-copy": ("--enable-zero-copy",),
    "--disable-lcd-text": ("--disable-lcd-text",),
    "--force-color-profile=srgb": ("--force-color-profile=srgb",),
    "gpu raster, SwiftShader": (
        "--enable-gpu-rasterization",
        "--use-angle=swiftshader",
        "--enable-unsafe-swiftshader",
    ),
}


async def profile_flags(
    cards: list[str], n: int, seconds: float, only: list[str] | None = None
) -> None:
    print(f"\n## flags: Chromium switches (p50 of {n} PNG misses per card, interleaved)")
    with tempfile.TemporaryDirectory() as tmp:
        base = make_templates(Path(tmp), cards)
        renderers: dict[str, Renderer] = {}
        for name, extra in FLAG_SETS.items():
            if only and name != "ogshot today" and name not in only:
                continue
            args = base.launch_args
            if "--enable-gpu-rasterization" in extra:  # needs a GPU process, software or not
                args = tuple(a for a in args if a != "--disable-gpu")
            settings = base.replace(
                launch_args=args + extra, cache_dir=Path(tmp) / f"cache{len(renderers)}"
            )
            renderers[name] = Renderer(settings)
            await renderers[name].start()
        try:
            capture: dict[tuple[str, str], list[float]] = {}
            total: dict[tuple[str, str], list[float]] = {}
            for i in range(-1, n):
                for card in cards:
                    tpl = renderers["ogshot today"].catalog.get(card)
                    params = {k: v for k, v in tpl.examples().items() if v is not None}
                    for j, (name, r) in enumerate(renderers.items()):
                        cpu = chromium_cpu(r)
                        image = await r.image(card, unique(params, 100 * i + j + 1000), "png")
                        if i >= 0:
                            total.setdefault((name, card), []).append(
                                (chromium_cpu(r) - cpu) * 1000
                            )
                            capture.setdefault((name, card), []).append(image.timings["capture"])
            print(
                "| flags | "
                + " | ".join(f"`{c}` capture wall ms / Chromium CPU ms" for c in cards)
                + " |"
            )
            print("|---" * (len(cards) + 1) + "|")
            for name in renderers:
                cells = [
                    f"{p50(capture[(name, c)]):.1f} / {mean(total[(name, c)]):.0f}" for c in cards
                ]
                print(f"| {name} | " + " | ".join(cells) + " |")
            print(f"\nsaturated PNG misses, renders/s over {seconds:g} s, 4 in flight:")
            for name, r in renderers.items():
                rates = []
                for card in cards[:2]:
                    tpl = r.catalog.get(card)
                    params = {k: v for k, v in tpl.examples().items() if v is not None}
                    rates.append(await saturate_one(r, card, params, seconds))
                print(
                    f"  {name}: "
                    + ", ".join(f"{c} {x:.1f}" for c, x in zip(cards, rates, strict=False))
                )
        finally:
            for r in renderers.values():
                await r.close()


async def saturate_one(r: Renderer, card: str, params: dict[str, Any], seconds: float) -> float:
    from benchmarks.peers import saturate

    stamp = int(time.time() * 1000) % 10_000_000

    async def one(i: int) -> None:
        await r.image(card, unique(params, stamp * 10 + i), "png")

    return (await saturate(one, 4, seconds))[0]


# The parameter-independent layer of each card: CSS that hides what parameters change (to bake
# it), and CSS that paints the baked bitmap instead of the decoration (to use it).
BAKE: dict[str, tuple[str, str]] = {
    "gradient": ("h1, p { visibility: hidden; }", "body { background: url({url}) !important; }"),
    "radial": (".panel { visibility: hidden; }", "body { background: url({url}) !important; }"),
    "photo": ("body > * { visibility: hidden; }", "body { background: url({url}) !important; }"),
    "glow": (
        "h1, p { visibility: hidden; }",
        "body { background: url({url}) !important; } .glow { display: none; }",
    ),
}


def with_css(html: str, css: str) -> str:
    return re.sub(r"</style>", css.replace("\\", "\\\\") + "\n</style>", html, count=1)


async def profile_bake(cards: list[str], n: int) -> None:
    print(f"\n## bake: static decoration captured once, used as a background (p50 of {n})")
    print(
        "| card | Chromium CPU ms per miss as written (capture wall ms) | baked "
        "| SSIM baked vs original |"
    )
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        static = root / "static"
        shutil.copytree(CARDS / "static", static)
        (static / "_baked").mkdir()
        templates = root / "templates"
        templates.mkdir()
        for card in cards:
            shutil.copy(CARDS / f"{card}.html", templates / f"{card}.html")
        settings = Settings.load(
            templates_dir=templates, static_dir=static, cache_dir=root / "cache", health_interval=0
        )
        # 1. bake each card's layer once, with ogshot's own capture
        async with Renderer(settings) as r, r.pool.lease() as slot:
            for card in cards:
                if card not in BAKE:
                    continue
                tpl = r.catalog.get(card)
                html = r.catalog.render_html(tpl, r.catalog.validate(tpl, tpl.examples()))
                await _write(slot, with_css(html, BAKE[card][0]))
                await _ready(slot, card)
                _, layer = await shot(slot, CAPTURES["png fast (ogshot)"])
                (static / "_baked" / f"{card}.png").write_bytes(layer)
                text = (templates / f"{card}.html").read_text()
                use = BAKE[card][1].replace("{url}", f"/static/_baked/{card}.png")
                (templates / f"{card}_baked.html").write_text(with_css(text, use))
        # 2. misses of the original and the baked template, interleaved
        async with Renderer(settings.replace(cache_dir=root / "cache2")) as r:
            for card in cards:
                if card not in BAKE:
                    continue
                tpl = r.catalog.get(card)
                params = {k: v for k, v in tpl.examples().items() if v is not None}
                runs: dict[str, tuple[list[float], list[float]]] = {
                    card: ([], []),
                    f"{card}_baked": ([], []),
                }
                for i in range(-1, n):
                    for name, (totals, captures) in runs.items():
                        cpu = chromium_cpu(r)
                        image = await r.image(name, unique(params, i + 10), "png")
                        if i >= 0:
                            totals.append((chromium_cpu(r) - cpu) * 1000)
                            captures.append(image.timings["capture"])
                same = ssim(
                    decode(await r.render(card, params, "png")),
                    decode(await r.render(f"{card}_baked", params, "png")),
                )
                (a, ac), (b, bc) = runs.values()
                print(
                    f"| {card} | {mean(a):.0f} ({p50(ac):.1f}) | {mean(b):.0f} ({p50(bc):.1f}) "
                    f"| {same:.4f} |"
                )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def profile_relay(cards: list[str], n: int) -> None:
    print(f"\n## relay: a PNG capture through Playwright or direct to Chromium (mean of {n})")
    print("CPU ms per capture (content changed before each), and wall ms p50")
    print("| card | path | Chromium | driver | Python | total | wall p50 | bytes |")
    print("|---|---|---|---|---|---|---|---|")
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        settings = make_templates(Path(tmp), cards)
        settings = settings.replace(
            launch_args=(*settings.launch_args, f"--remote-debugging-port={port}"), pool_size=1
        )
        async with Renderer(settings) as r, r.pool.lease() as slot:
            info = await _send(slot, "Target.getTargetInfo")
            url = f"ws://127.0.0.1:{port}/devtools/page/{info['targetInfo']['targetId']}"
            ids = itertools.count(1)
            async with websockets.connect(url, max_size=None, compression=None) as ws:

                async def direct(params: dict[str, Any]) -> dict[str, Any]:
                    call = next(ids)
                    await ws.send(
                        json.dumps(
                            {"id": call, "method": "Page.captureScreenshot", "params": params}
                        )
                    )
                    while True:
                        answer = json.loads(await ws.recv())
                        if answer.get("id") == call:
                            result: dict[str, Any] = answer["result"]
                            return result

                async def relayed(params: dict[str, Any]) -> dict[str, Any]:
                    return await _send(slot, "Page.captureScreenshot", params)

                paths = {"Playwright (relay)": relayed, "direct WebSocket": direct}
                for card in cards:
                    rows: dict[str, tuple[list[float], ...]] = {
                        name: ([], [], [], [], []) for name in paths
                    }
                    same: set[bytes] = set()
                    for i in range(n + 2):
                        for name, capture in paths.items():  # interleaved
                            await load(r, slot, card, 1000 * (i % 2))
                            before, started = split_cpu(os.getpid())[::-1], time.perf_counter()
                            body = base64.b64decode(
                                (await capture(CAPTURES["png fast (ogshot)"]))["data"]
                            )
                            elapsed = (time.perf_counter() - started) * 1000
                            after = split_cpu(os.getpid())[::-1]  # Chromium, driver, this process
                            if i < 2:  # warm-up; both paths must give the same bytes
                                same.add(body)
                                continue
                            row = rows[name]
                            for k in range(3):
                                row[k].append((after[k] - before[k]) * 1000)
                            row[3].append(elapsed)
                            row[4].append(len(body))
                    if len(same) != 2:  # two documents, each captured by both paths
                        print(f"| {card} | the two paths gave different bytes: {len(same)} |")
                    for name, (chrome, driver, own, wall, size) in rows.items():
                        total = mean(chrome) + mean(driver) + mean(own)
                        print(
                            f"| {card} | {name} | {mean(chrome):.1f} | {mean(driver):.1f} "
                            f"| {mean(own):.1f} | {total:.1f} | {p50(wall):.1f} "
                            f"| {int(p50(size)) // 1000} KB |"
                        )


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "sections", nargs="*", default=["capture", "encode", "flags", "bake", "paths"]
    )
    parser.add_argument("--cards", default=",".join(card_names()))
    parser.add_argument("-n", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument(
        "--flag-sets", default="", help="flags: the sets to compare with today's (default: all)"
    )
    args = parser.parse_args(argv)
    cards = [c for c in args.cards.split(",") if c]
    jobs: dict[str, Callable[[], Awaitable[None]]] = {
        "capture": lambda: profile_capture(cards, args.n),
        "encode": lambda: profile_encode(cards),
        "flags": lambda: profile_flags(
            cards, args.n, args.seconds, [f for f in args.flag_sets.split(",") if f]
        ),
        "bake": lambda: profile_bake(cards, args.n),
        "paths": lambda: profile_paths(cards, args.n),
        "relay": lambda: profile_relay(cards, args.n),
    }
    for section in args.sections:
        await jobs[section]()


# -- a PNG writer with the row filter done by libvips and deflate by zlib with a chosen strategy --


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def png_filtered(
    image: pyvips.Image,
    row_filter: str,
    level: int,
    strategy: int = zlib.Z_DEFAULT_STRATEGY,
    compress: Callable[[bytes], bytes] | None = None,
) -> bytes:
    """Truecolour PNG of an 8-bit sRGB ``image``: every row filtered with ``row_filter`` ("none",
    "sub" or "up", computed by libvips for the whole image at once), deflated by zlib with
    ``strategy`` (Z_DEFAULT_STRATEGY, Z_FILTERED, Z_RLE), or by ``compress`` (any zlib-format
    deflater: zlib-ng, ISA-L, libdeflate)."""
    width, height, bands = image.width, image.height, image.bands
    if row_filter == "none":
        filtered, kind = image, 0
    elif row_filter == "sub":  # each byte minus the same channel one pixel to the left
        left = image.embed(1, 0, width, height, extend="black")
        filtered, kind = (image.cast("int") - left.cast("int")) & 255, 1
    elif row_filter == "up":  # each byte minus the same byte one row up
        above = image.embed(0, 1, width, height, extend="black")
        filtered, kind = (image.cast("int") - above.cast("int")) & 255, 2
    else:
        raise ValueError(row_filter)
    raw = bytes(filtered.cast("uchar").write_to_memory())
    stride = width * bands
    tag = bytes([kind])
    rows = b"".join(tag + raw[y * stride : (y + 1) * stride] for y in range(height))
    if compress is not None:
        data = compress(rows)
    else:
        packer = zlib.compressobj(level, zlib.DEFLATED, 15, 9, strategy)
        data = packer.compress(rows) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, {3: 2, 4: 6}[bands], 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", data)
        + _chunk(b"IEND", b"")
    )


STRATEGIES = {"default": zlib.Z_DEFAULT_STRATEGY, "filtered": zlib.Z_FILTERED, "rle": zlib.Z_RLE}


def encode_custom(card: str, image: pyvips.Image, dec: float) -> None:
    for row_filter in ("none", "sub", "up"):
        for sname, strategy in STRATEGIES.items():
            for level in (1, 6):
                if sname == "rle" and level != 1:
                    continue  # Z_RLE ignores the level's match search
                ms, body = timed(
                    lambda f=row_filter, lv=level, st=strategy: png_filtered(image, f, lv, st)  # type: ignore[misc]
                )
                back = decode(body)
                exact = float((back.cast("int") - image.cast("int")).abs().max()) == 0
                print(
                    f"| {card} | vips {row_filter} filter + zlib {sname} z{level}"
                    f"{'' if exact else ' NOT LOSSLESS'} | {dec + ms:.1f} | {len(body):,} |"
                )


def deflaters() -> dict[str, Callable[[bytes], bytes]]:
    """zlib-format deflaters from the optional packages that are installed (pip install zlib-ng
    isal deflate), by name and level. Not dependencies of ogshot: imported by name."""
    found: dict[str, Callable[[bytes], bytes]] = {}
    candidates = (
        ("zlib-ng", "zlib_ng.zlib_ng", "compress", (1, 3, 6)),
        ("ISA-L", "isal.isal_zlib", "compress", (0, 1, 2, 3)),
        ("libdeflate", "deflate", "zlib_compress", (1, 3, 6, 9)),
    )
    for label, module_name, function, levels in candidates:
        try:
            module: Any = importlib.import_module(module_name)
        except ImportError:
            continue
        deflate = getattr(module, function)
        for level in levels:
            found[f"{label} z{level}"] = functools.partial(_deflate_with, deflate, level)
    return found


def _deflate_with(deflate: Callable[[bytes, int], bytes], level: int, data: bytes) -> bytes:
    return bytes(deflate(data, level))


def encode_deflaters(card: str, image: pyvips.Image, dec: float) -> None:
    for row_filter in ("none", "up"):
        for name, compress in deflaters().items():
            ms, body = timed(
                lambda f=row_filter, c=compress: png_filtered(image, f, 0, compress=c)  # type: ignore[misc]
            )
            back = decode(body)
            exact = float((back.cast("int") - image.cast("int")).abs().max()) == 0
            print(
                f"| {card} | {row_filter} filter + {name}{'' if exact else ' NOT LOSSLESS'} "
                f"| {dec + ms:.1f} | {len(body):,} |"
            )


async def profile_paths(cards: list[str], n: int) -> None:
    """Whole-miss CPU (this process + Playwright's driver + Chromium) of today's paths against the
    proposed ones, interleaved: write, ready, capture, encode."""
    settings_png = Settings.load()
    paths: dict[str, tuple[dict[str, Any], Callable[[bytes], bytes]]] = {
        "PNG before (png fast + libvips z6)": (
            CAPTURES["png fast (ogshot)"],
            lambda b: bytes(decode(b).pngsave_buffer(compression=6, filter="none", keep="none")),
        ),
        "PNG today (png fast + compress.encode: libdeflate z6, photos as captured)": (
            CAPTURES["png fast (ogshot)"],
            lambda b: encode(b, "png", settings_png),
        ),
        "JPEG today (png fast + libvips q88)": (
            CAPTURES["png fast (ogshot)"],
            lambda b: encode(b, "jpeg", settings_png),
        ),
        "JPEG proposed (Chromium q88, as is)": (CAPTURES["jpeg q88 fast"], lambda b: b),
    }
    print(f"\n## paths: whole-miss CPU ms (ogshot's process tree), mean of {n}")
    print("| card | " + " | ".join(paths) + " |")
    print("|---" * (len(paths) + 1) + "|")
    with tempfile.TemporaryDirectory() as tmp:
        async with Renderer(make_templates(Path(tmp), cards)) as r, r.pool.lease() as slot:
            for card in cards:
                cpu: dict[str, list[float]] = {name: [] for name in paths}
                for i in range(-1, n):
                    for j, (name, (params, finish)) in enumerate(paths.items()):
                        before = cpu_seconds([os.getpid()])
                        await load(r, slot, card, 100 * i + j + 7)
                        _, body = await shot(slot, params)
                        finish(body)
                        if i >= 0:
                            cpu[name].append((cpu_seconds([os.getpid()]) - before) * 1000)
                cells = [f"{mean(v):.0f}" for v in cpu.values()]
                print(f"| {card} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    asyncio.run(main())
