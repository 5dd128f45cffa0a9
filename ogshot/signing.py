"""Signed URLs, as imgproxy and thumbor do them.

With ``OGSHOT_SECRET`` set, every /og request carries ``s``: HMAC-SHA256 over the canonical form of
the request, URL-safe base64 without padding. The canonical form is the same for both URL shapes,
so one signature fits ``/og/NAME.EXT?k=v`` and ``/og?template=NAME&data={"k":"v"}&format=EXT``::

    ogshot-url-v1 LF template LF format LF k1=v1&k2=v2 ...

- ``format`` is the canonical name (``jpg`` and ``jpeg`` are one format; missing means ``png``);
- the parameters are sorted by name, names and values percent-encoded with nothing left bare
  (``quote(x, safe="")``, UTF-8), ``s`` itself excluded;
- a value from ``data`` JSON that is not a string is signed as its compact JSON text (``3``,
  ``true``), which is also how the template receives it.

Several secrets may be configured for rotation: the first signs, every one verifies. Comparison is
constant-time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

from .config import Settings
from .errors import Forbidden
from .formats import normalize_format

__all__ = ["SIGNATURE_PARAM", "canonical", "check", "sign", "signed_path", "verify"]

SIGNATURE_PARAM = "s"
_VERSION = "ogshot-url-v1"


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def canonical(template: str, params: Mapping[str, Any], fmt: str) -> bytes:
    """The bytes a signature covers (see the module docstring)."""
    fmt = normalize_format(fmt) or fmt.lower()
    query = "&".join(
        f"{quote(key, safe='')}={quote(_text(value), safe='')}"
        for key, value in sorted(params.items())
        if key != SIGNATURE_PARAM
    )
    return f"{_VERSION}\n{template}\n{fmt}\n{query}".encode()


def sign(secret: str, template: str, params: Mapping[str, Any], fmt: str) -> str:
    digest = hmac.new(secret.encode(), canonical(template, params, fmt), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verify(
    secrets: Iterable[str],
    template: str,
    params: Mapping[str, Any],
    fmt: str,
    signature: str,
) -> bool:
    """True when ``signature`` was made with any of ``secrets``. Constant-time per secret."""
    given = signature.encode("utf-8", "replace")
    message = canonical(template, params, fmt)
    ok = False
    for secret in secrets:
        expected = hmac.new(secret.encode(), message, hashlib.sha256).digest()
        wanted = base64.urlsafe_b64encode(expected).rstrip(b"=")
        ok |= hmac.compare_digest(wanted, given)  # no early exit: every secret is tried
    return ok


def check(
    settings: Settings,
    template: str,
    params: Mapping[str, Any],
    fmt: str,
    signature: str | None,
) -> None:
    """Raise Forbidden unless signing is off or ``signature`` is right."""
    if not settings.secrets:
        return
    if not signature:
        raise Forbidden(
            f"this server requires signed URLs: parameter {SIGNATURE_PARAM!r} is missing",
            detail={"parameter": SIGNATURE_PARAM},
        )
    if not verify(settings.secrets, template, params, fmt, signature):
        raise Forbidden(
            f"wrong URL signature (parameter {SIGNATURE_PARAM!r}): it does not match the "
            "template, parameters and format of this URL",
            detail={"parameter": SIGNATURE_PARAM},
        )


def signed_path(settings: Settings, template: str, params: Mapping[str, Any], fmt: str) -> str:
    """``/og/NAME.EXT?k=v...&s=SIG`` (no ``s`` when no secret is configured)."""
    items = [
        f"{quote(key, safe='')}={quote(_text(value), safe='')}"
        for key, value in sorted(params.items())
        if key != SIGNATURE_PARAM
    ]
    if settings.secrets:
        items.append(f"{SIGNATURE_PARAM}={sign(settings.secrets[0], template, params, fmt)}")
    ext = fmt.lower() or "png"
    return f"/og/{quote(template, safe='')}.{ext}" + (f"?{'&'.join(items)}" if items else "")
