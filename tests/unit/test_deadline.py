"""One deadline per request: it shortens every wait, plain and TLS, and carries into threads."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from harness.tls import Listener, read_request, server_context
from ociwrap.names.reference import Registry, Repository
from ociwrap.runtime import deadline
from ociwrap.runtime.concurrency import ordered_map, parallel_map
from ociwrap.runtime.errors import RegistryError
from ociwrap.upstream.transport import Transport


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_remaining_time_counts_down():
    clock = Clock()
    current = deadline.Deadline(10, clock)
    clock.now += 4
    assert current.remaining() == 6 and not current.expired()
    earlier = current.keeping(2)
    assert earlier.remaining() == 4 and earlier.budget == 10
    clock.now += 6
    assert current.expired() and earlier.expired()


def test_timeout_is_capped_inside_a_request_only():
    assert deadline.timeout(20) == 20
    with deadline.within(deadline.Deadline(3)):
        assert 2.9 < deadline.timeout(20) <= 3
        assert deadline.timeout(1) == 1
    assert deadline.current() is None


def test_threads_started_for_a_request_see_its_deadline():
    request = deadline.Deadline(5)
    with deadline.within(request):
        seen = parallel_map(lambda _: deadline.current(), range(4), 4)
    assert seen == [request] * 4


def test_parallel_map_starts_nothing_more_once_a_call_failed():
    """The platforms of a composition: once one fails (its writes refused at the deadline),
    those not started are not started, and the first failure comes out."""
    started: list[int] = []
    others_done = threading.Event()

    def call(item: int) -> int:
        started.append(item)
        if item == 1:
            raise ValueError("one")
        others_done.wait(0.5)  # keeps both workers busy while the failure is seen
        return item

    with pytest.raises(ValueError, match="one"):
        parallel_map(call, range(20), 2)
    assert {0, 1} <= set(started) <= {0, 1, 2}  # 2 only if a worker took it before the stop


def test_ordered_map_keeps_order_a_bound_and_the_deadline_and_stops_at_a_failure():
    """Results come in order with at most `max_workers` under way or waiting; after a
    failure nothing further starts, and every thread is done when the error comes out."""
    started: list[int] = []
    running = [0]
    most = [0]
    lock = threading.Lock()

    def call(item: int) -> tuple[int, deadline.Deadline | None]:
        with lock:
            started.append(item)
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.01)
        with lock:
            running[0] -= 1
        if item == 5:
            raise ValueError("five")
        return item, deadline.current()

    request = deadline.Deadline(5)
    with deadline.within(request):
        results = ordered_map(call, range(10), 3)
        assert [next(results) for _ in range(5)] == [(i, request) for i in range(5)]
        with pytest.raises(ValueError, match="five"):
            next(results)
    assert most[0] <= 3 and running[0] == 0
    assert sorted(started) == list(range(max(started) + 1)) and max(started) <= 7


class TLSDrip:
    """What the dripping TLS server did with its last connection."""

    def __init__(self) -> None:
        self.sent = 0  # body bytes that went out
        self.hung_up = False  # a send failed: the client had gone
        self.ended = threading.Event()

    def __call__(self, conn: socket.socket) -> None:
        """Headers announcing 1000 bytes, then a byte every 0.05 s (100 of them: 5 s of
        dripping, then it closes)."""
        try:
            read_request(conn)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
            for _ in range(100):
                conn.sendall(b"x")
                self.sent += 1
                time.sleep(0.05)
        except OSError:
            self.hung_up = True
        finally:
            self.ended.set()


@pytest.fixture
def dripping_tls_server(tmp_path):
    """A TLS server on 127.0.0.1 whose answers drip (see `TLSDrip`)."""
    context, cert = server_context(tmp_path)
    drip = TLSDrip()
    listener = Listener(drip, context)
    yield listener.url, str(cert), drip
    listener.stop()


def test_a_dripping_tls_body_ends_at_the_deadline(dripping_tls_server):
    from ociwrap.upstream.bodies import read_body

    url, ca_bundle, drip = dripping_tls_server
    repo = Repository(Registry("tls", url, trusted=True), "team/app")
    transport = Transport(ca_bundle=ca_bundle)
    with deadline.within(deadline.Deadline(0.3)), pytest.raises(RegistryError) as caught:
        response = transport.request(repo, "GET", "manifests/1")
        read_body(response, 10_000, "manifest", "tls")
    # No single read waits long (a byte comes every 0.05 s): only the deadline can end it
    # with a 504; read to its end, the body would break off short, a 502.
    assert caught.value.status == 504 and "deadline" in caught.value.message
    assert drip.ended.wait(20)  # without a hang-up the drip ends after its 5 s
    assert drip.hung_up and drip.sent < 100, drip.sent  # the client stopped reading
