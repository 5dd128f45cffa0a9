"""/preview: the design studio for template authors. Mounted only in dev mode.

The pages are plain HTML/CSS/JS from ``assets/``; this module serves them and the few
endpoints they use:

    GET /preview                           gallery of every template
    GET /preview/{template}                the studio for one template
    GET /preview/_assets/{file}            the pages' own CSS, JS and images
    GET /preview/_api/templates            every template described (or its error)
    GET /preview/_api/templates/{name}     one template described
    GET /preview/_render/{name}.{ext}?...  the image, from the same pipeline as /og; a failure is
                                           JSON with the message, file, line and source excerpt;
                                           ``variant=NAME`` forces one of its A/B variants
    GET /preview/_events                   server-sent events: one per saved file in the
                                           templates or static folder (live reload)
    GET /preview/_html/{template}?...      the rendered document, to open in a browser
    GET /static/{path}                     the static folder, for that document

preview_html.py answers the plain HTML ones (and the 404 page of an unknown template).

Template names never start with ``_``, so the ``_`` paths cannot collide with a template.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import signal
import time
import tomllib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ogshot.core.errors import OgshotError, TemplateError, TemplateNotFound
from ogshot.core.stopwatch import server_timing
from ogshot.engine.assets import Assets
from ogshot.http.cache_control import cache_status
from ogshot.http.errors import ErrorRoute
from ogshot.http.query import query_params
from ogshot.pipeline.renderer import Renderer
from ogshot.pipeline.warnings import PAGE_ORIGIN
from ogshot.studio import html as preview_html
from ogshot.templates.catalog import Template
from ogshot.templates.signing import signed_path
from ogshot.templates.versions import VERSION_PARAM

__all__ = ["Studio", "routes"]

log = logging.getLogger("ogshot")

ASSETS = Path(__file__).with_name("assets")
STREAM_SECONDS = 10.0  # an event stream ends after this; EventSource reconnects at once
HEARTBEAT_SECONDS = 5.0
EXCERPT_LINES = 3
NO_STORE = {"cache-control": "no-store"}


class Studio:
    """What the studio adds to a running app: live reload from the renderer's file watcher."""

    def __init__(self, renderer: Renderer) -> None:
        self.renderer = renderer
        self.assets = Assets(renderer.settings.static_dir)  # /static for documents opened as HTML
        self.watcher = renderer.watcher  # started and closed by the renderer
        self._signals: dict[
            signal.Signals, tuple[Any, Callable[[int, FrameType | None], None]]
        ] = {}

    async def __aenter__(self) -> Studio:
        self._chain_exit_signals()
        settings = self.renderer.settings
        log.info(
            "design studio on http://%s:%s/preview (dev mode: never expose it)",
            settings.host,
            settings.port,
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.watcher.release()
        for sig, (previous, ours) in self._signals.items():
            if signal.getsignal(sig) is ours:
                signal.signal(sig, previous)

    def _chain_exit_signals(self) -> None:
        """End the event streams as soon as the server is told to stop.

        uvicorn lets open responses finish before it shuts down, and an event stream does not
        finish by itself: without this, Ctrl-C with a studio tab open would wait STREAM_SECONDS.
        """
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous = signal.getsignal(sig)

            def ours(signum: int, frame: FrameType | None, previous: Any = previous) -> None:
                loop.call_soon_threadsafe(self.watcher.release)
                if callable(previous):
                    previous(signum, frame)
                else:  # SIG_DFL, SIG_IGN or a handler from outside Python: put it back and act
                    signal.signal(signum, signal.SIG_DFL if previous is None else previous)
                    if previous != signal.SIG_IGN:
                        signal.raise_signal(signum)

            try:
                signal.signal(sig, ours)
            except ValueError:  # not the main thread (an embedded server): streams time out
                return
            self._signals[sig] = (previous, ours)


def routes() -> list[BaseRoute]:
    return [
        Route("/preview", gallery_page, methods=["GET"]),
        Mount("/preview/_assets", app=StaticFiles(directory=ASSETS), name="preview_assets"),
        Route("/preview/_api/templates", list_templates, methods=["GET"]),
        ErrorRoute(
            "/preview/_api/templates/{name:str}",
            describe_template,
            methods=["GET"],
            explain=explain,
        ),
        ErrorRoute("/preview/_render/{file:str}", render, methods=["GET"], explain=explain),
        Route("/preview/_events", events, methods=["GET"]),
        ErrorRoute(
            "/preview/_html/{name:str}", preview_html.document, methods=["GET"], explain=explain
        ),
        Route("/static/{path:path}", static_file, methods=["GET"]),
        Route("/preview/{name:str}", studio_page, methods=["GET"]),
    ]


def _renderer(request: Request) -> Renderer:
    renderer: Renderer = request.state.renderer
    return renderer


def _studio(request: Request) -> Studio:
    studio: Studio = request.state.studio
    return studio


# -- pages -------------------------------------------------------------------------------------


async def gallery_page(request: Request) -> Response:
    return FileResponse(ASSETS / "gallery.html", headers=NO_STORE)


async def studio_page(request: Request) -> Response:
    try:
        await _renderer(request).template(request.path_params["name"])
    except TemplateNotFound as exc:  # a person's browser asked: a page with links, not JSON
        return preview_html.not_found_page(exc)
    except TemplateError:  # the studio shows it
        pass
    return FileResponse(ASSETS / "studio.html", headers=NO_STORE)


async def static_file(request: Request) -> Response:
    return await preview_html.static_file(request, _studio(request).assets)


# -- JSON --------------------------------------------------------------------------------------


def _describe(renderer: Renderer, name: str) -> dict[str, Any]:
    template = renderer.catalog.get(name)
    settings = renderer.settings
    width, height = template.size.pixels
    return {
        **template.describe(),
        "examples": template.examples(),
        "width": width,
        "height": height,
        "signed": bool(settings.secrets),
        "site_name": settings.site_name,  # og:site_name of a template without a site parameter
    }


async def list_templates(request: Request) -> Response:
    renderer = _renderer(request)
    items: list[dict[str, Any]] = []
    for name in renderer.catalog.names():
        try:
            items.append(_describe(renderer, name))
        except OgshotError as exc:  # listed with its error, as the overlay would show it
            error = {"error": exc.message, "detail": explain(request, exc)}
            items.append({"name": name, "params": [], **error})
    return JSONResponse({"templates": items}, headers=NO_STORE)


async def describe_template(request: Request) -> Response:
    renderer = _renderer(request)
    return JSONResponse(_describe(renderer, request.path_params["name"]), headers=NO_STORE)


# -- the image ---------------------------------------------------------------------------------


async def render(request: Request) -> Response:
    """Like /og/{name}.{ext}, but a failure is JSON the studio can show (its route ``explain``s
    errors), never a fallback image."""
    renderer = _renderer(request)
    name, _, ext = request.path_params["file"].partition(".")
    ext = ext or "png"
    started = time.perf_counter()
    params = query_params(request, renderer.settings)
    forced = _forced_variant(renderer, name, params)
    image = await renderer.image(name, params, ext, variant=forced)
    timings = {**image.timings, "total": (time.perf_counter() - started) * 1000}
    headers = {
        **NO_STORE,
        "etag": f'"{image.etag}"',
        "x-ogshot-cache": cache_status(cached=image.cached, stale=image.stale),
        "server-timing": server_timing(timings),
        # The URL to paste: versioned, so it is immutable and a redesign still reaches crawlers.
        "x-ogshot-url": signed_path(
            renderer.settings, name, {**params, VERSION_PARAM: image.version}, ext
        ),
    }
    if image.variant:
        headers["x-ogshot-variant"] = image.variant
    if image.warnings:
        headers["x-ogshot-warning"] = image.warnings.header()
        # For the studio: each warning next to the field whose value holds it, and a refused
        # stylesheet, script, font or frame next to the template line that asks for it (ASCII).
        described = image.warnings.to_json(params)
        described["lines"] = _lines_naming(
            renderer.catalog.get(name), image.warnings.failed_resources
        )
        headers["x-ogshot-warnings"] = json.dumps(described)
    return Response(image.body, media_type=image.content_type, headers=headers)


def _lines_naming(template: Template, urls: Sequence[str]) -> dict[str, dict[str, Any]]:
    """URL -> the file and line of the template (or a partial) that names it, from the catalog's
    sources in memory. A URL a parameter gave is named by no line."""
    loader = template.environment.loader
    if loader is None or not urls:
        return {}
    own = f"{template.name}.html"
    files = [own, *(f for f in loader.list_templates() if f != own)]
    found: dict[str, dict[str, Any]] = {}
    for url in urls[:16]:
        needle = PAGE_ORIGIN.sub("", url)
        for file in files:
            try:
                source = loader.get_source(template.environment, file)[0]
            except jinja2.TemplateNotFound:
                continue
            at = source.find(needle)
            if at >= 0:
                found[url] = {"file": file, "line": source.count("\n", 0, at) + 1}
                break
    return found


def _forced_variant(renderer: Renderer, name: str, params: dict[str, str]) -> str | None:
    """``variant=NAME`` picks an A/B variant here (the studio shows them side by side); on /og
    the page's parameters alone decide. A template with variants cannot declare a parameter
    named ``variant``, so the name is free."""
    if "variant" not in params or renderer.catalog.get(name).variants is None:
        return None
    return params.pop("variant")


HINTS = {
    "timeout": "Is the page waiting for something that never finishes: window.ogshotReady, "
    "a font, an image, a script?",
}


def explain(request: Request, exc: OgshotError) -> dict[str, Any]:
    """The error's ``detail`` with what the studio's overlay shows: its kind and status, the
    template file, line and source excerpt, a hint."""
    root = _renderer(request).catalog.root
    detail: dict[str, Any] = dict(exc.detail) if isinstance(exc.detail, dict) else {}
    detail["kind"] = exc.kind
    detail["status"] = exc.status
    if isinstance(exc, TemplateError):
        path, line = _where(exc, root)
        if path is not None:
            detail["file"] = path.relative_to(root.resolve()).as_posix()
            detail["line"] = line
            detail["excerpt"] = _excerpt(path, line)
    if exc.kind in HINTS:
        detail["hint"] = HINTS[exc.kind]
    return detail


_TOML_LINE = re.compile(r"at line (\d+)")


def _where(exc: TemplateError, root: Path) -> tuple[Path | None, int | None]:
    """The template file and line an error points at (a partial's, when the error is there)."""
    cause = exc.__cause__
    file: str | None = None
    line = exc.line
    if isinstance(cause, jinja2.TemplateSyntaxError):
        file, line = cause.filename, cause.lineno
    elif isinstance(cause, tomllib.TOMLDecodeError):
        match = _TOML_LINE.search(str(cause))
        if match and line is not None:
            line += int(match.group(1)) - 1  # the TOML block starts on the declaration's line
    elif cause is not None:
        tb = cause.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_filename.endswith(".html"):
                file, line = tb.tb_frame.f_code.co_filename, tb.tb_lineno
            tb = tb.tb_next
    base = root.resolve()
    path = Path(file).resolve() if file else base / f"{exc.template}.html"
    if not path.is_relative_to(base) or not path.is_file():
        return None, line
    return path, line


def _excerpt(path: Path, line: int | None) -> list[dict[str, Any]]:
    if line is None:
        return []
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    first = max(1, line - EXCERPT_LINES)
    last = min(len(lines), line + EXCERPT_LINES)
    return [{"line": n, "text": lines[n - 1]} for n in range(first, last + 1)]


# -- live reload -------------------------------------------------------------------------------


async def events(request: Request) -> Response:
    """Server-sent events: ``change`` (with the changed files) each time a watched file changes.

    Each stream ends after STREAM_SECONDS so that a server shutdown never waits on it; the browser
    reconnects with ``Last-Event-ID`` and gets a ``change`` at once if it missed one.
    """
    watcher = _studio(request).watcher
    boot, _, last = request.headers.get("last-event-id", "").partition(":")
    if boot != watcher.boot:
        # A first connection starts from now; one from before a server restart may have missed
        # changes, so it gets a ``change`` at once.
        seen = watcher.version if not boot else -1
    else:
        seen = int(last) if last.isdigit() else -1

    async def stream() -> AsyncIterator[str]:
        nonlocal seen
        yield "retry: 250\n\n"
        hello = {"version": watcher.version, "backend": watcher.backend}
        yield _event("hello", f"{watcher.boot}:{min(seen, watcher.version)}", hello)
        deadline = time.monotonic() + STREAM_SECONDS
        while (left := deadline - time.monotonic()) > 0 and not watcher.released:
            version = await watcher.wait(seen, within=min(left, HEARTBEAT_SECONDS))
            if watcher.released:
                return
            if version > seen:
                seen = version
                data = {"version": version, "files": watcher.changed}
                yield _event("change", f"{watcher.boot}:{version}", data)
            else:
                yield ": keep-alive\n\n"

    headers = {**NO_STORE, "x-accel-buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


def _event(name: str, event_id: str, data: Mapping[str, Any]) -> str:
    return f"event: {name}\nid: {event_id}\ndata: {json.dumps(data)}\n\n"
