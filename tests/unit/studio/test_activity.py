"""The Activity page's numbers: PromQL's quantile interpolation, and the last hour from a ring of
counter snapshots (a real Metrics registry, a controlled clock)."""

from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry, Histogram
from starlette.testclient import TestClient

from ogshot.app import create_app
from ogshot.ops.metrics import BUCKETS, Metrics
from ogshot.studio.activity import Activity, histogram_quantile
from tests.support.helpers import make_settings


def buckets_of(observations: list[float]) -> list[tuple[float, float]]:
    """(upper bound, cumulative count) as prometheus_client exposes them, from a real Histogram."""
    registry = CollectorRegistry()
    histogram = Histogram("h", "test", buckets=BUCKETS, registry=registry)
    for seconds in observations:
        histogram.observe(seconds)
    return [
        (float(sample.labels["le"]), sample.value)
        for family in registry.collect()
        for sample in family.samples
        if sample.name == "h_bucket"
    ]


def test_quantiles_interpolate_within_a_bucket_like_promql() -> None:
    # 100 observations in (0.01, 0.02]: PromQL places rank r at 0.01 + 0.01 * r / 100.
    inside = buckets_of([0.015] * 100)
    assert histogram_quantile(0.5, inside) == pytest.approx(0.015)
    assert histogram_quantile(0.95, inside) == pytest.approx(0.0195)
    # 10 in the first bucket (0, 0.005], 90 in (0.005, 0.01]: rank 50 is the 40th of 90.
    mixed = buckets_of([0.001] * 10 + [0.007] * 90)
    assert histogram_quantile(0.5, mixed) == pytest.approx(0.005 + 0.005 * 40 / 90)
    assert histogram_quantile(0.05, mixed) == pytest.approx(0.005 * 5 / 10)
    # Past the last finite bucket: the highest finite bound, as PromQL answers.
    slow = buckets_of([0.001] * 10 + [30.0] * 90)
    assert histogram_quantile(0.95, slow) == 10.0
    assert histogram_quantile(0.5, buckets_of([])) is None
    assert histogram_quantile(0.5, [(0.1, 3.0)]) is None  # no +Inf bucket: not a histogram
    assert histogram_quantile(0.5, [(0.1, 1.0), (math.inf, 1.0)]) == pytest.approx(0.05)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def serve(metrics: Metrics, template: str, platform: str, cache: str, times: int = 1) -> None:
    for _ in range(times):
        metrics.request("og", 200, cache, template=template, platform=platform, variant="")


def row(report: dict[str, object], section: str, key: str, name: str) -> dict[str, object]:
    items = report[section]
    assert isinstance(items, list)
    found = [item for item in items if item[key] == name]
    assert len(found) == 1, items
    result: dict[str, object] = found[0]
    return result


def test_the_last_hour_from_snapshots() -> None:
    metrics = Metrics()
    clock = Clock(1_000_000.0)
    activity = Activity(metrics, clock=clock)
    activity.keep(activity.snapshot())  # at start: nothing yet

    clock.now += 125  # third minute of the window's last three
    serve(metrics, "card", "twitter", "miss")
    metrics.image_rendered("card", "png", {"queue": 1.0, "load": 15.0, "capture": 40.0})
    serve(metrics, "card", "twitter", "hit", times=3)
    serve(metrics, "card", "slack", "hit", times=2)
    activity.keep(activity.snapshot())
    clock.now += 60
    report = activity.report(activity.snapshot())

    card = row(report, "templates", "name", "card")
    assert (card["hits"], card["misses"], card["renders"]) == (5, 1, 1)
    series = card["series"]
    assert isinstance(series, dict)
    assert sum(series["hits"]) == 5 and sum(series["renders"]) == 1
    # The traffic happened between the snapshots at +0 and +125 s: the points covering that.
    assert series["hits"][-1] == 0 and sum(series["hits"][-3:]) == 5
    assert card["p50_ms"] == pytest.approx(50 + (75 - 50) * 0.5)  # 56 ms in (50, 75]
    assert row(report, "platforms", "platform", "twitter")["fetches"] == 4
    assert row(report, "platforms", "platform", "slack")["fetches"] == 2
    load = row(report, "stages", "stage", "load")
    assert load["count"] == 1 and load["p50_ms"] == pytest.approx(10 + 10 * 0.5)


def test_what_is_older_than_an_hour_drops_out() -> None:
    metrics = Metrics()
    clock = Clock(2_000_000.0)
    activity = Activity(metrics, clock=clock)
    activity.keep(activity.snapshot())
    serve(metrics, "old", "facebook", "hit", times=7)
    for _ in range(80):  # 80 minutes of snapshots, one a minute
        clock.now += 60
        activity.keep(activity.snapshot())
    serve(metrics, "new", "facebook", "hit", times=2)
    report = activity.report(activity.snapshot())
    assert activity.dropped
    assert row(report, "templates", "name", "new")["hits"] == 2
    assert row(report, "templates", "name", "old")["hits"] == 0
    assert row(report, "platforms", "platform", "facebook")["fetches"] == 2
    assert len(activity.ring) <= 62  # an hour of snapshots, not all of them


def test_the_api_reads_the_apps_own_metrics(tmp_path_factory: pytest.TempPathFactory) -> None:
    settings = make_settings(tmp_path_factory.mktemp("activity"), dev=True)
    with TestClient(create_app(settings)) as client:
        for _ in range(3):
            ok = client.get(
                "/og/minimal.png?title=Activity", headers={"user-agent": "Twitterbot/1.0"}
            )
            assert ok.status_code == 200
        data = client.get("/preview/_api/activity").json()
        assert data["enabled"] is True
        minimal = row(data, "templates", "name", "minimal")
        assert (minimal["hits"], minimal["misses"], minimal["renders"]) == (2, 1, 1)
        assert isinstance(minimal["p50_ms"], float) and minimal["p50_ms"] > 0
        assert row(data, "platforms", "platform", "twitter")["fetches"] == 3
        assert {s["stage"] for s in data["stages"]} >= {"load", "capture", "encode"}
        page = client.get("/preview/_activity")
        assert page.status_code == 200 and "activity.js" in page.text
    off = make_settings(tmp_path_factory.mktemp("activity-off"), dev=True, metrics=False)
    with TestClient(create_app(off)) as client:
        data = client.get("/preview/_api/activity").json()
        assert data["enabled"] is False and data["templates"] == []
