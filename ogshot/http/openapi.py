"""The OpenAPI 3.1 description of the HTTP API, served at ``/openapi.json``.

Built per request from the template catalog, so that every template appears as its own operation
with its declared parameters (types, limits, choices, defaults): a client generator or a fuzzer
(the test suite runs schemathesis against it) sees exactly what the server accepts. Page
screenshots (``/shot``) appear when ``OGSHOT_SHOT_ORIGINS`` names origins: without them every
/shot URL is a 404. The service's own operations (liveness, readiness, this document) are
``openapi_service.py``'s.
"""

from __future__ import annotations

from typing import Any

from ogshot.core.errors import OgshotError
from ogshot.core.settings import Settings
from ogshot.core.version import __version__
from ogshot.engine.page_shot import (
    MAX_HIDE,
    MAX_SELECTOR_LENGTH,
    MAX_URL_LENGTH,
    MAX_WAIT_MS,
)
from ogshot.http.openapi_service import service_paths
from ogshot.templates.budgets import BUDGET_PARAM, BUDGET_RANGE
from ogshot.templates.catalog import Catalog, Param, Template
from ogshot.templates.fields import COLOUR_PATTERN, RESERVED_PARAMS, json_value
from ogshot.templates.versions import VERSION_PARAM, VERSION_PATTERN

__all__ = ["openapi"]

FORMATS = ["png", "jpg", "jpeg", "webp"]
IMAGE_TYPES = ["image/png", "image/jpeg", "image/webp"]
URL_PATTERN = "^https?://[^/?#\"'<> \\\\\\[\\]]+([/?#][^\"'<> \\\\]*)?$"

_ERROR = {"$ref": "#/components/schemas/Error"}
_JSON_ERROR = {"application/json": {"schema": _ERROR}}
_FALLBACK = {"image/png": {"schema": {"type": "string", "format": "binary"}}}
_BINARY = {"type": "string", "format": "binary"}


def openapi(catalog: Catalog, settings: Settings) -> dict[str, Any]:
    names = catalog.names()
    paths: dict[str, Any] = {}
    for name in names:
        try:
            template = catalog.get(name)
        except OgshotError:
            continue  # a broken template file: not offered until it is fixed
        path_item = {"get": _image_operation(template, settings, "get")}
        path_item["head"] = _image_operation(template, settings, "head")
        paths[f"/og/{name}.{{format}}"] = path_item
    paths["/og"] = {
        "get": _query_operation(names, settings, "get"),
        "head": _query_operation(names, settings, "head"),
    }
    if settings.shot_origins:
        paths["/shot.{format}"] = {
            "get": _shot_operation(settings, "get"),
            "head": _shot_operation(settings, "head"),
        }
    paths.update(service_paths())
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ogshot",
            "version": __version__,
            "description": (
                "Open Graph images (1200x630 by default) rendered from HTML/CSS templates. "
                "`/og/{template}` without an extension is the same as `.png`."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "detail"],
                    "properties": {
                        "error": {"type": "string", "description": "what went wrong"},
                        "detail": {"description": "structured details, or null"},
                    },
                }
            },
            "headers": _HEADERS,
        },
    }


def _param_schema(param: Param, settings: Settings) -> dict[str, Any]:
    schema: dict[str, Any]
    if param.choices:
        schema = {"enum": list(param.choices)}
    elif param.type == "int":
        schema = {"type": "integer"}
    elif param.type == "float":
        schema = {"type": "number"}
    elif param.type == "bool":
        schema = {"type": "boolean"}
    elif param.type == "color":
        schema = {"type": "string", "pattern": COLOUR_PATTERN}
    elif param.type == "date":
        schema = {"type": "string", "format": "date"}
    elif param.type == "url":
        schema = {
            "type": "string",
            "format": "uri",
            "pattern": URL_PATTERN,
            "maxLength": param.max_length or 2048,
        }
    else:
        schema = {"type": "string", "maxLength": param.max_length or settings.max_param_length}
        if param.required and not param.allow_empty:
            schema["pattern"] = r"\S"  # not empty, not only spaces
    if param.type in ("int", "float"):
        if param.min is not None:
            schema["minimum"] = param.min
        if param.max is not None:
            schema["maximum"] = param.max
    if param.default is not None:
        schema["default"] = json_value(param.default)
    return schema


