"""The cache key, and the disk cache of encoded images (bytes only).

The key hashes everything that decides an image's pixels: the template's digest (its source, the
partials it uses, the static folder), the canonical validated parameters, format, size and scale,
and ogshot's version. Values are raw bytes with the ETag beside them; the disk layer refuses to
store or load anything else, so a tampered row can never be unpickled.

A failing cache (folder deleted, disk full, database locked or corrupt) never fails a request:
``get`` answers a miss, ``set`` drops the image, the first error of a kind is logged, and the cache
is reopened after a pause so service recovers when the cause goes away.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import diskcache

from . import __version__
from .config import Settings

__all__ = ["BytesOnlyDisk", "ImageCache", "UnsafeCacheValue", "cache_key"]

log = logging.getLogger("ogshot.cache")


def cache_key(
    *, template_digest: str, params: str, fmt: str, settings: Settings, extra: str = ""
) -> str:
    parts = (
        __version__,
        template_digest,
        params,
        fmt,
        f"{settings.width}x{settings.height}@{settings.device_scale_factor:g}",
        f"png{settings.png_colours}/{settings.png_compression}",
        f"jpeg{settings.jpeg_quality}/webp{settings.webp_quality}",
        extra,
    )
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


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

    RETRY_AFTER = 5.0  # seconds between attempts to reopen a failed cache

    def __init__(self, settings: Settings) -> None:
        self.directory = Path(settings.cache_dir)
        self.size_limit = settings.cache_size
        self.ttl = settings.cache_ttl or None
        self._cache: diskcache.Cache | None = None
        self._lock = threading.Lock()
        self._failed_at: float | None = None
        self._logged: set[str] = set()
        self.errors = 0
        self._open()

    @property
    def healthy(self) -> bool:
        return self._cache is not None

    def _open(self) -> None:
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
            self._failed_at = None
            if self._logged:
                log.warning("cache at %s is working again", self.directory)
                self._logged.clear()
        except Exception as exc:
            self._fail("open", exc)

    def _note(self, what: str, exc: Exception) -> None:
        """Log a problem once per kind, not once per request."""
        self.errors += 1
        kind = f"{what}:{type(exc).__name__}"
        if kind not in self._logged:
            self._logged.add(kind)
            log.error("cache %s failed (%s: %s); serving without it", what, type(exc).__name__, exc)

    def _fail(self, what: str, exc: Exception) -> None:
        self._note(what, exc)
        if self._cache is not None:
            with contextlib.suppress(Exception):  # already failing; closing is best effort
                self._cache.close()
        self._cache = None
        self._failed_at = time.monotonic()

    def _live(self) -> diskcache.Cache | None:
        if self._cache is None and (
            self._failed_at is None or time.monotonic() - self._failed_at >= self.RETRY_AFTER
        ):
            with self._lock:
                if self._cache is None:
                    self._open()
        return self._cache

    def get(self, key: str) -> tuple[bytes, str] | None:
        """(image bytes, etag) or None on a miss or any failure."""
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
        value, etag = found
        if not isinstance(value, bytes) or not isinstance(etag, str):
            return None
        return value, etag

    def set(self, key: str, value: bytes, etag: str) -> bool:
        cache = self._live()
        if cache is None:
            return False
        try:
            return bool(cache.set(key, value, expire=self.ttl, tag=etag, retry=False))
        except Exception as exc:
            self._fail("write", exc)
            return False

    def clear(self) -> None:
        cache = self._live()
        if cache is not None:
            try:
                cache.clear()
            except Exception as exc:
                self._fail("clear", exc)

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()
            self._cache = None
