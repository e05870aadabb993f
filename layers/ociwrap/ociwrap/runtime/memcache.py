"""A bounded in-memory cache for a warm Lambda: hot manifests, configs and records.

Bounded by entries and bytes so a long-lived function cannot grow without limit;
entries may carry an expiry for things that go stale (tags).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any


class BoundedCache:
    """Least-recently-used cache with a cap on entries and on summed sizes."""

    def __init__(
        self,
        max_entries: int = 512,
        max_bytes: int = 32 * 1024 * 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._clock = clock
        self._items: OrderedDict[str, tuple[Any, int, float | None]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> Any | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            value, _size, expires = item
            if expires is not None and expires <= self._clock():
                self._drop(key)
                return None
            self._items.move_to_end(key)
            return value

    def put(self, key: str, value: Any, size: int = 1, ttl: float | None = None) -> None:
        if size > self.max_bytes:
            return
        expires = None if ttl is None else self._clock() + ttl
        with self._lock:
            if key in self._items:
                self._drop(key)
            self._items[key] = (value, size, expires)
            self._bytes += size
            while len(self._items) > self.max_entries or self._bytes > self.max_bytes:
                self._drop(next(iter(self._items)))

    def get_or_load(
        self,
        key: str,
        load: Callable[[], Any],
        size: Callable[[Any], int] | None = None,
        ttl: float | None = None,
    ) -> Any:
        """The cached value for `key`, else `load()`'s, kept (unless it is None) for next time.

        `size` measures a loaded value in bytes for the byte bound (default: 1).
        """
        value = self.get(key)
        if value is None:
            value = load()
            if value is not None:
                self.put(key, value, size=size(value) if size else 1, ttl=ttl)
        return value

    def discard(self, key: str) -> None:
        with self._lock:
            if key in self._items:
                self._drop(key)

    def _drop(self, key: str) -> None:
        _value, size, _expires = self._items.pop(key)
        self._bytes -= size

    def __len__(self) -> int:
        return len(self._items)
