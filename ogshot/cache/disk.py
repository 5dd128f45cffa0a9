"""The cache key, and the disk cache of encoded images (bytes only).

The key hashes everything that decides an image's pixels: the template's digest (its source, the
partials it uses, the static folder), the canonical validated parameters, format, size and scale,
and ogshot's version. Values are raw bytes with the ETag beside them; the disk layer refuses to
store or load anything else, so a tampered row can never be unpickled.

A failing cache never fails a request: ``get`` answers a miss, ``set`` drops the image, and each
problem is logged once (and its end once), not once per request:

- folder deleted or replaced: noticed within ``CHECK_EVERY`` seconds (SQLite would otherwise keep
  writing to the deleted file), and the cache is reopened, recreating the folder;
- disk full: writes pause for ``RETRY_AFTER`` seconds while reads go on;
- corrupt database: the database file is moved aside (``cache.db.corrupt``), the image files it
  indexed are removed, and a fresh cache is started;
- anything else (locked, unreadable): the cache is closed and reopened after ``RETRY_AFTER``.

Several processes (``ogshot serve --workers N``) can share one folder: SQLite serialises them.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import diskcache

from ogshot.core.settings import Settings
from ogshot.core.version import __version__

__all__ = ["BytesOnlyDisk", "Entry", "ImageCache", "UnsafeCacheValue", "cache_key"]

log = logging.getLogger("ogshot.cache")


def cache_key(
    *,
    template_digest: str,
    params: str,
    fmt: str,
    settings: Settings,
    extra: str = "",
    size: str = "",
) -> str:
    """``size``: the template's image size (``Size``'s text, ``1080x1080@2``); the settings'
    when empty."""
    parts = (
        __version__,
        template_digest,
        params,
        fmt,
        size or f"{settings.width}x{settings.height}@{settings.device_scale_factor:g}",
        f"png{settings.png_colours}/{settings.png_compression}",
        f"jpeg{settings.jpeg_quality}/{settings.jpeg_encoder}/webp{settings.webp_quality}",
        extra,
    )
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


@dataclass(frozen=True)
class Entry:
    """An encoded image as every cache layer keeps it. ``stored_at`` is wall-clock seconds (shared
    by all nodes), from which its freshness follows; ``warnings`` what its render could not draw
    (glyphs.dump_warnings), so that every hit reports them too; ``quality`` what a byte budget
    chose (engine/budget.py: ``72``, ``palette-256``; no spaces), for every hit's header too."""

    body: bytes
    etag: str
    stored_at: float
    warnings: str = ""
    quality: str = ""

    def freshness(self, ttl: int, stale_for: int) -> Literal["fresh", "stale", "expired"]:
        """fresh (within ``ttl``; 0: for ever), stale (within ``stale_for`` past it: served while
        one refresh runs) or expired (a miss)."""
        age = time.time() - self.stored_at
        if not ttl or age < ttl:
            return "fresh"
        return "stale" if age < ttl + stale_for else "expired"

    @property
    def tag(self) -> str:
        # ``etag stored_at [q=QUALITY] [warnings]``: warnings are a JSON list, never ``q=...``.
        parts = [self.etag, f"{self.stored_at:.3f}"]
        if self.quality:
            parts.append(f"q={self.quality}")
        if self.warnings:
            parts.append(self.warnings)
        return " ".join(parts)

    @classmethod
    def from_tag(cls, body: bytes, tag: str) -> Entry:
        etag, _, rest = tag.partition(" ")
        stored, _, rest = rest.partition(" ")
        quality = ""
        if rest.startswith("q="):
            quality, _, rest = rest[2:].partition(" ")
        try:
            stored_at = float(stored)
        except ValueError:  # written before entries carried their age: as old as can be
            stored_at = 0.0
        return cls(body=body, etag=etag, stored_at=stored_at, warnings=rest, quality=quality)


class UnsafeCacheValue(ValueError):
    """A row that is not plain bytes: never loaded, treated as a miss."""


