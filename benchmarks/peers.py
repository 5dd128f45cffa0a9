"""ogshot side by side with Satori + resvg-js (what @vercel/og runs), on the same machine, same run.

    python benchmarks/peers.py [--cards gradient,radial] [--iterations 20] [--seconds 8]

Cards live in ``benchmarks/cards/``: ``NAME.html`` is an ogshot template (parameters declared in its
TOML block), ``NAME.satori.mjs`` draws the same card in the subset Satori supports, and ``static/``
holds the images both use. ``benchmarks/peers/setup.sh`` installs the pinned Satori and resvg-js
with npm (first run only); ``benchmarks/peers/render.mjs`` is the warm Node worker.

Per card, ogshot and Satori are measured interleaved (one ogshot miss per format, then one Satori
render, and so on; saturation of one right after the other) so that load from anything else on the
machine hits both alike:

- miss p50/p99: one render at a time, a fresh title each time (a cache miss for ogshot), measured
  from the caller: ``Renderer.image`` for ogshot, a request to a warm Node worker for Satori;
- bytes of each format;
- SSIM of ogshot's PNG/JPEG/WebP against its lossless capture, of ogshot's PNG against a plain
  Playwright ``set_content`` + ``page.screenshot`` of the same HTML, and of Satori's PNG against
  that screenshot (how close Satori draws the same card);
- saturated throughput: ogshot with its default pool and 2 requests per page in flight, Satori with
  one Node process per core, each kept busy for ``--seconds``; renders/s and renders/s per core.

Writes JSON to ``benchmarks/results/peers.json`` (not committed) and prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyvips

from ogshot import Renderer, Settings
from ogshot.bench.http import percentiles
from ogshot.bench.measure import baseline, ssim
from ogshot.engine.capture import capture

HERE = Path(__file__).resolve().parent
CARDS = HERE / "cards"
PEERS = HERE / "peers"
FORMATS = ("png", "jpeg", "webp")
CORES = os.cpu_count() or 1
# Satori renders of one card stop being sampled after this many seconds (resvg's large blurs take
# seconds each); ogshot's are all taken.
PEER_BUDGET_S = 20.0


def node_version() -> str:
    return subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()


_TICK = os.sysconf("SC_CLK_TCK")


def _processes() -> tuple[dict[int, list[int]], dict[int, float]]:
    """Every process's children and its CPU seconds so far (all threads), from /proc."""
    children: dict[int, list[int]] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
        cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / _TICK
    return children, cpu


def _tree_cpu(
    processes: tuple[dict[int, list[int]], dict[int, float]],
    roots: list[int],
    exclude: frozenset[int] = frozenset(),
) -> float:
    children, cpu = processes
    total = 0.0
    todo = [pid for pid in roots if pid not in exclude]
    while todo:
        pid = todo.pop()
        total += cpu.get(pid, 0.0)
        todo.extend(c for c in children.get(pid, []) if c not in exclude)
    return total


def cpu_seconds(roots: list[int], exclude: frozenset[int] = frozenset()) -> float:
    """User + system CPU time of ``roots`` and their descendants (all threads), from /proc, not
    counting the subtrees of ``exclude``. Unlike wall time, it hardly changes with the load
    other programs put on the machine: the cost per image that an operator pays."""
    return _tree_cpu(_processes(), roots, exclude)


def split_cpu(server: int) -> tuple[float, float, float]:
    """CPU seconds so far of (``server``'s own process, its children but Chromium: Playwright's
    driver, Chromium's processes), where ``server`` runs Playwright, whose driver runs Chromium.
    All three from one read of /proc: the same instant, and one walk's cost to the caller."""
    processes = _processes()
    children = processes[0]
    driver = frozenset(children.get(server, []))
    chromium = frozenset(pid for parent in driver for pid in children.get(parent, []))
    own = _tree_cpu(processes, [server], driver)
    return (
        own,
        _tree_cpu(processes, [server], chromium) - own,
        _tree_cpu(processes, list(chromium)),
    )


def card_names() -> list[str]:
    return sorted(p.stem for p in CARDS.glob("*.html"))


class Peer:
    """One warm Node process running Satori + resvg-js (benchmarks/peers/render.mjs)."""

    def __init__(self, proc: asyncio.subprocess.Process, cards: list[str]) -> None:
        self.proc = proc
        self.cards = cards
        self._lock = asyncio.Lock()

    @classmethod
    async def start(cls) -> Peer:
        proc = await asyncio.create_subprocess_exec(
            "node",
            str(PEERS / "render.mjs"),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "OGSHOT_CARDS_DIR": str(CARDS)},
            limit=16 << 20,
        )
        assert proc.stdout is not None
        hello = json.loads(await proc.stdout.readline())
        return cls(proc, hello["ready"])

    async def render(self, card: str, params: dict[str, Any], png: bool = False) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        async with self._lock:
            line = json.dumps({"card": card, "params": params, "png": png}) + "\n"
            self.proc.stdin.write(line.encode())
            await self.proc.stdin.drain()
            answer: dict[str, Any] = json.loads(await self.proc.stdout.readline())
        if "error" in answer:
            raise RuntimeError(f"Satori could not draw {card}: {answer['error']}")
        return answer

    async def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 5)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


