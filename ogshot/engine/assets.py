"""What a rendering page may load, and where it comes from.

Pages live on a private origin that no network resolves. Requests to ``/static/...`` on it are
answered from the static folder on disk; images from hosts on ``OGSHOT_REMOTE_IMAGES`` are answered
from memory after ogshot fetched them itself (see remote.py); every other request is refused. The
page's request router (router.py) asks :meth:`Assets.answer`, so nothing a page asks for reaches
the network through Chromium (``data:`` and ``blob:`` URLs never leave the page).
"""

from __future__ import annotations

import asyncio
import mimetypes
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ogshot.engine.page import ORIGIN
from ogshot.engine.remote_images import RemoteImageError, RemoteImages

__all__ = ["ORIGIN", "Asset", "Assets"]

STATIC_PREFIX = f"{ORIGIN}/static/"

mimetypes.add_type("font/woff2", ".woff2")
mimetypes.add_type("font/woff", ".woff")
mimetypes.add_type("font/ttf", ".ttf")
mimetypes.add_type("font/otf", ".otf")
mimetypes.add_type("image/svg+xml", ".svg")
mimetypes.add_type("image/webp", ".webp")
mimetypes.add_type("image/avif", ".avif")


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    # Remote images: never reused by Chromium's own cache, whose copy would outlive ours.
    remote: bool = False

    @property
    def headers(self) -> dict[str, str]:
        headers = {"content-type": self.content_type, "x-content-type-options": "nosniff"}
        if self.remote:
            headers["cache-control"] = "no-store"
        return headers


class Assets:
    """Static files by URL, with a small in-memory copy keyed by (mtime, size)."""

    def __init__(self, static_dir: Path, *, remote: RemoteImages | None = None) -> None:
        self.root = Path(static_dir).resolve()
        self.remote = remote
        self._memo: dict[str, tuple[int, int, Asset]] = {}

    async def answer(self, url: str, resource_type: str) -> Asset | None:
        """What to answer a page's request with; None means refuse it."""
        if url.startswith(STATIC_PREFIX):
            # A stat and maybe a read: off the event loop, which a slow disk would stall.
            return await asyncio.to_thread(self.static, url)
        remote = self.remote
        # Only as an image: the same bytes as a document or a script could do far more.
        if remote is None or resource_type != "image" or not remote.allows(url):
            return None
        try:
            image = remote.lookup(url) or await remote.get(url)
        except RemoteImageError:
            return None
        return Asset(image.body, image.content_type, remote=True)

    def static(self, url: str) -> Asset | None:
        """The file behind a ``/static/`` URL of the page origin, or None. Blocks on the disk."""
        if not url.startswith(STATIC_PREFIX):
            return None
        rel = unquote(urlsplit(url).path)[len("/static/") :]
        path = (self.root / rel).resolve()
        if not path.is_relative_to(self.root) or not path.is_file():
            return None
        try:
            st = os.stat(path)
            memo = self._memo.get(str(path))
            if memo and memo[0] == st.st_mtime_ns and memo[1] == st.st_size:
                return memo[2]
            body = path.read_bytes()
        except OSError:
            return None
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        asset = Asset(body, kind)
        if len(body) <= 4 << 20:
            self._memo[str(path)] = (st.st_mtime_ns, st.st_size, asset)
        return asset
