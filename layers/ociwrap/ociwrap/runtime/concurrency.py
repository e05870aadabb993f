"""Threads that keep the request's context, and per-key locks.

A composition reads several platforms at once; the worker threads must draw on
the same request deadline (a context variable), which a plain executor would
not hand them. The helpers here are done with their threads when they return: a
Lambda instance is frozen between requests, and a thread still working would
resume at random in a later one. Per-key locks make concurrent first requests
for the same thing in one process wait for the first one instead of repeating
its upstream calls.
"""

from __future__ import annotations

import contextvars
import threading
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def parallel_map(call: Callable[[T], R], items: Iterable[T], max_workers: int) -> list[R]:
    """`[call(item) for item in items]`, run on up to `max_workers` threads, in order.

    Each task runs in a copy of the caller's context; the first exception is raised.
    Once a call fails, no further call starts (those under way are waited for): the
    platforms of a composition stop with the first one that ran out of time, rather
    than each composing in turn only to be refused its writes.
    """
    items = list(items)
    if len(items) <= 1 or max_workers <= 1:
        return [call(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(max_workers, len(items))) as pool:
        futures = [pool.submit(contextvars.copy_context().run, call, item) for item in items]
        wait(futures, return_when=FIRST_EXCEPTION)
        for future in futures:
            future.cancel()  # only those not started yet: after a failure, or none
        return [future.result() for future in futures]


def ordered_map(call: Callable[[T], R], items: Iterable[T], max_workers: int) -> Iterator[R]:
    """`call(item)` for each item, up to `max_workers` at a time, yielded in order.

    At most `max_workers` results are under way or waiting to be taken, so results as
    large as staged blob parts are held a few at a time. Each call runs in a copy of the
    caller's context. When a call fails or the caller stops early (close the iterator),
    no further call starts and those under way are waited for before it returns.
    """
    with ThreadPoolExecutor(max_workers=max_workers) as pool:
        pending: deque[Future[R]] = deque()
        try:
            for item in items:
                pending.append(pool.submit(contextvars.copy_context().run, call, item))
                if len(pending) >= max_workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


def run_together(*calls: Callable[[], object]) -> None:
    """Run independent calls (writes to S3, say) at once; the first exception is raised.

    Each is a round trip of its own: together they take the time of the slowest.
    """
    parallel_map(lambda call: call(), calls, len(calls))


class KeyedLocks:
    """A fixed set of locks, one chosen per key: bounded memory for any number of keys."""

    def __init__(self, stripes: int = 64) -> None:
        self._locks = [threading.Lock() for _ in range(stripes)]

    def lock(self, key: str) -> threading.Lock:
        return self._locks[zlib.crc32(key.encode()) % len(self._locks)]
