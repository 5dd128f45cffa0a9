"""ops/sentry.py: failed renders reach a Sentry endpoint on loopback with their template and key
as tags, and no parameter ever leaves (the query string, body, cookies and headers are scrubbed)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from ogshot.ops.sentry import _scrub
from tests.support.helpers import make_settings
from tests.support.procs import Server, serve_env
from tests.support.services import Receiver

BROKEN = "<p>{{ missing_variable.attr }}</p>"  # fails while rendering, after validation


def test_sentry_gets_failed_renders_with_tags_and_without_parameters(tmp_path: Path) -> None:
    make_settings(tmp_path)
    (tmp_path / "html_templates" / "broken.html").write_text(BROKEN)
    with Receiver() as sentry:
        dsn = f"http://public@127.0.0.1:{sentry.port}/1"
        env = serve_env(tmp_path, OGSHOT_SENTRY_DSN=dsn)
        with Server(env=env, cwd=tmp_path) as server:
            got = server.get("/og/broken.png?title=TopSecretDraftTitle")
            assert got.status_code == 500
            posts = sentry.wait(1)
            server.terminate()
    path, _headers, raw = posts[0]
    assert path == "/api/1/envelope/"
    body = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    assert b"TopSecretDraftTitle" not in body
    items = [json.loads(line) for line in body.splitlines() if line.strip()]
    events = [item for item in items if "exception" in item]
    assert events, items
    tags = events[0]["tags"]
    assert tags["template"] == "broken" and len(tags["key"]) == 64


def test_events_leave_without_parameters_cookies_or_other_headers() -> None:
    event: dict[str, Any] = {
        "request": {
            "url": "https://og.example.com/og/article.png?title=TopSecret",
            "query_string": "title=TopSecret",
            "data": {"title": "TopSecret"},
            "cookies": {"session": "abc"},
            "env": {"REMOTE_ADDR": "10.0.0.1"},
            "headers": {
                "User-Agent": "Twitterbot/1.0",
                "Cookie": "session=abc",
                "X-Request-ID": "r1",
            },
        },
        "tags": {"template": "article"},
    }
    scrubbed = _scrub(event, None)
    assert scrubbed["request"] == {
        "url": "https://og.example.com/og/article.png",
        "headers": {"User-Agent": "Twitterbot/1.0", "X-Request-ID": "r1"},
    }
    assert "TopSecret" not in json.dumps(scrubbed)
    assert scrubbed["tags"] == {"template": "article"}
