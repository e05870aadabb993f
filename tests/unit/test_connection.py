"""Upstream connections, socket by socket: how long each wait may last, how names are
looked up (and given up on), which addresses are tried, and what a failure is called.

Deadlines here stand still (their clock never moves), so a wait's limit is exact; DNS
is the `dns` fixture's table or a resolver that never answers; every listener is on
127.0.0.1 and stopped after its test."""

from __future__ import annotations

import re
import socket
import ssl
import threading
from collections.abc import Callable, Iterator

import pytest
import requests

from harness.tls import Listener, answer, read_request, server_context
from ociwrap.names.reference import Registry, Repository
from ociwrap.runtime import deadline
from ociwrap.runtime.concurrency import parallel_map
from ociwrap.runtime.errors import RegistryError
from ociwrap.upstream import connection
from ociwrap.upstream.connection import DeadlineSocket, resolve, tls_context, wait_limit
from ociwrap.upstream.guard import AddressRefused, Policy
from ociwrap.upstream.session import UpstreamSession
from ociwrap.upstream.transport import Transport
from scripted_upstream import closed_port


def standing(seconds: float) -> deadline.Deadline:
    """A deadline with `seconds` left, now and for as long as the test runs."""
    return deadline.Deadline(seconds, lambda: 0.0)


def told(exc: BaseException) -> str:
    """What an exception says, without the memory addresses of the objects it names."""
    return re.sub(r" at 0x[0-9a-f]+>", ">", str(exc))


def error_of(call: Callable[..., object], *args: object) -> RegistryError:
    with pytest.raises(RegistryError) as caught:
        call(*args)
    return caught.value


@pytest.fixture
def dial() -> Iterator[Callable[[Listener], socket.socket]]:
    """`dial(listener)`: a `DeadlineSocket` connected to it, closed after the test (with
    whatever TLS socket was made of it) however the test ends."""
    made: list[socket.socket] = []

    def connect(listener: Listener) -> socket.socket:
        made.append(DeadlineSocket(socket.AF_INET, socket.SOCK_STREAM))
        made[-1].connect(("127.0.0.1", listener.port))
        return made[-1]

    yield connect
    for sock in made:
        sock.close()


class Connects(list):
    """(address, time-out, TCP_NODELAY) of every socket connect, in order."""


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> Connects:
    """Records every connect; lets 127.0.0.1 through, refuses 127.0.0.2 as a closed port
    would and treats 127.0.0.3 as an address that never answers; nothing else is reached."""
    seen = Connects()
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: tuple) -> None:
        nodelay = self.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        seen.append((address[0], self.gettimeout(), bool(nodelay)))
        if address[0] == "127.0.0.2":
            raise ConnectionRefusedError(111, "Connection refused")
        if address[0] == "127.0.0.3":
            raise TimeoutError("timed out")
        if address[0] != "127.0.0.1":
            raise OSError("only loopback in this test")
        real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return seen


# -- how long one wait may last -------------------------------------------------------------


def test_a_wait_is_capped_and_shortened_to_the_deadline():
    assert wait_limit(5.0) == 5.0
    with deadline.within(standing(3.0)):
        assert wait_limit(5.0) == 3.0
    with deadline.within(standing(0.001)):
        assert wait_limit(5.0) == 0.001


@pytest.mark.parametrize("left", [0.0, -1.0])
def test_no_wait_once_the_deadline_has_passed(left):
    with deadline.within(standing(left)), pytest.raises(TimeoutError) as caught:
        wait_limit(5.0)
    assert str(caught.value) == "the request's deadline has passed"


def exchange(sock: socket.socket) -> dict[str, float | None]:
    """Send a request with each sending call and read the answer with each reading call;
    the time-out each call left on the socket."""
    limits: dict[str, float | None] = {}

    def after(name: str, call: Callable[[], object]) -> None:
        sock.settimeout(None)
        call()
        limits[name] = sock.gettimeout()

    after("send", lambda: sock.send(b"GET / HTTP/1.1\r\n"))
    after("sendall", lambda: sock.sendall(b"Host: 127.0.0.1\r\n\r\n"))
    after("recv", lambda: sock.recv(1))
    after("recv_into", lambda: sock.recv_into(bytearray(1)))
    return limits