def _template_params(template: Template, settings: Settings) -> list[dict[str, Any]]:
    if not template.declared:
        return [
            {
                "name": "params",
                "in": "query",
                "description": (
                    "An undeclared template takes any string parameters "
                    f"(at most {settings.max_params}, {settings.max_param_length} characters each)"
                ),
                "style": "form",
                "explode": True,
                "schema": {
                    "type": "object",
                    "maxProperties": settings.max_params,
                    "propertyNames": {
                        "pattern": "^[A-Za-z_][A-Za-z0-9_]{0,63}$",
                        "not": {"enum": sorted(RESERVED_PARAMS)},
                    },
                    "additionalProperties": {
                        "type": "string",
                        "maxLength": settings.max_param_length,
                    },
                },
            }
        ]
    return [
        {
            "name": param.name,
            "in": "query",
            "required": param.required,
            "description": param.description,
            "schema": _param_schema(param, settings),
            **({"example": param.example} if param.example is not None else {}),
        }
        for param in template.params.values()
    ]


def _version(template: Template | None) -> list[dict[str, Any]]:
    """The reserved ``v`` (freshness.py): the current one makes the answer immutable."""
    current = f" (now {template.version})" if template is not None else ""
    return [
        {
            "name": VERSION_PARAM,
            "in": "query",
            "required": False,
            "description": (
                f"The template's version{current}, as `ogshot url` and sign_url write it. "
                "The image is always the current one; with the current version it is cached "
                "immutably, without one or with an old one for OGSHOT_MAX_AGE (revalidated by "
                "ETag)"
            ),
            "schema": {"type": "string", "pattern": VERSION_PATTERN},
            **({"example": template.version} if template is not None else {}),
        }
    ]


def _budget(template: Template | None) -> list[dict[str, Any]]:
    """The reserved ``max_kb`` (templates/budgets.py): the image's byte budget."""
    low, high = BUDGET_RANGE
    default = template.max_kb if template is not None else None
    declared = f" (this template's default: {default})" if default is not None else ""
    return [
        {
            "name": BUDGET_PARAM,
            "in": "query",
            "required": False,
            "description": (
                f"Byte budget in KB (1000 bytes){declared}: JPEG and WebP take the highest "
                "quality that fits, PNG a palette; 422 when nothing fits. The choice is in "
                "X-Ogshot-Quality"
            ),
            "schema": {"type": "integer", "minimum": low, "maximum": high},
        }
    ]


def _signature(settings: Settings) -> list[dict[str, Any]]:
    if not settings.secrets:
        return []
    return [
        {
            "name": "s",
            "in": "query",
            "required": True,
            "description": "URL signature (OGSHOT_SECRET is set): 403 when missing or wrong",
            "schema": {"type": "string"},
        }
    ]


def _conditional() -> list[dict[str, Any]]:
    return [
        {
            "name": "If-None-Match",
            "in": "header",
            "required": False,
            "description": "An ETag from an earlier answer: 304 when the image is the same",
            "schema": {"type": "string"},
        },
    ]


def _image_operation(template: Template, settings: Settings, method: str) -> dict[str, Any]:
    size = template.size
    width, height = size.pixels
    scale = ""
    if size.scale != 1:
        scale = f" (a {size.width}x{size.height} page at scale {size.scale:g})"
    return {
        "operationId": f"{method}_{template.name.replace('-', '_')}",
        "summary": template.description or f"The {template.name} image",
        "description": f"A {width}x{height} image{scale}.",
        "x-ogshot-size": {
            "width": size.width,
            "height": size.height,
            "scale": size.scale,
            "pixels": {"width": width, "height": height},
        },
        "tags": ["images"],
        "parameters": [
            {
                "name": "format",
                "in": "path",
                "required": True,
                "schema": {"enum": FORMATS},
            },
            *_template_params(template, settings),
            *_version(template),
            *_budget(template),
            *_signature(settings),
            *_conditional(),
        ],
        "responses": _image_responses(settings),
    }


