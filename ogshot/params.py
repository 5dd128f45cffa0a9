"""An HTTP query string -> raw template parameters, within the request limits.

Shared by ``/og`` and the ``/preview`` studio, so both refuse the same things the same way: an
over-long query string is 414, a parameter given twice is 400 naming it.
"""

from __future__ import annotations

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
        if key in params:
            raise InvalidParameter(key, "given more than once")
        params[key] = value
    return params
