"""How often upstream requests are tried, and how long they wait in between: with the
deployed back-off (the suite's shortened one is switched off here), every wait recorded
instead of slept, and deadlines on clocks that stand still, so each limit is met exactly."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import requests

from harness.tls import answer, read_request, server_context
from ociwrap.names.reference import Registry, Repository
from ociwrap.runtime import deadline, hops
from ociwrap.runtime.errors import RegistryError
from ociwrap.upstream.guard import Policy
from ociwrap.upstream.session import UpstreamSession
from ociwrap.upstream.transport import Transport
from scripted_upstream import Scripted, closed_port


@pytest.fixture
def short_backoff() -> None:
    """The deployed back-off: nothing waits here anyway (see `waits`)."""


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every wait the code under test asks for (on the test's thread), none of them slept."""
    asked: list[float] = []
    sleep = time.sleep
    tester = threading.current_thread()

    def record(seconds: float) -> None:
        if threading.current_thread() is tester:
            asked.append(seconds)
        else:
            sleep(seconds)

    monkeypatch.setattr(time, "sleep", record)
    return asked


def standing(seconds: float) -> deadline.Deadline:
    """A deadline with `seconds` left, now and for as long as the test runs."""
    return deadline.Deadline(seconds, lambda: 0.0)


@pytest.fixture
def scripted(emptied_upstream: Scripted) -> Scripted:
    """One scripted upstream for the tests of this file (conftest's `shared_upstream`):
    starting and stopping one per test would take longer than most of them."""
    return emptied_upstream


@pytest.fixture
def repo(scripted) -> Repository:
    return Repository(Registry("stub", scripted.url, trusted=True), "team/app")


# -- answers of 502, 503 and 504 ----------------------------------------------------------


def answers(*statuses: int, headers: dict[str, str] | None = None):
    """A route that answers `statuses` in turn, then 200: an attempt too many gets the 200."""
    left = list(statuses)
    return lambda handler: (left.pop(0), headers or {}, b"") if left else (200, {}, b"")


def test_reads_answered_503_are_tried_three_times_waiting_0_2_then_0_4_s(scripted, repo, waits):
    scripted.routes["GET", "/v2/team/app/manifests/1"] = answers(503, 503, 503)
    assert Transport().request(repo, "GET", "manifests/1").status_code == 503
    assert len(scripted.seen) == 3
    assert waits == [0.2, 0.4]


@pytest.mark.parametrize(
    ("left", "attempts", "asked"),
    [
        (1.2, 1, []),  # the first back-off (0.2 s) and a second: not more than that
        (1.21, 2, [0.2]),
        (1.4, 2, [0.2]),  # the second back-off (0.4 s) and a second
        (1.41, 3, [0.2, 0.4]),
    ],
)
def test_a_retry_needs_its_back_off_and_a_second_left(scripted, repo, waits, left, attempts, asked):
    scripted.routes["GET", "/v2/team/app/manifests/1"] = answers(*[503] * attempts)
    with deadline.within(standing(left)):
        assert Transport().request(repo, "GET", "manifests/1").status_code == 503
    assert len(scripted.seen) == attempts
    assert waits == asked


# -- connections that fail before the request is sent ---------------------------------------


def refused() -> tuple[Repository, tuple[str, int]]:
    port = closed_port()
    return Repository(Registry("gone", f"http://127.0.0.1:{port}", True), "x"), ("127.0.0.1", port)


def test_a_refused_connection_is_tried_three_times_waiting_0_4_s_before_the_third(connects, waits):
    gone, address = refused()
    with pytest.raises(RegistryError) as caught:
        Transport().request(gone, "GET", "manifests/1")
    assert caught.value.message == "cannot reach upstream registry gone: ConnectionError"
    assert connects == [address] * 3
    assert waits == [pytest.approx(0.4)]


@pytest.mark.parametrize(
    ("left", "attempts", "asked"),
    [
        (0.99, 1, []),  # less than a second left: no retry
        (1.0, 3, []),  # a second left: retries, with no time to wait between them
        (1.1, 3, [pytest.approx(0.1)]),  # the wait shortened to what leaves a second
        (1.5, 3, [pytest.approx(0.4)]),
    ],
)
def test_connect_retries_leave_a_second_of_the_deadline(connects, waits, left, attempts, asked):
    gone, address = refused()
    with deadline.within(standing(left)), pytest.raises(RegistryError):
        Transport().request(gone, "GET", "manifests/1")
    assert connects == [address] * attempts
    assert waits == asked


def refused_message(port: int) -> str:
    return (
        f"HTTPConnectionPool(host='127.0.0.1', port={port}): Max retries exceeded with url: "
        f"/v2/ (Caused by NewConnectionError(\"HTTPConnection(host='127.0.0.1', port={port}): "
        'cannot connect to 127.0.0.1: [Errno 111] Connection refused"))'
    )


@pytest.mark.parametrize("left", [None, 0.5])
def test_connect_retries_given_up_early_end_as_used_up_ones_do(connects, waits, left):
    """With less than a second left, the first refusal ends the request, reported as
    urllib3 reports a third one: the pool, the path and the refusal named."""
    _gone, (host, port) = refused()
    session = UpstreamSession(Policy.NOT_LINK_LOCAL)
    current = standing(left) if left else None
    with deadline.within(current), pytest.raises(requests.ConnectionError) as caught:
        session.get(f"http://{host}:{port}/v2/")
    assert str(caught.value) == refused_message(port)
    assert len(connects) == (3 if left is None else 1)


# -- what is never retried ------------------------------------------------------------------


def hang_up(conn: socket.socket) -> None:
    """Read the request, answer nothing, close."""
    read_request(conn)


def test_a_request_that_was_sent_is_not_repeated(listeners, waits):
    """The connection closes after the request went out: the upstream may have acted on it."""
    listener = listeners(hang_up)
    gone = Repository(Registry("mute", listener.url, True), "x")
    with pytest.raises(RegistryError) as caught:
        Transport().request(gone, "GET", "manifests/1")
    assert (caught.value.status, caught.value.message) == (
        502,
        "cannot reach upstream registry mute: ConnectionError",
    )
    assert listener.accepted == 1 and waits == []


def test_an_untrusted_certificate_is_not_retried(listeners, waits, tmp_path):
    context, cert = server_context(tmp_path)
    listener = listeners(answer(), context)
    tls = Repository(Registry("tls", listener.url, True), "x")
    with pytest.raises(RegistryError) as caught:
        Transport().request(tls, "GET", "manifests/1")
    assert (caught.value.status, caught.value.message) == (
        502,
        "cannot reach upstream registry tls: SSLError",
    )
    assert listener.accepted == 1 and waits == []
    # The same upstream, trusted through the deployment's CA bundle:
    assert Transport(ca_bundle=str(cert)).request(tls, "GET", "manifests/1").status_code == 200
    assert listener.accepted == 2


def test_retry_after_is_not_waited_for_by_the_connection_layer(scripted, repo, waits):
    """Answers are retried by the transport alone (at the first hop); the connections
    below it retry no answer, `Retry-After` or not."""
    scripted.routes["GET", "/v2/team/app/manifests/1"] = answers(503, headers={"Retry-After": "0"})
    with hops.within(("first.example.com",)):
        assert Transport().request(repo, "GET", "manifests/1").status_code == 503
    assert len(scripted.seen) == 1 and waits == []