def _query_operation(names: list[str], settings: Settings, method: str) -> dict[str, Any]:
    return {
        "operationId": f"{method}_og_query",
        "summary": "Any template, its parameters given as one JSON object",
        "tags": ["images"],
        "parameters": [
            {
                "name": "template",
                "in": "query",
                "required": True,
                "schema": {"type": "string", "enum": names} if names else {"type": "string"},
            },
            {
                "name": "data",
                "in": "query",
                "required": False,
                "description": "The parameters as a JSON object (nested at most 4 levels)",
                "content": {"application/json": {"schema": {"type": "object"}}},
            },
            {
                "name": "format",
                "in": "query",
                "required": False,
                "schema": {"enum": FORMATS, "default": "png"},
            },
            *_version(None),
            *_budget(None),
            *_signature(settings),
            *_conditional(),
        ],
        "responses": _image_responses(settings),
    }


def _shot_operation(settings: Settings, method: str) -> dict[str, Any]:
    origins = ", ".join(settings.shot_origins)
    responses = _image_responses(settings)
    # Errors are JSON, never a fallback image: the audience of a page screenshot is its operator.
    del responses["404"]  # only while OGSHOT_SHOT_ORIGINS is empty, and then /shot is not listed
    no_store = {"Cache-Control": {"$ref": "#/components/headers/No-Store"}}
    responses["422"] = {
        "description": (
            "The page could not be captured as asked (navigation refused or failed, an error "
            "status, a selector that matched nothing); or no encoding fits max_kb; never cached"
        ),
        "content": _JSON_ERROR,
    }
    responses["500"] = {
        "description": "The capture failed (browser error): never cached",
        "headers": no_store,
        "content": _JSON_ERROR,
    }
    responses["504"] = {
        "description": (
            f"The page was not captured within OGSHOT_SHOT_TIMEOUT ({settings.shot_timeout:g} s): "
            "never cached"
        ),
        "headers": no_store,
        "content": _JSON_ERROR,
    }
    return {
        "operationId": f"{method}_shot",
        "summary": "A screenshot of a page of an allowed origin",
        "description": (
            f"The page at `url` (its origin one of OGSHOT_SHOT_ORIGINS: {origins}), captured at "
            f"{settings.width}x{settings.height}, cached for OGSHOT_SHOT_TTL "
            f"({settings.shot_ttl} s) and then served stale while it is taken again."
        ),
        "tags": ["screenshots"],
        "parameters": [
            {"name": "format", "in": "path", "required": True, "schema": {"enum": FORMATS}},
            {
                "name": "url",
                "in": "query",
                "required": True,
                "description": "The page to capture: http or https, of an allowed origin",
                "schema": {"type": "string", "maxLength": MAX_URL_LENGTH, "pattern": URL_PATTERN},
            },
            {
                "name": "selector",
                "in": "query",
                "required": False,
                "description": "Capture only the first element this CSS selector matches",
                "schema": {"type": "string", "maxLength": MAX_SELECTOR_LENGTH},
            },
            {
                "name": "wait",
                "in": "query",
                "required": False,
                "description": "Milliseconds to wait after the page's load event",
                "schema": {"type": "integer", "minimum": 0, "maximum": MAX_WAIT_MS, "default": 0},
            },
            {
                "name": "hide",
                "in": "query",
                "required": False,
                "description": (
                    f"Comma-separated CSS selectors of elements to hide (at most {MAX_HIDE})"
                ),
                "schema": {"type": "string"},
            },
            {
                "name": "scheme",
                "in": "query",
                "required": False,
                "description": "The color scheme the page is shown in",
                "schema": {"enum": ["light", "dark"], "default": "light"},
            },
            *_budget(None),
            *_signature(settings),
            *_conditional(),
        ],
        "responses": responses,
    }


