"""How many calls are under way at once: a hook for tests of concurrency limits.

The first `limit` calls wait until all of them are under way together (so the limit is
reached), then look out for one more for a moment: a call over the limit would arrive
then and be counted. `most` is the highest number seen under way at once. The tests time
nothing: HANG_GUARD only turns a call that would wait forever into a failure.
"""

from __future__ import annotations

import threading
from typing import Any

#: Only for calls that would otherwise wait forever.
HANG_GUARD = 10.0
#: How long the calls at the limit look out for one more that must never come.
LOOK_SECONDS = 0.3


class AtOnce:
    """Call it from a hook of each call (any arguments); read `most` afterwards."""

    def __init__(self, limit: int, what: str) -> None:
        self.limit = limit
        self.what = what  # "writes", "reads", ...: named when fewer than `limit` meet
        self.most = 0
        self._entered = 0
        self._under_way = 0
        self._changed = threading.Condition()

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        with self._changed:
            self._entered += 1
            self._under_way += 1
            self.most = max(self.most, self._under_way)
            within = self._entered <= self.limit
            self._changed.notify_all()
            if within:
                met = self._changed.wait_for(lambda: self.most >= self.limit, HANG_GUARD)
                if not met:
                    raise AssertionError(
                        f"fewer than {self.limit} {self.what} were under way at once"
                    )
                self._changed.wait_for(lambda: self._under_way > self.limit, LOOK_SECONDS)
            self._under_way -= 1