def setup_peers() -> None:
    subprocess.run(["bash", str(PEERS / "setup.sh")], check=True)


def make_templates(root: Path, cards: list[str]) -> Settings:
    templates = root / "templates"
    templates.mkdir()
    for card in cards:
        shutil.copy(CARDS / f"{card}.html", templates / f"{card}.html")
    # No health probe: on a loaded machine a slow capture is not a hung browser.
    return Settings.load(
        templates_dir=templates,
        static_dir=CARDS / "static",
        cache_dir=root / "cache",
        health_interval=0,
    )


def unique(params: dict[str, Any], i: int) -> dict[str, Any]:
    """A fresh title (so a miss for ogshot) of the same length as the example."""
    title = str(params["title"])
    tag = f" #{i}"
    return {**params, "title": title[: max(1, len(title) - len(tag))] + tag}


def ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


async def saturate(
    one: Callable[[int], Awaitable[Any]], lanes: int, seconds: float
) -> tuple[float, int]:
    """(renders per second, renders) with ``lanes`` renders always in flight for ``seconds``."""
    done = 0
    started = time.perf_counter()
    stop = started + seconds

    async def lane(n: int) -> None:
        nonlocal done
        i = 0
        while time.perf_counter() < stop:
            await one(n * 1_000_000 + i)
            done += 1
            i += 1

    await asyncio.gather(*(lane(n) for n in range(lanes)))
    return done / (time.perf_counter() - started), done


def decode(body: bytes) -> pyvips.Image:
    image = pyvips.Image.new_from_buffer(body, "")
    if image.hasalpha():
        image = image.flatten(background=[255, 255, 255])
    return image[:3]


