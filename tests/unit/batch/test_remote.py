"""The fleet client of ``ogshot build --server`` against a real HTTP server on loopback: which
failures it tries again and how many times."""

from __future__ import annotations

import asyncio
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from ogshot.batch.remote import FleetClient
from ogshot.core.errors import OgshotError
from tests.support.canary import serve
from tests.support.helpers import make_settings
from tests.support.procs import free_port

PNG = b"\x89PNG\r\n\x1a\n fleet bytes"


def answer_png(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("content-type", "image/png")
    handler.send_header("content-length", str(len(PNG)))
    handler.end_headers()
    handler.wfile.write(PNG)


def test_a_refusal_before_the_fleet_ever_answered_is_not_retried(tmp_path: Path) -> None:
    """Nothing listens there: one attempt, however many retries are allowed, and a reason that
    says so (a long first pause would make a retry take the whole test's timeout)."""
    closed = f"http://127.0.0.1:{free_port()}"

    async def fetch() -> str:
        async with FleetClient(
            closed, make_settings(tmp_path), concurrency=1, retries=7, first_pause=600
        ) as fleet:
            with pytest.raises(OgshotError) as caught:
                await asyncio.wait_for(fleet.image("minimal", {"title": "x"}, "png"), 30)
            return caught.value.message

    message = asyncio.run(fetch())
    assert message.startswith(f"{closed}: ConnectError: ")
    assert "nothing answers there: is the server running" in message
    assert not message.endswith("attempts)")  # tried once


def test_a_refusal_after_the_fleet_answered_is_retried_as_a_restart(tmp_path: Path) -> None:
    async def fetch() -> tuple[bytes, str]:
        with serve(answer=answer_png) as node:
            fleet = FleetClient(
                node.base, make_settings(tmp_path), concurrency=1, retries=3, first_pause=0.01
            )
            first = await fleet.image("minimal", {"title": "up"}, "png")
            assert node.paths[0].startswith("/og/minimal.png?")  # it did answer
        try:  # the server is gone: its port now refuses, as a restarting node's does
            with pytest.raises(OgshotError) as caught:
                await fleet.image("minimal", {"title": "restarting"}, "png")
        finally:
            await fleet.client.aclose()
        return first.body, caught.value.message

    body, message = asyncio.run(fetch())
    assert body == PNG
    assert ": ConnectError: " in message and message.endswith("(after 4 attempts)")


def test_retries_below_zero_are_refused(tmp_path: Path) -> None:
    with pytest.raises(OgshotError, match="retries must be 0 or more, not -1"):
        FleetClient("http://127.0.0.1:9", make_settings(tmp_path), concurrency=1, retries=-1)
