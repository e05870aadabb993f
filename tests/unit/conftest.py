"""Unit-test fixtures: no test here reaches beyond 127.0.0.1."""

from __future__ import annotations

import ipaddress
import signal
import socket
import ssl
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from doubles.bucket import MemoryBucket
from doubles.pulls import pulls
from doubles.upstream import MemoryUpstream
from harness.tls import Listener, Serve
from ociwrap.runtime.aws import make_s3_client
from ociwrap.upstream.interface import Upstream
from scripted_upstream import Scripted


def numeric(host: str) -> bool:
    """Whether `host` is an IP address (a zone id allowed) or another spelling the C library
    reads as one (`2852039166`, `0xa9fea9fe`): it resolves without a query."""
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        try:
            socket.inet_aton(host)
        except OSError:
            return False
    return True


class ConnectAttempts(list):
    """Every address a test's code tried to resolve or connect to."""


@pytest.fixture(autouse=True)
def short_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries wait a hundredth of a second between attempts instead of tenths: tests count
    attempts and never time them, and the attempts and the deadline's say over them stay
    as deployed."""
    from ociwrap.upstream import session, transport

    monkeypatch.setattr(session, "CONNECT_BACKOFF_FACTOR", 0.005)
    monkeypatch.setattr(transport, "BACKOFF_SECONDS", 0.01)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> ConnectAttempts:
    """Make every connect and DNS lookup fail inside the test, and record the attempts.

    A broken guard then fails a test instead of sending a packet anywhere.
    """
    attempts = ConnectAttempts()

    def refuse_connect(self: socket.socket, address: object) -> None:
        attempts.append(("connect", address))
        raise OSError("network disabled in this test")

    def refuse_lookup(host: object, *args: object, **kwargs: object) -> list:
        attempts.append(("getaddrinfo", host))
        raise socket.gaierror(socket.EAI_NONAME, "network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse_connect)
    monkeypatch.setattr(socket, "getaddrinfo", refuse_lookup)
    monkeypatch.setattr(socket, "create_connection", refuse_lookup)
    return attempts


@pytest.fixture
def scripted() -> Iterator[Scripted]:
    """A scripted upstream registry on 127.0.0.1 (see scripted_upstream)."""
    server = Scripted()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def shared_upstream() -> Iterator[Scripted]:
    """One scripted upstream for a whole test file, for files whose tests would spend
    longer starting and stopping one each than running (they ask for `emptied_upstream`)."""
    server = Scripted()
    yield server
    server.stop()


@pytest.fixture
def emptied_upstream(shared_upstream: Scripted) -> Scripted:
    """The file's shared scripted upstream, with no routes and an empty request log."""
    shared_upstream.routes.clear()
    shared_upstream.seen.clear()
    return shared_upstream


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every address a socket tried to connect to, in order (loopback only)."""
    seen: list[object] = []
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: object) -> None:
        seen.append(address)
        if address[0] != "127.0.0.1":
            raise OSError("only loopback in this test")
        real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return seen


@pytest.fixture
def listeners() -> Iterator[Callable[..., Listener]]:
    """`listeners(serve, tls=None)`: a raw listener on 127.0.0.1, stopped after the test."""
    started: list[Listener] = []

    def start(serve: Serve, tls: ssl.SSLContext | None = None) -> Listener:
        started.append(Listener(serve, tls))
        return started[-1]

    yield start
    for listener in started:
        listener.stop()


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> ConnectAttempts:
    """Let connections reach 127.0.0.1 only; refuse and record every other destination.

    For tests that talk to a scripted upstream on loopback and prove that it cannot send
    the registry anywhere else: a broken guard fails the test, it sends no packet.
    """
    attempts = ConnectAttempts()
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: object) -> None:
        host = address[0] if isinstance(address, tuple) else address
        if host not in ("127.0.0.1", "::1", "localhost"):
            attempts.append(("connect", address))
            raise OSError("only loopback in this test")
        real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return attempts


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Names resolve as the returned table says, and only those: no DNS query leaves.

    Numeric hosts and `localhost` resolve as usual (no query either); any other name fails
    as an unknown name would, so code that resolves names sees them all in the table.
    """
    table: dict[str, list[str]] = {}
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host: object, port: object, *args: object, **kwargs: object) -> list:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name in table:
            return [
                (
                    socket.AF_INET6 if ":" in address else socket.AF_INET,
                    socket.SOCK_STREAM,
                    socket.IPPROTO_TCP,
                    "",
                    (address, port or 0),
                )
                for address in table[name]
            ]
        if name != "localhost" and not numeric(name):
            raise socket.gaierror(socket.EAI_NONAME, f"{name} is not in this test's table")
        return real_getaddrinfo(host, port, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return table


@pytest.fixture
def on_doubles(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., MemoryBucket]]:
    """`on_doubles(bucket=None, upstream=None)`: the handler's service, from the environment's
    settings, is assembled over `bucket` (a new `MemoryBucket` when None; returned) and
    `upstream` (when None, upstreams over HTTP, as deployed). Each `app.reset_service()` is
    a new instance over the same bucket and upstream, as a cold start meets the same S3."""
    import app
    from ociwrap.registry import wiring
    from ociwrap.registry.settings import Settings

    def install(bucket: MemoryBucket | None = None, upstream: Upstream | None = None):
        held = bucket if bucket is not None else MemoryBucket()

        def build(settings: Settings | None = None):
            settings = settings or wiring.settings_from_env()
            logins = wiring.upstream_logins(settings)
            fetcher = upstream if upstream is not None else wiring.http_upstream(settings, logins)
            signer = wiring.make_signer(settings)
            return wiring.assemble(settings, held, fetcher, logins.private, signer)

        monkeypatch.setattr(wiring, "build_service", build)
        app.reset_service()
        return held

    yield install
    app.reset_service()


