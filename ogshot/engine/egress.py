"""Where a remote image fetch may connect, and the connection that goes only there.

``remote.py`` asks this module before every request it makes, the first and every redirect hop:

- the scheme is http or https, there are no credentials in it, and the host matches the
  allowlist (an exact host, or ``*.example.com`` for its sub-domains);
- the host is resolved once and every address is public: loopback, private, link-local, CGNAT,
  multicast, reserved and unspecified addresses are refused, and so are IPv6 forms that carry an
  IPv4 address (IPv4-mapped, IPv4-compatible, 6to4, Teredo, NAT64). Numeric hosts in any form the
  C library accepts (``2130706433``, ``0x7f.1``, ``127.1``) are read as the address they are;
- the connection goes to that address, not to the name again (no DNS rebinding), while TLS still
  checks the certificate against the name.

The resolver and the address check are parameters, so that tests can point names at a local
server; ``system_resolver`` and ``is_public_address`` are what the service uses.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import ssl
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from ogshot.core.errors import RemoteImageError

__all__ = [
    "Address",
    "Resolver",
    "checked_address",
    "host_allowed",
    "is_public_address",
    "parse_address",
    "pinned_connection",
    "shut_down",
    "system_resolver",
]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[str]]

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


def checked_address(
    url: str,
    allowlist: Sequence[str],
    resolver: Resolver,
    address_allowed: Callable[[Address], bool],
) -> tuple[str, int, str]:
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
    if not host or not host_allowed(allowlist, host):
        raise RemoteImageError(f"host {host!r} is not in OGSHOT_REMOTE_IMAGES")
    port = port or (443 if parts.scheme == "https" else 80)
    literal = parse_address(host)
    if literal is not None:
        answers: Sequence[str] = [str(literal)]
    else:
        try:
            answers = resolver(host, port)
        except (OSError, UnicodeError) as exc:
            raise RemoteImageError(f"cannot resolve {host!r} ({exc})") from None
    addresses = [parse_address(a) for a in answers]
    if not addresses:
        raise RemoteImageError(f"{host!r} has no address")
    for text, address in zip(answers, addresses, strict=True):
        if address is None or not address_allowed(address):
            raise RemoteImageError(f"{host!r} resolves to {text}, which is not a public address")
    return host, port, str(addresses[0])


def pinned_connection(
    scheme: str, host: str, port: int, address: str, timeout: float, tls: ssl.SSLContext
) -> http.client.HTTPConnection:
    """A connection to ``address`` (from checked_address) that still speaks to ``host``."""
    if scheme == "https":
        return _PinnedHTTPS(host, port, address, timeout, tls)
    return _PinnedHTTP(host, port, address, timeout)


def shut_down(conn: http.client.HTTPConnection) -> None:
    """Shut the connection's socket, from another thread: a read blocked on it fails at once."""
    sock = conn.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


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
