"""Images from a running fleet instead of a local Chromium: ``ogshot build --server URL``.

Each image is downloaded from its signed ``/og`` URL (signed with ``OGSHOT_SECRET`` as the fleet
checks it) through the fleet's load balancer, with httpx; a 503 (a node overloaded or restarting)
or a dropped connection is tried again after a pause (``Retry-After`` when the node says one, with
jitter so that the downloads turned away together do not all come back together), up to
``retries`` more times (``ogshot build --retries``, default ``RETRIES``). A connection refused
before the fleet ever answered is not tried again: nothing listens at that URL (a typo, a server
not started), and waiting out the whole backoff would only delay saying so; once the fleet has
answered, a refusal is a node or load balancer restarting and is retried. Anything else that is
not a 200 is the row's error, with the server's JSON ``error``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass

import httpx

from ogshot.core.errors import OgshotError
from ogshot.core.settings import Settings
from ogshot.templates.signing import signed_path

__all__ = ["RETRIES", "Fetched", "FleetClient"]

RETRIES = 7  # after the first attempt: about 35 s of backoff, long enough for a node to restart
FIRST_PAUSE, MAX_PAUSE = 0.5, 10.0  # seconds between attempts, doubling
TIMEOUT = 60.0  # seconds per download (a miss waits for its render on the node)


@dataclass(frozen=True)
class Fetched:
    body: bytes
    content_type: str


class FleetClient:
    """A client of the fleet at ``base`` (``https://og.example.com``); use as ``async with``."""

    def __init__(
        self,
        base: str,
        settings: Settings,
        *,
        concurrency: int,
        retries: int = RETRIES,
        first_pause: float = FIRST_PAUSE,
    ) -> None:
        if retries < 0:
            raise OgshotError(f"retries must be 0 or more, not {retries}")
        self.base = base.rstrip("/")
        self.settings = settings
        self.attempts = retries + 1
        self.first_pause = first_pause
        self.answered = False  # the fleet has answered once: a later refusal is a restart
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        self.client = httpx.AsyncClient(base_url=self.base, limits=limits, timeout=TIMEOUT)

    async def __aenter__(self) -> FleetClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.client.aclose()

    def path(self, template: str, params: dict[str, object], fmt: str) -> str:
        return signed_path(self.settings, template, params, fmt)

    async def image(self, template: str, params: dict[str, object], fmt: str) -> Fetched:
        """The image's bytes from the fleet; raises OgshotError with the reason otherwise."""
        path = self.path(template, params, fmt)
        pause = self.first_pause
        for attempt in range(1, self.attempts + 1):
            try:
                response = await self.client.get(path)
            except httpx.ConnectError as exc:
                if not self.answered:
                    raise OgshotError(
                        f"{self.base}: ConnectError: {exc} (nothing answers there: is the "
                        f"server running, is the URL right?)"
                    ) from None
                if attempt == self.attempts:
                    raise OgshotError(_failed(self.base, exc, attempt)) from None
            except httpx.TransportError as exc:
                if attempt == self.attempts:
                    raise OgshotError(_failed(self.base, exc, attempt)) from None
            else:
                self.answered = True
                if response.status_code == 200:
                    return Fetched(response.content, response.headers.get("content-type", ""))
                if response.status_code != 503 or attempt == self.attempts:
                    raise OgshotError(_reason(response, attempt))
                pause = _retry_after(response, pause)
            await asyncio.sleep(pause * random.uniform(0.5, 1.5))
            pause = min(pause * 2, MAX_PAUSE)
        raise AssertionError("unreachable")


def _retry_after(response: httpx.Response, pause: float) -> float:
    try:
        return min(max(float(response.headers.get("retry-after", "")), 0.0), MAX_PAUSE)
    except ValueError:
        return pause


def _failed(base: str, exc: httpx.TransportError, attempts: int) -> str:
    tried = f" (after {attempts} attempts)" if attempts > 1 else ""
    return f"{base}: {type(exc).__name__}: {exc}{tried}"


def _reason(response: httpx.Response, attempts: int) -> str:
    error = response.headers.get("x-ogshot-error", "")
    if response.headers.get("content-type", "").startswith("application/json"):
        with contextlib.suppress(ValueError):  # a proxy's page, not ogshot's JSON
            error = str(response.json().get("error", "")) or error
    tried = f" after {attempts} attempts" if attempts > 1 else ""
    return f"the server answered {response.status_code}{tried}" + (f": {error}" if error else "")