@pytest.fixture(scope="module")
def s3() -> Iterator[object]:
    """An S3 client on moto's in-process mock: one mock per test module (buckets are cheap,
    starting mocks is not); tests create buckets of their own names."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            patch.setenv(name, value)
        from moto import mock_aws  # only the S3 adapter's tests pay for importing it

        with mock_aws():
            yield make_s3_client(region="us-east-1")


#: How long a call given to `bounded` may run. On the inputs those tests build, linear work
#: takes microseconds to a tenth of a second (a 100 000-character header parsed into 50 000
#: challenges) and a backtracking regular expression longer than any test run: the bound
#: sits far above the one, and measures no speed.
BOUND_SECONDS = 5.0


@pytest.fixture
def bounded() -> Callable[..., Any]:
    """`bounded(call, *args)`: the call's result; the test fails if it runs past the bound.

    A timer signal interrupts the call (the regular expression engine checks for signals
    while it matches), so a match that backtracks fails the test instead of hanging it.
    """

    def expired(signum: int, frame: object) -> None:
        raise AssertionError(f"still running after {BOUND_SECONDS:.0f} s: not linear time")

    def run(call: Callable[..., Any], *args: Any) -> Any:
        previous = signal.signal(signal.SIGALRM, expired)
        signal.setitimer(signal.ITIMER_REAL, BOUND_SECONDS)
        try:
            return call(*args)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)

    return run


@pytest.fixture
def upstream() -> MemoryUpstream:
    """An empty in-memory upstream registry (tests push images to it)."""
    return MemoryUpstream()


@pytest.fixture
def bucket() -> MemoryBucket:
    """An empty in-memory bucket."""
    return MemoryBucket()


@pytest.fixture
def call(
    monkeypatch: pytest.MonkeyPatch, on_doubles: Any, upstream: MemoryUpstream, bucket: MemoryBucket
) -> Any:
    """The handler over `upstream` and `bucket` (see `doubles.pulls`): `call(method, path)`."""
    return pulls(monkeypatch, on_doubles, upstream, bucket)
