"""Alerts to a webhook on loopback: what is posted, how often, and what is never sent (errors to
Sentry: test_sentry.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from ogshot.app import create_app
from ogshot.ops.alerts import Alerter, Health
from tests.support.helpers import make_settings
from tests.support.services import Receiver

BROKEN = "<p>{{ missing_variable.attr }}</p>"


def test_a_failing_template_alerts_once_then_resolves(tmp_path: Path) -> None:
    with Receiver() as hook:
        settings = make_settings(
            tmp_path,
            alert_webhook=hook.url,
            alert_window=1.5,
            alert_check_every=0.05,
            alert_min_requests=3,
            alert_interval=3600,
        )
        (settings.templates_dir / "broken.html").write_text(BROKEN)
        with TestClient(create_app(settings)) as client:
            assert client.get("/og/minimal.png?title=fine").status_code == 200
            for _ in range(4):
                assert client.get("/og/broken.png").status_code == 500
            assert client.get("/og/nope.png").status_code == 404  # not a template's failure
            firing = json.loads(hook.wait(1)[0][2])
            assert firing["status"] == "firing"
            assert firing["condition"] == "template_errors:broken"
            # fired as soon as 3 (alert_min_requests) had failed, 3 or 4 by the time it checked
            assert re.search(r"template 'broken': ([34]) of \1 requests failed", firing["text"])
            for _ in range(3):  # still failing while it fires: no second post within the interval
                assert client.get("/og/broken.png").status_code == 500
            posts = hook.wait(2)  # the window passes without failures: resolved
        bodies = [json.loads(body) for _path, _headers, body in posts]
    assert [(b["condition"], b["status"]) for b in bodies] == [
        ("template_errors:broken", "firing"),
        ("template_errors:broken", "resolved"),
    ]


def test_conditions_from_pool_and_cache_health() -> None:
    state: dict[str, Any] = {"restarts": 0, "rejected": 0, "cache": True, "redis": True}

    def health() -> Health:
        return Health(
            pool={"browser_restarts": state["restarts"], "rejected": state["rejected"]},
            cache_healthy=state["cache"],
            redis_healthy=state["redis"],
        )

    alerter = Alerter(
        make_settings(Path("/nonexistent"), alert_window=10, alert_restarts=3), health
    )
    assert alerter.conditions(100.0) == {}
    state.update(restarts=3, rejected=7, cache=False, redis=False)
    found = alerter.conditions(101.0)
    assert set(found) == {
        "browser_restarts",
        "queue_full",
        "cache_unavailable",
        "redis_unavailable",
    }
    assert "7 requests turned away" in found["queue_full"]
    state.update(cache=True, redis=True)
    assert set(alerter.conditions(112.0)) == set()  # restarts and 503s older than the window


def test_a_webhook_that_fails_is_logged_once(tmp_path: Path, caplog: Any) -> None:
    with Receiver() as hook:
        hook.fail = True
        settings = make_settings(
            tmp_path, alert_webhook=hook.url, alert_check_every=0.05, alert_min_requests=1
        )
        (settings.templates_dir / "broken.html").write_text(BROKEN)
        with TestClient(create_app(settings)) as client:
            assert client.get("/og/broken.png").status_code == 500
            hook.wait(1)
            assert client.get("/og/minimal.png?title=still+serving").status_code == 200
    assert len([r for r in caplog.records if "could not post an alert" in r.getMessage()]) == 1
