"""Remote images (``OGSHOT_REMOTE_IMAGES``): fetched by ogshot, never by Chromium, then handed to
the page from memory.

Every request, the first and every redirect hop, goes only where ``egress.py`` allows: an
allowlisted host over http or https, resolved once to public addresses only, on a connection
pinned to the address that was checked.

The answer must be 200 within the time cap, no larger than the size cap, say ``image/...`` and start
with the bytes of a PNG, JPEG, GIF, WebP or AVIF (SVG is refused: it is a document that can load
more). Images are kept in memory for ``ttl`` seconds, so a cache hit does not fetch them again, and
the hash of their bytes goes into the cache key of every image that uses them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import http.client
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from ogshot.core.errors import InvalidParameter, RemoteImageError
from ogshot.core.lru import LRU
from ogshot.core.settings import Settings
from ogshot.engine.egress import (
    Address,
    Resolver,
    checked_address,
    host_allowed,
    is_public_address,
    pinned_connection,
    shut_down,
    system_resolver,
)

__all__ = [
    "RemoteImage",
    "RemoteImageError",  # lives in errors.py; re-exported for assets.py and tests
    "RemoteImages",
]

MAX_REDIRECTS = 3
FETCH_THREADS = 4  # slow remote hosts wait here, not in the threads that encode images
MEMORY_BUDGET = 64 << 20  # bytes of images kept in memory
_MAGIC: tuple[tuple[bytes, int, str], ...] = (  # (bytes, offset, type)
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"WEBP", 8, "image/webp"),
    (b"ftypavif", 4, "image/avif"),
    (b"ftypavis", 4, "image/avif"),
)
_DECLARED = frozenset(
    {"image/png", "image/jpeg", "image/jpg", "image/pjpeg", "image/gif", "image/webp", "image/avif"}
)


@dataclass(frozen=True)
class RemoteImage:
    url: str
    body: bytes
    content_type: str
    digest: str  # sha256 of the body


class RemoteImages:
    """The allowlist, the fetcher and a small in-memory cache of fetched images.

    ``resolver`` and ``address_allowed`` are injectable so that tests can point names at a local
    server; the defaults resolve through the system and refuse every non-public address."""

    def __init__(
        self,
        allowlist: Sequence[str],
        *,
        max_bytes: int = 5_000_000,
        timeout: float = 5.0,
        ttl: float = 3600.0,
        resolver: Resolver = system_resolver,
        address_allowed: Callable[[Address], bool] = is_public_address,
        memory_budget: int = MEMORY_BUDGET,
    ) -> None:
        self.allowlist = tuple(allowlist)
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.ttl = ttl
        self.resolver = resolver
        self.address_allowed = address_allowed
        self.memory_budget = memory_budget
        self.tls = ssl.create_default_context()
        self.fetches = 0  # network fetches made (not memory hits)
        # url -> (expiry, image), least recently used first out once over the budget.
        self._memory: LRU[tuple[float, RemoteImage]] = LRU(
            max_entries=100_000 if memory_budget else 0,  # a budget of 0 keeps nothing
            max_size=memory_budget,
            size_of=lambda entry: len(entry[1].body),
        )
        self._inflight: dict[str, asyncio.Future[RemoteImage]] = {}
        self._threads: concurrent.futures.ThreadPoolExecutor | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> RemoteImages:
        return cls(
            settings.remote_images,
            max_bytes=settings.remote_images_max_size,
            timeout=settings.remote_images_timeout,
            ttl=settings.remote_images_ttl,
        )

    # -- policy ----------------------------------------------------------------------------

    def allows(self, url: str) -> bool:
        """Whether ``url`` is on the allowlist (no resolution: addresses are checked on fetch)."""
        if not self.allowlist or not url.startswith(("http://", "https://")):
            return False
        try:
            parts = urlsplit(url)
            host = parts.hostname
        except ValueError:
            return False
        return bool(host) and host_allowed(self.allowlist, host or "")

    # -- fetching --------------------------------------------------------------------------

    def lookup(self, url: str) -> RemoteImage | None:
        """The image from memory when it is still fresh; never touches the network."""
        found = self._memory.get(url)
        if found is None:
            return None
        expires, image = found
        if time.monotonic() >= expires:
            self._memory.pop(url)
            return None
        return image

    async def get(self, url: str) -> RemoteImage:
        """The image, from memory or fetched (one fetch at a time per URL)."""
        image = self.lookup(url)
        if image is not None:
            return image
        pending = self._inflight.get(url)
        if pending is None:
            if self._threads is None:
                self._threads = concurrent.futures.ThreadPoolExecutor(
                    FETCH_THREADS, thread_name_prefix="ogshot-remote"
                )
            loop = asyncio.get_running_loop()
            pending = asyncio.ensure_future(loop.run_in_executor(self._threads, self._fetch, url))
            self._inflight[url] = pending
            pending.add_done_callback(lambda _f: self._inflight.pop(url, None))
        image = await asyncio.shield(pending)
        self._remember(image)
        return image

    async def pin(self, values: Mapping[str, Any]) -> str:
        """Fetch the allowlisted images among a request's values; their hashes, for the cache key.

        Empty when there are none. A refused or failed fetch is InvalidParameter naming the
        parameter, so a broken image is never rendered and cached."""
        if not self.allowlist:
            return ""
        wanted = {
            name: value
            for name, value in values.items()
            if isinstance(value, str) and self.allows(value)
        }
        if not wanted:
            return ""
        names = sorted(wanted)
        results = await asyncio.gather(
            *(self.get(wanted[n]) for n in names), return_exceptions=True
        )
        parts = []
        for name, result in zip(names, results, strict=True):
            if isinstance(result, RemoteImageError):
                raise InvalidParameter(name, f"remote image refused: {result}")
            if isinstance(result, BaseException):
                raise result
            parts.append(f"{wanted[name]}\x1e{result.digest}")
        return "\x1d".join(parts)

    def _fetch(self, url: str) -> RemoteImage:
        """Blocking: follow up to MAX_REDIRECTS hops, each checked like the first."""
        deadline = time.monotonic() + self.timeout
        current = url
        for _hop in range(MAX_REDIRECTS + 1):
            status, location, body = self._request(current, deadline)
            if status in (301, 302, 303, 307, 308):
                if not location:
                    raise RemoteImageError(f"redirect ({status}) without a Location")
                current = urljoin(current, location)
                continue
            if status != 200:
                raise RemoteImageError(f"{current} answered HTTP {status}")
            assert body is not None
            sniffed = _sniff(body)
            if sniffed is None:
                raise RemoteImageError(f"{current} is not a PNG, JPEG, GIF, WebP or AVIF image")
            self.fetches += 1
            return RemoteImage(url, body, sniffed, hashlib.sha256(body).hexdigest())
        raise RemoteImageError(f"more than {MAX_REDIRECTS} redirects")

    def _request(self, url: str, deadline: float) -> tuple[int, str | None, bytes | None]:
        host, port, address = checked_address(
            url, self.allowlist, self.resolver, self.address_allowed
        )
        parts = urlsplit(url)
        left = deadline - time.monotonic()
        if left <= 0:
            raise RemoteImageError(f"no answer within {self.timeout:g} s")
        conn = pinned_connection(parts.scheme, host, port, address, left, self.tls)
        # The hard deadline: whatever the server does (slow headers, one byte a second), the
        # socket is shut down when the time is up and the blocked read fails.
        timer = threading.Timer(left, shut_down, args=(conn,))
        timer.start()
        try:
            path = parts.path or "/"
            if parts.query:
                path += "?" + parts.query
            conn.request(
                "GET",
                path,
                headers={
                    "User-Agent": "ogshot (remote images)",
                    "Accept": "image/avif,image/webp,image/png,image/jpeg,image/gif",
                    "Accept-Encoding": "identity",
                },
            )
            response = conn.getresponse()
            if 300 <= response.status < 400:
                return response.status, response.getheader("location"), None
            if response.status != 200:
                return response.status, None, None
            content_type = (response.getheader("content-type") or "").split(";")[0].strip().lower()
            if content_type not in _DECLARED:
                raise RemoteImageError(f"{url} is {content_type or 'untyped'}, not an image")
            length = response.getheader("content-length")
            if length and length.isdigit() and int(length) > self.max_bytes:
                raise RemoteImageError(f"{url} is {length} bytes; the limit is {self.max_bytes}")
            chunks: list[bytes] = []
            size = 0
            while True:
                chunk = response.read(65536)
                if time.monotonic() >= deadline:  # the timer shut the socket: a short read
                    raise RemoteImageError(f"no answer within {self.timeout:g} s")
                if not chunk:
                    break
                size += len(chunk)
                if size > self.max_bytes:
                    raise RemoteImageError(f"{url} is larger than {self.max_bytes} bytes")
                chunks.append(chunk)
            return 200, None, b"".join(chunks)
        except (OSError, http.client.HTTPException) as exc:
            if time.monotonic() >= deadline:
                raise RemoteImageError(f"no answer within {self.timeout:g} s") from None
            raise RemoteImageError(f"fetching {url} failed ({type(exc).__name__}: {exc})") from None
        finally:
            timer.cancel()
            conn.close()

    # -- memory ----------------------------------------------------------------------------

    def clear(self) -> None:
        """Forget every fetched image: the next request fetches them again."""
        self._memory.clear()

    def _remember(self, image: RemoteImage) -> None:
        if self._memory.get(image.url) is None:  # a fresh copy stays until it expires
            self._memory.set(image.url, (time.monotonic() + self.ttl, image))


def _sniff(body: bytes) -> str | None:
    for magic, offset, kind in _MAGIC:
        if body[offset : offset + len(magic)] == magic:
            if kind == "image/webp" and body[:4] != b"RIFF":
                continue
            return kind
    return None
