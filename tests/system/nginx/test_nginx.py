"""deploy/nginx.conf, run by the real nginx (Debian's package, with its cache-purge module) in front
of two real ``ogshot serve`` nodes sharing a real redis-server: the second request for an image is
answered by nginx alone, misses are collapsed and spread over both nodes, only the image routes are
exposed, purges by URL and by template reach nginx's cache and a webhook, and clients are
rate-limited.

The tests share one fleet and run in file order; the last one stops both nodes."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.support.helpers import image_of, make_settings
from tests.support.nginx import NGINX, running_nginx, serving
from tests.support.procs import Server, free_port, serve_env, wait_for
from tests.support.services import Receiver, RedisServer

pytestmark = pytest.mark.skipif(
    not Path(NGINX).exists(),
    reason="NGINX IS NOT INSTALLED: `bash .ci/setup` installs Debian's nginx package",
)


TOKEN = "edge-admin-token"


@dataclass
class Fleet:
    base: str  # nginx
    nodes: list[Server]
    logs: Path
    receiver: Receiver  # the purge webhook

    def purge(self, what: dict[str, Any]) -> dict[str, Any]:
        """POST /admin/purge on a node (the edge hides /admin): the answer's JSON."""
        answer = httpx.post(
            f"{self.nodes[0].base}/admin/purge",
            json=what,
            headers={"authorization": f"Bearer {TOKEN}"},
            timeout=60,
        )
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(f"{self.base}{path}", timeout=60, **kwargs)

    def reached(self, path: str) -> int:
        """How many times ``path`` reached a node (from the nodes' access logs)."""
        needle = f'"GET {path} HTTP/1.1"'
        return sum(node.output().count(needle) for node in self.nodes)

    def upstreams(self) -> list[str]:
        log = self.logs / "access.log"
        return re.findall(r"upstream=(\S+)", log.read_text()) if log.exists() else []


@pytest.fixture(scope="module")
def fleet(module_dir: Path) -> Iterator[Fleet]:
    make_settings(module_dir)  # the template and static copies the nodes serve
    port = free_port()
    redis = RedisServer(module_dir / "redis").start()
    receiver = Receiver()
    nodes = [
        Server(
            "--access-log",
            env=serve_env(
                module_dir,
                OGSHOT_CACHE_DIR=str(module_dir / f"cache-{i}"),
                OGSHOT_REDIS_URL=redis.url,
                OGSHOT_ADMIN_TOKEN=TOKEN,
                OGSHOT_EDGE_PURGE_URL=f"http://127.0.0.1:{port}/purge",
                OGSHOT_PURGE_WEBHOOK=receiver.url,
            ),
            cwd=module_dir,
        )
        for i in range(2)
    ]
    edge = module_dir / "nginx"
    edge.mkdir()
    try:
        for node in nodes:
            node.start()
        with running_nginx([n.port for n in nodes], port, edge) as base:
            yield Fleet(base, nodes, edge, receiver)
    finally:
        for node in nodes:
            node.kill()
        receiver.close()
        redis.stop()


def test_the_second_request_is_answered_by_nginx_alone(fleet: Fleet) -> None:
    path = "/og/article.png?title=Cached%20at%20the%20edge"
    first = fleet.get(path)
    assert first.status_code == 200, first.text
    assert first.headers["x-cache-status"] == "MISS"
    assert first.headers["cache-control"] == (
        "public, max-age=86400, stale-while-revalidate=604800, stale-if-error=604800"
    )
    assert (image_of(first.content).width, image_of(first.content).height) == (1200, 630)
    assert wait_for(lambda: fleet.reached(path) == 1)  # the miss shows in a node's log

    second = fleet.get(path)
    assert second.headers["x-cache-status"] == "HIT"
    assert second.content == first.content
    assert second.headers["etag"] == first.headers["etag"]
    # A byte range is cut from the cached copy.
    part = fleet.get(path, headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and part.content == first.content[:100]
    assert part.headers["x-cache-status"] == "HIT"

    # Had the hit reached a node, it would be logged before this later miss is.
    marker = "/og/article.png?title=Later"
    assert fleet.get(marker).headers["x-cache-status"] == "MISS"
    assert wait_for(lambda: fleet.reached(marker) == 1)
    assert fleet.reached(path) == 1


def test_concurrent_misses_reach_a_node_once(fleet: Fleet) -> None:
    path = "/og/launch.png?title=Everyone%20at%20once"
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: fleet.get(path), range(6)))
    assert {a.status_code for a in answers} == {200}
    assert len({a.content for a in answers}) == 1
    assert sorted(a.headers["x-cache-status"] for a in answers).count("MISS") == 1
    assert fleet.reached(path) == 1


