"""requests sessions for upstreams: one per address policy, deadline-aware.

What requests and urllib3 already do is used as far as it is safe with a
hostile peer: redirects are followed by requests (every hop through the
guarded adapter, so the guard judges every address, and `Authorization` is
dropped when the host changes), connect failures are retried by urllib3's
`Retry` with backoff, but only while the deadline leaves room. Two things are
not safe and are switched off: requests reads the whole body of every redirect
it follows (a hostile 302 could send gigabytes), and urllib3's status retries
drain the whole error body; redirect bodies are dropped unread here, and status
retries live in the transport.
"""

from __future__ import annotations

import time
from typing import Any

import requests
from urllib3.exceptions import MaxRetryError
from urllib3.util.retry import Retry

from ociwrap.runtime import deadline
from ociwrap.upstream.connection import CONNECT_CAP, IO_CAP, GuardedAdapter, tls_context, wait_limit
from ociwrap.upstream.guard import Policy

MAX_REDIRECTS = 5
#: A retry is only worth starting with at least this much of the deadline left.
MIN_RETRY_SECONDS = 1.0
#: urllib3's backoff factor between connect attempts: no wait before the first retry,
#: factor * 2 s before the second; read when a session is made.
CONNECT_BACKOFF_FACTOR = 0.2


class DeadlineRetry(Retry):
    """urllib3's connect retries, given up as soon as the deadline cannot afford another try."""

    def increment(self, method: Any = None, url: Any = None, *args: Any, **kwargs: Any) -> Retry:
        error = kwargs.get("error")
        if (
            error is not None
            and self._is_connection_error(error)
            and deadline.timeout(float("inf")) < MIN_RETRY_SECONDS
        ):
            raise MaxRetryError(kwargs.get("_pool"), url, error)
        return super().increment(method, url, *args, **kwargs)

    def sleep(self, response: Any = None) -> None:
        room = deadline.timeout(float("inf")) - MIN_RETRY_SECONDS
        backoff = min(self.get_backoff_time(), max(room, 0.0))
        if backoff > 0:
            time.sleep(backoff)


def connect_retries() -> Retry:
    """Two more tries for connections that failed before the request was sent. Read errors
    are raised as they are (a request that was sent is not repeated), so are all other
    errors (a certificate that is not trusted), and no answer is retried here: without a
    status list and with `Retry-After` ignored, urllib3 retries no status."""
    return DeadlineRetry(
        total=2,
        read=False,
        other=0,
        backoff_factor=CONNECT_BACKOFF_FACTOR,
        respect_retry_after_header=False,
    )


def _drop_redirect_body(response: requests.Response, *args: Any, **kwargs: Any) -> None:
    """Close a redirect unread: requests would otherwise read all of its body to reuse the
    connection, and Quay-style HTML bodies are never passed on anyway."""
    if response.is_redirect:
        response.raw.close()
        response._content = b""  # what requests reads (and marks consumed) instead of the socket


class UpstreamSession(requests.Session):
    """A session for one address policy; every hop's time-outs come from the deadline."""

    def __init__(self, policy: Policy, ca_bundle: str | None = None, pool_size: int = 16) -> None:
        super().__init__()
        self.trust_env = False  # what we contact is decided by names and aliases alone
        self.max_redirects = MAX_REDIRECTS
        if ca_bundle:
            self.verify = ca_bundle
        adapter = GuardedAdapter(policy, tls_context(ca_bundle), connect_retries(), pool_size)
        self.mount("http://", adapter)
        self.mount("https://", adapter)
        self.hooks["response"].append(_drop_redirect_body)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        kwargs["timeout"] = (wait_limit(CONNECT_CAP), wait_limit(IO_CAP))
        return super().send(request, **kwargs)
