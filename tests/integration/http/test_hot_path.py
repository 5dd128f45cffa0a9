"""The hot path (http/hot.py): a URL answered before is answered again from memory, before routing,
with the bytes and headers the whole way sends for a hit; anything that could change the answer
(a purge, a template edit, a stale copy, a wrong signature, a byte range) goes the whole way.

Hot answers are told apart by the hot path's own count (``HotTable.served`` in the app, and
``ogshot_hot_hits_total`` over HTTP), never by timing.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from starlette.testclient import TestClient

import ogshot
from ogshot.app import create_app
from ogshot.http.hot import HotTable
from ogshot.ops.logs import JsonFormatter
from tests.support.helpers import make_settings, saved
from tests.support.procs import Server, serve_env

TOKEN = "hot-admin-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}
# Headers that differ between any two answers, hot or not.
PER_REQUEST = {"x-request-id", "server-timing", "date"}


def hot_of(client: TestClient) -> HotTable:
    table: HotTable = client.app.state.hot  # type: ignore[attr-defined]
    return table


def is_hot(response: httpx.Response) -> bool:
    return "hot" in response.headers["server-timing"].split(", ")


def same_answer(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k not in PER_REQUEST}


@pytest.fixture(scope="module")
def client(module_dir: Path) -> Iterator[TestClient]:
    settings = make_settings(module_dir, admin_token=TOKEN, pool_size=1)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def hot_hits(server: Server) -> float:
    text = server.get("/metrics").text
    found = re.search(r"^ogshot_hot_hits_total ([\d.e+]+)$", text, re.MULTILINE)
    assert found is not None, "ogshot_hot_hits_total missing from /metrics"
    return float(found.group(1))


def requests_counted(server: Server, status: int) -> float:
    text = server.get("/metrics").text
    pattern = rf'^ogshot_requests_total\{{cache="hit",route="og",status="{status}"\}} ([\d.e+]+)$'
    found = re.search(pattern, text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_over_http_a_repeated_url_is_hot_with_the_bytes_and_headers_of_a_hit(
    tmp_path: Path,
) -> None:
    make_settings(tmp_path)  # the private copy of the templates the server reads
    with Server(env=serve_env(tmp_path), cwd=tmp_path) as server:
        url = "/og/minimal.png?title=Hot"
        first = server.get(url)
        assert (first.status_code, first.headers["x-ogshot-cache"]) == (200, "miss")
        assert hot_hits(server) == 0
        # The same image under another spelling of the URL: a hit the whole way, not hot.
        whole_way = server.get("/og/minimal.png?title=H%6Ft")
        assert whole_way.headers["x-ogshot-cache"] == "hit"
        assert hot_hits(server) == 0

        hot = server.get(url, headers={"x-request-id": "hot-req-1"})
        assert hot_hits(server) == 1
        assert hot.status_code == 200
        assert hot.content == first.content == whole_way.content
        assert same_answer(hot) == same_answer(whole_way)
        assert list(same_answer(hot)) == list(same_answer(whole_way))  # in the same order
        assert hot.headers["x-request-id"] == "hot-req-1"
        assert re.fullmatch(r"cache;dur=\d+\.\d, hot", hot.headers["server-timing"])
        assert whole_way.headers["server-timing"].startswith("validate;dur=")

        head = httpx.head(server.base + url, timeout=30)
        assert head.status_code == 200 and head.content == b""
        assert same_answer(head) == same_answer(whole_way)  # content-length of the image too
        assert hot_hits(server) == 2

        etag = hot.headers["etag"]
        not_modified = server.get(url, headers={"if-none-match": f'W/"x", {etag}'})
        assert not_modified.status_code == 304 and not_modified.content == b""
        assert not_modified.headers["etag"] == etag
        assert "content-type" not in not_modified.headers
        other = server.get(url, headers={"if-none-match": '"not-this-one"'})
        assert other.status_code == 200 and other.content == first.content
        assert hot_hits(server) == 4

        # The request counts see hot hits as hits: 2 GET + 1 HEAD hot, + 1 hit the whole way.
        assert requests_counted(server, 200) == 4
        assert requests_counted(server, 304) == 1


def test_a_byte_range_goes_the_whole_way(client: TestClient) -> None:
    url = "/og/minimal.png?title=range"
    full = client.get(url)
    served = hot_of(client).served
    part = client.get(url, headers={"range": "bytes=0-9"})
    assert part.status_code == 206 and part.content == full.content[:10]
    assert hot_of(client).served == served
    assert client.get(url).status_code == 200
    assert hot_of(client).served == served + 1


@pytest.mark.parametrize(
    "purge",
    [{"url": "https://og.example.com/og/minimal.png?title=purged"}, {"template": "minimal"}],
    ids=["by-url", "by-template"],
)
def test_a_purge_stops_hot_answers_at_once_until_rendered_again(
    client: TestClient, purge: dict[str, str]
) -> None:
    url = "/og/minimal.png?title=purged"
    client.get(url)
    table = hot_of(client)
    served = table.served
    assert client.get(url).headers["x-ogshot-cache"] == "hit"
    assert table.served == served + 1

    response = client.post("/admin/purge", json=purge, headers=AUTH)
    assert response.status_code == 200, response.text

    again = client.get(url)
    assert again.headers["x-ogshot-cache"] == "miss"  # rendered again, not the purged copy
    assert not is_hot(again)
    assert table.served == served + 1
    hot = client.get(url)
    assert is_hot(hot) and hot.content == again.content
    assert table.served == served + 2


def test_a_template_edit_is_never_answered_from_the_old_copy(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, pool_size=1)
    with TestClient(create_app(settings)) as client:
        table = hot_of(client)
        url = "/og/minimal.png?title=edit"
        before = client.get(url)
        assert is_hot(client.get(url))
        template = settings.templates_dir / "minimal.html"
        with saved(client):
            template.write_text(template.read_text() + "\n<!-- edited -->\n")
        served = table.served
        after = client.get(url)
        assert after.headers["x-ogshot-cache"] == "miss"  # a new version: a new key
        assert after.content == before.content  # the comment changed the version, not pixels
        assert table.served == served
        assert is_hot(client.get(url))


def test_a_wrong_signature_is_never_answered_hot(tmp_path: Path) -> None:
    secret = "hot-signing-secret"
    settings = make_settings(tmp_path, pool_size=1, secrets=(secret,))
    with TestClient(create_app(settings)) as client:
        table = hot_of(client)
        url = ogshot.sign_url("minimal", {"title": "signed"}, secret=secret, version="")
        assert client.get(url).status_code == 200
        assert is_hot(client.get(url))
        served = table.served
        signature = url.rsplit("s=", 1)[1]
        tampered = url.replace(f"s={signature}", "s=" + signature[::-1])
        changed = url.replace("title=signed", "title=signee")
        for wrong in (tampered, changed, url.split("&s=")[0].split("?s=")[0]):
            response = client.get(wrong)
            assert response.status_code == 403, (wrong, response.text)
            assert response.json()["error"]
        assert table.served == served


def test_a_stale_copy_goes_the_whole_way(tmp_path: Path) -> None:
    # refresh_ahead=0: a twice-fetched image would otherwise be made again before its TTL.
    settings = make_settings(tmp_path, pool_size=1, cache_ttl=1, stale_ttl=60, refresh_ahead=0)
    with TestClient(create_app(settings)) as client:
        table = hot_of(client)
        url = "/og/minimal.png?title=" + quote("stale soon")
        client.get(url)
        assert is_hot(client.get(url))
        served = table.served
        time.sleep(1.2)
        stale = client.get(url)
        assert stale.headers["x-ogshot-cache"] == "stale"
        assert table.served == served


def test_a_hot_hit_writes_the_json_log_line_of_a_hit(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ogshot.request")
    settings = make_settings(tmp_path, pool_size=1, log_format="json")
    with TestClient(create_app(settings)) as client:
        url = "/og/minimal.png?title=" + quote("logged hot")
        agent = {"user-agent": "Slackbot-LinkExpanding 1.0"}
        client.get(url, headers={"x-request-id": "whole-way", **agent})
        hot = client.get(url, headers={"x-request-id": "hot-one", **agent})
        assert is_hot(hot)
    lines = [
        json.loads(JsonFormatter().format(r)) for r in caplog.records if r.name == "ogshot.request"
    ]
    assert [line["request_id"] for line in lines] == ["whole-way", "hot-one"]
    logged = lines[1]
    assert logged["cache"] == "hit" and logged["status"] == 200 and logged["method"] == "GET"
    assert logged["path"] == "/og/{template}.{format}"  # never the raw path
    assert logged["template"] == "minimal" and logged["format"] == "png"
    assert logged["bytes"] == len(hot.content) and logged["platform"] == "slack"
    assert "logged" not in json.dumps(logged)  # parameters are not logged
