"""``ogshot build``: pre-generate the images of a manifest into a folder or a bucket.

plan (validate every row, name its image; no browser) -> list what the output holds (once) ->
render what is missing with the whole pool in parallel -> write each image as it comes ->
write the mapping file (row -> path and public URL) for a static site generator.

An image's name holds a hash of ogshot's cache key (template version, parameters, format,
encoder settings), so a file that exists is the right picture: a resumed build skips it without
reading it, and a template edit gives new names instead of stale images. A row that fails is
reported with its reason and the others go on.

With ``server`` (``ogshot build --server URL``) the images come from a running fleet, downloaded
from their signed URLs (``remote.py``), instead of a local Chromium; the plan, the resumability and
the mapping file are the same (the plan reads the same templates to name the images).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from ogshot.batch.manifests import Row
from ogshot.batch.outputs import Output
from ogshot.batch.remote import RETRIES, FleetClient
from ogshot.core.errors import OgshotError
from ogshot.core.settings import Settings
from ogshot.core.version import __version__
from ogshot.pipeline.jobs import Job
from ogshot.pipeline.renderer import Renderer

__all__ = ["MAPPING_FILE", "BuildReport", "Target", "build", "output_path"]

log = logging.getLogger("ogshot")

MAPPING_FILE = "ogshot-build.json"
REMOTE_CONCURRENCY = 8  # downloads in flight from a fleet, unless --concurrency says
# Honest because a name changes whenever the picture would: see output_path.
IMMUTABLE = "public, max-age=31536000, immutable"
_EXTENSIONS = {"png": "png", "jpeg": "jpg", "webp": "webp"}
_UNSAFE = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class Target:
    """A row that passed validation, and where its image goes."""

    row: Row
    job: Job  # resolved: its key covers the bytes of the remote images it shows
    path: str  # relative to the output: "article/hello-world-3f2a9c0d1e.png"

    @property
    def format(self) -> str:
        return self.job.format


@dataclass
class BuildReport:
    written: list[Target] = field(default_factory=list)
    skipped: list[Target] = field(default_factory=list)
    failed: list[tuple[Row, str]] = field(default_factory=list)
    rows: int = 0
    rendered_seconds: float = 0.0  # time spent rendering and writing (0 when all were there)
    mapping: str = ""  # where the mapping file went


def output_path(row: Row, fmt: str, key: str) -> str:
    """``<template>/<stem>-<hash>.<ext>``: the stem from the row's name (a URL's path for
    sitemap rows), else from its first text parameter; the hash from the cache key."""
    stem = _stem(row.name) if row.name else ""
    if not stem:
        first = next((v for v in row.params.values() if isinstance(v, str) and v.strip()), "")
        stem = _slug(first) or "image"
    return f"{row.template}/{stem}-{key[:10]}.{_EXTENSIONS[fmt]}"


def _slug(text: str) -> str:
    return _UNSAFE.sub("-", text.lower()).strip("-")[:60].strip("-")


def _stem(name: str) -> str:
    path = urlsplit(name).path if "://" in name else name
    segments = [_slug(part) for part in path.split("/")]
    return "/".join(s for s in segments if s)[:200] or ("index" if "://" in name else "")


async def build(
    rows: Sequence[Row],
    output: Output,
    settings: Settings,
    *,
    format: str = "png",
    concurrency: int | None = None,
    force: bool = False,
    public_base_url: str = "",
    progress: bool = False,
    notice: Callable[[str], None] = log.info,
    use_cache: bool = False,
    server: str = "",
    retries: int = RETRIES,
) -> BuildReport:
    """Render every row of ``rows`` that ``output`` lacks (all of them with ``force``) and write
    the mapping file; never raises for one row, only when the output cannot be listed or the
    mapping file cannot be written. ``use_cache``: read and fill the cache the settings name
    (disk and Redis); by default a build renders with a private cache it removes after.
    ``server``: download the images from this fleet instead of rendering them, trying a 503 or a
    dropped connection up to ``retries`` more times."""
    report = BuildReport(rows=len(rows))
    with contextlib.ExitStack() as scratch:
        if server:
            notice(f"downloading the images from {server}")
        elif not use_cache:
            # A build is its own process: it neither reads images another process cached (a
            # "render" of 0.0 s from a fleet's Redis) nor fills the server's caches.
            folder = scratch.enter_context(tempfile.TemporaryDirectory(prefix="ogshot-build-"))
            settings = settings.replace(cache_dir=Path(folder), redis_url="")
            notice("rendering with a cache of its own (--use-cache: the configured one)")
        else:
            where = f"disk {settings.cache_dir}" + (" and Redis" if settings.redis_url else "")
            notice(f"using the configured cache ({where}): cached images are copied, not rendered")
        return await _build(
            rows,
            output,
            settings,
            report,
            format,
            concurrency,
            force,
            public_base_url,
            progress,
            notice,
            server,
            retries,
        )


async def _build(
    rows: Sequence[Row],
    output: Output,
    settings: Settings,
    report: BuildReport,
    format: str,
    concurrency: int | None,
    force: bool,
    public_base_url: str,
    progress: bool,
    notice: Callable[[str], None],
    server: str,
    retries: int,
) -> BuildReport:
    renderer = Renderer(settings, watch=False)  # one pass: the templates are read once
    try:
        # Validation reads template files: a thread, like every disk touch under the loop.
        planned = await asyncio.to_thread(_plan, renderer, rows, format, report)
        # Names hold the final key: one that covers the remote images' bytes, as rendered.
        targets = await _pin(renderer, planned, report)
        existing = set() if force else await asyncio.to_thread(output.existing)
        todo: dict[str, Target] = {}
        for target in targets:
            if target.path in existing:
                report.skipped.append(target)
            else:
                todo.setdefault(target.path, target)
        if report.skipped:
            notice(
                f"skipping {len(report.skipped)} of {len(rows)} rows: their images are already "
                f"there (--force renders them again)"
            )
        if todo:
            started = time.perf_counter()
            if server:
                width = concurrency or REMOTE_CONCURRENCY
                async with FleetClient(
                    server, settings, concurrency=width, retries=retries
                ) as fleet:
                    errors = await _render_all(
                        _downloader(fleet), output, list(todo.values()), width, progress
                    )
            else:
                await renderer.start()
                width = concurrency or settings.pool_size * 2
                errors = await _render_all(
                    _renderer(renderer), output, list(todo.values()), width, progress
                )
            report.rendered_seconds = time.perf_counter() - started
            for target in targets:  # rows that share an image share its fate
                if target.path in errors:
                    report.failed.append((target.row, errors[target.path]))
                elif target.path in todo:
                    report.written.append(target)
    finally:
        await renderer.close()
    mapping = _mapping(targets, report, public_base_url)
    body = json.dumps(mapping, indent=2, ensure_ascii=False).encode()
    report.mapping = output.location(MAPPING_FILE)
    try:
        await asyncio.to_thread(
            output.write,
            MAPPING_FILE,
            body,
            content_type="application/json",
            cache_control="no-cache",
        )
    except Exception as exc:  # the images are there; say why their index is not
        raise OgshotError(
            f"cannot write the mapping file {report.mapping}: {_describe(exc)}"
        ) from exc
    return report


def _plan(
    renderer: Renderer, rows: Iterable[Row], fmt: str, report: BuildReport
) -> list[tuple[Row, Job]]:
    """Validate every row; touches no browser and no network."""
    planned: list[tuple[Row, Job]] = []
    for row in rows:
        if row.error is not None:
            report.failed.append((row, row.error))
            continue
        try:
            planned.append((row, renderer.prepare(row.template, row.params, row.format or fmt)))
        except OgshotError as exc:
            report.failed.append((row, exc.message))
    return planned


async def _pin(
    renderer: Renderer, planned: Iterable[tuple[Row, Job]], report: BuildReport
) -> list[Target]:
    """Name every validated row's image by its final key (remote images fetched once each)."""
    targets: list[Target] = []
    names: dict[str, Target] = {}
    for row, prepared in planned:
        try:
            job = await renderer.pinned(prepared)
        except OgshotError as exc:
            report.failed.append((row, exc.message))
            continue
        target = Target(row, job, output_path(row, job.format, job.key))
        earlier = names.get(row.id)
        if earlier is not None and earlier.path != target.path:
            report.failed.append((row, f"name {row.id!r} is also used by {earlier.row.source}"))
            continue
        names.setdefault(row.id, target)
        targets.append(target)
    return targets


