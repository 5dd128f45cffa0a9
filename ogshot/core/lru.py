"""A small least-recently-used map, bounded by entry count and by total size.

Used on the cache-hit path: validated requests by their raw form (so a repeated URL skips parsing,
validation and hashing) and recently served images (so a hot image skips the disk cache).
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["LRU"]

V = TypeVar("V")


class LRU(Generic[V]):
    def __init__(
        self,
        *,
        max_entries: int,
        max_size: int = 0,
        size_of: Callable[[V], int] = lambda _v: 0,
    ) -> None:
        self.max_entries = max_entries
        self.max_size = max_size  # 0: unbounded by size
        self._size_of = size_of
        self._items: OrderedDict[Hashable, V] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()  # set/pop may also run in worker threads

    def __len__(self) -> int:
        return len(self._items)

    @property
    def size(self) -> int:
        return self._size

    def get(self, key: Hashable) -> V | None:
        try:
            value = self._items[key]
        except KeyError:
            return None
        with contextlib.suppress(KeyError):  # evicted meanwhile by another thread: still good
            self._items.move_to_end(key)
        return value

    def set(self, key: Hashable, value: V) -> None:
        if self.max_entries <= 0:
            return
        size = self._size_of(value)
        if self.max_size and size > self.max_size:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._size -= self._size_of(old)
            self._items[key] = value
            self._size += size
            while len(self._items) > self.max_entries or (
                self.max_size and self._size > self.max_size
            ):
                _, evicted = self._items.popitem(last=False)
                self._size -= self._size_of(evicted)

    def pop(self, key: Hashable) -> V | None:
        with self._lock:
            value = self._items.pop(key, None)
            if value is not None:
                self._size -= self._size_of(value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._size = 0
