"""The request's deadline, from the Lambda's clock, and the backstop that keeps it.

API Gateway cuts a request off after 30 s with a body no registry client can read.
Each request gets a deadline: the invocation's remaining time less a margin to
answer, capped by REQUEST_TIMEOUT_SECONDS; every upstream and AWS call draws from
it, and `in_time` answers a spec 504 by it whatever is still waiting.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from ociwrap.registry.settings import REQUEST_TIMEOUT_SECONDS
from ociwrap.runtime import deadline, errors
from ociwrap.runtime.errors import RegistryError
from wiring import service

#: Kept back from the Lambda's remaining time, to render and send the answer.
ANSWER_MARGIN_SECONDS = 1.0
#: How long past its deadline a request may still be finishing before it is answered 504
#: regardless (an S3 call that started just before the deadline).
BACKSTOP_SECONDS = 0.5

Answer = TypeVar("Answer")


def request_deadline(context: Any) -> deadline.Deadline:
    """The Lambda's remaining time less the answer margin, capped by REQUEST_TIMEOUT_SECONDS."""
    try:
        cap = float(service().settings.request_timeout_seconds)
    except RegistryError:
        cap = float(REQUEST_TIMEOUT_SECONDS)
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if callable(remaining):
        cap = min(cap, remaining() / 1000 - ANSWER_MARGIN_SECONDS)
    return deadline.Deadline(max(cap, 0.0))


def in_time(call: Callable[[], Answer]) -> Answer:
    """Run `call` and answer by the deadline, whatever it waits on.

    Every network call draws from the deadline already; this is the backstop for
    one that started just before it ran out and is still waiting (an S3 call on
    botocore's own time-outs): the client gets a spec 504 before API Gateway
    cuts the request off, and the call finishes (or fails) on its own.
    """
    current = deadline.current()
    if current is None:
        return call()
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["answer"] = call()
        except BaseException as exc:  # handed to the request thread below
            outcome["error"] = exc

    worker = threading.Thread(target=contextvars.copy_context().run, args=(run,), daemon=True)
    worker.start()
    worker.join(max(current.remaining(), 0.0) + BACKSTOP_SECONDS)
    if worker.is_alive():
        raise errors.deadline_exceeded("the registry to finish", current.budget)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["answer"]
