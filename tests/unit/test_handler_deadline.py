"""The handler answers every request by its deadline, with a spec JSON error if it must.

The deadline comes from the Lambda context (its remaining time less a second), capped by
REQUEST_TIMEOUT_SECONDS. S3 here is a black hole on 127.0.0.1 (it takes connections and
never answers), the slowest thing a request can wait on; botocore is given a minute per
read, so a call to it cannot end by itself while a test looks. That the answer came while
such a call was still waiting shows that it did not wait for it, whatever the clock says.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

import app
import deadlines
import wiring
from ociwrap.runtime import aws
from ociwrap_local.events import build_event

DIGEST = "sha256:" + "ab" * 32


@dataclass
class Context:
    """A Lambda context with a fixed amount of time left."""

    remaining_ms: int
    function_name: str = "ociwrap-registry"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:000000000000:function:ociwrap-registry"
    aws_request_id: str = "unit"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


class BlackHole:
    """A port on 127.0.0.1 that takes connections and never answers.

    Nothing accepts them: the kernel completes each handshake and keeps the connection in
    the listen backlog, so `connections()` counts every one made so far, without a race.
    """

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.listener.setblocking(False)
        self.port = self.listener.getsockname()[1]
        self.accepted: list[socket.socket] = []

    def connections(self) -> int:
        """How many connections have been made to it so far."""
        while True:
            try:
                self.accepted.append(self.listener.accept()[0])
            except BlockingIOError:
                return len(self.accepted)

    def hang_up(self) -> None:
        """Close every connection made so far (the port stays open for more)."""
        self.connections()
        for conn in self.accepted:
            conn.close()

    def close(self) -> None:
        self.hang_up()
        self.listener.close()


@dataclass
class Handled:
    result: dict
    seconds: float
    running: list[threading.Thread]  # threads the request started that were still running

    @property
    def error(self) -> dict:
        return json.loads(self.result["body"])["errors"][0]


@pytest.fixture
def black_hole() -> Iterator[BlackHole]:
    hole = BlackHole()
    yield hole
    hole.close()


@pytest.fixture
def handler(monkeypatch, black_hole):
    monkeypatch.setenv("ARTIFACT_BUCKET", "unit-bucket")
    monkeypatch.setenv("S3_ENDPOINT_URL", f"http://127.0.0.1:{black_hole.port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("REGISTRY_ALIASES", f"local=http://127.0.0.1:{black_hole.port}")
    monkeypatch.delenv("REQUEST_TIMEOUT_SECONDS", raising=False)
    monkeypatch.setattr(aws, "READ_TIMEOUT", 60)  # an S3 call waits for a minute
    # The answer comes a tenth of a second past the deadline rather than half a second: the
    # S3 call is still waiting either way.
    monkeypatch.setattr(deadlines, "BACKSTOP_SECONDS", 0.1)
    app.reset_service()
    started_threads: list[threading.Thread] = []

    def call(method: str, path: str, context: Context) -> Handled:
        # Built beforehand, as SnapStart does (it reads the environment the test set): the
        # request's deadline then goes to the request, not to imports on a loaded machine.
        wiring.service()
        before = set(threading.enumerate())
        started = time.monotonic()
        result = app.lambda_handler(build_event(method, path, [], b""), context)
        seconds = time.monotonic() - started
        new = [thread for thread in threading.enumerate() if thread not in before]
        started_threads.extend(new)
        return Handled(result, seconds, [thread for thread in new if thread.is_alive()])

    yield call
    black_hole.hang_up()
    for thread in started_threads:
        thread.join(20)
    app.reset_service()


def assert_work_stops(handled: Handled, black_hole: BlackHole) -> None:
    """Once S3 lets go, the request's leftover work ends without a second attempt: botocore
    would retry the broken call, but no attempt starts after the deadline."""
    black_hole.hang_up()
    for thread in handled.running:
        thread.join(20)  # generous: it ends as soon as botocore sees the hang-up
    assert [thread.name for thread in handled.running if thread.is_alive()] == []
    assert black_hole.connections() == 1


def test_a_hanging_s3_is_answered_504_by_the_deadline(handler, monkeypatch, black_hole):
    monkeypatch.setenv("REQUEST_TIMEOUT_SECONDS", "1")
    handled = handler("GET", f"/v2/local/x/manifests/{DIGEST}", Context(29_000))
    assert handled.result["statusCode"] == 504
    assert handled.error["code"] == "UNAVAILABLE"
    assert "deadline (1 s) ran out while waiting for the registry" in handled.error["message"]
    assert handled.running, "the answer waited for the S3 call"
    assert black_hole.connections() == 1
    # The one check on the clock, 10 times the 1.5 s it takes: answered well before API
    # Gateway's 30 s cut (and botocore's 60 s read).
    assert handled.seconds < 15
    assert_work_stops(handled, black_hole)


def test_the_deadline_follows_the_lambdas_remaining_time(handler, black_hole):
    handled = handler("GET", f"/v2/local/x/manifests/{DIGEST}", Context(1_800))
    assert handled.result["statusCode"] == 504
    # 1.8 s left less the 1 s answer margin: 0.8 s (shown as 1 s), not REQUEST_TIMEOUT_SECONDS' 28
    assert "deadline (1 s) ran out" in handled.error["message"]
    assert handled.running, "the answer waited for the S3 call"
    assert handled.seconds < 15  # as above: 10 times what it takes, half API Gateway's cut
    assert_work_stops(handled, black_hole)


def test_a_request_without_time_left_is_answered_at_once(handler, black_hole):
    handled = handler("HEAD", f"/v2/local/x/manifests/{DIGEST}", Context(500))
    assert handled.result["statusCode"] == 504 and handled.result["body"] == ""
    assert handled.running == []  # nothing left behind
    assert black_hole.connections() == 0  # and nothing tried: no S3 call, no upstream one


@pytest.mark.parametrize("method", ["OPTIONS", "TRACE", "CONNECT", "PROPFIND", "BREW"])
def test_every_other_method_is_a_json_405(handler, method):
    handled = handler(method, "/v2/local/x/manifests/1", Context(29_000))
    assert handled.result["statusCode"] == 405
    assert handled.error["code"] == "UNSUPPORTED" and "pull-only" in handled.error["message"]
