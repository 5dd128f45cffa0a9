"""/metrics: exact counts after known traffic, bounded labels, the platform classifier."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from ogshot.app import create_app
from ogshot.ops.metrics import PLATFORMS, platform_of
from tests.support.helpers import make_settings, settled
from tests.support.procs import wait_for

# User-Agents as the platforms send them (OG-PLATFORMS.md; iMessage names two crawlers at once).
USER_AGENTS = {
    "facebook": "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "twitter": "Twitterbot/1.0",
    "linkedin": "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
    "slack": "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "discord": "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
    "whatsapp": "WhatsApp/2.23.20.0 A",
    "telegram": "TelegramBot (like TwitterBot)",
    "mastodon": "http.rb/5.1.1 (Mastodon/4.2.0; +https://mastodon.social/) Bot",
    "bluesky": "Mozilla/5.0 (compatible; Bluesky Cardyb/1.1; +mailto:support@bsky.app)",
    "google": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "imessage": "Mozilla/5.0 (Macintosh) AppleWebKit (KHTML, like Gecko) facebookexternalhit/1.1 "
    "Facebot Twitterbot/1.0",
    "other": "curl/8.5.0",
}


def test_every_platform_is_recognised() -> None:
    assert set(USER_AGENTS) == set(PLATFORMS)
    for platform, ua in USER_AGENTS.items():
        assert platform_of(ua) == platform, ua
    assert platform_of("") == "other"
    assert platform_of("Slack-ImgProxy (+https://api.slack.com/robots)") == "slack"


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture(scope="module")
def app_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = make_settings(tmp_path_factory.mktemp("metrics"), memory_cache_size=0)
    with TestClient(create_app(settings)) as client:
        yield client


def test_known_traffic_gives_exact_counts(app_client: TestClient) -> None:
    client = app_client
    bodies = []
    for i in range(3):  # one miss, then two hits from the disk cache
        response = client.get(
            "/og/minimal.png?title=Counted", headers={"user-agent": USER_AGENTS["twitter"]}
        )
        assert response.status_code == 200
        assert response.headers["x-ogshot-cache"] == ("miss" if i == 0 else "hit")
        bodies.append(len(response.content))
    jpeg = client.get("/og/minimal.jpg?title=Counted", headers={"user-agent": USER_AGENTS["slack"]})
    assert jpeg.status_code == 200
    assert client.get("/og/no-such-template.png").status_code == 404
    assert client.get("/og/minimal.png?bogus=1").status_code == 400
    scanner = client.get("/og/zzz%20evil%7Bscanner%7D.png")
    assert scanner.status_code == 404

    settled(client)  # both images on disk, for ogshot_cache_entries
    # The server is ready with one page and opens the other in the background: on a busy
    # machine that can take longer than this traffic. Wait for it, so the page counts are exact.
    pool = client.app.state.renderer.pool  # type: ignore[attr-defined]
    assert wait_for(lambda: pool.stats()["idle"] == 2, timeout=30)
    text = client.get("/metrics").text
    found = samples(text)
    assert value(found, "ogshot_requests_total", route="og", status="200", cache="miss") == 2
    assert value(found, "ogshot_requests_total", route="og", status="200", cache="hit") == 2
    assert value(found, "ogshot_requests_total", route="og", status="404", cache="error") == 2
    assert value(found, "ogshot_requests_total", route="og", status="400", cache="error") == 1
    fetches = "ogshot_fetches_total"
    assert value(found, fetches, template="minimal", platform="twitter", variant="") == 3
    assert value(found, fetches, template="minimal", platform="slack", variant="") == 1
    served = "ogshot_template_requests_total"
    assert value(found, served, template="minimal", cache="miss") == 2
    assert value(found, served, template="minimal", cache="hit") == 2
    # Templates that were not found are counted by route only (bounded labels).
    assert not [key for key in found if "no-such-template" in str(key) or "scanner" in str(key)]
    assert value(found, "ogshot_served_bytes_total", format="png") == sum(bodies)
    assert value(found, "ogshot_served_bytes_total", format="jpeg") == len(jpeg.content)
    assert value(found, "ogshot_images_rendered_total", template="minimal", format="png") == 1
    assert value(found, "ogshot_images_rendered_total", template="minimal", format="jpeg") == 1
    assert value(found, "ogshot_render_seconds_count", template="minimal") == 2
    for stage in ("html", "queue", "load", "ready", "capture", "encode", "store"):
        assert value(found, "ogshot_render_stage_seconds_count", stage=stage) == 2, stage
    # 5 ms .. 10 s buckets
    assert value(found, "ogshot_render_stage_seconds_bucket", stage="capture", le="0.005") <= 2
    assert ("ogshot_render_stage_seconds_bucket", (("le", "10.0"), ("stage", "capture"))) in found
    assert value(found, "ogshot_cache_lookups_total", layer="disk", result="hit") == 2
    assert value(found, "ogshot_cache_lookups_total", layer="disk", result="miss") == 2
    assert value(found, "ogshot_pool_pages", state="idle") == 2
    assert value(found, "ogshot_pool_pages", state="busy") == 0
    assert value(found, "ogshot_pool_pages", state="starting") == 0
    assert value(found, "ogshot_cache_entries", layer="disk") == 2
    assert value(found, "ogshot_cache_bytes", layer="disk") > 0
    # Names from the URL never become label values.
    assert "no-such-template" not in text and "scanner" not in text and "bogus" not in text


def test_pages_being_opened_are_counted(tmp_path: Path) -> None:
    # Ready with one page; the others open in the background. Every scrape accounts for every
    # page of the pool: idle, busy or starting, until all are open.
    with TestClient(create_app(make_settings(tmp_path, pool_size=4))) as client:
        pool = client.app.state.renderer.pool  # type: ignore[attr-defined]
        states = []
        while True:
            found = samples(client.get("/metrics").text)
            state = {
                s: value(found, "ogshot_pool_pages", state=s) for s in ("idle", "busy", "starting")
            }
            states.append(state)
            assert sum(state.values()) == 4, states
            if state["idle"] == 4:
                break
            assert len(states) < 2000, states
        assert pool.stats()["starting"] == 0


def test_render_failures_are_counted_by_kind(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    (settings.templates_dir / "broken.html").write_text("<p>{{ missing_variable.attr }}</p>")
    with TestClient(create_app(settings)) as client:
        assert client.get("/og/broken.png").status_code == 500
        found = samples(client.get("/metrics").text)
    failures = value(found, "ogshot_render_failures_total", template="broken", kind="template")
    assert failures == 1
    assert value(found, "ogshot_requests_total", route="og", status="500", cache="error") == 1


def test_metrics_can_be_turned_off(tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(tmp_path, metrics=False))) as client:
        assert client.get("/metrics").status_code == 404
        assert client.get("/og/minimal.png?title=x").status_code == 200


def test_metrics_are_not_behind_the_signature(tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(tmp_path, secrets=("s3cret",)))) as client:
        assert client.get("/og/minimal.png?title=x").status_code == 403
        response = client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        found = samples(response.text)
    assert value(found, "ogshot_requests_total", route="og", status="403", cache="error") == 1
