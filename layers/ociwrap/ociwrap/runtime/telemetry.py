"""What one request did, counted as it happens, for its log line and its metrics.

The handler opens a `RequestStats` for each request; the library reports into the
current one (a context variable, so the threads a request starts report into it
too): upstream calls and their time by registry, S3 calls and their time, which
cache level answered, compositions, stale answers, where redirects point. Nothing
here is sent anywhere: the handler turns it into one log line and EMF metrics.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field


@dataclass
class RequestStats:
    """Counters of one request; safe to update from the threads the request starts."""

    upstream_calls: int = 0
    upstream_ms: float = 0.0
    s3_calls: int = 0
    s3_ms: float = 0.0
    #: ("tag" | "manifest" | "config" | "composition", "memory" | "s3" | "upstream" | ...)
    cache: Counter = field(default_factory=Counter)
    #: "compositions", "stale"
    events: Counter = field(default_factory=Counter)
    #: redirect targets: "upstream" (its own signed URL) or "s3" (our copy)
    redirects: Counter = field(default_factory=Counter)
    #: registry -> [calls, errors, milliseconds]
    registries: dict[str, list[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def upstream(self, registry: str, milliseconds: float, failed: bool) -> None:
        with self._lock:
            self.upstream_calls += 1
            self.upstream_ms += milliseconds
            calls, errors, total = self.registries.get(registry, [0, 0, 0.0])
            self.registries[registry] = [calls + 1, errors + failed, total + milliseconds]

    def s3(self, milliseconds: float) -> None:
        with self._lock:
            self.s3_calls += 1
            self.s3_ms += milliseconds

    def count(self, counter: Counter, key: object) -> None:
        with self._lock:
            counter[key] += 1


_current: ContextVar[RequestStats | None] = ContextVar("ociwrap_stats", default=None)


@contextmanager
def collecting() -> Iterator[RequestStats]:
    """Count what the calls in the block do (the handler wraps each request in it)."""
    stats = RequestStats()
    token = _current.set(stats)
    try:
        yield stats
    finally:
        _current.reset(token)


def upstream_call(registry: str, started: float, failed: bool) -> None:
    stats = _current.get()
    if stats is not None:
        stats.upstream(registry, (time.perf_counter() - started) * 1000, failed)


def s3_call(milliseconds: float) -> None:
    stats = _current.get()
    if stats is not None:
        stats.s3(milliseconds)


def cache(what: str, level: str) -> None:
    """`what` ("tag", "manifest", "config", "composition") was answered from `level`."""
    stats = _current.get()
    if stats is not None:
        stats.count(stats.cache, (what, level))


def event(name: str) -> None:
    stats = _current.get()
    if stats is not None:
        stats.count(stats.events, name)


def redirect(target: str) -> None:
    stats = _current.get()
    if stats is not None:
        stats.count(stats.redirects, target)
