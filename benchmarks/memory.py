"""Memory of one ``ogshot serve`` node, idle and after renders, for each pool size: the figures
behind docs/operations/sizing.md and the Kubernetes example's resources.

    .venv/bin/python benchmarks/memory.py [--pool 1 2 4] [--renders 200]

Each run starts a server over the shipped templates (a fresh disk cache), reads RSS and PSS of
its process tree from /proc (PSS shares a page among the processes that map it, so the sum is what
the tree costs; RSS counts shared pages once per process), renders ``--renders`` distinct images
over every template (2 requests per page at a time) and reads again. Prints numbers; judges
nothing. Memory barely depends on the machine's load, but the statuses are printed: on a busy
machine some requests end in 503/504 and the tree has rendered fewer images.

PSS divides a shared library's pages among every process that maps it, here or elsewhere: with
other ogshot servers or Chromiums running on the machine, this tree's PSS comes out lower than what
it costs alone. For a container's budget, measure in the image: ``.ci/container`` with
``OGSHOT_CONTAINER_RENDERS`` (nothing outside the image shares its files).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ogshot.bench.servers import ServerProcess, tree, tree_memory

ROOT = Path(__file__).resolve().parent.parent
MiB = 1 << 20


def requests(env: dict[str, str], count: int) -> list[str]:
    """``count`` distinct /og paths over every template, with each template's required params."""
    listed = subprocess.run(
        [sys.executable, "-m", "ogshot", "templates", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    templates = [
        (t["name"], {p["name"]: str(p.get("example") or "x") for p in t["params"] if p["required"]})
        for t in json.loads(listed.stdout)
    ]
    paths = []
    for i in range(count):
        name, params = templates[i % len(templates)]
        first = next(iter(params), None)
        values = {k: (f"{v} {i}" if k == first else v) for k, v in params.items()}
        paths.append(f"/og/{name}.png?{urllib.parse.urlencode(values)}")
    return paths


def line(label: str, pid: int) -> str:
    rss, pss = tree_memory(pid)
    processes = tree(pid)
    python_pss = processes[0].memory_full_info().pss if processes else 0
    return (
        f"{label:>6}: {len(processes):2d} processes, PSS {pss / MiB:5.0f} MiB "
        f"(ogshot {python_pss / MiB:4.0f}, Chromium {(pss - python_pss) / MiB:5.0f}), "
        f"RSS sum {rss / MiB:5.0f} MiB"
    )


def measure(pool: int, renders: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            "OGSHOT_TEMPLATES_DIR": str(ROOT / "html_templates"),
            "OGSHOT_STATIC_DIR": str(ROOT / "static"),
            "OGSHOT_CACHE_DIR": str(Path(tmp) / "cache"),
            "OGSHOT_POOL_SIZE": str(pool),
        }
        with ServerProcess(env=env, cwd=ROOT) as server:  # entering starts it
            time.sleep(3)  # the first page loads settle
            print(f"pool {pool}")
            print(line("idle", server.pid))
            paths = requests(server.env, renders)
            with ThreadPoolExecutor(2 * pool) as workers:
                statuses = Counter(
                    status for status, _ in workers.map(lambda p: server.fetch(p, 60), paths)
                )
            time.sleep(2)
            print(line("after", server.pid), dict(sorted(statuses.items())))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pool", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--renders", type=int, default=200)
    args = parser.parse_args()
    with open("/proc/loadavg") as load:
        print(f"load average at start: {load.read().split()[0]}")
    for pool in args.pool:
        measure(pool, args.renders)


if __name__ == "__main__":
    main()