@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
@pytest.mark.parametrize(("left", "limit"), [(None, 20.0), (3.0, 3.0)])
def test_every_socket_call_waits_at_most_what_the_deadline_leaves(
    listeners, dial, tmp_path, tls, left, limit
):
    """Reads and writes wait at most 20 s each, and never past the deadline: plain sockets
    and TLS sockets (made by the shared TLS context) alike, the TLS handshake included."""
    context, cert = server_context(tmp_path) if tls else (None, None)
    sock = dial(listeners(answer(), context))
    limits = {}
    with deadline.within(standing(left) if left else None):
        if tls:
            with tls_context(str(cert)).wrap_socket(
                sock, server_hostname="127.0.0.1", do_handshake_on_connect=False
            ) as sock:
                sock.settimeout(None)
                sock.do_handshake()
                limits["do_handshake"] = sock.gettimeout()
                limits |= exchange(sock)
        else:
            limits |= exchange(sock)
    calls = ["send", "sendall", "recv", "recv_into"]
    assert limits == dict.fromkeys(["do_handshake", *calls] if tls else calls, limit)


def answer_at_once(conn: socket.socket) -> None:
    """Answer before the request comes: a read would not have to wait."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
    read_request(conn)


@pytest.mark.parametrize("call", ["send", "sendall", "recv", "recv_into"])
def test_no_socket_call_once_the_deadline_has_passed(listeners, dial, call):
    sock = dial(listeners(answer_at_once))
    args = {"send": b"x", "sendall": b"x", "recv": 1, "recv_into": bytearray(1)}[call]
    with deadline.within(standing(0.0)), pytest.raises(TimeoutError):
        getattr(sock, call)(args)


def test_the_public_authorities_are_trusted_without_a_bundle(listeners, dial, tmp_path):
    """A certificate of our own is no public authority's: without the bundle that has it,
    its handshake fails."""
    context, _cert = server_context(tmp_path)
    sock = dial(listeners(answer(), context))
    with pytest.raises(ssl.SSLCertVerificationError):
        tls_context(None).wrap_socket(sock, server_hostname="127.0.0.1")


def test_a_ca_bundle_is_loaded_once_not_per_connection(listeners, tmp_path, monkeypatch):
    loads: list[object] = []
    real_load = ssl.SSLContext.load_verify_locations

    def load(self: ssl.SSLContext, *args: object, **kwargs: object) -> None:
        loads.append(args or kwargs)
        real_load(self, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", load)
    context, cert = server_context(tmp_path)
    listener = listeners(answer(), context)
    registry = Repository(Registry("tls", listener.url, True), "x")
    transport = Transport(ca_bundle=str(cert))
    for _ in range(3):  # each answer closes its connection
        assert transport.request(registry, "GET", "manifests/1").status_code == 200
    assert listener.accepted == 3
    assert loads == [{"cafile": str(cert)}]


# -- names and their addresses --------------------------------------------------------------


def test_a_name_resolves_to_all_of_its_addresses(dns):
    dns["registry.example"] = ["52.94.0.1", "2606:4700::1111"]
    assert resolve("registry.example") == ["52.94.0.1", "2606:4700::1111"]
    assert resolve("127.0.0.1") == ["127.0.0.1"]  # once: stream sockets only


@pytest.fixture
def silent_dns(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, str]]]:
    """A resolver that never answers (within two seconds): records (name, thread) of
    every look-up. Look-ups run in a resolver of the test's own, shut down after it; one
    made anywhere else (not bounded in time) fails at once instead of hanging the test."""
    asked: list[tuple[str, str]] = []
    release = threading.Event()

    def never(host: str, *args: object, **kwargs: object) -> list:
        thread = threading.current_thread().name
        asked.append((host, thread))
        if thread.startswith("ociwrap-dns"):  # a look-up that is given up on: it waits
            release.wait(2)  # forty times the longest limit a test here gives it
        raise socket.gaierror(socket.EAI_AGAIN, "no answer in this test")

    monkeypatch.setattr(connection, "_resolver", None)
    monkeypatch.setattr(socket, "getaddrinfo", never)
    yield asked
    release.set()
    if connection._resolver is not None:
        connection._resolver.shutdown(wait=True)


def test_a_look_up_that_outlasts_the_deadline_is_given_up(silent_dns, connects):
    """The client is told the upstream timed out; the look-up is not tried again (less than
    a second is left) and nothing is connected to."""
    slow = Repository(Registry("slow", "https://slow.example", True), "x")
    with deadline.within(standing(0.05)):
        error = error_of(Transport().request, slow, "GET", "manifests/1")
    assert (error.status, error.message) == (504, "upstream registry slow timed out")
    assert [host for host, _thread in silent_dns] == ["slow.example"]
    assert connects == []


def test_a_look_up_given_up_is_named_in_the_error(silent_dns, connects):
    session = UpstreamSession(Policy.NOT_LINK_LOCAL)
    with deadline.within(standing(0.05)), pytest.raises(requests.ConnectTimeout) as caught:
        session.get("https://slow.example/v2/")
    assert told(caught.value) == (
        "HTTPSConnectionPool(host='slow.example', port=443): Max retries exceeded with url: "
        "/v2/ (Caused by ConnectTimeoutError(<HTTPSConnection(host='slow.example', port=443)>, "
        "'cannot resolve slow.example: looking up slow.example took too long'))"
    )


def test_without_a_deadline_each_look_up_waits_the_connect_cap(silent_dns, connects, monkeypatch):
    monkeypatch.setattr(connection, "CONNECT_CAP", 0.05)
    with pytest.raises(requests.ConnectTimeout):
        UpstreamSession(Policy.NOT_LINK_LOCAL).get("https://slow.example/v2/")
    assert [host for host, _thread in silent_dns] == ["slow.example"] * 3  # connect retries


def test_four_look_ups_at_most_run_at_once_in_named_threads(silent_dns):
    def look_up(n: int) -> str:
        with pytest.raises(TimeoutError) as caught:
            resolve(f"slow{n}.example")
        return str(caught.value)

    with deadline.within(standing(0.05)):
        told = parallel_map(look_up, range(5), 5)
    assert told == [f"looking up slow{n}.example took too long" for n in range(5)]
    assert len(silent_dns) == 4
    assert all(thread.startswith("ociwrap-dns_") for _host, thread in silent_dns)


def test_an_unknown_name_is_named_in_the_error(dns, connects):
    with pytest.raises(requests.ConnectionError) as caught:
        UpstreamSession(Policy.PUBLIC).get("http://nowhere.example/v2/")
    assert str(caught.value) == (
        "HTTPConnectionPool(host='nowhere.example', port=80): Max retries exceeded with url: "
        "/v2/ (Caused by NewConnectionError(\"HTTPConnection(host='nowhere.example', port=80): "
        "cannot resolve nowhere.example: [Errno -2] nowhere.example is not in this test's "
        'table"))'
    )
    assert connects == []


# -- which addresses are tried --------------------------------------------------------------


def test_the_first_address_that_answers_is_used(dns, connects, scripted):
    dns["two.example"] = ["127.0.0.2", "127.0.0.1"]
    port = scripted.url.rsplit(":", 1)[1]
    scripted.routes["GET", "/v2/"] = lambda h: (200, {}, b"{}")
    session = UpstreamSession(Policy.NOT_LINK_LOCAL)
    assert session.get(f"http://two.example:{port}/v2/").status_code == 200
    # Every connect waits at most the connect cap, with urllib3's socket options (no delay).
    assert connects == [("127.0.0.2", 5.0, True), ("127.0.0.1", 5.0, True)]


def test_a_connect_waits_at_most_what_the_deadline_leaves(connects, scripted):
    scripted.routes["GET", "/v2/"] = lambda h: (200, {}, b"{}")
    with deadline.within(standing(3.0)):
        assert UpstreamSession(Policy.NOT_LINK_LOCAL).get(f"{scripted.url}/v2/").status_code == 200
    assert connects == [("127.0.0.1", 3.0, True)]


def test_when_no_address_answers_the_last_refusal_is_named(dns, connects, monkeypatch):
    dns["two.example"] = ["127.0.0.2", "127.0.0.2"]
    sockets: list[socket.socket] = []
    made = connection.DeadlineSocket

    def track(*args: object) -> socket.socket:
        sockets.append(made(*args))
        return sockets[-1]

    monkeypatch.setattr(connection, "DeadlineSocket", track)
    with deadline.within(standing(0.5)), pytest.raises(requests.ConnectionError) as caught:
        UpstreamSession(Policy.NOT_LINK_LOCAL).get("http://two.example:5000/v2/")
    assert str(caught.value) == (
        "HTTPConnectionPool(host='two.example', port=5000): Max retries exceeded with url: "
        "/v2/ (Caused by NewConnectionError(\"HTTPConnection(host='two.example', port=5000): "
        'cannot connect to two.example: [Errno 111] Connection refused"))'
    )
    assert [address for address, _limit, _nodelay in connects] == ["127.0.0.2"] * 2
    assert [sock.fileno() for sock in sockets] == [-1, -1]  # both closed


def test_a_connect_that_times_out_is_named_and_not_followed_by_other_addresses(
    dns, connects, monkeypatch
):
    dns["two.example"] = ["127.0.0.3", "127.0.0.1"]
    sockets: list[socket.socket] = []
    made = connection.DeadlineSocket

    def track(*args: object) -> socket.socket:
        sockets.append(made(*args))
        return sockets[-1]

    monkeypatch.setattr(connection, "DeadlineSocket", track)
    with deadline.within(standing(0.5)), pytest.raises(requests.ConnectTimeout) as caught:
        UpstreamSession(Policy.NOT_LINK_LOCAL).get("http://two.example:5000/v2/")
    assert told(caught.value) == (
        "HTTPConnectionPool(host='two.example', port=5000): Max retries exceeded with url: "
        "/v2/ (Caused by ConnectTimeoutError(<HTTPConnection(host='two.example', port=5000)>, "
        "'connecting to two.example timed out'))"
    )
    assert [address for address, _limit, _nodelay in connects] == ["127.0.0.3"]
    assert [sock.fileno() for sock in sockets] == [-1]


def test_localhost_names_are_refused_as_loopback(no_network):
    local = Repository(Registry("localhost:5000", "http://localhost:5000", False), "x")
    error = error_of(Transport().request, local, "GET", "manifests/1")
    assert (error.code, error.status) == ("DENIED", 403)
    assert error.message == (
        "refusing to contact localhost (loopback) for upstream registry localhost:5000: not a "
        "public address; name private registries in REGISTRY_ALIASES"
    )
    assert error.detail == {"host": "localhost"}
    assert no_network == []


@pytest.mark.parametrize(
    ("url", "host", "address", "trusted"),
    [
        ("http://[fd00::1]:5000", "fd00::1", "fd00::1", False),
        ("http://[fe80::1%25eth0]:5000", "fe80::1%25eth0", "fe80::1", True),
        ("http://10.0.0.5:5000", "10.0.0.5", "10.0.0.5", False),
    ],
)
def test_address_literals_are_judged_without_a_look_up(no_network, url, host, address, trusted):
    """IPv6 addresses with or without a zone, and IPv4 ones: no name to look up."""
    literal = Repository(Registry("literal", url, trusted), "x")
    with pytest.raises(RegistryError) as caught:
        Transport().request(literal, "GET", "manifests/1")
    assert caught.value.status == 403
    assert caught.value.message.startswith(f"refusing to contact {host} ({address}) for ")
    assert no_network == []


def test_an_allowed_ipv6_literal_is_connected_to(listeners):
    listener_v6 = socket.socket(socket.AF_INET6)
    listener_v6.bind(("::1", 0))
    listener_v6.listen(1)
    port = listener_v6.getsockname()[1]
    served = threading.Thread(target=lambda: serve_once(listener_v6), daemon=True)
    served.start()
    try:
        session = UpstreamSession(Policy.NOT_LINK_LOCAL)
        assert session.get(f"http://[::1]:{port}/v2/").content == b"{}"
    finally:
        served.join(5)
        listener_v6.close()


def serve_once(listener: socket.socket) -> None:
    listener.settimeout(5)
    conn, _ = listener.accept()
    with conn:
        read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")


# -- the connection pools of a policy ---------------------------------------------------------


@pytest.mark.parametrize(
    ("scheme", "pool", "conn"),
    [
        ("http", "HTTPConnectionPool", "HTTPConnection"),
        ("https", "HTTPSConnectionPool", "HTTPSConnection"),
    ],
)
def test_pools_connect_as_their_policy_allows_and_are_named_as_urllib3_names_them(
    no_network, scheme, pool, conn
):
    port = closed_port()
    refusing = connection._pool_classes(Policy.PUBLIC)[scheme]("127.0.0.1", port, retries=False)
    assert str(refusing) == f"{pool}(host='127.0.0.1', port={port})"
    with pytest.raises(AddressRefused) as caught:
        refusing.urlopen("GET", "/v2/", retries=False)
    assert str(caught.value) == "refusing to connect to 127.0.0.1 (127.0.0.1): not a public address"
    allowing = connection._pool_classes(Policy.NOT_LINK_LOCAL)[scheme]("127.0.0.1", port)
    with pytest.raises(Exception) as failed:
        allowing.urlopen("GET", "/v2/", retries=False)
    assert str(failed.value) == (
        f"{conn}(host='127.0.0.1', port={port}): cannot connect to 127.0.0.1: "
        "network disabled in this test"
    )
    assert no_network == [("connect", ("127.0.0.1", port))]


def test_connections_to_sixteen_upstreams_are_kept(dns, connects, scripted):
    """Sixteen hosts visited one after another keep their connections: the first of them,
    asked again, is asked over the connection it had."""
    port = scripted.url.rsplit(":", 1)[1]
    scripted.routes["GET", "/v2/"] = lambda h: (200, {}, b"{}")
    names = [f"r{n}.example" for n in range(16)]
    for name in names:
        dns[name] = ["127.0.0.1"]
    session = UpstreamSession(Policy.NOT_LINK_LOCAL)
    for name in [*names, names[0]]:
        assert session.get(f"http://{name}:{port}/v2/").content == b"{}"
    assert len(connects) == 16
