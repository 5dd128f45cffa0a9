"""What a rendering page may load, and where it comes from.

Pages live on a private origin that no network resolves. Requests to ``/static/...`` on it are
answered from the static folder on disk; every other request is refused. The pool installs
:meth:`Assets.answer` as the page's request handler, so nothing reaches the network.
"""

from __future__ import annotations

import mimetypes
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

__all__ = ["DOCUMENT_PREFIX", "ORIGIN", "Asset", "Assets"]

ORIGIN = "http://ogshot.invalid"
DOCUMENT_PREFIX = f"{ORIGIN}/__ogshot__/document/"
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


class Assets:
    """Static files by URL, with a small in-memory copy keyed by (mtime, size)."""

    def __init__(self, static_dir: Path) -> None:
        self.root = Path(static_dir).resolve()
        self._memo: dict[str, tuple[int, int, Asset]] = {}

    def static(self, url: str) -> Asset | None:
        """The file behind a ``/static/`` URL of the page origin, or None."""
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
