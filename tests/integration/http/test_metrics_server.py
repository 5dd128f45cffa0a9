"""/metrics from a real ``ogshot serve --workers 2``, scraped by a real Prometheus: counts add up
across workers, and every query of deploy/grafana-dashboard.json runs on what was scraped."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from ogshot.studio.activity import histogram_quantile
from tests.support.helpers import ROOT, make_settings
from tests.support.procs import Server, serve_env
from tests.support.services import PrometheusServer
from tests.unit.ops.test_metrics import samples, value

WORKERS = 2
BROKEN = "<p>{{ missing_variable.attr }}</p>"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("served")
    make_settings(base)  # copies the shipped templates and static files under base
    (base / "html_templates" / "broken.html").write_text(BROKEN)
    env = serve_env(base, OGSHOT_METRICS="1", OGSHOT_MEMORY_CACHE_SIZE="0")
    with Server("--workers", str(WORKERS), env=env, cwd=base) as running:
        yield running


def scrape(server: Server) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = server.get("/metrics")
    assert response.status_code == 200
    return samples(response.text)


def test_counts_add_up_across_workers(server: Server) -> None:
    # Both workers' pools are in the numbers (a gauge summed over live workers): wait for it.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = scrape(server)
        pages = value(found, "ogshot_pool_pages", state="idle") + value(
            found, "ogshot_pool_pages", state="busy"
        )
        if pages == WORKERS:
            break
        time.sleep(0.2)
    assert pages == WORKERS, "the scrape does not sum both workers' pools"

    before = value(found, "ogshot_requests_total", route="og", status="200", cache="hit")
    before += value(found, "ogshot_requests_total", route="og", status="200", cache="miss")
    sent = 40
    for i in range(sent):  # a new connection each time: the kernel spreads them over workers
        response = httpx.get(
            f"{server.base}/og/minimal.png?title=Workers+{i % 4}",
            headers={"user-agent": "Discordbot/2.0"},
            timeout=30,
        )
        assert response.status_code == 200
    for _ in range(3):  # whichever worker answers the scrape, it sees all of them
        found = scrape(server)
        after = value(found, "ogshot_requests_total", route="og", status="200", cache="hit")
        after += value(found, "ogshot_requests_total", route="og", status="200", cache="miss")
        assert after - before == sent
        fetches = "ogshot_fetches_total"
        assert value(found, fetches, template="minimal", platform="discord", variant="") == sent


def test_a_real_prometheus_scrapes_it_and_the_dashboard_queries_run(
    server: Server, tmp_path: Path
) -> None:
    config = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    job = config["scrape_configs"][0]
    job["scrape_interval"] = "1s"
    job["scrape_timeout"] = "1s"
    job["static_configs"] = [{"targets": [f"127.0.0.1:{server.port}"]}]
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    with PrometheusServer(tmp_path / "prometheus", config) as prometheus:
        wait_until(lambda: prometheus.query('up{job="ogshot"} == 1'), "a first scrape")
        misses = 6
        for i in range(misses):
            ua = "Twitterbot/1.0" if i % 2 else "facebookexternalhit/1.1"
            for _ in range(3):
                got = httpx.get(
                    f"{server.base}/og/minimal.png?title=Scraped+{i}",
                    headers={"user-agent": ua},
                    timeout=30,
                )
                assert got.status_code == 200
        assert httpx.get(f"{server.base}/og/broken.png", timeout=30).status_code == 500
        # A positive signal: Prometheus has scraped everything that was sent, twice (a rate needs
        # two samples, and a series born at its first failure has only one until the next scrape).
        wait_until(
            lambda: prometheus.query(
                'sum(ogshot_images_rendered_total{template="minimal"}) >= 6 and '
                'sum(ogshot_render_failures_total{template="broken"}) >= 1 and '
                'min(count_over_time(ogshot_render_failures_total{template="broken"}[1m])) >= 2'
            ),
            "the traffic in two scrapes",
        )
        # The Activity page's quantiles are PromQL's, on the same counters (no render since).
        found = scrape(server)
        for stage in ("load", "capture", "encode"):
            buckets = [
                (float(dict(labels)["le"]), count)
                for (name, labels), count in found.items()
                if name == "ogshot_render_stage_seconds_bucket" and ("stage", stage) in labels
            ]
            for q in (0.5, 0.95):
                promql = prometheus.query(
                    f"histogram_quantile({q}, sum by (le) "
                    f'(ogshot_render_stage_seconds_bucket{{stage="{stage}"}}))'
                )
                assert float(promql[0]["value"][1]) == pytest.approx(
                    histogram_quantile(q, buckets)
                ), (stage, q)
        rate = prometheus.query('sum(rate(ogshot_requests_total{route="og"}[1m]))')
        assert rate and float(rate[0]["value"][1]) > 0
        p50 = prometheus.query(
            "histogram_quantile(0.5, sum by (le) (rate(ogshot_render_seconds_bucket[1m])))"
        )
        assert p50 and 0.001 < float(p50[0]["value"][1]) <= 10

        dashboard = json.loads((ROOT / "deploy" / "grafana-dashboard.json").read_text())
        results: dict[str, list[dict[str, Any]]] = {}
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                results[target["expr"]] = prometheus.query(target["expr"])  # raises on errors
        with_data = {
            "Cache hit ratio by layer",
            "Image requests per second by cache result",
            "Render time by template (p50, p95)",
            "Render stage time (p95)",
            "Images rendered per second by template",
            "Fetches by platform (last hour)",
            "Render failures per second by kind",
            "Warm pages and queue",
            "Bytes served per second by format",
            "Cache size by layer",
        }
        for panel in dashboard["panels"]:
            if panel["title"] in with_data:
                assert results[panel["targets"][0]["expr"]], panel["title"]
        platforms = {
            r["metric"]["platform"]
            for r in results["sum by (platform) (increase(ogshot_fetches_total[1h]))"]
        }
        assert {"facebook", "twitter"} <= platforms


def wait_until(check: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")