async def bench_card(
    card: str, r: Renderer, peers: list[Peer], iterations: int, seconds: float, n: int
) -> dict[str, Any]:
    tpl = r.catalog.get(card)
    example = r.catalog.validate(tpl, tpl.examples())
    params = {k: v for k, v in example.items() if v is not None}
    peer = peers[0]
    drawable = card in peer.cards
    out: dict[str, Any] = {"satori": {"drawable": drawable}}

    # Quality: the lossless capture, ogshot's three formats, a plain Playwright screenshot.
    html = r.catalog.render_html(tpl, r.catalog.validate(tpl, params))
    async with r.pool.lease() as slot:
        lossless = decode((await capture(slot, html, time_limit=30)).png)
    plain = decode((await baseline([html, html], r.settings))["png"])
    quality: dict[str, Any] = {}
    for fmt in FORMATS:
        body = await r.render(card, params, fmt)
        quality[fmt] = round(ssim(lossless, decode(body)), 4)
        if fmt == "png":
            quality["png_vs_screenshot"] = round(ssim(plain, decode(body)), 4)
    out["ssim"] = quality
    if drawable:
        try:
            drawn = await peer.render(card, params, png=True)
            satori_png = base64.b64decode(drawn["png"])
            out["satori"]["ssim_vs_screenshot"] = round(ssim(plain, decode(satori_png)), 4)
        except RuntimeError as exc:
            out["satori"] = {"drawable": False, "error": str(exc)[:300]}
            drawable = False

    # Misses, interleaved: ogshot png, jpeg, webp, then one Satori render.
    totals: dict[str, list[float]] = {f: [] for f in FORMATS}
    sizes: dict[str, list[int]] = {f: [] for f in FORMATS}
    stages: dict[str, list[float]] = {}
    peer_ms: list[float] = []
    peer_parts: dict[str, list[float]] = {"satori_ms": [], "resvg_ms": []}
    peer_bytes: list[int] = []
    peer_spent = 0.0
    for i in range(-2, iterations):  # two warm-up rounds
        for f, fmt in enumerate(FORMATS):
            started = time.perf_counter()
            image = await r.image(card, unique(params, n + 10 * i + f + 100), fmt)
            elapsed = ms_since(started)
            if i >= 0:
                assert not image.cached
                totals[fmt].append(elapsed)
                sizes[fmt].append(len(image.body))
                if fmt == "png":
                    for stage, ms in image.timings.items():
                        stages.setdefault(stage, []).append(ms)
        # One warm-up render; then at least two samples, more while within the budget.
        if drawable and i != -1 and (len(peer_ms) < 2 or peer_spent < PEER_BUDGET_S):
            started = time.perf_counter()
            drawn = await peer.render(card, unique(params, n + 10 * i))
            elapsed = ms_since(started)
            if i >= 0:
                peer_spent += elapsed / 1000
                peer_ms.append(elapsed)
                peer_bytes.append(drawn["bytes"])
                for part in peer_parts:
                    peer_parts[part].append(drawn[part])
    out["ogshot"] = {
        fmt: {"ms": percentiles(totals[fmt]), "bytes": int(statistics.median(sizes[fmt]))}
        for fmt in FORMATS
    }
    out["ogshot"]["png_stages_p50"] = {k: round(statistics.median(v), 2) for k, v in stages.items()}
    if drawable:
        out["satori"].update(
            ms=percentiles(peer_ms),
            bytes=int(statistics.median(peer_bytes)),
            parts_p50={k: round(statistics.median(v), 2) for k, v in peer_parts.items()},
        )

    # Saturation, one right after the other.
    async def ogshot_one(i: int) -> None:
        await r.image(card, unique(params, n + 500_000 + i), "png")

    # ogshot's CPU: this process (pipeline, encode threads) and its children (Playwright's driver,
    # Chromium), without the Satori workers; Satori's: its Node processes.
    ours = ([os.getpid()], frozenset(p.proc.pid for p in peers))
    theirs = [p.proc.pid for p in peers]
    lanes = 2 * r.settings.pool_size
    browser = [r.pool.browser.pid or 0]
    before = cpu_seconds(*ours), cpu_seconds(browser), sum(os.times()[:2])
    rate, count = await saturate(ogshot_one, lanes, seconds)
    after = cpu_seconds(*ours), cpu_seconds(browser), sum(os.times()[:2])
    total, chromium, python = ((b - a) * 1000 / count for a, b in zip(before, after, strict=True))
    out["ogshot"]["saturated"] = {
        "renders_s": rate,
        "per_core": rate / CORES,
        "lanes": lanes,
        "cpu_ms_per_render": total,
        # where it goes: Chromium's processes, this Python process (pipeline + libvips), and
        # the rest (Playwright's Node driver relaying every CDP message)
        "cpu_ms_split": {
            "chromium": chromium,
            "python": python,
            "driver": total - chromium - python,
        },
    }
    if drawable:

        async def peer_one(i: int) -> None:
            await peers[i // 1_000_000].render(card, unique(params, n + 700_000 + i))

        cpu = cpu_seconds(theirs)
        rate, count = await saturate(peer_one, len(peers), seconds)
        out["satori"]["saturated"] = {
            "renders_s": rate,
            "per_core": rate / CORES,
            "processes": len(peers),
            "cpu_ms_per_render": (cpu_seconds(theirs) - cpu) * 1000 / count,
        }
    return out


async def run(cards: list[str], iterations: int, seconds: float, node: str = "") -> dict[str, Any]:
    result: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cores": CORES,
            "platform": platform.platform(),
            "load_average_at_start": os.getloadavg()[0],
        },
        "node": node,
        "versions": json.loads((PEERS / "package.json").read_text())["dependencies"],
        "cards": {},
    }
    with tempfile.TemporaryDirectory(prefix="ogshot-peers-") as tmp:
        settings = make_templates(Path(tmp), cards)
        result["pool_size"] = settings.pool_size
        peers = [await Peer.start() for _ in range(CORES)]
        try:
            async with Renderer(settings) as r:
                for n, card in enumerate(cards):
                    print(f"[peers] {card} ...", file=sys.stderr, flush=True)
                    result["cards"][card] = await bench_card(
                        card, r, peers, iterations, seconds, n * 10_000_000
                    )
        finally:
            for peer in peers:
                await peer.close()
    result["machine"]["load_average_at_end"] = os.getloadavg()[0]
    return result


