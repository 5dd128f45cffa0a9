"""Answering every request a rendering page makes.

The pipeline builds one :class:`Router` from its assets and hands it to the pool, which puts
:meth:`Router.for_page` in front of each page it opens. A navigation to a document URL gets that
page's current document; ``/static/`` files and allowed remote images get what
:class:`~ogshot.engine.assets.Assets` has; other URLs on the page origin get a 404, and everything
else is refused, so nothing a page asks for reaches the network through Chromium. An image, and a
stylesheet, script, font or frame, that gets a 404 or is refused is noted on the page's document,
for the render's warnings: nothing is refused silently.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Route

from ogshot.engine.assets import Assets
from ogshot.engine.page import ORIGIN, Document

__all__ = ["Router"]

Handler = Callable[[Route], Awaitable[None]]

# Chromium's resource types whose loss changes the picture, besides images ("document": a frame,
# or a navigation away from the document).
REPORTED_TYPES = frozenset({"stylesheet", "script", "font", "document", "media"})


class Router:
    def __init__(self, assets: Assets) -> None:
        self.assets = assets

    def for_page(self, document: Document) -> Handler:
        """The request handler of the page whose content ``document`` records."""
        assets = self.assets

        async def route(route: Route) -> None:
            request = route.request
            url = request.url
            try:
                body = document.answer(url)
                if body is not None and request.is_navigation_request():
                    await route.fulfill(
                        status=200, body=body, headers={"content-type": "text/html; charset=utf-8"}
                    )
                    return
                asset = await assets.answer(url, request.resource_type)
                if asset is not None:
                    if asset.remote:
                        document.showed_remote()
                    await route.fulfill(status=200, body=asset.body, headers=asset.headers)
                    return
                if request.resource_type == "image":
                    document.failed_image(url)
                elif request.resource_type in REPORTED_TYPES:
                    document.failed_resource(url)
                if url.startswith(ORIGIN):
                    await route.fulfill(status=404, body=b"not found")
                    return
                await route.abort("blockedbyclient")
            except PlaywrightError:
                pass  # the page went away while we answered

        return route
