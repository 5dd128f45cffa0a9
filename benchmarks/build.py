"""Benchmark ``ogshot build``: ``python benchmarks/build.py [--rows 1000] [--format png]``.

Writes a manifest of distinct ``article`` cards, builds it into a fresh folder with an empty cache
(every image a real render), then runs the same build again (everything there: the resumed run),
each as the real command in a subprocess. Prints images/s of the first run (whole command, and
the rendering phase alone), the resumed run's wall time, and the machine's load.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(manifest: Path, out: Path, env: dict[str, str], fmt: str) -> tuple[float, str]:
    command = [sys.executable, "-m", "ogshot", "build", str(manifest), "-o", str(out)]
    started = time.perf_counter()
    done = subprocess.run(
        [*command, "--format", fmt, "--no-progress"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"ogshot build failed ({done.returncode}):\n{done.stderr}")
    return seconds, done.stderr.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--format", default="png")
    parser.add_argument("--pool-size", type=int, default=None, help="OGSHOT_POOL_SIZE")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ogshot-build-bench-") as tmp:
        base = Path(tmp)
        manifest = base / "rows.csv"
        with manifest.open("w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(["template", "name", "title", "subtitle", "author", "tag"])
            for i in range(args.rows):
                writer.writerow(
                    ["article", f"post-{i}", f"Post number {i}", "Pre-generated", "Ada", "bench"]
                )
        env = {**os.environ, "OGSHOT_CACHE_DIR": str(base / "cache")}
        if args.pool_size:
            env["OGSHOT_POOL_SIZE"] = str(args.pool_size)
        load_before = os.getloadavg()[0]
        first, summary = run(manifest, base / "out", env, args.format)
        rendering = re.search(r"\(([\d.]+) images/s\)", summary)
        resumed, resumed_summary = run(manifest, base / "out", env, args.format)
        written = len(
            list((base / "out").rglob(f"*.{'jpg' if args.format == 'jpeg' else args.format}"))
        )
        print(f"rows: {args.rows}, format: {args.format}, images written: {written}")
        pool = env.get("OGSHOT_POOL_SIZE") or "default (2 a core, 2..8)"
        print(f"pool size: {pool}, cores: {os.cpu_count()}")
        print(f"load average (1 min) before / after: {load_before:.1f} / {os.getloadavg()[0]:.1f}")
        print(f"first run: {first:.1f} s, {args.rows / first:.1f} images/s (whole command)")
        if rendering:
            print(f"  rendering phase: {rendering.group(1)} images/s  [{summary}]")
        print(f"resumed run: {resumed:.2f} s  [{resumed_summary}]")


if __name__ == "__main__":
    main()
