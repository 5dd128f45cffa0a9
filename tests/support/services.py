"""Real servers that ogshot talks to, started by tests on a free loopback port with their own data
folder and stopped after: redis-server (Debian's package)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import pytest

from ogshot.bench.servers import ServerProcess, free_port

__all__ = ["PrometheusServer", "Receiver", "RedisServer", "free_port", "need"]


def need(binary: str, package: str) -> str:
    """The path of ``binary``; fails loudly (not a quiet skip) when .ci/setup did not install it."""
    path = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if path is None:
        pytest.fail(f"{binary} not found: .ci/setup installs the Debian package {package}")
    return path


class RedisServer:
    """``redis-server`` on 127.0.0.1:port, no persistence, its own folder. ``stop()`` kills it
    (SIGKILL: as a crash would) and ``start()`` brings it back on the same port, empty."""

    def __init__(self, folder: Path) -> None:
        self.binary = need("redis-server", "redis-server")
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        log = open(self.folder / "redis.log", "ab")  # noqa: SIM115 - the server owns it
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.folder),
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "no",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"redis-server exited: {(self.folder / 'redis.log').read_text()[-2000:]}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not answer within 10 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class PrometheusServer:
    """Debian's ``prometheus`` on 127.0.0.1:port, with its own storage folder and ``config`` (a
    scrape config such as deploy/prometheus.yml's, as a dict)."""

    def __init__(self, folder: Path, config: dict[str, Any]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        config_file = folder / "prometheus.yml"
        config_file.write_text(json.dumps(config))  # JSON is YAML
        self.server = ServerProcess(
            command=[
                need("prometheus", "prometheus"),
                f"--config.file={config_file}",
                f"--storage.tsdb.path={folder / 'data'}",
                "--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=1h",
            ],
            ready_path="/-/ready",
            log=folder / "prometheus.log",
        )
        self.base = self.server.base

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The result vector of an instant query; raises on a query error."""
        response = httpx.get(f"{self.base}/api/v1/query", params={"query": expr}, timeout=10)
        body = response.json()
        if body.get("status") != "success":
            raise AssertionError(f"query {expr!r} failed: {body}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def __enter__(self) -> PrometheusServer:
        self.server.start(timeout=30)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.close()


class Receiver:
    """An HTTP endpoint on loopback that keeps every POST (path, headers, body): the operator's
    webhook, or a Sentry server, as seen by ogshot."""

    def __init__(self) -> None:
        import http.server
        import threading

        received = self.received = []  # type: list[tuple[str, dict[str, str], bytes]]
        arrived = self.arrived = threading.Condition()
        self.fail = False

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with arrived:
                    received.append((self.path, dict(self.headers), body))
                    arrived.notify_all()
                self.send_response(500 if receiver.fail else 200)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        receiver = self
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait(self, count: int, timeout: float = 30.0) -> list[tuple[str, dict[str, str], bytes]]:
        """The first ``count`` POSTs, once they have arrived."""
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.received) >= count, timeout):
                raise AssertionError(f"{len(self.received)} of {count} POSTs within {timeout} s")
            return list(self.received)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
