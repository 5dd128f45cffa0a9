"""``GET /templates.json``: the public, small list of templates a client needs to link images.

For each template: its name, current version ``v`` (what signed URLs carry, see
:mod:`ogshot.templates.versions`), size, formats and declared parameters (type, required,
default; no examples or descriptions of parameters: the studio and /openapi.json have those).
Clients (``clients/js``'s ``fetchVersions``) read the versions from here instead of the much
larger OpenAPI document.

The document is built once per catalog generation (the file watcher refreshes the catalog when a
template changes), in a thread, and served as the same bytes with an ``ETag`` until then. The
cache policy is short: a redesign must reach clients within a minute.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ogshot.core.errors import OgshotError
from ogshot.core.formats import FORMATS
from ogshot.http.og import renderer_of
from ogshot.http.responses import etag_matches
from ogshot.templates.catalog import Catalog, Template
from ogshot.templates.fields import json_value

__all__ = ["CACHE_CONTROL", "TemplatesDocument", "build_document", "templates_json"]

CACHE_CONTROL = "public, max-age=60"


@dataclass(frozen=True)
class TemplatesDocument:
    generation: int  # the catalog generation it was built from
    body: bytes
    etag: str  # without quotes


def describe(template: Template) -> dict[str, Any]:
    """One template's entry in the document."""
    params: dict[str, Any] = {}
    for param in template.params.values():
        entry: dict[str, Any] = {"type": param.type, "required": param.required}
        if param.default is not None:  # "" is a default of its own, unlike no default
            entry["default"] = json_value(param.default)
        params[param.name] = entry
    return {
        "name": template.name,
        "v": template.version,
        "description": template.description,
        "size": {
            "width": template.size.width,
            "height": template.size.height,
            "scale": template.size.scale,
        },
        "formats": list(FORMATS),
        # false: the template declares nothing and takes any string parameters
        "declared": template.declared,
        "params": params,
    }


def build_document(catalog: Catalog) -> TemplatesDocument:
    """The document of the catalog as it is now. Blocking (a first read of the catalog)."""
    generation = catalog.generation
    entries = []
    for name in catalog.names():
        try:
            entries.append(describe(catalog.get(name)))
        except OgshotError:  # a template that does not load: its URLs answer the error
            continue
    body = json.dumps(
        {"templates": entries}, ensure_ascii=False, separators=(",", ":"), sort_keys=False
    ).encode()
    return TemplatesDocument(generation, body, hashlib.sha256(body).hexdigest()[:20])


class _Documents:
    """The last document built from one catalog (one app's run: a restart brings a new catalog,
    and a new one of these, bound to the new event loop); one build at a time."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.last: TemplatesDocument | None = None
        self.lock = asyncio.Lock()

    async def current(self) -> TemplatesDocument:
        known = self.last
        if known is not None and known.generation == self.catalog.generation:
            return known
        async with self.lock:  # a burst after a change builds it once
            known = self.last
            if known is None or known.generation != self.catalog.generation:
                known = self.last = await asyncio.to_thread(build_document, self.catalog)
            return known


def _documents(request: Request) -> _Documents:
    state = request.app.state
    catalog = renderer_of(request).catalog
    documents: _Documents | None = getattr(state, "templates_documents", None)
    if documents is None or documents.catalog is not catalog:
        documents = state.templates_documents = _Documents(catalog)
    return documents


async def templates_json(request: Request) -> Response:
    """GET|HEAD /templates.json"""
    document = await _documents(request).current()
    headers = {"ETag": f'"{document.etag}"', "Cache-Control": CACHE_CONTROL}
    if etag_matches(request.headers.get("if-none-match"), document.etag):
        return Response(status_code=304, headers=headers)
    return Response(document.body, media_type="application/json", headers=headers)
