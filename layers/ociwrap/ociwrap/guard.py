"""Outbound address guard: hosts named in a request path must be public.

A registry path can name any host (`169.254.169.254/x`, `10.0.0.5/x`, a DNS name
that resolves to a private address, or a token realm an upstream points us to).
An untrusted upstream may only be reached on globally routable addresses; the
check runs at connect time on the very address we connect to, so DNS rebinding
between a check and the connect is impossible. Aliases from REGISTRY_ALIASES are
trusted and use an unguarded session.
"""

from __future__ import annotations

import ipaddress
import socket

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError


class AddressRefused(NewConnectionError):
    """A connection to a non-public address was refused before any packet was sent."""

    def __init__(self, conn: object, host: str, address: str) -> None:
        super().__init__(conn, f"refusing to connect to {host} ({address}): not a public address")
        self.host = host
        self.address = address


def is_public_address(address: str) -> bool:
    """True for globally routable unicast addresses (IPv4-mapped IPv6 judged as IPv4)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _public_addresses(conn: HTTPConnection) -> list[tuple]:
    """Resolve the connection's host; refuse if ANY address is not public."""
    host = conn.host.strip("[]")
    if host == "localhost" or host.endswith(".localhost"):
        raise AddressRefused(conn, host, "loopback")
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, conn.port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise NewConnectionError(conn, f"cannot resolve {host}: {exc}") from exc
    else:
        family = socket.AF_INET6 if literal.version == 6 else socket.AF_INET
        infos = [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, conn.port))]
    for _family, _type, _proto, _canon, sockaddr in infos:
        if not is_public_address(sockaddr[0]):
            raise AddressRefused(conn, host, sockaddr[0])
    return infos


def _connect_checked(conn: HTTPConnection) -> socket.socket:
    """Connect to the first reachable checked address, as urllib3 would to the host."""
    last_error: OSError | None = None
    for family, socktype, proto, _canon, sockaddr in _public_addresses(conn):
        sock = socket.socket(family, socktype, proto)
        try:
            sock.settimeout(conn.timeout if isinstance(conn.timeout, int | float) else None)
            for option in conn.socket_options or []:
                sock.setsockopt(*option)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            sock.close()
            last_error = exc
    raise NewConnectionError(conn, f"cannot connect to {conn.host}: {last_error}")


class _GuardedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        return _connect_checked(self)


class _GuardedHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        return _connect_checked(self)


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class GuardedAdapter(HTTPAdapter):
    """An HTTPAdapter whose connections only go to public addresses."""

    def init_poolmanager(self, *args: object, **kwargs: object) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _GuardedHTTPPool,
            "https": _GuardedHTTPSPool,
        }


def make_session(guarded: bool, pool_size: int = 16) -> requests.Session:
    """A requests session; `guarded` ones refuse non-public addresses at connect time.

    Environment proxies and .netrc are ignored: what we contact is decided by the
    request path and REGISTRY_ALIASES alone.
    """
    session = requests.Session()
    session.trust_env = False
    adapter_cls = GuardedAdapter if guarded else HTTPAdapter
    for scheme in ("http://", "https://"):
        session.mount(scheme, adapter_cls(pool_connections=pool_size, pool_maxsize=pool_size))
    return session


def refused_address(exc: BaseException) -> AddressRefused | None:
    """Find an AddressRefused inside the exception chains requests wraps it in."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, AddressRefused):
            return current
        for nxt in (current.__cause__, current.__context__, getattr(current, "reason", None)):
            if isinstance(nxt, BaseException):
                stack.append(nxt)
        stack.extend(arg for arg in current.args if isinstance(arg, BaseException))
    return None
