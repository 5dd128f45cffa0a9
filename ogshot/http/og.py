"""The image routes: ``/og/{template}.{format}`` and ``/og?template=&data=&format=``.

Each parses its query, checks the signature and asks the Renderer; the answer is
:func:`ogshot.http.responses.image_response`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ogshot.core.errors import InvalidParameter
from ogshot.core.suggest import closest
from ogshot.http.edge import Edge
from ogshot.http.hot import HotTable
from ogshot.http.query import query_params
from ogshot.http.responses import image_response
from ogshot.pipeline.renderer import Renderer
from ogshot.templates import signing
from ogshot.templates.versions import VERSION_PARAM

__all__ = ["OgRequest", "og_image", "parse_og", "renderer_of"]

MAX_DATA_DEPTH = 4
# What the query of /og?template=... may hold besides the signature.
_QUERY_PARAMS = ("template", "data", "format", VERSION_PARAM)


def renderer_of(request: Request) -> Renderer:
    renderer: Renderer = request.state.renderer
    return renderer


@dataclass(frozen=True)
class OgRequest:
    """An image request as both /og forms say it: what the signature covers, what renders."""

    template: str
    params: dict[str, Any]
    format: str
    signature: str | None


def parse_og(path: str, query: dict[str, Any]) -> OgRequest:
    """``/og/NAME.EXT`` or ``/og`` with ``template=&data=&format=`` (``query``: the parsed query
    string, :func:`ogshot.http.query.query_params`) -> the request. The one parser of /og URLs:
    the routes and purge-by-URL (``http/admin.py``) both use it."""
    query = dict(query)
    signature = query.pop(signing.SIGNATURE_PARAM, None)
    if path.startswith("/og/"):
        name, _, ext = path[4:].partition(".")
        return OgRequest(name, query, ext or "png", signature)
    if path != "/og":
        raise InvalidParameter(
            "url", f"{path!r} is not an /og URL (/og/NAME.EXT or /og?template=...)"
        )
    name = query.pop("template", None)
    if not name:
        raise InvalidParameter("template", "required (the name of a template)")
    fmt = query.pop("format", None) or "png"  # empty as missing, like /og/NAME without .EXT
    data = query.pop("data", None)
    version = query.pop(VERSION_PARAM, None)
    if query:
        extra = sorted(query)[0]
        raise InvalidParameter(
            extra,
            "unknown query parameter here (use template, data, format, v)",
            suggestion=closest(extra, _QUERY_PARAMS),
        )
    params = _parse_data(data) if data is not None else {}
    if version is not None:  # v may sit beside data or inside it, not both
        if VERSION_PARAM in params:
            raise InvalidParameter(VERSION_PARAM, "given both in data and in the query")
        params[VERSION_PARAM] = version
    return OgRequest(name, params, fmt, signature)


async def og_image(request: Request) -> Response:
    """GET|HEAD /og/{template}.{png|jpg|jpeg|webp}?param=value... and
    GET|HEAD /og?template=NAME&data=<JSON object>&format=png"""
    renderer = renderer_of(request)
    settings = renderer.settings
    file = request.path_params.get("file")
    og = parse_og("/og" if file is None else f"/og/{file}", query_params(request, settings))
    request.scope["ogshot"]["template"] = og.template
    signing.check(settings, og.template, og.params, og.format, og.signature)
    image = await renderer.image(og.template, og.params, og.format)
    edge: Edge | None = getattr(request.app.state, "edge", None)
    if edge is not None and edge.on:  # an edge cache may keep this answer under this URI
        edge.remember(
            renderer.layers.fleet, request_uri(request), key=image.key, template=og.template
        )
    requested = og.params.get(VERSION_PARAM)
    hot: HotTable | None = getattr(request.app.state, "hot", None)
    if hot is not None:  # checked and answered: this exact URL may be answered hot from now on
        hot.remember(request.scope, image, (og.template, og.params, og.format), requested)
    return image_response(request, image, settings, requested, template=og.template)


def request_uri(request: Request) -> str:
    """The URI as the client sent it (nginx's ``$request_uri``, its cache key)."""
    scope = request.scope
    path: bytes = scope.get("raw_path") or scope["path"].encode()
    query: bytes = scope.get("query_string", b"")
    return (path + (b"?" + query if query else b"")).decode("latin-1")


def _parse_data(text: str) -> dict[str, Any]:
    # Measured before parsing: the JSON parser recurses, and 5,000 '[' would exhaust the stack.
    if _nesting(text) > MAX_DATA_DEPTH:
        raise InvalidParameter("data", f"nested deeper than {MAX_DATA_DEPTH} levels")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InvalidParameter("data", f"not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InvalidParameter("data", f"must be a JSON object, got {type(data).__name__}")
    return data


def _nesting(text: str) -> int:
    """The deepest nesting of [ and { in JSON text, outside strings; no recursion."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest
