"""A canary: real servers on loopback that count every connection made to them.

If a rendering page (or ogshot on its behalf) reaches one of them, the count goes up. TCP is counted
at accept time, before any HTTP is read, so a WebSocket handshake or a bare connect counts too; a
UDP socket on the same port catches WebRTC's STUN packets.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Handler = Callable[[BaseHTTPRequestHandler], None]


@dataclass
class Canary:
    host: str
    port: int
    connections: int = 0
    udp_packets: int = 0
    paths: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def hits(self) -> int:
        return self.connections + self.udp_packets


class _Counting(ThreadingHTTPServer):
    daemon_threads = True
    canary: Canary

    def get_request(self) -> tuple[socket.socket, Any]:
        request = super().get_request()
        self.canary.connections += 1
        return request


def _handler(canary: Canary, answer: Handler | None) -> type[BaseHTTPRequestHandler]:
    class Recorder(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            canary.paths.append(self.path)
            if answer is not None:
                answer(self)
                return
            body = b"canary"
            self.send_response(200)
            self.send_header("content-type", "text/plain")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Recorder


@contextmanager
def serve(
    host: str = "127.0.0.1", answer: Handler | None = None, tls: ssl.SSLContext | None = None
) -> Iterator[Canary]:
    """A counting HTTP server (HTTPS with ``tls``), and a UDP socket, on ``host``, a free port."""
    canary = Canary(host, 0)
    server = _Counting((host, 0), _handler(canary, answer))
    server.canary = canary
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    canary.port = server.server_address[1]
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind((host, canary.port))
    udp.settimeout(0.2)
    stop = threading.Event()

    def count_udp() -> None:
        while not stop.is_set():
            try:
                udp.recvfrom(4096)
            except OSError:
                continue
            canary.udp_packets += 1

    threads = [
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True),
        threading.Thread(target=count_udp, daemon=True),
    ]
    for thread in threads:
        thread.start()
    try:
        yield canary
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
        for thread in threads:
            thread.join(2)
        udp.close()