# An image and its Content-Type, made by the local Renderer or downloaded from a fleet.
Make = Callable[[Target], Awaitable[tuple[bytes, str]]]


def _renderer(renderer: Renderer) -> Make:
    async def make(target: Target) -> tuple[bytes, str]:
        image = await renderer.answer(target.job)
        return image.body, image.content_type

    return make


def _downloader(fleet: FleetClient) -> Make:
    async def make(target: Target) -> tuple[bytes, str]:
        fetched = await fleet.image(target.row.template, dict(target.row.params), target.format)
        return fetched.body, fetched.content_type

    return make


async def _render_all(
    make: Make, output: Output, targets: list[Target], concurrency: int, progress: bool
) -> dict[str, str]:
    """Make and write ``targets``; returns path -> reason for those that failed."""
    errors: dict[str, str] = {}
    pending = iter(targets)
    with _progress_bar(progress) as bar:
        task = bar.add_task("rendering", total=len(targets), failed=0)

        async def worker() -> None:
            for target in pending:  # one shared iterator: each target goes to one worker
                try:
                    body, content_type = await make(target)
                    await asyncio.to_thread(
                        output.write,
                        target.path,
                        body,
                        content_type=content_type,
                        cache_control=IMMUTABLE,
                    )
                except Exception as exc:  # one row's failure never stops the others
                    errors[target.path] = (
                        exc.message if isinstance(exc, OgshotError) else _describe(exc)
                    )
                bar.update(task, advance=1, failed=len(errors))

        await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    return errors


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _mapping(targets: list[Target], report: BuildReport, base_url: str) -> dict[str, Any]:
    """Row id -> image, for a static site generator. Rows whose image could not be made are in
    ``failed`` with the reason, never in ``images``."""
    base = base_url.rstrip("/")
    failed_rows = {id(row) for row, _ in report.failed}
    images: dict[str, Any] = {}
    for target in targets:
        row = target.row
        if id(row) in failed_rows:
            continue
        images[row.id] = {
            "template": row.template,
            "params": dict(row.params),
            "format": target.format,
            "path": target.path,
            "url": f"{base}/{target.path}" if base else None,
        }
    failed = {
        row.id: {"source": row.source, "template": row.template, "error": reason}
        for row, reason in report.failed
    }
    return {"ogshot": __version__, "base_url": base or None, "images": images, "failed": failed}


class _Rate(ProgressColumn):
    def render(self, task: Task) -> Text:
        # The run's average: steadier than a recent window while pages warm up.
        speed = task.completed / task.elapsed if task.completed and task.elapsed else 0.0
        return Text(f"{speed:.1f} img/s" if speed else "- img/s", style="progress.data.speed")


def _progress_bar(visible: bool) -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _Rate(),
        TextColumn("[red]{task.fields[failed]} failed"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        disable=not visible,
        transient=False,
    )