class BytesOnlyDisk(diskcache.Disk):  # type: ignore[misc]
    """A diskcache Disk that stores and returns only raw bytes and string keys."""

    def put(self, key: Any) -> tuple[Any, bool]:
        if not isinstance(key, str):
            raise TypeError("cache keys must be str")
        db_key, raw = super().put(key)
        return db_key, bool(raw)

    def get(self, key: Any, raw: bool) -> Any:
        if not raw:
            raise UnsafeCacheValue("refusing to unpickle a cache key")
        return super().get(key, raw)

    def store(self, value: Any, read: bool, key: Any = diskcache.core.UNKNOWN) -> Any:
        if read or not isinstance(value, bytes):
            raise TypeError("cache values must be bytes")
        return super().store(value, read, key=key)

    def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> Any:
        # RAW: small values inline in SQLite; BINARY: larger ones in files. Never PICKLE or TEXT.
        if mode not in (diskcache.core.MODE_RAW, diskcache.core.MODE_BINARY) or read:
            raise UnsafeCacheValue(f"refusing to load a cache value stored in mode {mode}")
        return super().fetch(mode, filename, value, read)


class ImageCache:
    """Encoded images by cache key. Thread-safe; every method is safe to call off the loop."""

    RETRY_AFTER = 5.0  # seconds before a failed cache is reopened, or writes resume after ENOSPC
    CHECK_EVERY = 1.0  # seconds between checks that the database file is still in its folder

    def __init__(self, settings: Settings) -> None:
        self.directory = Path(settings.cache_dir)
        self.size_limit = settings.cache_size
        # Kept past their TTL for as long as a stale copy may still be served (stale_ttl).
        self.ttl = (settings.cache_ttl + settings.stale_ttl) if settings.cache_ttl else None
        self._cache: diskcache.Cache | None = None
        self._lock = threading.RLock()
        self._failed_at: float | None = None
        self._identity: tuple[int, int] | None = None  # (device, inode) of the database we opened
        self._checked_at = 0.0
        self._writes_paused_until = 0.0
        self._corrupt = False
        self._logged: set[str] = set()
        self.errors = 0
        self.on_error: Callable[[], None] | None = None  # e.g. a metrics counter; any thread
        with self._lock:
            self._open()

    @property
    def healthy(self) -> bool:
        return self._cache is not None and time.monotonic() >= self._writes_paused_until

    @property
    def database(self) -> Path:
        return self.directory / str(diskcache.core.DBNAME)

    def _open(self) -> None:
        if self._corrupt:
            self._quarantine()
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(self.directory, 0o700)
            self._cache = diskcache.Cache(
                str(self.directory),
                disk=BytesOnlyDisk,
                size_limit=self.size_limit,
                eviction_policy="least-recently-stored",
                timeout=1.0,
                statistics=False,
                tag_index=False,
            )
            found = self.database.stat()
            self._identity = (found.st_dev, found.st_ino)
            self._checked_at = time.monotonic()
            self._failed_at = None
        except Exception as exc:
            self._fail("open", exc)

    def _note(self, what: str, exc: Exception) -> None:
        """Log a problem once per kind, not once per request."""
        self.errors += 1
        if self.on_error is not None:
            self.on_error()
        kind = f"{what}:{type(exc).__name__}"
        if kind not in self._logged:
            self._logged.add(kind)
            log.error(
                "cache %s failed at %s (%s: %s); serving without it until it works again",
                what,
                self.directory,
                type(exc).__name__,
                exc,
                extra={"event": "cache_degraded"},
            )

    def _recovered(self) -> None:
        if self._logged:
            self._logged.clear()
            log.warning(
                "cache at %s is working again", self.directory, extra={"event": "cache_recovered"}
            )

    def _fail(self, what: str, exc: Exception) -> None:
        self._note(what, exc)
        if _is_corrupt(exc):
            self._corrupt = True
        self._close()
        self._failed_at = time.monotonic()

    def _close(self) -> None:
        if self._cache is not None:
            with contextlib.suppress(Exception):  # may be failing already; best effort
                self._cache.close()
        self._cache = None

    def _live(self) -> diskcache.Cache | None:
        now = time.monotonic()
        if self._cache is not None and now - self._checked_at >= self.CHECK_EVERY:
            with self._lock:
                if self._cache is not None and now - self._checked_at >= self.CHECK_EVERY:
                    self._checked_at = now
                    if not self._still_there():
                        self._close()
                        self._open()
        if self._cache is None and (
            self._failed_at is None or now - self._failed_at >= self.RETRY_AFTER
        ):
            with self._lock:
                if self._cache is None:
                    self._open()
        return self._cache

    def _still_there(self) -> bool:
        """False when the database was deleted or replaced under us (SQLite would keep writing
        to the deleted file, and another worker would never see those images)."""
        try:
            found = self.database.stat()
        except OSError as exc:
            self._note("check", exc)
            return False
        if (found.st_dev, found.st_ino) != self._identity:
            log.warning("cache database %s was replaced; reopening it", self.database)
            return False
        return True

    def _quarantine(self) -> None:
        """Move a corrupt database aside and remove the image files it indexed."""
        self._corrupt = False
        moved_at = time.time()
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(OSError):
                os.replace(f"{self.database}{suffix}", f"{self.database}{suffix}.corrupt")
        log.error("cache database %s is corrupt: moved it aside, starting afresh", self.database)
        threading.Thread(
            target=_remove_value_files, args=(self.directory, moved_at), daemon=True
        ).start()

    def get(self, key: str) -> Entry | None:
        """The entry, or None on a miss or any failure."""
        cache = self._live()
        if cache is None:
            return None
        try:
            found = cache.get(key, default=None, tag=True, retry=False)
        except UnsafeCacheValue as exc:
            self._note("unsafe", exc)
            try:
                cache.delete(key, retry=False)
            except Exception as delete_exc:
                self._fail("delete", delete_exc)
            return None
        except Exception as exc:
            self._fail("read", exc)
            return None
        value, tag = found
        if not isinstance(value, bytes) or not isinstance(tag, str):
            return None
        return Entry.from_tag(value, tag)

    def set(self, key: str, entry: Entry) -> bool:
        cache = self._live()
        if cache is None or time.monotonic() < self._writes_paused_until:
            return False
        try:
            stored = bool(cache.set(key, entry.body, expire=self.ttl, tag=entry.tag, retry=False))
        except Exception as exc:
            if _is_disk_full(exc):
                # Reads still work: keep serving hits, stop trying to write for a while.
                self._note("write", exc)
                self._writes_paused_until = time.monotonic() + self.RETRY_AFTER
            else:
                self._fail("write", exc)
            return False
        self._recovered()
        return stored

    def delete(self, key: str) -> bool:
        """Remove ``key`` (a purge); False when it was not there or the cache is unavailable."""
        cache = self._live()
        if cache is None:
            return False
        try:
            return bool(cache.delete(key, retry=False))
        except Exception as exc:
            self._fail("delete", exc)
            return False

    def stats(self) -> tuple[int, int]:
        """(entries, bytes on disk); (0, 0) while the cache is unavailable. Blocking."""
        cache = self._live()
        if cache is None:
            return 0, 0
        try:
            return len(cache), int(cache.volume())
        except Exception as exc:
            self._note("stats", exc)
            return 0, 0

    def clear(self) -> None:
        cache = self._live()
        if cache is not None:
            try:
                cache.clear()
            except Exception as exc:
                self._fail("clear", exc)

    def close(self) -> None:
        with self._lock:
            self._close()


def _is_disk_full(exc: Exception) -> bool:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.Error) and (
        (code is not None and code & 0xFF == sqlite3.SQLITE_FULL) or "disk is full" in str(exc)
    )


def _is_corrupt(exc: Exception) -> bool:
    if not isinstance(exc, sqlite3.DatabaseError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)
    text = str(exc)
    return "malformed" in text or "not a database" in text


_VALUE_FILE = re.compile(r"^[0-9a-f]{28}\.val$")
_VALUE_DIR = re.compile(r"^[0-9a-f]{2}$")


def _remove_value_files(directory: Path, older_than: float) -> None:
    """Delete diskcache's image files (``ab/cd/<28 hex>.val``) written before ``older_than``."""
    with contextlib.suppress(OSError):
        _remove_in(directory, older_than)


def _remove_in(directory: Path, older_than: float) -> None:
    for first in directory.iterdir():
        if not (_VALUE_DIR.match(first.name) and first.is_dir()):
            continue
        for second in first.iterdir():
            if not (_VALUE_DIR.match(second.name) and second.is_dir()):
                continue
            for item in second.iterdir():
                with contextlib.suppress(OSError):
                    if _VALUE_FILE.match(item.name) and item.stat().st_mtime < older_than:
                        item.unlink()
