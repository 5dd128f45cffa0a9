"""The studio's plain HTML answers, beside its single-page app (preview.py mounts them):

    GET /preview/{unknown}                 a 404 page that lists the templates as links
    GET /preview/_html/{template}?...      the rendered document itself, for the browser's devtools
    GET /static/{path}                     the static folder, for that document (dev mode only)

The document and the static files run on the dev server's origin, in the designer's own browser:
both carry a Content-Security-Policy that forbids scripts and connections, so a template (or a
parameter someone put in a shared link) cannot act on the dev server with the designer's browser.
"""

from __future__ import annotations

import asyncio
import html
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from ogshot.core.errors import TemplateNotFound
from ogshot.engine.assets import STATIC_PREFIX, Assets
from ogshot.http.query import query_params
from ogshot.pipeline.renderer import Renderer

__all__ = ["content_security_policy", "document", "not_found_page", "static_file"]

NO_STORE = {"cache-control": "no-store"}


def content_security_policy(renderer: Renderer) -> str:
    """No scripts, no connections, no frames. The document may load styles, fonts and images
    from the dev server itself and ``data:`` URLs, and images from OGSHOT_REMOTE_IMAGES hosts."""
    remote = " ".join(renderer.remote.allowlist)
    images = f"'self' data: blob: {remote}".strip()
    return "; ".join(
        (
            "default-src 'self'",
            f"img-src {images}",
            "style-src 'self' 'unsafe-inline'",
            "font-src 'self' data:",
            "script-src 'none'",
            "connect-src 'none'",
            "frame-src 'none'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'none'",
        )
    )


def _renderer(request: Request) -> Renderer:
    renderer: Renderer = request.state.renderer
    return renderer


async def document(request: Request) -> Response:
    """The HTML the pipeline would hand to Chromium for these parameters (errors answer as JSON,
    like ``/preview/_render``)."""
    renderer = _renderer(request)
    params = query_params(request, renderer.settings)
    name = request.path_params["name"]
    await renderer.template(name)  # one saved a moment ago too; TemplateNotFound otherwise
    job = renderer.prepare(name, params)
    # A Tailwind template's CSS may still be compiling since the start: off the loop, as a render.
    template = await renderer.styled(job.template)
    text = renderer.catalog.render_html(template, job.variables)
    headers = {
        **NO_STORE,
        "content-security-policy": content_security_policy(renderer),
        "x-content-type-options": "nosniff",
    }
    return HTMLResponse(text, headers=headers)


async def static_file(request: Request, assets: Assets) -> Response:
    """A file of the static folder, as the rendering pages get it (same lookup, same refusals)."""
    url = STATIC_PREFIX + quote(request.path_params["path"])
    asset = await asyncio.to_thread(assets.static, url)
    if asset is None:  # missing, a folder, or outside the static folder
        error = {"error": f"no file {request.path_params['path']!r} in the static folder"}
        return JSONResponse(error, status_code=404, headers=NO_STORE)
    headers = {
        **NO_STORE,
        **asset.headers,
        "content-security-policy": content_security_policy(_renderer(request)),
    }
    return Response(asset.body, headers=headers)


def not_found_page(exc: TemplateNotFound) -> Response:
    """What ``/preview/{name}`` answers for a name that is no template: the templates, as links."""
    names: list[str] = list(exc.detail["available"]) if isinstance(exc.detail, dict) else []
    link = '<a href="/preview/{0}">{1}</a>'.format
    items = (
        "\n".join(f"    <li>{link(quote(n), html.escape(n))}</li>" for n in names)
        or "    <li>None yet: add NAME.html to the templates folder.</li>"
    )
    close = exc.suggestion
    hint = f"<p>Did you mean {link(quote(close), html.escape(close))}?</p>" if close else ""
    body = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>No template named {html.escape(exc.name)} · ogshot studio</title>
<link rel="icon" href="/preview/_assets/favicon.svg">
<link rel="stylesheet" href="/preview/_assets/studio.css">
<script src="/preview/_assets/common.js"></script>
</head>
<body class="gallery-page">
<main class="gallery-main not-found">
  <h1>No template named <code>{html.escape(exc.name)}</code></h1>
  {hint}
  <p class="muted">The templates are:</p>
  <ul class="template-list">
{items}
  </ul>
  <p><a href="/preview">All templates, with their previews</a></p>
</main>
</body>
</html>
"""
    return HTMLResponse(body, status_code=404, headers=NO_STORE)
