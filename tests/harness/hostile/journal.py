"""What the hostile registry saw: every request, and how each one ended."""

from __future__ import annotations

import threading
from collections import Counter

from harness.hostile.calls import Call, Seen


class Journal:
    """Every request so far (`seen`, filtered by `requests`/`count`), and how each ended.

    `_lock` also guards the scenario state of the registry built on it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: list[Seen] = []
        self._ends: list[tuple[str, str]] = []  # (scenario, how the request ended)
        self._served = threading.Condition(self._lock)

    @property
    def seen(self) -> list[Seen]:
        """Every request so far, oldest first (a copy)."""
        with self._lock:
            return list(self._seen)

    def requests(
        self,
        method: str | None = None,
        kind: str | None = None,
        scenario: str | None = None,
        ref: str | None = None,
    ) -> list[Seen]:
        """The requests matching every given filter."""
        return [
            s
            for s in self.seen
            if (method is None or s.method == method.upper())
            and (kind is None or s.kind == kind)
            and (scenario is None or s.scenario == scenario)
            and (ref is None or s.ref == ref)
        ]

    def count(
        self,
        method: str | None = None,
        kind: str | None = None,
        scenario: str | None = None,
        ref: str | None = None,
    ) -> int:
        return len(self.requests(method, kind, scenario, ref))

    def counts(self) -> Counter[tuple[str, str, str]]:
        """Requests per (method, kind, scenario)."""
        return Counter((s.method, s.kind, s.scenario) for s in self.seen)

    def ends(self, scenario: str) -> list[str]:
        """How each request of `scenario` that is over ended, in order: "answered" (all of
        the answer was sent), or "hung up" (the client went away before that)."""
        with self._lock:
            return [how for name, how in self._ends if name == scenario]

    def wait_until_served(self, scenario: str, timeout: float) -> bool:
        """Wait until no request of `scenario` is under way any more; False on time-out."""

        def over() -> bool:
            started = sum(1 for seen in self._seen if seen.scenario == scenario)
            return sum(1 for name, _ in self._ends if name == scenario) >= started

        with self._served:
            return self._served.wait_for(over, timeout)

    def ended(self, call: Call) -> None:
        with self._served:
            self._ends.append((call.scenario, "hung up" if call.hung_up else "answered"))
            self._served.notify_all()

    def record(self, call: Call) -> None:
        seen = Seen(
            call.method,
            call.path,
            call.query,
            tuple(call.handler.headers.items()),
            call.kind,
            call.scenario,
            call.ref,
        )
        with self._lock:
            self._seen.append(seen)
