"""One deadline per request, which every upstream and S3 call draws from.

API Gateway cuts a request off after 30 s with a body no registry client can
read. The handler therefore gives each request a deadline (the Lambda's
remaining time minus a margin to answer) and makes it current; every call that
waits on the network asks `remaining()` how long it may wait, so several slow
calls in one request add up against the same budget instead of each getting a
fresh time-out.

The current deadline lives in a context variable, so it reaches the socket
layer and botocore's event hooks without being passed through every call, and
`concurrency.parallel_map` carries it into worker threads.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar


class Deadline:
    """A point in (monotonic) time by which the request must be answered."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.budget = seconds
        self._clock = clock
        self.expires = clock() + seconds

    def remaining(self) -> float:
        """Seconds left; negative once the deadline has passed."""
        return self.expires - self._clock()

    def expired(self) -> bool:
        return self.remaining() <= 0

    def keeping(self, reserve: float) -> Deadline:
        """A deadline `reserve` seconds earlier (same budget in messages): time for a part of
        the work that must leave the rest of the request something to fall back on."""
        earlier = Deadline(0.0, self._clock)
        earlier.budget = self.budget
        earlier.expires = self.expires - reserve
        return earlier

    def __repr__(self) -> str:
        return f"Deadline(budget={self.budget:.1f}s, remaining={self.remaining():.2f}s)"


_current: ContextVar[Deadline | None] = ContextVar("ociwrap_deadline", default=None)


def current() -> Deadline | None:
    """The deadline of the request being served, or None outside of one."""
    return _current.get()


@contextmanager
def within(deadline: Deadline | None) -> Iterator[Deadline | None]:
    """Make `deadline` current for the calls in the block (and threads it starts)."""
    token = _current.set(deadline)
    try:
        yield deadline
    finally:
        _current.reset(token)


def timeout(cap: float) -> float:
    """How long the next wait may last: `cap`, shortened to what the deadline leaves.

    Zero or less means the deadline has passed and the caller must not wait.
    """
    deadline = _current.get()
    return cap if deadline is None else min(cap, deadline.remaining())
