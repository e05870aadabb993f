"""Hop markers: ociwrap never fetches from itself (pure, plus the request's context).

Every upstream request carries a `Via` entry (RFC 9110) that names this deployment,
`1.1 <name> (ociwrap)`: `<name>` is PUBLIC_HOSTNAME, else a pseudonym made from the
bucket's name (unique per deployment, and telling nothing of it). The `(ociwrap)`
comment marks the entries of ociwrap registries. A request that arrives with this
deployment's own entry has come back to it (an alias or a name that points at it):
it is refused, and the refusal carries the entries in its `Via`, so the registry
that sent it recognises its own entry in the answer and names the loop too.

Entries of other ociwrap registries are passed on with ours (so a loop through
several deployments is caught where it closes), at most MAX_HOPS of them. Retries
stay at the first hop: a request that already passed through an ociwrap registry
gets one attempt per upstream call, so retries never multiply along a chain.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from urllib.parse import urlsplit

from ociwrap.runtime.errors import RegistryError

COMMENT = "(ociwrap)"
#: ociwrap registries a request may have passed through before it is taken for a loop.
MAX_HOPS = 8
#: One entry of ours (or another ociwrap's): `[HTTP/]1.1 <host[:port] or pseudonym> (ociwrap)`.
_ENTRY = re.compile(r"(?:HTTP/)?1\.1[ \t]+([A-Za-z0-9.:_-]{1,261})[ \t]+\(ociwrap\)")
_DEFAULT_PORTS = {"http": 80, "https": 443}

_incoming: ContextVar[tuple[str, ...]] = ContextVar("ociwrap_hops", default=())


def own_name(public_hostname: str | None, bucket: str) -> str:
    """The name of this deployment in `Via`: its public host, else a pseudonym."""
    if public_hostname:
        return public_hostname
    return "ociwrap-" + hashlib.sha256(bucket.encode()).hexdigest()[:12]


def entry(name: str) -> str:
    return f"1.1 {name} {COMMENT}"


def ociwrap_hops(via: str) -> tuple[str, ...]:
    """The names in the ociwrap entries of a `Via` value (others are not ours to judge)."""
    found = []
    for item in via.split(","):
        match = _ENTRY.fullmatch(item.strip())
        if match:
            found.append(match[1].lower())
    return tuple(found)


def loop_error(message: str, hops: tuple[str, ...]) -> RegistryError:
    """`403 DENIED` for a loop; its `Via` lists the hops, so each sender sees its own."""
    return RegistryError(
        "DENIED",
        f"request loop: {message}",
        detail={"via": list(hops)},
        headers={"Via": ", ".join(entry(name) for name in hops)},
    )


def check_incoming(hops: tuple[str, ...], own: str) -> None:
    """Refuse a request that already passed through this registry, or through too many."""
    if own in hops:
        raise loop_error(
            f"this request already passed through this registry ({own}): a registry alias "
            "or an image name points ociwrap at itself",
            hops,
        )
    if len(hops) >= MAX_HOPS:
        raise loop_error(
            f"this request already passed through {len(hops)} ociwrap registries", hops
        )


def came_back(response_via: str, own: str) -> bool:
    """Whether an upstream's answer says our request came back to us (a loop refusal)."""
    return own in ociwrap_hops(response_via)


@contextmanager
def within(hops: tuple[str, ...]) -> Iterator[None]:
    """Make the ociwrap hops of the request being served current for its upstream calls."""
    token = _incoming.set(hops)
    try:
        yield
    finally:
        _incoming.reset(token)


def forwarded() -> bool:
    """Whether the request being served came through another ociwrap registry."""
    return bool(_incoming.get())


def via(own: str) -> str:
    """The `Via` of an upstream request: the hops the request came through, then ours."""
    return ", ".join(entry(name) for name in (*_incoming.get(), own))


def _host_and_port(public_hostname: str) -> tuple[str, int | None]:
    """PUBLIC_HOSTNAME (`host[:port]`, as settings checked it) as host and port."""
    host, *port = public_hostname.split(":")
    return host, int(port[0]) if port else None


def alias_points_here(url: str, public_hostname: str | None) -> bool:
    """Whether an alias URL names this registry's public host, and its port (without one,
    the default port of the alias's scheme)."""
    if public_hostname is None:
        return False
    parts = urlsplit(url)
    host, port = _host_and_port(public_hostname)
    default = _DEFAULT_PORTS.get(parts.scheme)
    try:
        alias_port = parts.port or default
    except ValueError:  # no port a connection could be made to
        return False
    return parts.hostname == host and alias_port == (port or default)


def host_is_here(host: str, public_hostname: str | None) -> bool:
    """Whether a registry host named in a path is this registry's public host (a path
    cannot name a port, so the host alone decides)."""
    return public_hostname is not None and host == _host_and_port(public_hostname)[0]
