"""clients/js (npm ``ogshot-url``) against a real ``ogshot serve``: Node's own test runner runs
clients/js/test/ with the server's address and secret, and the live tests fetch signed URLs
(200, PNG bytes), a tampered one (403), ``fetchVersions`` and every signing vector."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from tests.support.helpers import ROOT, make_settings
from tests.support.procs import Server, serve_env

VECTORS = json.loads((ROOT / "clients" / "signing-vectors.json").read_text(encoding="utf-8"))
SECRETS: list[str] = VECTORS["secrets"]  # the server verifies the vectors: both, in order


def node() -> str:
    found = shutil.which("node")
    assert found, "Node.js is needed for clients/js (nodejs in .ci/setup's SYSTEM_PACKAGES)"
    return found


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("served")
    make_settings(base)  # copies the shipped templates and static files under base
    env = serve_env(base, OGSHOT_SECRET=",".join(SECRETS))
    with Server(env=env, cwd=base) as running:
        yield running


def run_node_tests(env: dict[str, str]) -> tuple[int, str, dict[str, int]]:
    result = subprocess.run(
        [node(), "--test", "--test-reporter=tap", "clients/js/test/"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    counts = {
        k: int(v) for k, v in re.findall(r"^# (tests|pass|fail|skipped) (\d+)$", output, re.M)
    }
    return result.returncode, output, counts


def test_js_client_against_a_real_server(server: Server) -> None:
    env = {
        **os.environ,
        "OGSHOT_TEST_BASE": server.base,
        "OGSHOT_TEST_SECRET": SECRETS[0],
    }
    code, output, counts = run_node_tests(env)
    assert code == 0, output
    assert counts["fail"] == 0 and counts["skipped"] == 0, output
    live = 3 + len(VECTORS["vectors"])  # live.test.js: three tests and one per vector
    assert counts["pass"] >= live + len(VECTORS["vectors"]), output
    assert re.search(r"^ok \d+ - fetchVersions", output, re.M), output  # ran, not skipped


def test_without_a_server_the_live_tests_skip_and_the_rest_pass() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OGSHOT_TEST_")}
    code, output, counts = run_node_tests(env)
    assert code == 0, output
    assert counts["fail"] == 0, output
    assert counts["skipped"] == 3 + len(VECTORS["vectors"]), output
