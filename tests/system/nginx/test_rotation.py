"""Rolling a new signing secret over a fleet, node by node, answers no URL with 403.

The real nginx with deploy/nginx.conf in front of two real ``ogshot serve`` nodes; a client keeps
requesting freshly signed URLs (each one new, so nginx's cache answers none of them and every one
is checked by a node) while the nodes are restarted one at a time with the next step's settings,
in the order docs/operations/secret-rotation.md gives:

1. the new secret as verify-only (``OGSHOT_VERIFY_SECRETS``) on every node;
2. the new secret first in ``OGSHOT_SECRET`` (it signs, the old one still verifies);
3. the apps sign with the new secret;
4. the old secret dropped.

At each step, while the two nodes disagree, every kind of URL the apps may hold at that moment
must have been answered by both nodes (read from nginx's access log), all with 200; a URL signed
with a secret no node knows stays 403 throughout.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from ogshot.core.settings import Settings
from ogshot.templates.signing import signed_path
from tests.support.helpers import make_settings
from tests.support.nginx import NGINX, running_nginx
from tests.support.procs import Server, free_port, serve_env, wait_for

pytestmark = pytest.mark.skipif(
    not Path(NGINX).exists(),
    reason="NGINX IS NOT INSTALLED: `bash .ci/setup` installs Debian's nginx package",
)

OLD, NEW, UNKNOWN = "rotation-old-2025", "rotation-new-2026", "nobody-knows-this-one"
SECRETS = {"old": OLD, "new": NEW, "unknown": UNKNOWN}
# "$request" $status $body_bytes_sent cache=... upstream=... (deploy/nginx.conf's log_format)
LOG_LINE = re.compile(r'"GET (\S+) HTTP/1\.1" (\d{3}) \d+ cache=\S+ upstream=(.*?) rt=')


@dataclass
class Client:
    """Requests, one after another, a new URL signed with each secret in ``labels``."""

    base: str
    settings: Settings
    step: str = "start"
    labels: tuple[str, ...] = ("old",)
    answers: list[tuple[str, str, int]] = field(default_factory=list)  # (step, label, status)
    stop: threading.Event = field(default_factory=threading.Event)

    def url(self, label: str, n: int) -> str:
        title = f"{self.step} {label} {n}"
        return signed_path(self.settings, "minimal", {"title": title}, "png", secret=SECRETS[label])

    def run(self) -> None:
        n = rounds = 0
        with httpx.Client(base_url=self.base, timeout=60) as http:
            while not self.stop.is_set():
                step, labels = self.step, self.labels
                # Every other round backwards: with two labels in turn and nginx's round robin
                # over two nodes, each label would otherwise only ever reach one node.
                rounds += 1
                for label in labels if rounds % 2 else labels[::-1]:
                    n += 1
                    status = http.get(self.url(label, n)).status_code
                    self.answers.append((step, label, status))


@dataclass
class Fleet:
    base: Path
    ports: list[int]
    edge: Path
    url: str = ""  # nginx
    starts: int = 0
    nodes: list[Server | None] = field(default_factory=lambda: [None, None])

    def start_node(self, i: int, **env: str) -> None:
        """Node ``i`` with these secrets, on its fixed port (nginx's upstream): the old process
        stopped first, as a rolling restart does."""
        old = self.nodes[i]
        if old is not None:
            old.terminate()  # SIGTERM: in-flight requests finish
            old.close()
        extra = {"OGSHOT_CACHE_DIR": str(self.base / f"cache-{i}"), **env}
        node = Server("--access-log", env=serve_env(self.base, **extra), cwd=self.base)
        node.port, node.base = self.ports[i], f"http://127.0.0.1:{self.ports[i]}"
        node.env["OGSHOT_PORT"] = str(self.ports[i])
        self.starts += 1
        node.log = self.base / f"serve-{i}-{self.starts}.log"  # this process's output only
        self.nodes[i] = node.start()

    def seen(self) -> list[tuple[str, str, int, str]]:
        """(step, label, status, upstream) of every /og request in nginx's access log."""
        log = self.edge / "access.log"
        found = []
        for path, status, upstream in LOG_LINE.findall(log.read_text() if log.exists() else ""):
            title = re.search(r"title=([a-z0-9]+)%20([a-z]+)%20", path)
            if title:  # the node that answered: the last one nginx tried
                found.append((title[1], title[2], int(status), upstream.split(", ")[-1]))
        return found

    def answering(self, i: int) -> bool:
        """Whether node ``i``'s current process answered an /og request (its own access log):
        nginx sends it traffic again. A node that refused connections while it restarted is left
        out for fail_timeout; restarting the other one meanwhile would leave none."""
        node = self.nodes[i]
        return node is not None and '"GET /og/' in node.output()

    def both_nodes_answered(self, step: str, labels: tuple[str, ...]) -> bool:
        """Each label's URLs of ``step`` reached each node at least twice."""
        seen = self.seen()
        return all(
            sum(
                1
                for s, lab, _, up in seen
                if s == step and lab == label and up == f"127.0.0.1:{port}"
            )
            >= 2
            for label in labels
            for port in self.ports
        )


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    make_settings(tmp_path)  # the template and static copies the nodes serve
    edge = tmp_path / "nginx"
    edge.mkdir()
    port = free_port()
    fleet = Fleet(tmp_path, [free_port(), free_port()], edge, f"http://127.0.0.1:{port}")
    try:
        for i in range(2):
            fleet.start_node(i, OGSHOT_SECRET=OLD)
        # A node refused while it restarted is left out for fail_timeout: 1 s instead of the
        # shipped 10 s, as each of the eight restarts waits for nginx to send it traffic again.
        with running_nginx(fleet.ports, port, edge, fail_timeout="1s"):
            yield fleet
    finally:
        for node in fleet.nodes:
            if node is not None:
                node.close()


def test_a_secret_rolled_node_by_node_never_answers_403(fleet: Fleet) -> None:
    edge = fleet.url
    client = Client(edge, make_settings(fleet.base))
    worker = threading.Thread(target=client.run, daemon=True)

    def step(name: str, labels: tuple[str, ...], node_env: dict[str, str]) -> None:
        """Restart node 0 with the step's settings; with the nodes disagreeing, wait until both
        answered every kind of URL; then restart node 1 (the step done on the whole fleet)."""
        client.step, client.labels = name, labels
        restart(0, node_env)
        assert wait_for(lambda: fleet.both_nodes_answered(name, labels), timeout=90), (
            name,
            fleet.seen()[-10:],
        )
        restart(1, node_env)

    def restart(i: int, node_env: dict[str, str]) -> None:
        """One node at a time, and the next only once nginx sends this one traffic again."""
        fleet.start_node(i, **node_env)
        assert wait_for(lambda: fleet.answering(i), timeout=60), fleet.seen()[-10:]

    def unknown_is_refused() -> None:
        answer = httpx.get(edge + client.url("unknown", 0), timeout=60)
        assert answer.status_code == 403, answer.text
        assert answer.json()["detail"] == {"parameter": "s"}

    try:
        worker.start()
        assert wait_for(lambda: len(client.answers) >= 2, timeout=60)
        unknown_is_refused()
        # 1. the new secret reaches every node, verify-only: apps still sign with the old one,
        # and a URL signed with the new one already passes the nodes that know it.
        step("one", ("old",), {"OGSHOT_SECRET": OLD, "OGSHOT_VERIFY_SECRETS": NEW})
        unknown_is_refused()
        # 2. the new secret signs on every node (the old one still verifies): URLs the nodes
        # sign (the studio's) and early apps use it, late apps still the old one.
        step("two", ("old", "new"), {"OGSHOT_SECRET": f"{NEW},{OLD}"})
        unknown_is_refused()
        # 3. the apps sign with the new secret; pages already out there keep old URLs.
        client.step, client.labels = "three", ("new", "old")
        assert wait_for(lambda: sum(a[0] == "three" for a in client.answers) >= 4, timeout=60)
        # 4. the old secret dropped, node by node: only new URLs are made now.
        step("four", ("new",), {"OGSHOT_SECRET": NEW})
        unknown_is_refused()
        assert wait_for(lambda: sum(a[0] == "four" for a in client.answers) >= 8, timeout=60)
    finally:
        client.stop.set()
        worker.join(90)

    refused = [a for a in client.answers if a[2] != 200]
    assert not refused, refused[:10]
    steps = {a[0] for a in client.answers}
    assert {"one", "two", "three", "four"} <= steps
    # The access log agrees: no URL of any step was refused by either node.
    assert [s for s in fleet.seen() if s[1] != "unknown" and s[2] != 200] == []
    # And once the old secret is gone everywhere, its URLs are refused, by each node.
    for node in fleet.nodes:
        assert node is not None
        gone = node.get(client.url("old", 0))
        assert gone.status_code == 403, gone.text


def test_a_new_secret_signing_before_every_node_knows_it_is_refused(fleet: Fleet) -> None:
    """The control: skipping step 1 is what answered every other new URL with 403, so the test
    above would see it if the verify-only secret did nothing."""
    client = Client(fleet.url, make_settings(fleet.base), step="skip", labels=("new",))
    fleet.start_node(0, OGSHOT_SECRET=f"{NEW},{OLD}")  # node 1 still knows only the old one
    for n in range(12):
        httpx.get(fleet.url + client.url("new", n), timeout=60)
    assert wait_for(lambda: len([s for s in fleet.seen() if s[0] == "skip"]) >= 12)
    statuses: dict[int, set[int]] = {}
    for _, _, status, upstream in fleet.seen():
        statuses.setdefault(int(upstream.rsplit(":", 1)[1]), set()).add(status)
    assert statuses.get(fleet.ports[0]) == {200}, statuses
    assert statuses.get(fleet.ports[1]) == {403}, statuses
