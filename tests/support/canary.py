"""A canary: real servers on loopback that record every connection and packet that reaches them.

If a rendering page (or ogshot on its behalf) reaches one of them, it is recorded. TCP is recorded
at accept time, before any HTTP is read, so a WebSocket handshake or a bare connect counts too; a
UDP socket on the same port catches WebRTC's STUN packets.

"Nothing arrived" is only worth asserting once anything sent would have been seen:
``checkpoint()`` sends a control HTTP request and a control UDP packet from the test itself, waits
until the canary has recorded both, and only then returns what else arrived since the previous
checkpoint. The listening socket's backlog and the UDP socket's queue are first in, first out, so
every connection made and every packet sent before the control ones has been recorded by then.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Handler = Callable[[BaseHTTPRequestHandler], None]

CONTROL_PATH = "/ogshot-canary-control/"
CONTROL_PACKET = b"ogshot-canary-control "


@dataclass
class Arrival:
    kind: str  # "tcp" or "udp"
    what: str = ""  # the request path once read (TCP), the first bytes (UDP)
    control: bool = False

    def __str__(self) -> str:
        return f"{self.kind} {self.what or '(no request read yet)'}"


@dataclass
class Canary:
    host: str
    port: int
    arrivals: list[Arrival] = field(default_factory=list)
    checked: int = 0  # arrivals before this index were reported by a checkpoint
    tls: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def connections(self) -> int:
        return sum(1 for a in self.arrivals if a.kind == "tcp")

    @property
    def paths(self) -> list[str]:
        return [a.what for a in self.arrivals if a.kind == "tcp" and a.what]

    def record(self, arrival: Arrival) -> Arrival:
        with self.lock:
            self.arrivals.append(arrival)
        return arrival

    def checkpoint(self, timeout: float = 10.0) -> list[str]:
        """What arrived since the previous checkpoint (control requests left out), once a control
        request and a control packet sent now have arrived."""
        assert not self.tls, "checkpoints are for plain-HTTP canaries"
        token = uuid.uuid4().hex
        with urllib.request.urlopen(f"{self.base}{CONTROL_PATH}{token}", timeout=timeout) as r:
            assert r.read() == b"canary"  # the handler records the path before it answers
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.sendto(CONTROL_PACKET + token.encode(), (self.host, self.port))
        deadline = time.monotonic() + timeout
        wanted = {f"{CONTROL_PATH}{token}", (CONTROL_PACKET + token.encode()).decode()}
        while not wanted <= {a.what for a in self.arrivals if a.control}:
            assert time.monotonic() < deadline, "the canary did not see its control request"
            time.sleep(0.005)
        with self.lock:
            new, self.checked = self.arrivals[self.checked :], len(self.arrivals)
        return [str(a) for a in new if not a.control]


class _Recording(ThreadingHTTPServer):
    daemon_threads = True
    canary: Canary
    pending: dict[int, Arrival]

    def get_request(self) -> tuple[socket.socket, Any]:
        request = super().get_request()
        self.pending[id(request[0])] = self.canary.record(Arrival("tcp"))
        return request


def _handler(canary: Canary, answer: Handler | None) -> type[BaseHTTPRequestHandler]:
    class Recorder(BaseHTTPRequestHandler):
        server: _Recording

        def do_GET(self) -> None:
            arrival = self.server.pending.pop(id(self.request), None) or Arrival("tcp")
            arrival.what = self.path
            arrival.control = self.path.startswith(CONTROL_PATH)
            if answer is not None and not arrival.control:
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
    """A recording HTTP server (HTTPS with ``tls``), and a UDP socket, on ``host``, a free port."""
    canary = Canary(host, 0, tls=tls is not None)
    server = _Recording((host, 0), _handler(canary, answer))
    server.canary = canary
    server.pending = {}
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    canary.port = server.server_address[1]
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind((host, canary.port))
    udp.settimeout(0.2)
    stop = threading.Event()

    def record_udp() -> None:
        while not stop.is_set():
            try:
                packet, _ = udp.recvfrom(4096)
            except OSError:
                continue
            control = packet.startswith(CONTROL_PACKET)
            what = packet.decode() if control else repr(packet[:40])
            canary.record(Arrival("udp", what, control))

    threads = [
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True),
        threading.Thread(target=record_udp, daemon=True),
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
