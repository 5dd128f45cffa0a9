"""The service's own operations in the OpenAPI document; ``openapi.py`` describes the images.

``/healthz`` (liveness), ``/readyz`` (readiness: the browser pool's counters from
``Pool.stats()``, the disk cache's health), ``/templates.json`` (the templates' versions, for
clients: its content is the catalog's, its shape fixed) and ``/openapi.json`` itself. Unlike the
image operations they depend on neither the template catalog nor the settings, so they are built
here, apart, and added after the images.
"""

from __future__ import annotations

from typing import Any

__all__ = ["service_paths"]


def service_paths() -> dict[str, Any]:
    """The path items of the service operations, in the order the document lists them."""
    return {
        "/healthz": {"get": _health_operation()},
        "/readyz": {"get": _ready_operation()},
        "/templates.json": {"get": _templates_operation()},
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This description of the API",
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.1 document",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
    }


def _health_operation() -> dict[str, Any]:
    return {
        "operationId": "healthz",
        "summary": "Liveness: the process answers",
        "tags": ["operations"],
        "responses": {
            "200": {
                "description": "Alive",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["status", "version"],
                            "properties": {
                                "status": {"const": "ok"},
                                "version": {"type": "string"},
                            },
                        }
                    }
                },
            }
        },
    }


_POOL = {
    "type": "object",
    "required": ["size", "idle", "busy", "queued", "browser_restarts"],
    "properties": {
        key: {"type": "integer", "minimum": 0}
        for key in (
            "size",
            "idle",
            "busy",
            "starting",
            "queued",
            "queue_limit",
            "renders",
            "browser_launches",
            "browser_restarts",
            "browser_recycles",
            "browser_renders",
            "recycle_after",
            "probe_failures",
            "pages_replaced",
            "rejected",
        )
    },
}


def _ready_operation() -> dict[str, Any]:
    body = {
        "type": "object",
        "required": ["ready", "pool", "cache", "version"],
        "properties": {
            "ready": {"type": "boolean"},
            "pool": _POOL,
            "cache": {
                "type": "object",
                "properties": {"healthy": {"type": "boolean"}, "errors": {"type": "integer"}},
            },
            "version": {"type": "string"},
        },
    }
    content = {"application/json": {"schema": body}}
    return {
        "operationId": "readyz",
        "summary": "Readiness: the browser pool can take renders; its state",
        "tags": ["operations"],
        "responses": {
            "200": {"description": "Ready", "content": content},
            "503": {
                "description": "Not ready (Chromium starting or restarting)",
                "content": content,
            },
        },
    }


def _templates_operation() -> dict[str, Any]:
    """``/templates.json`` (http/templates_json.py): what a client needs to link an image."""
    param = {
        "type": "object",
        "required": ["type", "required"],
        "properties": {"type": {"type": "string"}, "required": {"type": "boolean"}, "default": {}},
    }
    template = {
        "type": "object",
        "required": ["name", "v", "size", "formats", "declared", "params"],
        "properties": {
            "name": {"type": "string"},
            "v": {"type": "string", "description": "the current version, for signed URLs"},
            "description": {"type": "string"},
            "size": {
                "type": "object",
                "required": ["width", "height", "scale"],
                "properties": {
                    "width": {"type": "integer"},
                    "height": {"type": "integer"},
                    "scale": {"type": "number"},
                },
            },
            "formats": {"type": "array", "items": {"type": "string"}},
            "declared": {"type": "boolean"},
            "params": {"type": "object", "additionalProperties": param},
        },
    }
    body = {
        "type": "object",
        "required": ["templates"],
        "properties": {"templates": {"type": "array", "items": template}},
    }
    return {
        "operationId": "templates",
        "summary": "The templates with their current version v, size, formats and parameters",
        "tags": ["operations"],
        "responses": {
            "200": {
                "description": "The templates (Cache-Control: public, max-age=60; an ETag)",
                "content": {"application/json": {"schema": body}},
            },
            "304": {"description": "Not modified (If-None-Match matched the ETag)"},
        },
    }