def test_misses_are_spread_over_both_nodes(fleet: Fleet) -> None:
    before = len(fleet.upstreams())
    for i in range(6):
        answer = fleet.get(f"/og/minimal.png?title=Node%20{i}")
        assert answer.status_code == 200 and answer.headers["x-cache-status"] == "MISS"
    assert wait_for(lambda: len(fleet.upstreams()) >= before + 6)
    used = set(fleet.upstreams()[before:])
    assert used == {f"127.0.0.1:{node.port}" for node in fleet.nodes}


def test_only_image_routes_are_exposed(fleet: Fleet) -> None:
    hidden = ["/preview", "/preview/article", "/admin/purge", "/metrics", "/readyz", "/"]
    before = {path: fleet.reached(path) for path in [*hidden, "/healthz"]}
    assert fleet.get("/healthz").json()["status"] == "ok"  # proxied: the control
    for path in hidden:
        answer = fleet.get(path)
        assert answer.status_code == 404, path
        assert answer.headers["server"] == "nginx" and "nginx" in answer.text, path
    purge = httpx.post(f"{fleet.base}/admin/purge", headers={"Authorization": "Bearer x"})
    assert purge.status_code == 404 and "nginx" in purge.text
    assert wait_for(lambda: fleet.reached("/healthz") > before["/healthz"])  # logged, as proxied
    assert {path: fleet.reached(path) for path in hidden} == {p: before[p] for p in hidden}


def test_no_store_answers_are_never_cached(fleet: Fleet) -> None:
    path = "/og/no-such-template.png?title=x"
    for _ in range(2):
        answer = fleet.get(path)
        assert answer.status_code == 404 and answer.json()["error"]
        assert answer.headers["cache-control"] == "no-store"
        assert answer.headers["x-cache-status"] == "MISS"
    assert wait_for(lambda: fleet.reached(path) == 2)


def test_images_carry_cache_tags_for_cdns(fleet: Fleet) -> None:
    answer = fleet.get("/og/article.png?title=Tagged")
    assert answer.status_code == 200
    surrogate = answer.headers["surrogate-key"].split(" ")
    assert surrogate[:2] == ["ogshot", "tmpl-article"]
    assert re.fullmatch(r"key-[0-9a-f]{64}", surrogate[2])
    assert answer.headers["cache-tag"] == ",".join(surrogate)
    # The key is the image's cache key: a purge by that key names the same one.
    (key,) = fleet.purge({"url": "/og/article.png?title=Tagged"})["keys"]
    assert surrogate[2] == f"key-{key}"


def test_a_purge_by_url_reaches_the_edge_and_the_webhook(fleet: Fleet) -> None:
    path = "/og/article.png?title=Purged%20at%20the%20edge"
    first = fleet.get(path)
    assert first.headers["x-cache-status"] == "MISS"
    assert fleet.get(path).headers["x-cache-status"] == "HIT"
    assert wait_for(lambda: fleet.reached(path) == 1)
    posted = len(fleet.receiver.received)

    answer = fleet.purge({"url": f"https://og.example.com{path}"})
    assert answer["edge"]["purged"] == 1 and answer["edge"]["failed"] == [], answer
    assert answer["edge"]["uris"] == [path] and answer["edge"]["webhook"] is True
    (key,) = answer["keys"]

    again = fleet.get(path)  # from a node again, not from nginx's cache
    assert again.status_code == 200 and again.headers["x-cache-status"] == "MISS"
    assert again.headers["x-ogshot-cache"] == "miss"  # purged from the nodes' caches too
    assert wait_for(lambda: fleet.reached(path) == 2)
    assert fleet.get(path).headers["x-cache-status"] == "HIT"

    hook_path, headers, body = fleet.receiver.wait(posted + 1)[posted]
    assert hook_path == "/hook" and headers["Content-Type"] == "application/json"
    assert json.loads(body) == {
        "event": "purge",
        "urls": [path],
        "keys": [key],
        "templates": [],
        "tags": [f"key-{key}"],
        "generation": answer["generation"],
    }


