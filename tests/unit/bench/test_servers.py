"""The server harness (ogshot/serverproc.py) that the bench, the soak and the tests start servers
with: readiness, the error when a server cannot start, its process tree and memory, stopping."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ogshot.bench.floor import store
from ogshot.bench.servers import ServerProcess, running, tree_memory
from tests.support.procs import alive


def floor(cache: Path) -> ServerProcess:
    """A small real server (no Chromium): the bench's floor app over ``cache``."""
    return ServerProcess(
        env={"OGSHOT_FLOOR_CACHE_DIR": str(cache)},
        command=[sys.executable, "-m", "ogshot.bench.floor", "--port", "{port}"],
    )


def test_servers_start_side_by_side_answer_and_stop(tmp_path: Path) -> None:
    for name in ("a", "b"):
        store(str(tmp_path / name), "/og/x.png", "", name.encode(), "image/png", '"e"', "no-cache")
    first, second = floor(tmp_path / "a"), floor(tmp_path / "b")
    with running(first, second):
        assert first.port != second.port
        assert first.fetch("/og/x.png") == (200, b"a")  # each with its own cache folder
        assert second.fetch("/og/x.png") == (200, b"b")
        assert first.fetch("/og/y.png")[0] == 404
        assert first.marked() == {first.pid}  # its marker is its own
        rss, pss = tree_memory(first.pid)
        assert rss >= pss > 0
        pids = [first.pid, second.pid]
    assert not any(alive(pid) for pid in pids)
    assert "Uvicorn running on http://127.0.0.1:" in first.output()  # SIGTERM: a clean shutdown
    assert "Shutting down" in first.output()


def test_a_server_that_cannot_start_says_why(tmp_path: Path) -> None:
    server = ServerProcess(env={"OGSHOT_POOL_SIZE": "many"}, cwd=tmp_path)
    with pytest.raises(RuntimeError) as caught:
        server.start(timeout=60)
    message = str(caught.value)
    assert "exited with" in message
    assert "OGSHOT_POOL_SIZE" in message and "many" in message  # the server's own error
    assert server.process is not None and server.process.poll() is not None
