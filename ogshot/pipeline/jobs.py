"""What flows through the pipeline: a validated request (:class:`Job`) and its answer
(:class:`Image`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ogshot.cache.disk import Entry
from ogshot.core.formats import CONTENT_TYPES
from ogshot.pipeline.warnings import NO_WARNINGS, Warnings, load_warnings
from ogshot.templates.catalog import Template
from ogshot.templates.variants import VARIABLE

__all__ = ["Image", "Job"]


@dataclass(frozen=True)
class Image:
    body: bytes
    etag: str
    format: str
    cached: bool
    timings: Mapping[str, float] = field(default_factory=dict)  # stage -> milliseconds
    # What the render that made it could not draw; kept with the cached image in every layer.
    warnings: Warnings = NO_WARNINGS
    variant: str = ""  # the A/B variant drawn, when the template declares variants
    stale: bool = False  # past the cache TTL: served while one background render refreshes it
    version: str = ""  # the version of the template that made it (what versioned URLs carry)
    key: str = ""  # its cache key (the edge's purges and cache tags name it)
    quality: str = ""  # what a byte budget chose (engine/budget.py); "" without a budget

    @classmethod
    def of(
        cls,
        job: Job,
        entry: Entry,
        *,
        cached: bool,
        timings: Mapping[str, float],
        stale: bool = False,
        warnings: Warnings | None = None,
    ) -> Image:
        """The one way an answer is made: ``job``'s image, as stored in ``entry`` (``warnings``:
        already parsed, when the render that made the entry is at hand)."""
        return cls(
            body=entry.body,
            etag=entry.etag,
            format=job.format,
            cached=cached,
            timings=timings,
            warnings=load_warnings(entry.warnings) if warnings is None else warnings,
            variant=job.variant,
            stale=stale,
            version=job.template.version,
            quality=entry.quality,
            key=job.key,
        )

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]


@dataclass(frozen=True)
class Job:
    """A validated request: everything needed to look up or make one image."""

    template: Template
    values: Mapping[str, Any]
    format: str
    key: str
    variant: str = ""
    max_kb: int | None = None  # the byte budget: the URL's max_kb, else the template's default

    @property
    def variables(self) -> Mapping[str, Any]:
        """What the template receives: the values, and the variant when it declares variants."""
        if self.template.variants is None:
            return self.values
        return {**self.values, VARIABLE: self.variant}
