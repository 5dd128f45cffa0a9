"""What one warm page shows, and what a render may have left behind in it.

Each page has one :class:`Document`, its only record of the page's content. ``render.py`` loads a
new document through it, the page's request router answers the page's navigations from it and
notes the remote images it showed, and the pool asks it whether the page must be scrubbed before
it is lent again. Nobody else writes its fields.
"""

from __future__ import annotations

import itertools

from playwright.async_api import Page

from ogshot.templates.declarations import Size

__all__ = ["BLANK_URL", "DOCUMENT_PREFIX", "ORIGIN", "Document"]

# The private origin the pages live on; no network resolves it.
ORIGIN = "http://ogshot.invalid"
DOCUMENT_PREFIX = f"{ORIGIN}/__ogshot__/document/"
BLANK_URL = f"{DOCUMENT_PREFIX}blank"
_BLANK = b"<!doctype html><html><body></body></html>"


class Document:
    def __init__(self, page_id: int, size: Size | None = None) -> None:
        self._prefix = f"{DOCUMENT_PREFIX}{page_id}/"
        self._urls = itertools.count()
        self.body = _BLANK  # what the next navigation to a document URL is answered with
        self.scripted = False  # the current document may have left state in the window
        self.frame_id: str | None = None  # the main frame's CDP id, looked up once
        self._static_digest: str | None = None  # of the static folder at the last render
        # A remote image was shown: the document keeps it by URL ("list of available images")
        # even when the bytes behind the URL change, so the next render needs a fresh document.
        self._showed_remote = False
        # The page's viewport and scale (the browser context's until a render asks for another):
        # a render of a template of another size sets it, one of the same size skips the call.
        # A render that names no size gets the context's own back. ``size`` starts unknown: the
        # context's device scale factor does not reach captures made over our own CDP session
        # (OGSHOT_DEVICE_SCALE_FACTOR=2 gave 1x images), so the first render always sets it.
        self.base_size = size
        self.size: Size | None = None
        # Image requests of the current document that were refused or got a 404, for warnings.
        self.failed_images: list[str] = []
        # The same for stylesheets, scripts, fonts and frames: a template linking a CDN renders
        # without it, so it is reported (and refused in strict mode), never silently cached.
        self.failed_resources: list[str] = []

    def static_changed(self, digest: str) -> bool:
        """Record the static folder's digest for this render; True when it differs from the last
        render's, so the page's memory cache holds stale static files and must be cleared."""
        changed = self._static_digest not in (None, digest)
        self._static_digest = digest
        return changed

    def load(self, body: bytes, *, scripted: bool) -> str | None:
        """Make ``body`` the page's next document. Returns the URL to navigate to when it needs a
        fresh window (it or the one before it could run scripts), or None when it can be written
        into the current window in place."""
        fresh = scripted or self.scripted
        self.scripted = scripted
        self.failed_images = []
        self.failed_resources = []
        if not fresh:
            return None
        self.body = body
        return f"{self._prefix}{next(self._urls)}"

    def answer(self, url: str) -> bytes | None:
        """The body for a navigation to ``url``: the current document for a document URL."""
        return self.body if url.startswith(DOCUMENT_PREFIX) else None

    def showed_remote(self) -> None:
        self._showed_remote = True

    def failed_image(self, url: str) -> None:
        """The router refused or could not find an image the document asked for."""
        if len(self.failed_images) < 64 and url not in self.failed_images:
            self.failed_images.append(url)

    def failed_resource(self, url: str) -> None:
        """The router refused or could not find a stylesheet, script, font or frame."""
        if len(self.failed_resources) < 64 and url not in self.failed_resources:
            self.failed_resources.append(url)

    def needs_scrub(self, page: Page) -> bool:
        """Whether the page's storage must be wiped before the next render gets it.

        A document that could run scripts may have written storage. So may one that left
        something its text did not show: a frame (an ``<iframe srcdoc>`` with an escaped parameter
        in it runs scripts), a navigation away from the document (a meta refresh to a /static
        page), or a remote image, which the document keeps by URL. Those also make the next
        render start from a fresh window."""
        showed, self._showed_remote = self._showed_remote, False
        if showed or len(page.frames) > 1 or not page.url.startswith(DOCUMENT_PREFIX):
            self.scripted = True
        return self.scripted
