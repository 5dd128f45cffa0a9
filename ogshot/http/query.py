"""An HTTP query string -> raw template parameters, within the request limits.

Shared by ``/og`` and the ``/preview`` studio, so both refuse the same things the same way: an
over-long query string is 414; a parameter given twice, or whose percent-decoded bytes are not
UTF-8, is 400 naming it. (Starlette's ``request.query_params`` decodes such bytes to U+FFFD, which
would render and cache a picture of replacement characters nobody asked for.)

The query string is parsed here, from the raw bytes, as ``application/x-www-form-urlencoded``:
``&`` separates pairs, ``+`` is a space, a ``%`` not followed by two hex digits is a literal
``%``, a pair without ``=`` has an empty value. It is on the cache-hit path: a part without ``%``
or ``+`` is decoded as is.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from starlette.requests import Request

from ogshot.core.errors import InvalidParameter, RequestTooLarge
from ogshot.core.settings import Settings

__all__ = ["query_params"]


def query_params(request: Request, settings: Settings) -> dict[str, str]:
    query: bytes = request.scope.get("query_string", b"")
    if len(query) > settings.max_query_length:
        raise RequestTooLarge(
            f"query string is {len(query)} bytes; the limit is {settings.max_query_length}"
        )
    params: dict[str, str] = {}
    if not query:
        return params
    for pair in query.split(b"&"):
        if not pair:
            continue
        raw_key, _, raw_value = pair.partition(b"=")
        key = _decode(raw_key, raw_key)
        if key in params:
            raise InvalidParameter(key, "given more than once")
        params[key] = _decode(raw_value, raw_key)
    return params


def _decode(part: bytes, raw_key: bytes) -> str:
    if b"%" in part or b"+" in part:
        part = unquote_to_bytes(part.replace(b"+", b" "))
    try:
        return part.decode()
    except UnicodeDecodeError:
        name = unquote_to_bytes(raw_key.replace(b"+", b" ")).decode(errors="replace")
        raise InvalidParameter(name, "not valid UTF-8 once percent-decoded") from None
