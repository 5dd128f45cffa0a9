"""An image server for remote-image tests: what it answers at each path (good images, redirects,
oversized and slow bodies, disguised files), and a test DNS and address policy that let ogshot's
fetcher reach it on loopback and nowhere else."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler

import pyvips

from ogshot.engine.egress import Address, is_public_address

IMAGE_HOST = "127.0.0.2"


def solid_png(rgb: Sequence[int]) -> bytes:
    return bytes(pyvips.Image.black(16, 16).new_from_image(list(rgb)).pngsave_buffer())


class Origin:
    """What the image server answers; tests change ``image`` to change the bytes."""

    def __init__(self) -> None:
        self.image = solid_png([255, 0, 0])
        self.canary_port = 0

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path
        if path == "/ok.png":
            self._send(handler, 200, "image/png", self.image)
        elif path == "/hop":
            self._redirect(handler, "/ok.png")
        elif path == "/loop":
            self._redirect(handler, "/loop")
        elif path == "/to-canary-ip":
            self._redirect(handler, f"http://127.0.0.1:{self.canary_port}/x.png")
        elif path == "/to-canary-name":
            self._redirect(handler, f"http://evil.test:{self.canary_port}/x.png")
        elif path == "/to-file":
            self._redirect(handler, "file:///etc/passwd")
        elif path == "/big":
            self._send(handler, 200, "image/png", self.image, length=10_000_000)
        elif path == "/endless":  # no Content-Length, more bytes than the cap
            handler.send_response(200)
            handler.send_header("content-type", "image/png")
            handler.end_headers()
            handler.wfile.write(self.image)
            for _ in range(200):
                handler.wfile.write(b"\0" * 65536)
        elif path == "/slow":
            handler.send_response(200)
            handler.send_header("content-type", "image/png")
            handler.end_headers()
            for _ in range(30):  # a byte every 0.1 s: no single read times out
                handler.wfile.write(b"\0")
                handler.wfile.flush()
                time.sleep(0.1)
        elif path == "/html":
            self._send(handler, 200, "text/html", b"<script>alert(1)</script>")
        elif path == "/fake.png":  # says PNG, is not
            self._send(handler, 200, "image/png", b"<svg onload=alert(1)>" + b"x" * 100)
        elif path == "/image.svg":
            svg = b'<svg xmlns="http://www.w3.org/2000/svg"><image href="http://127.0.0.1/"/></svg>'
            self._send(handler, 200, "image/svg+xml", svg)
        else:
            self._send(handler, 404, "text/plain", b"not found")

    def _send(
        self,
        handler: BaseHTTPRequestHandler,
        status: int,
        kind: str,
        body: bytes,
        length: int | None = None,
    ) -> None:
        handler.send_response(status)
        handler.send_header("content-type", kind)
        handler.send_header("content-length", str(length if length is not None else len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def _redirect(self, handler: BaseHTTPRequestHandler, location: str) -> None:
        handler.send_response(302)
        handler.send_header("location", location)
        handler.send_header("content-length", "0")
        handler.end_headers()


class Resolver:
    """A test DNS: a fixed answer per name, and a record of every question."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        if host not in self.answers:
            raise OSError(f"test resolver: no such name {host}")
        return self.answers[host]


def only_image_host(address: Address) -> bool:
    """The test policy: the image server's address, and nothing else on loopback."""
    return address == ipaddress.IPv4Address(IMAGE_HOST) or is_public_address(address)