def report(result: dict[str, Any]) -> str:
    cards = result["cards"]
    names = list(cards)
    rows: list[tuple[str, list[str]]] = []

    def row(label: str, cell: Callable[[dict[str, Any]], str]) -> None:
        values = []
        for name in names:
            try:
                values.append(cell(cards[name]))
            except KeyError:
                values.append("cannot draw")
        rows.append((label, values))

    def ms(d: dict[str, Any]) -> str:
        return f"{d['ms']['p50']:.1f} / {d['ms']['p99']:.1f}"

    def miss(fmt: str) -> Callable[[dict[str, Any]], str]:
        return lambda c: ms(c["ogshot"][fmt])

    for fmt in FORMATS:
        row(f"ogshot {fmt.upper()} miss p50 / p99 ms", miss(fmt))
    row("Satori + resvg PNG p50 / p99 ms", lambda c: ms(c["satori"]))
    row(
        "ogshot PNG / JPEG / WebP p50 ÷ Satori PNG p50",
        lambda c: " / ".join(
            f"{c['ogshot'][f]['ms']['p50'] / c['satori']['ms']['p50']:.2f}x" for f in FORMATS
        ),
    )
    row(
        "ogshot PNG stages p50 ms (load, ready, capture, encode)",
        lambda c: ", ".join(
            f"{c['ogshot']['png_stages_p50'].get(s, 0):.1f}"
            for s in ("load", "ready", "capture", "encode")
        ),
    )
    row(
        "Satori p50 ms (satori, resvg)",
        lambda c: (
            f"{c['satori']['parts_p50']['satori_ms']:.1f}, "
            f"{c['satori']['parts_p50']['resvg_ms']:.1f}"
        ),
    )
    row(
        "bytes ogshot PNG / JPEG / WebP",
        lambda c: " / ".join(f"{c['ogshot'][f]['bytes'] // 1000} KB" for f in FORMATS),
    )
    row("bytes Satori PNG", lambda c: f"{c['satori']['bytes'] // 1000} KB")
    row(
        "SSIM ogshot PNG / JPEG / WebP vs lossless capture",
        lambda c: " / ".join(f"{c['ssim'][f]:.4f}" for f in FORMATS),
    )
    row("SSIM ogshot PNG vs plain screenshot", lambda c: f"{c['ssim']['png_vs_screenshot']:.4f}")
    row("SSIM Satori PNG vs plain screenshot", lambda c: f"{c['satori']['ssim_vs_screenshot']:.4f}")
    row(
        "saturated renders/s (per core): ogshot",
        lambda c: (
            f"{c['ogshot']['saturated']['renders_s']:.1f} "
            f"({c['ogshot']['saturated']['per_core']:.1f})"
        ),
    )
    row(
        "saturated renders/s (per core): Satori",
        lambda c: (
            f"{c['satori']['saturated']['renders_s']:.1f} "
            f"({c['satori']['saturated']['per_core']:.1f})"
        ),
    )

    def cpu(c: dict[str, Any]) -> str:
        a = c["ogshot"]["saturated"]["cpu_ms_per_render"]
        b = c["satori"]["saturated"]["cpu_ms_per_render"]
        return f"{a:.0f} / {b:.0f} ms ({1000 / a:.1f} / {1000 / b:.1f} per core-s, {b / a:.1f}x)"

    row("CPU per render ogshot / Satori (renders per core-second, ratio)", cpu)
    row(
        "ogshot CPU per render: Chromium, Python + libvips, Playwright driver",
        lambda c: ", ".join(f"{v:.0f}" for v in c["ogshot"]["saturated"]["cpu_ms_split"].values()),
    )

    def ratio(c: dict[str, Any]) -> str:
        return (
            f"{c['ogshot']['saturated']['renders_s'] / c['satori']['saturated']['renders_s']:.1f}x"
        )

    row("throughput ogshot ÷ Satori", ratio)
    head = f"| | {' | '.join(f'`{n}`' for n in names)} |"
    lines = [head, "|---" * (len(names) + 1) + "|"]
    lines += [f"| {label} | {' | '.join(values)} |" for label, values in rows]
    m = result["machine"]
    lines.append(
        f"\n{result['date']}, {m['cores']} cores, ogshot pool {result['pool_size']}, node "
        f"{result['node']}, satori {result['versions']['satori']}, resvg-js "
        f"{result['versions']['@resvg/resvg-js']}; both measured interleaved in one run; 1-minute "
        f"load average {m['load_average_at_start']:.1f} at the start, "
        f"{m['load_average_at_end']:.1f} at the end."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cards", default=",".join(card_names()), help="comma-separated")
    parser.add_argument("--iterations", type=int, default=20, help="misses per format and card")
    parser.add_argument("--seconds", type=float, default=8.0, help="saturation per card and side")
    parser.add_argument("--output", type=Path, default=HERE / "results" / "peers.json")
    parser.add_argument("--no-setup", action="store_true", help="skip benchmarks/peers/setup.sh")
    args = parser.parse_args(argv)
    if not args.no_setup:
        setup_peers()
    cards = [c for c in args.cards.split(",") if c]
    unknown = set(cards) - set(card_names())
    if unknown:
        parser.error(f"unknown cards {sorted(unknown)} (known: {card_names()})")
    result = asyncio.run(run(cards, args.iterations, args.seconds, node_version()))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2))
    print(report(result))


if __name__ == "__main__":
    main()
