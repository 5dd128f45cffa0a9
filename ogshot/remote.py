"""Remote images (``OGSHOT_REMOTE_IMAGES``): fetched by ogshot, never by Chromium, then handed to
the page from memory.

A fetch is allowed only when, for the URL and again for every redirect hop:

- the scheme is http or https, there are no credentials in it, and the host matches the
  allowlist (an exact host, or ``*.example.com`` for its sub-domains);
- the host is resolved once and every address is public: loopback, private, link-local, CGNAT,
  multicast, reserved and unspecified addresses are refused, and so are IPv6 forms that carry an
  IPv4 address (IPv4-mapped, IPv4-compatible, 6to4, Teredo, NAT64). Numeric hosts in any form the
  C library accepts (``2130706433``, ``0x7f.1``, ``127.1``) are read as the address they are;
- the connection goes to that address, not to the name again (no DNS rebinding), while TLS still
  checks the certificate against the name.

The answer must be 200 within the time cap, no larger than the size cap, say ``image/...`` and start
with the bytes of a PNG, JPEG, GIF, WebP or AVIF (SVG is refused: it is a document that can load
more). Images are kept in memory for ``ttl`` seconds, so a cache hit does not fetch them again, and
the hash of their bytes goes into the cache key of every image that uses them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from .config import Settings
from .errors import InvalidParameter, RemoteImageError
from .lru import LRU

__all__ = [
    "RemoteImage",
    "RemoteImageError",  # lives in errors.py; re-exported for assets.py and tests
    "RemoteImages",
    "is_public_address",
    "parse_address",
    "system_resolver",
]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[str]]

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
# IPv6 ranges that embed or translate to an IPv4 address, so a public-looking IPv6 can reach
# 127.0.0.1 or 169.254.169.254 through a gateway.
_EMBEDDING = tuple(
    ipaddress.IPv6Network(net)
    for net in (
        "::/96",  # IPv4-compatible
        "::ffff:0:0/96",  # IPv4-mapped
        "64:ff9b::/96",  # NAT64
        "64:ff9b:1::/48",  # local-use NAT64
        "2002::/16",  # 6to4
        "2001::/32",  # Teredo
    )
)


@dataclass(frozen=True)
class RemoteImage:
    url: str
    body: bytes
    content_type: str
    digest: str  # sha256 of the body


def parse_address(text: str) -> Address | None:
    """An IP address in any form the C library would connect to, or None for a name.

    Besides the canonical forms this reads what ``inet_aton`` reads: ``2130706433``,
    ``0x7f000001``, ``0177.0.0.1``, ``127.1`` are all 127.0.0.1."""
    text = text.strip("[]")
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        pass
    if text and all(c in "0123456789abcdefxABCDEFX." for c in text):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(text))
        except OSError:
            return None
    return None


def is_public_address(address: Address) -> bool:
    """True only for a globally routable unicast address that embeds no IPv4 address."""
    if isinstance(address, ipaddress.IPv6Address) and any(address in n for n in _EMBEDDING):
        return False
    return bool(
        address.is_global
        and not address.is_multicast
        and not address.is_private
        and not address.is_loopback
        and not address.is_link_local
        and not address.is_reserved
        and not address.is_unspecified
    )


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


def host_allowed(patterns: Sequence[str], host: str) -> bool:
    host = host.lower().rstrip(".")
    for pattern in patterns:
        pattern = pattern.lower().rstrip(".")
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]) and len(host) > len(pattern) - 1:
                return True
        elif host == pattern:
            return True
    return False


class _PinnedHTTP(http.client.HTTPConnection):
    """Connects to an address resolved beforehand; ``Host`` is still the name."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """Like _PinnedHTTP, over TLS; the certificate is checked against the name, SNI is the name."""

    def __init__(
        self, host: str, port: int, address: str, timeout: float, context: ssl.SSLContext
    ) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self.address = address
        self.tls = context

    def connect(self) -> None:
        raw = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self.tls.wrap_socket(raw, server_hostname=self.host)


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

    def _address(self, url: str) -> tuple[str, int, str]:
        """(host, port, the one address to connect to) or RemoteImageError."""
        try:
            parts = urlsplit(url)
            host, port = parts.hostname, parts.port
        except ValueError as exc:
            raise RemoteImageError(f"not a valid URL ({exc})") from None
        if parts.scheme not in ("http", "https"):
            raise RemoteImageError(f"scheme {parts.scheme!r} is not allowed (http or https only)")
        if parts.username is not None or parts.password is not None:
            raise RemoteImageError("URLs with credentials are not allowed")
        if not host or not host_allowed(self.allowlist, host):
            raise RemoteImageError(f"host {host!r} is not in OGSHOT_REMOTE_IMAGES")
        port = port or (443 if parts.scheme == "https" else 80)
        literal = parse_address(host)
        if literal is not None:
            answers: Sequence[str] = [str(literal)]
        else:
            try:
                answers = self.resolver(host, port)
            except (OSError, UnicodeError) as exc:
                raise RemoteImageError(f"cannot resolve {host!r} ({exc})") from None
        addresses = [parse_address(a) for a in answers]
        if not addresses:
            raise RemoteImageError(f"{host!r} has no address")
        for text, address in zip(answers, addresses, strict=True):
            if address is None or not self.address_allowed(address):
                raise RemoteImageError(
                    f"{host!r} resolves to {text}, which is not a public address"
                )
        return host, port, str(addresses[0])

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
        host, port, address = self._address(url)
        parts = urlsplit(url)
        left = deadline - time.monotonic()
        if left <= 0:
            raise RemoteImageError(f"no answer within {self.timeout:g} s")
        conn: http.client.HTTPConnection
        if parts.scheme == "https":
            conn = _PinnedHTTPS(host, port, address, left, self.tls)
        else:
            conn = _PinnedHTTP(host, port, address, left)
        # The hard deadline: whatever the server does (slow headers, one byte a second), the
        # socket is shut down when the time is up and the blocked read fails.
        timer = threading.Timer(left, _shutdown, args=(conn,))
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


def _shutdown(conn: http.client.HTTPConnection) -> None:
    sock = conn.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
