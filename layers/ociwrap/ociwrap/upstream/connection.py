"""Upstream connections: guarded addresses, and sockets that never wait past the deadline.

Every connection to an upstream is made here: the host is resolved (the lookup
itself bounded in time), every address is judged by the session's `Policy`
before anything is sent, and the socket is a `DeadlineSocket`, whose every
blocking read and write waits at most until the request's deadline. That bounds
a whole exchange, not one read: an upstream that drips a byte every half second
into headers or a body is cut off when the request's time is up. TLS sockets get
the same treatment through the SSL context's `sslsocket_class`.
"""

from __future__ import annotations

import functools
import socket
import ssl
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util.retry import Retry
from urllib3.util.ssl_ import create_urllib3_context

from ociwrap.runtime import deadline
from ociwrap.upstream.guard import AddressRefused, Policy, allows, refuses_name

#: One DNS lookup or TCP connect waits at most this long.
CONNECT_CAP = 5.0
#: One read or write waits at most this long (the deadline usually cuts it shorter).
IO_CAP = 20.0

_resolver: ThreadPoolExecutor | None = None
_resolver_lock = threading.Lock()


def wait_limit(cap: float) -> float:
    """How long the next socket operation may wait; TimeoutError once the deadline passed."""
    limit = deadline.timeout(cap)
    if limit <= 0:
        raise TimeoutError("the request's deadline has passed")
    return limit


class _Deadlined:
    """Socket operations that first shorten the socket's time-out to the deadline."""

    def recv(self, *args: Any) -> bytes:
        self.settimeout(wait_limit(IO_CAP))
        return super().recv(*args)

    def recv_into(self, *args: Any) -> int:
        self.settimeout(wait_limit(IO_CAP))
        return super().recv_into(*args)

    def send(self, *args: Any) -> int:
        self.settimeout(wait_limit(IO_CAP))
        return super().send(*args)

    def sendall(self, *args: Any) -> None:
        self.settimeout(wait_limit(IO_CAP))
        return super().sendall(*args)


class DeadlineSocket(_Deadlined, socket.socket):
    """A TCP socket whose blocking operations end by the request's deadline."""


class DeadlineSSLSocket(_Deadlined, ssl.SSLSocket):
    """The TLS counterpart of `DeadlineSocket` (installed as the context's socket class)."""

    def do_handshake(self, *args: Any) -> None:
        self.settimeout(wait_limit(IO_CAP))
        return super().do_handshake(*args)


@functools.lru_cache(maxsize=8)
def tls_context(ca_bundle: str | None = None) -> ssl.SSLContext:
    """A verifying client context whose sockets honour the deadline. Loading the CA bundle
    takes tens of milliseconds, so each bundle is loaded once per process and its context
    shared by every session (a context is safe to share; nothing changes it after this)."""
    context = create_urllib3_context()
    context.load_verify_locations(cafile=ca_bundle or requests.certs.where())
    context.sslsocket_class = DeadlineSSLSocket
    return context


def _lookup(host: str, port: int) -> list[tuple]:
    """getaddrinfo, given up on (not waited for) when it outlasts the connect limit."""
    global _resolver
    with _resolver_lock:
        if _resolver is None:
            _resolver = ThreadPoolExecutor(max_workers=4, thread_name_prefix="ociwrap-dns")
    future = _resolver.submit(socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM)
    try:
        return future.result(timeout=wait_limit(CONNECT_CAP))
    except TimeoutError as exc:
        raise TimeoutError(f"looking up {host} took too long") from exc


def resolve(host: str) -> list[str]:
    """Every address `host` resolves to, looked up as a connection's host is (bounded)."""
    return [info[4][0] for info in _lookup(host, 443)]


def _addresses(host: str, port: int, policy: Policy) -> list[tuple]:
    """Every address of `host`; refused as a whole if ANY of them breaks the policy."""
    if refuses_name(policy, host):
        raise AddressRefused(host, "loopback", policy)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # An IPv6 literal's zone id (`[fe80::1%25eth0]` in a URL) is no name to look up: the
    # address is judged without it (zones only scope link-local addresses, refused anyway).
    literal = host.split("%", 1)[0] if family == socket.AF_INET6 else host
    try:
        socket.inet_pton(family, literal)
    except OSError:
        infos = _lookup(host, port)
    else:
        infos = [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (literal, port))]
    for info in infos:
        address = info[4][0]
        if not allows(policy, address):
            raise AddressRefused(host, address, policy)
    return infos


def connect(conn: HTTPConnection, policy: Policy) -> socket.socket:
    """Connect to the first reachable allowed address of the connection's host."""
    host = conn.host  # urllib3 gives it lower-cased, an IPv6 address without brackets
    try:
        infos = _addresses(host, conn.port, policy)
    except TimeoutError as exc:
        raise ConnectTimeoutError(conn, f"cannot resolve {host}: {exc}") from exc
    except OSError as exc:
        raise NewConnectionError(conn, f"cannot resolve {host}: {exc}") from exc
    last_error: OSError | None = None
    for family, socktype, proto, _canon, sockaddr in infos:
        sock = DeadlineSocket(family, socktype, proto)
        try:
            for option in conn.socket_options or []:
                sock.setsockopt(*option)
            sock.settimeout(wait_limit(CONNECT_CAP))
            sock.connect(sockaddr)
            return sock
        except TimeoutError as exc:
            sock.close()
            raise ConnectTimeoutError(conn, f"connecting to {host} timed out") from exc
        except OSError as exc:
            sock.close()
            last_error = exc
    raise NewConnectionError(conn, f"cannot connect to {host}: {last_error}")


class _GuardedHTTPConnection(HTTPConnection):
    policy = Policy.PUBLIC

    def _new_conn(self) -> socket.socket:
        return connect(self, self.policy)


class _GuardedHTTPSConnection(HTTPSConnection):
    policy = Policy.PUBLIC

    def _new_conn(self) -> socket.socket:
        return connect(self, self.policy)


def _pool_classes(policy: Policy) -> dict[str, type]:
    http = type("HTTPConnection", (_GuardedHTTPConnection,), {"policy": policy})
    https = type("HTTPSConnection", (_GuardedHTTPSConnection,), {"policy": policy})
    return {
        "http": type("HTTPConnectionPool", (HTTPConnectionPool,), {"ConnectionCls": http}),
        "https": type("HTTPSConnectionPool", (HTTPSConnectionPool,), {"ConnectionCls": https}),
    }


_POOLS = {policy: _pool_classes(policy) for policy in Policy}


class GuardedAdapter(HTTPAdapter):
    """An HTTPAdapter whose connections obey an address policy and the deadline."""

    def __init__(
        self, policy: Policy, ssl_context: ssl.SSLContext, retries: Retry, pool_size: int
    ) -> None:
        self.policy = policy
        self.ssl_context = ssl_context
        super().__init__(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=retries)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS[self.policy]

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        if host_params["scheme"] == "https":
            pool_kwargs["ssl_context"] = self.ssl_context
        return host_params, pool_kwargs

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        """Trust what `ssl_context` was loaded with; no bundle reloaded per connection."""
        super().cert_verify(conn, url, verify, cert)
        if url.lower().startswith("https"):
            conn.ca_certs = None
            conn.ca_cert_dir = None
