"""One cache miss, read as a new contributor reads it: which of ogshot's modules run while
``GET /og/minimal.png`` renders, and how many of the imports among them point up the layers or
sideways (a lower layer reaching into a higher one, or into a sibling).

    .venv/bin/python -m benchmarks.miss_walk             # this checkout
    .venv/bin/python -m benchmarks.miss_walk --flat      # a checkout of the flat package (before)

Layers, lowest first: core, templates, engine | cache, pipeline, ops, http, studio | batch, app,
bench, cli. With ``--flat`` the old module names are placed in the layer they moved to. A count,
not a timing: valid on a loaded machine.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import FrameType
from typing import Any

import grimp
import httpx

RANKS = {
    "core": 0, "templates": 1, "engine": 2, "cache": 2, "pipeline": 3, "ops": 4, "http": 5,
    "studio": 6, "batch": 6, "app": 7, "bench": 8, "cli": 9,
}  # fmt: skip
# The flat package's modules, by the layer each moved to.
FLAT = {
    "errors": "core", "config": "core", "envvars": "core", "formats": "core", "lru": "core",
    "timing": "core", "version": "core", "templates": "templates", "declarations": "templates",
    "fields": "templates", "filters": "templates", "variants": "templates",
    "freshness": "templates", "signing": "templates", "watch": "templates",
    "digests": "templates", "jinja_errors": "templates",
    "browser": "engine", "chromium": "engine", "pool": "engine", "document": "engine",
    "router": "engine", "remote": "engine", "egress": "engine", "render": "engine", "fit": "engine",
    "compress": "engine", "assets": "engine", "cache": "cache", "fleet": "cache", "layers": "cache",
    "pipeline": "pipeline", "jobs": "pipeline", "glyphs": "pipeline", "http_errors": "http",
    "params": "http", "telemetry": "http", "openapi": "http", "openapi_service": "http",
    "admin": "http", "preview": "studio", "preview_html": "studio", "activity": "studio",
    "metrics": "ops", "logs": "ops", "tracking": "ops", "alerts": "ops", "build": "batch",
    "manifest": "batch", "storage": "batch", "bench": "bench", "benchhttp": "bench",
    "benchfloor": "bench", "serverproc": "bench", "app": "app", "cli": "cli",
}  # fmt: skip


def package_of(module: str, flat: bool) -> str | None:
    parts = module.split(".")
    if len(parts) < 2:
        return None
    return FLAT.get(parts[1]) if flat else parts[1] if parts[1] in RANKS else None


class Seen:
    """The ogshot modules whose functions run while it is on: in this thread, and in the threads
    of a fresh default executor (``asyncio.to_thread``'s) that the caller installs after ``on``."""

    def __init__(self) -> None:
        self.modules: set[str] = set()

    def profile(self, frame: FrameType, event: str, arg: Any) -> None:
        if event == "call":
            name = frame.f_globals.get("__name__", "")
            if name.startswith("ogshot."):
                self.modules.add(name)

    def on(self) -> None:
        threading.setprofile(self.profile)
        sys.setprofile(self.profile)

    def off(self) -> None:
        sys.setprofile(None)
        threading.setprofile(None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--flat", action="store_true", help="the package before the restructure")
    args = parser.parse_args()
    import ogshot

    root = Path(ogshot.__file__).resolve().parent.parent
    create_app = ogshot.create_app
    settings = ogshot.Settings.load(
        environ={},
        config_file=root / "playwright.config.json",
        templates_dir=root / "html_templates",
        static_dir=root / "static",
        cache_dir=Path(tempfile.mkdtemp()),
        pool_size=1,
        metrics=True,
    )
    app = create_app(settings)

    async def one_miss(title: str) -> None:
        async with app.router.lifespan_context(app) as state:

            async def with_state(scope: Any, receive: Any, send: Any) -> None:
                await app({**scope, "state": dict(state or {})}, receive, send)

            transport = httpx.ASGITransport(app=with_state)
            async with httpx.AsyncClient(transport=transport, base_url="http://og") as client:
                await client.get("/og/minimal.png", params={"title": "warm-up"})
                seen.on()
                asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(4))
                got = await client.get("/og/minimal.png", params={"title": title})
                seen.off()
                assert got.headers["x-ogshot-cache"] == "miss", got.headers

    seen = Seen()
    asyncio.run(one_miss("the miss"))
    touched = seen.modules
    graph = grimp.build_graph("ogshot", include_external_packages=False)
    jumps = []
    for importer in sorted(touched):
        low = package_of(importer, args.flat)
        if low is None:
            continue
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            high = package_of(imported, args.flat)
            if high is None or imported not in touched:
                continue
            if RANKS[high] > RANKS[low] or (RANKS[high] == RANKS[low] and high != low):
                jumps.append(f"{importer} ({low}) -> {imported} ({high})")
    print(f"modules run during one miss: {len(touched)}")
    for name in sorted(touched):
        print(f"  {name}")
    print(f"imports among them that point up or sideways: {len(jumps)}")
    for jump in jumps:
        print(f"  {jump}")


if __name__ == "__main__":
    main()
