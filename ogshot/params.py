"""An HTTP query string -> raw template parameters, within the request limits.

Shared by ``/og`` and the ``/preview`` studio, so both refuse the same things the same way: an
over-long query string is 414, a parameter given twice or percent-encoding bytes that are not
UTF-8 is 400 naming it. (Starlette decodes such bytes to U+FFFD, which would render and cache a
picture of replacement characters nobody asked for.)
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from starlette.requests import Request

from .config import Settings
from .errors import InvalidParameter, RequestTooLarge

__all__ = ["query_params"]


def query_params(request: Request, settings: Settings) -> dict[str, str]:
    size = len(request.scope.get("query_string", b""))
    if size > settings.max_query_length:
        raise RequestTooLarge(
            f"query string is {size} bytes; the limit is {settings.max_query_length}"
        )
    params: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        if "\ufffd" in key or "\ufffd" in value:  # decoded with errors="replace": check the bytes
            _check_utf8(request.scope.get("query_string", b""))
        if key in params:
            raise InvalidParameter(key, "given more than once")
        params[key] = value
    return params


def _check_utf8(query: bytes) -> None:
    for pair in query.split(b"&"):
        raw_key, _, raw_value = pair.partition(b"=")
        key, value = (unquote_to_bytes(part.replace(b"+", b" ")) for part in (raw_key, raw_value))
        try:
            key.decode()
            value.decode()
        except UnicodeDecodeError:
            name = key.decode(errors="replace")
            raise InvalidParameter(name, "not valid UTF-8 once percent-decoded") from None
