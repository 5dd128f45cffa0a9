"""POST /admin/warm on one node, and the warm lane behind it: auth, per-item validation, warmed
images are hits on their first fetch, live misses never queue behind hundreds of warm renders,
and refresh-ahead keeps a popular image a hit across several TTLs. (The fleet's queue in Redis is
in tests/system/multinode/test_warm_fleet.py.)"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from starlette.testclient import TestClient

from ogshot.app import create_app
from ogshot.core.settings import Settings
from ogshot.pipeline.renderer import Renderer
from tests.support.helpers import image_of, make_settings, pixel

TOKEN = "warm-admin-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def warm(module_dir: Path) -> Iterator[TestClient]:
    settings = make_settings(module_dir / "warm", admin_token=TOKEN, pool_size=2)
    with TestClient(create_app(settings)) as client:
        yield client


def renderer_of(client: TestClient) -> Renderer:
    renderer: Renderer = client.app.state.renderer  # type: ignore[attr-defined]
    return renderer


def counter(client: TestClient, name: str) -> float:
    text = client.get("/metrics").text
    found = re.search(rf"^{name}_total (\S+)$", text, re.MULTILINE)
    assert found is not None, f"{name} is not on /metrics"
    return float(found.group(1))


def depth(client: TestClient) -> int:
    assert client.portal is not None
    return client.portal.call(renderer_of(client).warm.depth)


def wait_until(check: object, timeout: float, what: str) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        time.sleep(0.05)


def stages(header: str) -> dict[str, float]:
    return {m[0]: float(m[1]) for m in re.findall(r"(\w+);dur=([\d.]+)", header)}


def url(title: str, template: str = "minimal") -> str:
    return f"/og/{template}.png?title=" + quote(title)


def test_off_without_a_token(client: TestClient) -> None:
    answer = client.post("/admin/warm", json={"urls": [url("x")]}, headers=AUTH)
    assert answer.status_code == 404


@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Basic {TOKEN}"])
def test_a_wrong_or_missing_token_is_401(warm: TestClient, header: str | None) -> None:
    headers = {"authorization": header} if header is not None else {}
    answer = warm.post("/admin/warm", json={"urls": [url("x")]}, headers=headers)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "body",
    [None, [], {"urls": []}, {"urls": "x"}, {"urls": ["/og/a.png"], "items": []}, {"keys": []}],
    ids=["null", "list", "empty", "string", "both", "other"],
)
def test_a_malformed_body_is_400(warm: TestClient, body: object) -> None:
    answer = warm.post("/admin/warm", json=body, headers=AUTH)
    assert answer.status_code == 400
    assert answer.json()["error"]


def test_too_many_items_is_400(warm: TestClient) -> None:
    answer = warm.post(
        "/admin/warm", json={"urls": [url(str(i)) for i in range(1001)]}, headers=AUTH
    )
    assert answer.status_code == 400
    assert "1..1000" in answer.json()["error"]


def test_each_item_is_validated_as_the_server_would(warm: TestClient) -> None:
    good = url("validated and queued")
    answer = warm.post(
        "/admin/warm",
        json={
            "urls": [
                good,
                "/og/minimall.png?title=typo",
                "/og/minimal.gif?title=x",
                "/og/minimal.png?nonsense=1",
                "/elsewhere/minimal.png",
                "https://og.example.com" + good,
            ]
        },
        headers=AUTH,
    )
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert [q["index"] for q in body["queued"]] == [0, 5]
    key = renderer_of(warm).prepare("minimal", {"title": "validated and queued"}, "png").key
    assert {q["key"] for q in body["queued"]} == {key}  # with or without the host: one image
    refused = {r["index"]: r for r in body["refused"]}
    assert sorted(refused) == [1, 2, 3, 4]
    assert refused[1]["kind"] == "not_found" and "'minimall'" in refused[1]["error"]
    assert refused[1]["detail"]["suggestion"] == "minimal"  # the near miss, as /og names it
    assert refused[2]["kind"] == "format"
    assert refused[3]["kind"] == "parameter" and "nonsense" in refused[3]["error"]
    assert refused[4]["kind"] == "parameter" and "/og" in refused[4]["error"]
    assert body["lane"] == "node"

    items = warm.post(
        "/admin/warm",
        json={
            "items": [
                {"template": "minimal", "params": {"title": "an item"}, "format": "webp"},
                {"template": "minimal", "params": "title=x"},
                {"template": "", "params": {}},
                {"template": "minimal", "colour": "red"},
            ]
        },
        headers=AUTH,
    ).json()
    assert [q["index"] for q in items["queued"]] == [0]
    assert [(r["index"], r["kind"]) for r in items["refused"]] == [
        (1, "parameter"),
        (2, "parameter"),
        (3, "parameter"),
    ]


def test_a_signed_server_refuses_urls_with_a_wrong_signature(module_dir: Path) -> None:
    settings = make_settings(module_dir / "signed", admin_token=TOKEN, secrets=("k1",), pool_size=1)
    from ogshot.templates.signing import signed_path

    right = signed_path(settings, "minimal", {"title": "signed"}, "png")
    with TestClient(create_app(settings)) as client:
        body = client.post(
            "/admin/warm", json={"urls": [right, url("unsigned"), right + "x"]}, headers=AUTH
        ).json()
    assert [q["index"] for q in body["queued"]] == [0]
    assert [(r["index"], r["kind"]) for r in body["refused"]] == [
        (1, "forbidden"),
        (2, "forbidden"),
    ]


def test_warmed_urls_are_hits_on_their_first_fetch(warm: TestClient) -> None:
    urls = [url(f"warmed {i}") for i in range(6)] + [
        "/og?template=minimal&data=" + quote('{"title": "warmed by query"}') + "&format=jpg"
    ]
    before = counter(warm, "ogshot_warm_renders")
    answer = warm.post("/admin/warm", json={"urls": urls + urls[:2]}, headers=AUTH)  # duplicates
    assert answer.status_code == 202 and len(answer.json()["queued"]) == len(urls) + 2
    wait_until(lambda: counter(warm, "ogshot_warm_renders") >= before + len(urls), 60, "warming")
    wait_until(lambda: depth(warm) == 0, 30, "an empty warm queue")
    assert counter(warm, "ogshot_warm_renders") == before + len(urls)  # duplicates collapsed
    for target in urls:
        found = warm.get(target)
        assert found.status_code == 200
        assert found.headers["x-ogshot-cache"] == "hit", target
    # The picture is the template's: 1200x630 on minimal's near-black background.
    picture = image_of(warm.get(urls[0]).content)
    assert (picture.width, picture.height) == (1200, 630)
    assert pixel(warm.get(urls[0]).content, 5, 5) == [17.0, 17.0, 17.0]

    again = warm.post("/admin/warm", json={"urls": urls[:3]}, headers=AUTH)
    assert again.status_code == 202  # queued, then skipped: they are cached
    wait_until(lambda: depth(warm) == 0, 30, "an empty warm queue")
    assert counter(warm, "ogshot_warm_renders") == before + len(urls)


def test_live_misses_never_wait_behind_a_deep_warm_queue(warm: TestClient) -> None:
    before = counter(warm, "ogshot_warm_renders")
    items = [{"template": "article", "params": {"title": f"deep queue {i}"}} for i in range(200)]
    answer = warm.post("/admin/warm", json={"items": items}, headers=AUTH)
    assert answer.status_code == 202 and len(answer.json()["queued"]) == 200
    wait_until(lambda: counter(warm, "ogshot_warm_renders") > before, 30, "a first warm render")
    queued_at_start = depth(warm)
    assert queued_at_start > 20  # the lane is busy for the whole measurement
    queue_ms = []
    pool = renderer_of(warm).pool
    for i in range(12):
        live = warm.get(url(f"live while warming {i}", "article"))
        assert live.status_code == 200 and live.headers["x-ogshot-cache"] == "miss"
        queue_ms.append(stages(live.headers["server-timing"])["queue"])
        assert pool.stats()["queued"] == 0  # no live request waits for a page
    warm_during = counter(warm, "ogshot_warm_renders") - before
    assert depth(warm) > 0, "the warm queue ran dry: the live requests did not compete with it"
    assert warm_during >= 2  # warm renders ran beside the live ones
    # A live miss takes the page the lane leaves idle: no wait for a page at all.
    assert max(queue_ms) < 25, queue_ms
    first = warm.get("/og/article.png?title=" + quote("deep queue 0"))  # warmed by now
    assert first.headers["x-ogshot-cache"] == "hit"


def test_refresh_ahead_keeps_a_popular_image_a_hit_across_ttls(module_dir: Path) -> None:
    # Refreshed at 2 s of age: a render has 6 s to land before the TTL, even on a loaded
    # machine (where one was seen to take 3.6 s).
    ttl = 8
    settings = make_settings(module_dir / "refresh", cache_ttl=ttl, refresh_ahead=0.25)
    target = url("popular")
    with TestClient(create_app(settings)) as client:
        assert client.get(target).headers["x-ogshot-cache"] == "miss"
        assert client.get(target).headers["x-ogshot-cache"] == "hit"  # fetched twice
        # Fetch on until refresh-ahead has run twice (the signal) and > 2 TTLs passed.
        seen: list[str] = []
        started = time.monotonic()
        while (
            counter(client, "ogshot_refresh_ahead_renders") < 2
            or time.monotonic() - started < 2 * ttl + 0.5
        ):
            assert time.monotonic() - started < 60, "refresh-ahead did not run twice in 60 s"
            seen.append(client.get(target).headers["x-ogshot-cache"])
            time.sleep(0.1)
        late = [(i, state) for i, state in enumerate(seen) if state != "hit"]
        assert not late, late  # never stale, never a miss
        assert counter(client, "ogshot_stale_served") == 0


def test_refresh_ahead_zero_is_off(module_dir: Path) -> None:
    settings = make_settings(module_dir / "off", cache_ttl=1, refresh_ahead=0, pool_size=1)
    target = url("not refreshed")
    with TestClient(create_app(settings)) as client:
        client.get(target)
        client.get(target)
        time.sleep(1.2)  # past the TTL: the copy is stale now, as without refresh-ahead
        assert client.get(target).headers["x-ogshot-cache"] == "stale"
        assert counter(client, "ogshot_refresh_ahead_renders") == 0


def test_a_bad_refresh_ahead_stops_the_start() -> None:
    from ogshot.core.errors import ConfigError

    with pytest.raises(ConfigError, match="OGSHOT_REFRESH_AHEAD"):
        Settings.load(environ={"OGSHOT_REFRESH_AHEAD": "1.5"})
