"""Request ids and structured logs: echoed or generated ids, one JSON line per request with the
fields a log pipeline needs, and a real server whose every log line is JSON."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from ogshot.app import create_app
from ogshot.ops.logs import JsonFormatter
from tests.support.helpers import make_settings
from tests.support.procs import Server, serve_env


@pytest.fixture(scope="module")
def json_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = make_settings(tmp_path_factory.mktemp("logs"), log_format="json")
    with TestClient(create_app(settings)) as client:
        yield client


def test_request_ids_are_echoed_when_sane_and_made_otherwise(json_client: TestClient) -> None:
    sent = json_client.get("/healthz", headers={"x-request-id": "abc-123.XYZ:9"})
    assert sent.headers["x-request-id"] == "abc-123.XYZ:9"
    made = json_client.get("/healthz")
    assert re.fullmatch(r"[0-9a-f]{16}", made.headers["x-request-id"])
    assert json_client.get("/healthz").headers["x-request-id"] != made.headers["x-request-id"]
    for bad in ("has space", "x" * 129, "semi;colon", "new\tline"):
        answered = json_client.get("/healthz", headers={"x-request-id": bad})
        assert re.fullmatch(r"[0-9a-f]{16}", answered.headers["x-request-id"]), bad


def test_one_json_line_per_request(
    json_client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ogshot.request")
    response = json_client.get(
        "/og/minimal.png?title=Logged+once",
        headers={"x-request-id": "req-1", "user-agent": "LinkedInBot/1.0"},
    )
    assert response.status_code == 200
    failed = json_client.get("/og/minimal.png?nope=1", headers={"x-request-id": "req-2"})
    assert failed.status_code == 400
    lines = [
        json.loads(JsonFormatter().format(r)) for r in caplog.records if r.name == "ogshot.request"
    ]
    assert [line["request_id"] for line in lines] == ["req-1", "req-2"]
    ok, bad = lines
    assert ok["event"] == "request" and ok["method"] == "GET"
    assert ok["path"] == "/og/{template}.{format}"  # never the raw path with its parameters
    assert ok["template"] == "minimal" and ok["format"] == "png" and ok["status"] == 200
    assert ok["cache"] == "miss" and ok["bytes"] == len(response.content)
    assert ok["platform"] == "linkedin"
    assert {"capture", "encode", "store"} <= set(ok["stages_ms"])
    assert "Logged" not in json.dumps(ok)  # parameters are not logged
    assert bad["status"] == 400 and bad["error_kind"] == "parameter"
    assert "nope" in bad["error"]


def test_text_logs_have_no_request_lines(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ogshot.request")
    with TestClient(create_app(make_settings(tmp_path))) as client:
        assert client.get("/healthz").status_code == 200
    assert not [r for r in caplog.records if r.name == "ogshot.request"]


def test_a_real_server_logs_only_json_lines(tmp_path: Path) -> None:
    make_settings(tmp_path)
    env = serve_env(tmp_path, OGSHOT_LOG_FORMAT="json")
    with Server(env=env, cwd=tmp_path) as server:
        got = server.get("/og/minimal.png?title=x", headers={"x-request-id": "from-the-client"})
        assert got.status_code == 200
        assert got.headers["x-request-id"] == "from-the-client"
        server.terminate()
        output = server.output()
    lines = [line for line in output.splitlines() if line.strip()]
    parsed = [json.loads(line) for line in lines]  # every line, uvicorn's included
    requests = [p for p in parsed if p.get("event") == "request"]
    assert any(p["request_id"] == "from-the-client" and p["status"] == 200 for p in requests)
    assert all({"time", "level", "logger", "message"} <= set(p) for p in parsed)
    events = {p.get("event") for p in parsed}
    assert {"browser_start", "request", "shutdown"} <= events  # lifecycle events too
