"""The HTTP service's parts: image answers, query parsing, errors, health, admin, OpenAPI and
the per-request middleware. ``ogshot.app`` assembles them."""
