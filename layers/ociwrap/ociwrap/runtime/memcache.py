"""A bounded in-memory cache for a warm Lambda: hot manifests, configs and records.

Bounded by entries and bytes so a long-lived function cannot grow without limit;
entries may carry an expiry for things that go stale (tags). One cache serves every
part of the registry, each through its own `Namespace`: keys of different namespaces
never meet, whatever their text, and each namespace holds one type of value.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

Value = TypeVar("Value")


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
        self._items: OrderedDict[Hashable, tuple[Any, int, float | None]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any | None:
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

    def put(self, key: Hashable, value: Any, size: int = 1, ttl: float | None = None) -> None:
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
        key: Hashable,
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

    def discard(self, key: Hashable) -> None:
        with self._lock:
            if key in self._items:
                self._drop(key)

    def _drop(self, key: Hashable) -> None:
        _value, size, _expires = self._items.pop(key)
        self._bytes -= size

    def __len__(self) -> int:
        return len(self._items)

    def namespace(self, name: str) -> Namespace[Any]:
        """The part of this cache whose keys are `name`'s alone (bounds are shared)."""
        return Namespace(self, name)


class Namespace(Generic[Value]):
    """One kind of entry in a shared `BoundedCache`: keys are (name, key) pairs."""

    def __init__(self, cache: BoundedCache, name: str) -> None:
        self.cache = cache
        self.name = name

    def get(self, key: Hashable) -> Value | None:
        return self.cache.get((self.name, key))

    def put(self, key: Hashable, value: Value, size: int = 1, ttl: float | None = None) -> None:
        self.cache.put((self.name, key), value, size=size, ttl=ttl)

    def get_or_load(
        self,
        key: Hashable,
        load: Callable[[], Value | None],
        size: Callable[[Value], int] | None = None,
        ttl: float | None = None,
    ) -> Value | None:
        return self.cache.get_or_load((self.name, key), load, size=size, ttl=ttl)

    def discard(self, key: Hashable) -> None:
        self.cache.discard((self.name, key))
