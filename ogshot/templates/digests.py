"""Content digests of folders: what decides a template's version besides its own source. Blocking
(they read files): run them off the event loop, when the watcher reports a change."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Collection
from pathlib import Path

__all__ = ["StaticDigest", "file_stats", "relative_to"]


def file_stats(root: Path) -> dict[str, tuple[int, int]]:
    """path -> (mtime_ns, size) of every file under ``root`` (nothing when it does not exist)."""
    files: dict[str, tuple[int, int]] = {}
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            full = os.path.join(dirpath, name)
            try:
                st = os.stat(full)
            except OSError:
                continue
            files[full] = (st.st_mtime_ns, st.st_size)
    return files


class StaticDigest:
    """Content digest of the static folder, computed by :meth:`refresh` (blocking: off the loop).

    A refresh walks the folder and reads only the files that are new, changed in size or mtime, or
    named in ``changed`` (what the watcher saw: an edit within the mtime's granularity counts too).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.digest = ""
        self._files: dict[str, tuple[int, int, str]] = {}

    def refresh(self, changed: Collection[str] = ()) -> str:
        named = relative_to(changed, self.root)
        seen: dict[str, tuple[int, int, str]] = {}
        for full, (mtime_ns, size) in file_stats(self.root).items():
            rel = os.path.relpath(full, self.root)
            old = self._files.get(rel)
            if old and old[0] == mtime_ns and old[1] == size and rel not in named:
                seen[rel] = old
                continue
            try:
                content_hash = hashlib.sha256(Path(full).read_bytes()).hexdigest()
            except OSError:
                continue
            seen[rel] = (mtime_ns, size, content_hash)
        self._files = seen
        h = hashlib.sha256()
        for rel in sorted(seen):
            h.update(f"{rel}\0{seen[rel][2]}\n".encode())
        self.digest = h.hexdigest()
        return self.digest


def relative_to(paths: Collection[str], root: Path) -> set[str]:
    """The paths under ``root`` (itself included, as "."), relative to it; symlinks resolved."""
    real = root.resolve()
    return {
        os.path.relpath(full, real)
        for full in (Path(p).resolve() for p in paths)
        if full.is_relative_to(real)
    }
