"""The handler answers every request by its deadline, with a spec JSON error if it must.

The deadline comes from the Lambda context (its remaining time less a second), capped by
REQUEST_TIMEOUT_SECONDS. S3 here is a black hole on 127.0.0.1 (it accepts connections
and never answers), the slowest thing a request can wait on.
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


@pytest.fixture
def black_hole() -> Iterator[int]:
    """A port on 127.0.0.1 that accepts connections and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(2)
    for conn in held:
        conn.close()
    listener.close()


@pytest.fixture
def handler(monkeypatch, black_hole):
    monkeypatch.setenv("ARTIFACT_BUCKET", "unit-bucket")
    monkeypatch.setenv("S3_ENDPOINT_URL", f"http://127.0.0.1:{black_hole}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("REGISTRY_ALIASES", f"local=http://127.0.0.1:{black_hole}")
    app.reset_service()

    def call(method: str, path: str, context: Context) -> tuple[dict, float]:
        started = time.monotonic()
        result = app.lambda_handler(build_event(method, path, [], b""), context)
        return result, time.monotonic() - started

    yield call
    app.reset_service()


def test_a_hanging_s3_is_answered_504_by_the_deadline(handler, monkeypatch):
    monkeypatch.setenv("REQUEST_TIMEOUT_SECONDS", "1")
    result, elapsed = handler("GET", f"/v2/local/x/manifests/{DIGEST}", Context(29_000))
    assert result["statusCode"] == 504
    error = json.loads(result["body"])["errors"][0]
    assert error["code"] == "UNAVAILABLE" and "deadline (1 s)" in error["message"]
    assert elapsed < 3  # botocore alone would have waited 5 s per attempt


def test_the_deadline_follows_the_lambdas_remaining_time(handler):
    result, elapsed = handler("GET", f"/v2/local/x/manifests/{DIGEST}", Context(1_800))
    assert result["statusCode"] == 504
    assert elapsed < 2.5


def test_a_request_without_time_left_is_answered_at_once(handler):
    result, elapsed = handler("HEAD", f"/v2/local/x/manifests/{DIGEST}", Context(500))
    assert result["statusCode"] == 504 and result["body"] == ""
    assert elapsed < 1


@pytest.mark.parametrize("method", ["OPTIONS", "TRACE", "CONNECT", "PROPFIND", "BREW"])
def test_every_other_method_is_a_json_405(handler, method):
    result, _ = handler(method, "/v2/local/x/manifests/1", Context(29_000))
    assert result["statusCode"] == 405
    error = json.loads(result["body"])["errors"][0]
    assert error["code"] == "UNSUPPORTED" and "pull-only" in error["message"]