def _image_responses(settings: Settings) -> dict[str, Any]:
    image = {media: {"schema": _BINARY} for media in IMAGE_TYPES}  # the one the format asks for
    headers = {
        "ETag": {"$ref": "#/components/headers/ETag"},
        "Cache-Control": {"$ref": "#/components/headers/Cache-Control"},
        "X-Ogshot-Cache": {"$ref": "#/components/headers/X-Ogshot-Cache"},
        "X-Ogshot-Warning": {"$ref": "#/components/headers/X-Ogshot-Warning"},
    }
    fallback_headers = {
        "Cache-Control": {"$ref": "#/components/headers/No-Store"},
        "X-Ogshot-Error": {"$ref": "#/components/headers/X-Ogshot-Error"},
    }
    return {
        "200": {"description": "The image", "headers": headers, "content": image},
        "206": {
            "description": "The byte range a `Range: bytes=a-b` header asked for",
            "content": image,
        },
        "304": {"description": "Not modified: the If-None-Match ETag is the image's"},
        "400": {"description": "A bad parameter, JSON or format (named)", "content": _JSON_ERROR},
        "403": {"description": "Missing or wrong URL signature", "content": _JSON_ERROR},
        "404": {"description": "No such template (the others listed)", "content": _JSON_ERROR},
        "414": {
            "description": f"Query string over {settings.max_query_length} bytes",
            "content": _JSON_ERROR,
        },
        "416": {"description": "The `Range` header asks for bytes past the end"},
        "422": {
            "description": (
                "With OGSHOT_STRICT: the render drew a character no font has or an image "
                "failed to load (listed in `detail`); or no encoding fits max_kb (the smallest "
                "size in `detail`); never cached"
            ),
            "content": _JSON_ERROR,
        },
        "500": {
            "description": (
                "The render failed (template error, browser error): a plain fallback image, "
                "never cached"
            ),
            "headers": fallback_headers,
            "content": {**_FALLBACK, **_JSON_ERROR},
        },
        "503": {
            "description": "Overloaded (no page free in time) or shutting down",
            "headers": {"Retry-After": {"$ref": "#/components/headers/Retry-After"}},
            "content": _JSON_ERROR,
        },
        "504": {
            "description": (
                f"The render did not finish within the deadline "
                f"({settings.render_timeout:g} s): the fallback image, never cached"
            ),
            "headers": fallback_headers,
            "content": _FALLBACK,
        },
    }


_HEADERS = {
    "ETag": {"description": "Strong ETag: a hash of the image bytes", "schema": {"type": "string"}},
    "Cache-Control": {
        "description": (
            "With the template's current version v: public, max-age=<OGSHOT_VERSIONED_MAX_AGE>, "
            "immutable. Without a version, with an old one, or served stale: public, "
            "max-age=<OGSHOT_MAX_AGE>, stale-while-revalidate=..., stale-if-error=... "
            "(OGSHOT_CACHE_CONTROL replaces both)"
        ),
        "schema": {"type": "string"},
    },
    "No-Store": {"description": "no-store", "schema": {"const": "no-store"}},
    "X-Ogshot-Cache": {
        "description": "hit, miss, or stale (past its TTL: served while one refresh runs)",
        "schema": {"enum": ["hit", "miss", "stale"]},
    },
    "X-Ogshot-Error": {"description": "why the render failed", "schema": {"type": "string"}},
    "X-Ogshot-Warning": {
        "description": (
            "what the image could not show: `missing-glyphs U+E000 ...; failed-images URL ...; "
            "failed-resources URL ...` (stylesheets, scripts, fonts, frames refused or not "
            "found; absent when nothing is missing)"
        ),
        "schema": {"type": "string"},
    },
    "Retry-After": {"description": "seconds", "schema": {"type": "integer", "minimum": 0}},
}
