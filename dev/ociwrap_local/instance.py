"""One warm function instance: the handler, called with one event at a time.

Lambda never gives an instance a second event before the first has been answered, and
the handler relies on it (Powertools' resolver keeps the current event in module state).
Connections are served by threads, so every call goes through one lock, and the clock
of each invocation starts when it gets the lock, as Lambda's does when it starts one.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ociwrap_local.events import (
    LAMBDA_TIMEOUT_SECONDS,
    MAX_RESULT_BYTES,
    LocalContext,
    decode_result,
)

Handler = Callable[[dict, Any], dict]

INTERNAL_SERVER_ERROR = (
    500,
    [("Content-Type", "application/json")],
    b'{"message":"Internal Server Error"}',
)


@dataclass
class Invocation:
    """What API Gateway makes of one invocation: the answer, and how long the handler took."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    seconds: float
    timed_out: bool = False


class Instance:
    """A handler behind a lock, and whether a request is on its way to it (busy).

    `on_change(busy)` hears of every change between idle and busy, in order; the worker
    tells its dispatcher, which hands new connections to idle instances only.
    """

    def __init__(
        self,
        handler: Handler,
        timeout_seconds: float = LAMBDA_TIMEOUT_SECONDS,
        on_change: Callable[[bool], None] = lambda busy: None,
    ) -> None:
        self.handler = handler
        self.timeout_seconds = timeout_seconds
        self.on_change = on_change
        self._lock = threading.Lock()
        self._state = threading.Lock()
        self._pending = 0

    @contextmanager
    def pending(self) -> Iterator[None]:
        """Count a request from its headers until its answer is ready: the instance is busy."""
        with self._state:
            self._pending += 1
            if self._pending == 1:
                self.on_change(True)
        try:
            yield
        finally:
            with self._state:
                self._pending -= 1
                if not self._pending:
                    self.on_change(False)

    def report_if_idle(self) -> None:
        """Say `idle` again unless busy (after a connection that brought no request)."""
        with self._state:
            if not self._pending:
                self.on_change(False)

    def invoke(self, event: dict) -> Invocation:
        """Run the handler on `event`, alone, and turn its result into an HTTP answer.

        A handler that raises, returns something Lambda cannot serialize, or more than
        Lambda's response limit is answered 500, as API Gateway answers a failed function.
        """
        request_id = event["requestContext"]["requestId"]
        with self._lock:
            context = LocalContext(aws_request_id=request_id, timeout_seconds=self.timeout_seconds)
            started = time.perf_counter()
            try:
                result: Any = self.handler(event, context)
                error = None
            except Exception:
                result, error = None, traceback.format_exc()
            seconds = time.perf_counter() - started
        timed_out = seconds > self.timeout_seconds
        if error is None:
            try:
                size = len(json.dumps(result))
            except (TypeError, ValueError) as exc:
                error = f"the result is not JSON: {exc!r}\n"
            else:
                if size > MAX_RESULT_BYTES:
                    error = f"the result is {size} bytes, over Lambda's {MAX_RESULT_BYTES}\n"
        if error is None:
            try:
                status, headers, body = decode_result(result)
            except Exception as exc:
                error = f"the result is no payload-2.0 response: {exc!r}\n"
        if error is not None:
            sys.stderr.write(f"handler failed ({request_id}): {error}")
            status, headers, body = INTERNAL_SERVER_ERROR
        return Invocation(status, list(headers), body, seconds, timed_out)
