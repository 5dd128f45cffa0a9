"""What the typography costs: per-template misses, the fitting, a custom font's first render,
and the fonts for every script (Chromium start, memory, image size).

    .venv/bin/python -m benchmarks.typography [--repeat 15]

Prints numbers (and writes benchmarks/results/typography.json); nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, Route, sync_playwright
from starlette.testclient import TestClient

from ogshot.app import create_app
from ogshot.core.settings import ESSENTIAL_ARGS, Settings
from ogshot.engine.assets import ORIGIN
from ogshot.engine.chromium import find_chromium
from ogshot.engine.page_scripts import FIT_JS

ROOT = Path(__file__).resolve().parent.parent
CJK = "日本語のタイトル テスト、オープングラフ画像を高速に生成する方法"
LATIN = "Rendering Open Graph images quickly with warm pages"


def stages(response: Any) -> dict[str, float]:
    out: dict[str, float] = {}
    for part in response.headers.get("server-timing", "").split(","):
        name, _, duration = part.strip().partition(";dur=")
        if duration:
            out[name] = float(duration)
    return out


def ms(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median": round(statistics.median(ordered), 1),
        "p90": round(ordered[int(0.9 * (len(ordered) - 1))], 1),
    }


@contextmanager
def app(templates: Path = ROOT / "html_templates") -> Iterator[TestClient]:
    with tempfile.TemporaryDirectory() as cache:
        settings = Settings(
            templates_dir=templates,
            static_dir=ROOT / "static",
            cache_dir=Path(cache),
            pool_size=1,
        )
        with TestClient(create_app(settings)) as client:
            yield client


def examples(client: TestClient, name: str) -> dict[str, str]:
    catalog = client.app.state.renderer.catalog  # type: ignore[attr-defined]
    values = catalog.get(name).examples()
    return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in values.items()}


def text_param(params: dict[str, str]) -> str:
    for name in ("title", "quote", "name", "project"):
        if name in params:
            return name
    raise LookupError("no text parameter")


def misses(client: TestClient, repeat: int) -> dict[str, Any]:
    """Cache misses per template (distinct text each time, one warm page), in interleaved rounds
    so that a busy machine slows every template alike; ``vs_minimal`` is the ratio of medians."""
    catalog = client.app.state.renderer.catalog  # type: ignore[attr-defined]
    names = catalog.names()
    totals: dict[str, list[float]] = {name: [] for name in names}
    ready: dict[str, list[float]] = {name: [] for name in names}
    for i in range(-2, repeat):  # two warm-up rounds: static files and fonts in the page
        for name in names:
            params = examples(client, name)
            key = text_param(params)
            response = client.get(
                f"/og/{name}.png", params={**params, key: f"{i} {params[key]}"[:40]}
            )
            assert response.headers["x-ogshot-cache"] == "miss"
            if i >= 0:
                timing = stages(response)
                totals[name].append(sum(timing.values()))
                ready[name].append(timing.get("ready", 0.0))
    base = statistics.median(totals["minimal"])
    return {
        name: {
            "miss_ms": ms(totals[name]),
            "ready_ms": ms(ready[name]),
            "vs_minimal": round(statistics.median(totals[name]) / base, 2),
        }
        for name in names
    }


def custom_font(repeat: int) -> dict[str, Any]:
    """The quote template with its web font (Fraunces, from static/fonts/) against the same
    template with a system font, on fresh pages: the readiness stage of renders 1, 2 and 3."""
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder:
        templates = Path(folder) / "html_templates"
        shutil.copytree(ROOT / "html_templates", templates)
        source = (templates / "quote.html").read_text()
        (templates / "quote-system.html").write_text(source.replace('"Fraunces"', '"DejaVu Serif"'))
        runs: dict[str, list[list[float]]] = {"quote": [], "quote-system": []}
        for _ in range(max(3, repeat // 3)):
            for name in runs:
                with app(templates) as client:
                    params = examples(client, name)
                    runs[name].append(
                        [
                            stages(
                                client.get(f"/og/{name}.png", params={**params, "quote": f"{n}"})
                            ).get("ready", 0.0)
                            for n in ("first", "second", "third")
                        ]
                    )
        for name, rows in runs.items():
            out[name] = {
                f"{label}_ready_ms": ms([row[i] for row in rows])
                for i, label in enumerate(("first", "second", "third"))
            }
    return out


def fit_cost(client: TestClient) -> dict[str, Any]:
    """The fitting alone, per template, for the examples and the longest text: timed in a page."""
    catalog = client.app.state.renderer.catalog  # type: ignore[attr-defined]
    out: dict[str, Any] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=find_chromium(), args=list(ESSENTIAL_ARGS)
        )
        page = browser.new_page(viewport={"width": 1200, "height": 630})
        holder = {"html": ""}
        serve(page, holder)
        for name in catalog.names():
            template = catalog.get(name)
            params = examples(client, name)
            key = text_param(params)
            longest = template.params[key].max_length or 200
            row = {}
            for case, text in (("example", params[key]), ("longest", ("Fit me " * 60)[:longest])):
                values = catalog.validate(template, {**params, key: text})
                html = catalog.render_html(template, values)
                holder["html"] = html
                page.goto(f"{ORIGIN}/")
                page.evaluate("document.fonts.ready.then(() => null)")
                row[case] = round(
                    page.evaluate(
                        "() => { document.body.getBoundingClientRect(); "  # layout first
                        f"const t = performance.now(); {FIT_JS}; return performance.now() - t; }}"
                    ),
                    2,
                )
            out[name] = row
        browser.close()
    return out


def serve(page: Page, holder: dict[str, str]) -> None:
    static = ROOT / "static"

    def route(route: Route) -> None:
        url = route.request.url
        if url == f"{ORIGIN}/":
            route.fulfill(status=200, body=holder["html"], content_type="text/html")
        elif url.startswith(f"{ORIGIN}/static/") and (static / url[len(ORIGIN) + 8 :]).is_file():
            route.fulfill(status=200, path=static / url[len(ORIGIN) + 8 :])
        else:
            route.fulfill(status=404, body="")

    page.route("**/*", route)


def fonts_config(without_cjk: bool) -> str:
    """A fontconfig file with every system font folder, or all but the CJK one."""
    folder = tempfile.mkdtemp()
    rejects = "<rejectfont><glob>/usr/share/fonts/opentype/noto/*</glob></rejectfont>"
    text = (
        '<?xml version="1.0"?><!DOCTYPE fontconfig SYSTEM "fonts.dtd"><fontconfig>'
        '<include ignore_missing="yes">/etc/fonts/fonts.conf</include>'
        f"<selectfont>{rejects if without_cjk else ''}</selectfont>"
        f"<cachedir>{folder}/cache</cachedir></fontconfig>"
    )
    path = Path(folder) / "fonts.conf"
    path.write_text(text)
    return str(path)


def chromium_with_fonts(repeat: int) -> dict[str, Any]:
    """Chromium start to first CJK/Latin screenshot, and its memory, with and without Noto CJK."""
    out: dict[str, Any] = {}
    page_html = (
        "<html><body style=\"margin:0;font:800 64px Inter, 'Noto Sans', 'Noto Sans CJK JP', "
        'sans-serif"><h1>{}</h1></body></html>'
    )
    for label, without in (("with_cjk", False), ("without_cjk", True)):
        env: dict[str, str | float | bool] = {
            **os.environ,
            "FONTCONFIG_FILE": fonts_config(without),
        }
        starts, rss, sizes = [], [], {}
        with sync_playwright() as playwright:
            for _ in range(repeat // 3 + 2):
                began = time.perf_counter()
                browser = playwright.chromium.launch(
                    executable_path=find_chromium(), args=list(ESSENTIAL_ARGS), env=env
                )
                page = browser.new_page(viewport={"width": 1200, "height": 630})
                page.set_content(page_html.format(LATIN))
                page.screenshot()
                starts.append((time.perf_counter() - began) * 1000)
                page.set_content(page_html.format(CJK))
                sizes["cjk_png_bytes"] = len(page.screenshot())
                page.set_content(page_html.format(LATIN))
                sizes["latin_png_bytes"] = len(page.screenshot())
                rss.append(chromium_rss_mb())
                browser.close()
        out[label] = {"start_ms": ms(starts[1:]), "rss_mb": ms(rss), **sizes}
    return out


def chromium_rss_mb() -> float:
    """Resident memory of this process's descendants (Chromium and its helpers), from /proc."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        parents[int(entry.name)] = int(fields.get("PPid", "0").strip() or 0)
        rss[int(entry.name)] = int(fields.get("VmRSS", "0 kB").split()[0]) * 1024
    ours, grew = {os.getpid()}, True
    while grew:
        found = {pid for pid, parent in parents.items() if parent in ours} - ours
        ours |= found
        grew = bool(found)
    return sum(rss[pid] for pid in ours if pid != os.getpid()) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks/results/typography.json")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with app() as client:
        results["miss"] = misses(client, args.repeat)
        results["fit_ms"] = fit_cost(client)
    results["custom_font"] = custom_font(args.repeat)
    results["fonts"] = chromium_with_fonts(args.repeat)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
