"""The one table of ogshot's HTTP areas: for each, the paths it covers, the bounded label the
metrics count it under, and the path template the request log writes (never the raw path: it
carries parameters). ``ogshot.app`` mounts the routes; the middleware labels requests from here."""

from __future__ import annotations

import functools
from dataclasses import dataclass

__all__ = ["AREAS", "Area", "area_of"]


@dataclass(frozen=True)
class Area:
    label: str  # the metrics' ``route`` label
    path: str  # this path, or every path under it when it ends in "/"
    logged: str  # what the request log writes as the path

    def covers(self, path: str) -> bool:
        if self.path.endswith("/"):
            return path.startswith(self.path) or path == self.path[:-1]
        return path == self.path


# Most requests first: every request is matched against the areas before its own.
AREAS = (
    Area("og", "/og/", "/og/{template}.{format}"),
    Area("og", "/og", "/og"),
    Area("healthz", "/healthz", "/healthz"),
    Area("readyz", "/readyz", "/readyz"),
    Area("openapi", "/openapi.json", "/openapi.json"),
    Area("templates", "/templates.json", "/templates.json"),
    Area("metrics", "/metrics", "/metrics"),
    Area("preview", "/preview/", "/preview/..."),
    Area("admin", "/admin/", "/admin/..."),
    *(Area("shot", f"/shot.{ext}", "/shot.{format}") for ext in ("png", "jpg", "jpeg", "webp")),
)
OTHER = Area("other", "", "other")


@functools.lru_cache(maxsize=256)
def area_of(path: str) -> Area:
    for area in AREAS:
        if area.covers(path):
            return area
    return OTHER
