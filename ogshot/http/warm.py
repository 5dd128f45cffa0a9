"""``POST /admin/warm``: make images before their first request (a CMS calls it on publish).

Bearer auth as ``/admin/purge`` (``admin.py``). The body is one of

- ``{"urls": ["/og/article.png?title=Hi&s=...", ...]}``: image URLs as pages embed them (scheme
  and host optional), parsed and signature-checked as the /og routes do;
- ``{"items": [{"template": "article", "params": {...}, "format": "png"}, ...]}``.

At most ``MAX_ITEMS``. Each is validated as the server would validate its request (template,
parameters, format, signature, remote images); the answer is 202 with, per item, what was queued
(its cache key) and what was refused (the error as /og would answer it). Queued items are made by
the warm lane (``pipeline/warm.py``) with pages live requests leave idle; with Redis, by whichever
node of the fleet has one. Already cached images are skipped there, duplicates collapse.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ogshot.core.errors import BadRequest, FleetUnavailable, InvalidParameter, OgshotError
from ogshot.http.admin import admin_renderer, og_request_of, read_json
from ogshot.pipeline.renderer import Renderer
from ogshot.pipeline.warm import MAX_ITEMS, WarmItem
from ogshot.templates import signing

__all__ = ["warm"]

MAX_BODY = 2 * 1024 * 1024  # MAX_ITEMS URLs near the query-string limit
_ITEM_KEYS = ("template", "params", "format")


async def warm(request: Request) -> Response:
    renderer = admin_renderer(request)
    field, entries = _entries(await read_json(request, MAX_BODY))
    queued: list[dict[str, Any]] = []
    refused: list[dict[str, Any]] = []
    todo: list[tuple[str, WarmItem]] = []
    for index, entry in enumerate(entries):
        try:
            item = _url_item(renderer, entry) if field == "urls" else _item(entry)
            job = await renderer.resolve(item.template, item.params, item.format)
        except OgshotError as exc:
            refused.append({"index": index, field[:-1]: entry, "kind": exc.kind, **exc.to_json()})
            continue
        queued.append({"index": index, field[:-1]: entry, "key": job.key})
        todo.append((job.key, item))
    if todo:
        try:
            await renderer.warm.submit(todo)
        except OgshotError:
            raise
        except Exception as exc:  # Redis could not take them
            raise FleetUnavailable(
                f"the warm queue in Redis is unreachable ({type(exc).__name__}): nothing was "
                "queued; try again"
            ) from None
    return JSONResponse(
        {
            "queued": queued,
            "refused": refused,
            "lane": "fleet" if renderer.layers.fleet is not None else "node",
        },
        status_code=202,
    )


def _entries(body: Any) -> tuple[str, list[Any]]:
    if not isinstance(body, dict) or len(body) != 1 or not {"urls", "items"} & set(body):
        raise BadRequest(
            'the body must be {"urls": ["/og/...", ...]} or '
            '{"items": [{"template": ..., "params": {...}, "format": "png"}, ...]}'
        )
    field, entries = next(iter(body.items()))
    if not isinstance(entries, list) or not entries or len(entries) > MAX_ITEMS:
        raise InvalidParameter(field, f"must be a list of 1..{MAX_ITEMS} entries")
    return field, entries


def _url_item(renderer: Renderer, url: Any) -> WarmItem:
    if not isinstance(url, str) or not url:
        raise InvalidParameter("url", "must be a non-empty string such as /og/NAME.png?k=v")
    og = og_request_of(renderer, url)
    signing.check(renderer.settings, og.template, og.params, og.format, og.signature)
    return WarmItem(og.template, og.params, og.format)


def _item(entry: Any) -> WarmItem:
    if not isinstance(entry, dict):
        raise InvalidParameter("item", 'must be an object {"template", "params", "format"}')
    unknown = sorted(set(entry) - set(_ITEM_KEYS))
    if unknown:
        raise InvalidParameter(unknown[0], "unknown key here (use template, params, format)")
    template, params, fmt = entry.get("template"), entry.get("params", {}), entry.get("format")
    if not isinstance(template, str) or not template:
        raise InvalidParameter("template", "required (the name of a template)")
    if not isinstance(params, dict):
        raise InvalidParameter("params", "must be a JSON object")
    if not isinstance(fmt, str | None):
        raise InvalidParameter("format", "must be a string (png, jpg, jpeg or webp)")
    return WarmItem(template, params, fmt or "png")
