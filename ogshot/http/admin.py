"""``POST /admin/purge``: remove images from every cache layer, on every node.

Off (404) unless ``OGSHOT_ADMIN_TOKEN`` is set; then it needs ``Authorization: Bearer <token>``
(compared in constant time; anything else is 401 with ``WWW-Authenticate: Bearer``). The body is a
JSON object naming what to purge, one of:

- ``{"keys": ["<64 hex>", ...]}``: cache keys (as in the logs), at most ``MAX_KEYS``;
- ``{"url": "/og/article.png?title=Hi"}``: the image of that URL (or ``/og?template=...``, or a
  page screenshot's ``/shot.png?url=...``), its key computed as the server computes it (the
  request is validated: a URL that could only fail is 400), with or without scheme and host,
  signature ignored;
- ``{"template": "article"}``: every image of a template, whatever its version and parameters.

With Redis the purge is fleet-wide (see layers.py for how other nodes learn of it), and it fails
with 503 when Redis cannot be reached: a purge that did not happen never looks done. Then it
reaches the caches in front of the nodes (http/edge.py: ``OGSHOT_EDGE_PURGE_URL``,
``OGSHOT_PURGE_WEBHOOK``); the answer's ``edge`` says what they did, failures included.
"""

from __future__ import annotations

import hmac
import json
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ogshot.core.errors import BadRequest, FleetUnavailable, InvalidParameter, Unauthorized
from ogshot.http.edge import Edge
from ogshot.http.og import OgRequest, parse_og
from ogshot.http.query import query_params
from ogshot.templates.signing import SIGNATURE_PARAM

if TYPE_CHECKING:
    from ogshot.pipeline.renderer import Renderer

__all__ = ["admin_renderer", "og_request_of", "purge", "read_json"]

MAX_KEYS = 1000
MAX_BODY = 256 * 1024
_KEY = re.compile(r"^[0-9a-f]{64}$")


def admin_renderer(request: Request) -> Renderer:
    """The Renderer, for a request that carries the admin token (404 when admin is off, 401 on a
    wrong or missing token): every /admin/... endpoint starts here."""
    renderer: Renderer = request.state.renderer
    token = renderer.settings.admin_token
    if not token:
        raise HTTPException(404)
    _authorize(request.headers.get("authorization", ""), token)
    return renderer


async def purge(request: Request) -> Response:
    renderer = admin_renderer(request)
    what = await _body(request)
    edge: Edge = request.app.state.edge
    fleet = renderer.layers.fleet
    uris: list[str] = []
    try:
        if "template" in what:
            name = _string(what, "template")
            await renderer.template(name)  # 404 for a template that does not exist
            generation, deleted = await renderer.layers.purge_template(name)
            answer: dict[str, Any] = {"template": name, "deleted": deleted}
            keys, templates = [], [name]
        else:
            if "url" in what:
                url = _string(what, "url")
                keys = [await _key_of(renderer, url)]
                uris = [_uri_of(url)]
            else:
                keys = _keys(what.get("keys"))
            generation = await renderer.layers.purge(keys)
            answer, templates = {"keys": keys}, []
    except _unreachable() as exc:  # evaluated only when something was raised
        raise FleetUnavailable(
            f"Redis is unreachable ({type(exc).__name__}): nothing was purged; try again"
        ) from None
    answer["generation"] = generation
    if edge.on:  # the nodes are purged; now the caches in front of them
        report = await edge.purge(
            fleet, uris=uris, keys=keys, templates=templates, generation=generation
        )
        answer["edge"] = report.as_json()
    return JSONResponse(answer)


def _unreachable() -> tuple[type[BaseException], ...]:
    """What a purge raises when Redis cannot be reached (redis is imported only when needed: a
    server without a fleet never loads it)."""
    from redis.exceptions import RedisError

    return (RedisError, OSError, TimeoutError)


def _authorize(header: str, token: str) -> None:
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), token.encode()
    ):
        raise Unauthorized("a valid 'Authorization: Bearer <OGSHOT_ADMIN_TOKEN>' is required")


async def read_json(request: Request, limit: int = MAX_BODY) -> Any:
    """The request's JSON body, at most ``limit`` bytes (400 otherwise)."""
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            raise BadRequest(f"the body is over {limit} bytes")
    try:
        return json.loads(raw or b"null")
    except ValueError as exc:
        raise BadRequest(f"the body is not valid JSON ({exc})") from None


async def _body(request: Request) -> dict[str, Any]:
    what = await read_json(request)
    named = [k for k in ("keys", "url", "template") if isinstance(what, dict) and k in what]
    if len(named) != 1 or len(what) != 1:
        raise BadRequest(
            'the body must be one of {"keys": [...]}, {"url": "..."} or {"template": "..."}'
        )
    return dict(what)


def _string(what: dict[str, Any], name: str) -> str:
    value = what[name]
    if not isinstance(value, str) or not value:
        raise InvalidParameter(name, "must be a non-empty string")
    return value


def _keys(value: Any) -> list[str]:
    if not isinstance(value, list) or not value or len(value) > MAX_KEYS:
        raise InvalidParameter("keys", f"must be a list of 1..{MAX_KEYS} cache keys")
    for key in value:
        if not isinstance(key, str) or not _KEY.match(key):
            raise InvalidParameter("keys", f"{key!r} is not a cache key (64 hex digits)")
    return list(dict.fromkeys(value))


def _uri_of(url: str) -> str:
    """``url``'s path and query as sent (the edge's cache key), without scheme and host."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def og_request_of(renderer: Renderer, url: str) -> OgRequest:
    """An image URL (path and query, scheme and host optional) parsed as the /og routes parse
    it."""
    parts = urlsplit(url)
    scope = {"type": "http", "query_string": parts.query.encode()}
    return parse_og(unquote(parts.path), query_params(Request(scope), renderer.settings))


async def _key_of(renderer: Renderer, url: str) -> str:
    """The cache key the server computes for an image URL (/og or /shot), parsed as its routes
    parse it."""
    path = unquote(urlsplit(url).path)
    if path.startswith("/shot."):
        scope = {"type": "http", "query_string": urlsplit(url).query.encode()}
        query = query_params(Request(scope), renderer.settings)
        query.pop(SIGNATURE_PARAM, None)
        return renderer.shots.prepare(query, path.removeprefix("/shot.")).key
    og = og_request_of(renderer, url)
    job = await renderer.resolve(og.template, og.params, og.format)
    return job.key
