"""CPU time per cache hit inside the app, called as ASGI: no HTTP parsing, no load generator.

On a shared machine wrk's requests/s swing with the neighbours' load; the process CPU time one hit
costs barely does, so this is the number to compare before and after a change to the hit path.

    .venv/bin/python benchmarks/hit_cpu.py [--hits 8000] [--concurrency 1] [--memory-cache 0]

``--memory-cache 0`` makes every hit a disk cache read (in a worker thread).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from ogshot.app import create_app
from ogshot.core.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
PATH = "/og/article.png"
QUERY = b"title=Cache%20hit%20benchmark"


async def measure(hits: int, concurrency: int, memory_cache: int | None) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        overrides: dict[str, Any] = {"memory_cache_size": memory_cache}
        settings = Settings.load(
            environ={},
            config_file=ROOT / "playwright.config.json",
            templates_dir=ROOT / "html_templates",
            static_dir=ROOT / "static",
            cache_dir=Path(tmp) / "cache",
            pool_size=1,
            **{k: v for k, v in overrides.items() if v is not None},
        )
        app = create_app(settings)
        to_app: asyncio.Queue[MutableMapping[str, Any]] = asyncio.Queue()
        from_app: asyncio.Queue[MutableMapping[str, Any]] = asyncio.Queue()
        await to_app.put({"type": "lifespan.startup"})
        state: dict[str, Any] = {}
        lifespan = asyncio.create_task(
            app(
                {"type": "lifespan", "asgi": {"version": "3.0"}, "state": state},
                to_app.get,
                from_app.put,
            )
        )
        started = await from_app.get()
        assert started["type"] == "lifespan.startup.complete", started

        async def hit() -> int:
            sent: list[MutableMapping[str, Any]] = []
            scope = {
                "type": "http",
                "asgi": {"version": "3.0"},
                "http_version": "1.1",
                "method": "GET",
                "scheme": "http",
                "path": PATH,
                "raw_path": PATH.encode(),
                "query_string": QUERY,
                "root_path": "",
                "headers": [(b"host", b"127.0.0.1")],
                "client": ("127.0.0.1", 1),
                "server": ("127.0.0.1", 80),
                "state": dict(state),
            }

            async def receive() -> MutableMapping[str, Any]:
                return {"type": "http.request", "body": b"", "more_body": False}

            async def send(message: MutableMapping[str, Any]) -> None:
                sent.append(message)

            await app(scope, receive, send)
            status: int = sent[0]["status"]
            return status

        assert await hit() == 200  # the miss that renders it
        for _ in range(200):  # warm up
            assert await hit() == 200

        async def worker() -> None:
            for _ in range(hits // concurrency):
                await hit()

        cpu = time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        used = time.process_time() - cpu
        await to_app.put({"type": "lifespan.shutdown"})
        await lifespan
        return used / (hits // concurrency * concurrency) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hits", type=int, default=8000)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--memory-cache", type=int, default=None, help="bytes; 0 = off")
    args = parser.parse_args()
    per_hit = asyncio.run(measure(args.hits, args.concurrency, args.memory_cache))
    print(f"{per_hit:.1f} us CPU per cache hit (in-process ASGI, {args.concurrency} at a time)")


if __name__ == "__main__":
    main()
