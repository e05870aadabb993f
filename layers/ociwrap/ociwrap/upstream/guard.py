"""Which addresses an upstream connection may reach, judged on the address itself.

A registry path can name any host (`169.254.169.254/x`, `10.0.0.5/x`, a DNS
name that resolves to a private address), and any upstream can send us on with
a redirect or a token realm. Two policies cover that:

* `PUBLIC`: hosts named in a path, and everywhere they send us, must be globally
  routable unicast addresses.
* `NOT_LINK_LOCAL`: aliases from REGISTRY_ALIASES are trusted for where they
  live (plain HTTP, private and loopback addresses are fine), not for where they
  point: nothing an alias leads to may be link-local (169.254.0.0/16, where the
  cloud metadata endpoint lives; fe80::/10; AWS's fd00:ec2::254).

IPv6 addresses that carry an IPv4 address (mapped, NAT64, 6to4, Teredo,
IPv4-compatible) are judged by that address as well, so `64:ff9b::a9fe:a9fe` is
169.254.169.254. The check runs at connect time on the very address connected
to (see `connection`), so DNS rebinding cannot slip past it.
"""

from __future__ import annotations

import enum
import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_LINK_LOCAL = (
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("fd00:ec2::254/128"),
)


class Policy(enum.Enum):
    PUBLIC = "public"
    NOT_LINK_LOCAL = "not link-local"


class AddressRefused(Exception):
    """A connection was refused by policy before any packet was sent.

    Deliberately not an OSError: urllib3 would treat it as a connect error and retry.
    """

    def __init__(self, host: str, address: str, policy: Policy) -> None:
        kind = "a public address" if policy is Policy.PUBLIC else "allowed (link-local)"
        super().__init__(f"refusing to connect to {host} ({address}): not {kind}")
        self.host = host
        self.address = address
        self.policy = policy


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address carries (and would reach through a translator)."""
    found: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    if any(ip in network for network in _NAT64) or ip in _IPV4_COMPATIBLE:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def judged(address: str) -> list[IPAddress]:
    """The address and every IPv4 address embedded in it (zone ids dropped)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        return [ip, *_embedded_ipv4(ip)]
    return [ip]


def is_public_address(address: str) -> bool:
    """Globally routable unicast, and so is every address it embeds."""
    return all(ip.is_global and not ip.is_multicast for ip in judged(address))


def is_link_local_address(address: str) -> bool:
    """Link-local or a metadata address, directly or embedded."""
    return any(
        ip in network
        for ip in judged(address)
        for network in _LINK_LOCAL
        if ip.version == network.version
    )


def allows(policy: Policy, address: str) -> bool:
    """May a connection under `policy` go to `address`?"""
    if policy is Policy.PUBLIC:
        return is_public_address(address)
    return not is_link_local_address(address)


def refuses_name(policy: Policy, host: str) -> bool:
    """Names refused before any lookup: `localhost` and `*.localhost` are loopback by definition."""
    host = host.lower().rstrip(".")
    return policy is Policy.PUBLIC and (host == "localhost" or host.endswith(".localhost"))