def test_a_purge_by_template_reaches_every_url_of_it_at_the_edge(fleet: Fleet) -> None:
    data = quote(json.dumps({"quote": "Both forms", "author": "Edge"}))
    paths = [
        "/og/quote.png?quote=One&author=Edge",
        "/og/quote.png?author=Edge&quote=One",  # the same image under another URI
        "/og/quote.jpg?quote=Two&author=Edge",
        f"/og?template=quote&data={data}&format=webp",
    ]
    other = "/og/minimal.png?title=Not%20a%20quote"
    for path in [*paths, other]:  # one request each, spread over both nodes
        assert fleet.get(path).headers["x-cache-status"] == "MISS", path
    for path in [*paths, other]:
        assert fleet.get(path).headers["x-cache-status"] == "HIT", path
    posted = len(fleet.receiver.received)

    answer = fleet.purge({"template": "quote"})
    assert answer["template"] == "quote" and answer["deleted"] >= 3
    assert sorted(answer["edge"]["uris"]) == sorted(paths)
    assert answer["edge"]["purged"] == len(paths) and answer["edge"]["failed"] == []

    for path in paths:
        assert fleet.get(path).headers["x-cache-status"] == "MISS", path
    assert fleet.get(other).headers["x-cache-status"] == "HIT"
    _, _, body = fleet.receiver.wait(posted + 1)[posted]
    hook = json.loads(body)
    assert hook["templates"] == ["quote"] and hook["tags"] == ["tmpl-quote"]
    assert sorted(hook["urls"]) == sorted(paths) and hook["keys"] == []


def test_purge_is_refused_from_other_addresses(fleet: Fleet) -> None:
    path = "/og/minimal.png?title=Only%20loopback%20purges"
    fleet.get(path)
    assert fleet.get(path).headers["x-cache-status"] == "HIT"
    # 127.0.0.2 is loopback too, but not an address the shipped config allows.
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(transport=transport, timeout=30) as client:
        refused = client.request("PURGE", f"{fleet.base}/purge{path}")
        assert refused.status_code == 403
        assert client.get(f"{fleet.base}{path}").headers["x-cache-status"] == "HIT"
    allowed = httpx.request("PURGE", f"{fleet.base}/purge{path}", timeout=30)
    assert allowed.status_code == 200
    assert httpx.request("PURGE", f"{fleet.base}/purge{path}", timeout=30).status_code == 404
    assert fleet.get(path).headers["x-cache-status"] == "MISS"


def test_a_redirect_keeps_the_port_and_the_log_the_request_id(fleet: Fleet) -> None:
    answer = fleet.get("/og/", follow_redirects=False)
    assert answer.status_code in (301, 307, 308), answer.text
    assert answer.headers["location"] == f"{fleet.base}/og"
    request_id = fleet.get("/og/minimal.png?title=Logged").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)  # nginx's $request_id, echoed by the node
    log = fleet.logs / "access.log"
    assert wait_for(lambda: f"id={request_id}" in log.read_text())


def test_clients_over_the_rate_limit_get_429(fleet: Fleet) -> None:
    path = "/og/minimal.png?title=Rate%20limited"
    assert fleet.get(path).status_code == 200
    # 50 a second with bursts of 200: 600 requests as fast as 16 threads go is over it.
    with httpx.Client(timeout=30) as client, ThreadPoolExecutor(16) as pool:
        statuses = list(
            pool.map(lambda _: client.get(f"{fleet.base}{path}").status_code, range(600))
        )
    assert set(statuses) == {200, 429}, sorted(set(statuses))
    assert 200 <= statuses.count(200) < 600
    # The bucket drains at 50 a second: a few seconds on, the client is served again.
    assert wait_for(lambda: fleet.get(path).status_code == 200, timeout=10, interval=0.5)


def test_hits_are_served_with_every_node_stopped(fleet: Fleet) -> None:
    """Last: it stops the fleet's nodes."""
    path = "/og/article.png?title=Survives%20the%20nodes"
    first = fleet.get(path)
    assert first.headers["x-cache-status"] == "MISS"
    for node in fleet.nodes:
        node.terminate()
    assert all(not serving(f"{node.base}/healthz") for node in fleet.nodes)

    third = fleet.get(path)
    assert third.status_code == 200
    assert third.headers["x-cache-status"] == "HIT"
    assert third.content == first.content
    assert fleet.get("/og/article.png?title=Never%20rendered").status_code == 502
