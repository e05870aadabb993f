"""Which redirect targets may be handed to a client, judged as the client would read them.

A blob GET is answered with the upstream's own redirect target, so whatever an upstream
puts in its `Location` becomes a URL that a client behind this registry fetches: a CI
runner on EC2 sent to `http://169.254.169.254/` would fetch its own instance's metadata.
Connections this registry makes are guarded where they are made (see `connection`);
a `Location` handed on is never connected to here, so it is judged by its text, under the
same `Policy` as the registry it came from:

* its host as clients' URL parsers read it (Go's net/url in docker, containerd, podman and
  skopeo; curl; WHATWG browsers): user information dropped, percent-escapes decoded, a
  trailing dot dropped, and IPv4 written in any form that `inet_aton` or the WHATWG host
  parser accepts (`2852039166`, `0xa9fea9fe`, `0251.0376.0251.0376`, `169.254.43518`);
  bracketed IPv6 with its zone id dropped and every IPv4 address it embeds (`guard.judged`);
* a host that parsers could read differently (a backslash, a non-ASCII or malformed name, a
  number that is no address) is refused, as are user information (a client would send it as
  a login) and any scheme but http and https;
* names that resolve to the metadata address inside clouds (`instance-data`,
  `metadata.google.internal`) are refused under every policy; under `PUBLIC`, so are names
  only a local resolver answers (`localhost`, a name without a dot, `.internal`, `.local`,
  `.home.arpa`);
* any other DNS name is left to `refusal`, which looks it up (as this registry sees it) and
  judges every address; a name that does not resolve here is passed on unjudged.

Everything here is pure but `refusal`, whose resolver is handed in.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from ociwrap.upstream.guard import Policy, allows, is_link_local_address, judged

#: What may stand in an authority (RFC 3986): anything else (a backslash above all, which
#: WHATWG parsers read as a path separator and Go's as part of the user information) is
#: read differently by different clients.
_AUTHORITY = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@\[\]%]+")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):(.*)", re.DOTALL)
_PORT = re.compile(r"(?::[0-9]{0,5})?")
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
#: A part of an IPv4 address as `inet_aton` and WHATWG read it: hex, octal or decimal.
_NUMBER = re.compile(r"0x[0-9a-f]*|[0-9]+")
#: Names that cloud resolvers answer with the metadata address (169.254.169.254).
METADATA_NAMES = frozenset(
    {"instance-data", "instance-data.ec2.internal", "metadata", "metadata.google.internal"}
)
#: Names that only a local resolver answers (RFC 6761, 6762, 8375; ICANN's `.internal`).
LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa")
#: The longest host echoed in a refusal.
_SHOWN = 100


@dataclass(frozen=True)
class Verdict:
    """A `Location` judged by its text: why it may not be handed out (`refused`, a phrase
    that follows "redirected ... to"), or the DNS name whose addresses decide (`name`)."""

    refused: str | None = None
    name: str | None = None


def _link_local(shown: str) -> str:
    return (
        f"{shown}, a link-local address (where cloud metadata endpoints live), which clients "
        "of this registry are never sent to"
    )


def _not_public(shown: str) -> str:
    return (
        f"{shown}, which is not a public address: clients are sent only to public addresses "
        "for a registry named in a path"
    )


def _unreadable(why: str) -> Verdict:
    return Verdict(refused=f"a URL whose host clients do not all read alike ({why})")


def ipv4_number(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address a host ending in a number stands for, as `inet_aton` and the WHATWG
    URL standard read it (one to four parts, each hex, octal or decimal, the last filling
    the remaining bytes); None when it stands for none."""
    parts = host.split(".")
    if len(parts) > 4 or not all(_NUMBER.fullmatch(part) for part in parts):
        return None
    numbers = []
    for part in parts:
        if part.startswith("0x"):
            digits, base = part[2:], 16
        elif len(part) > 1 and part.startswith("0"):
            digits, base = part[1:], 8
        else:
            digits, base = part, 10
        try:
            numbers.append(int(digits, base) if digits else 0)
        except ValueError:  # an 8 or 9 in an octal part
            return None
    *leading, last = numbers
    if any(number > 255 for number in leading) or last >= 256 ** (4 - len(leading)):
        return None
    value = last
    for position, number in enumerate(leading):
        value += number << (8 * (3 - position))
    return ipaddress.IPv4Address(value)


def _address(shown: str, address: str, policy: Policy) -> str | None:
    """Why a client may not be sent to `address` under `policy` (None: it may)."""
    if is_link_local_address(address):
        return _link_local(shown)
    if not allows(policy, address):
        return _not_public(shown)
    return None


def _host(authority: str) -> tuple[str, bool] | Verdict:
    """(host, is an IPv6 literal) of an authority; a Verdict when it has no readable one."""
    hostport = authority.rpartition("@")[2]
    if hostport.startswith("["):
        literal, bracket, port = hostport[1:].partition("]")
        if not bracket or not _PORT.fullmatch(port):
            return _unreadable("an unclosed or trailed IPv6 literal")
        return literal, True
    host, colon, port = hostport.partition(":")
    if not _PORT.fullmatch(colon + port):
        return _unreadable("a port that is no number")
    return host, False


def _name(shown: str, host: str, policy: Policy) -> Verdict:
    """A DNS name: refused for what it is, or left to its addresses (`Verdict.name`)."""
    if len(host) > 253 or not _NAME.fullmatch(host):
        return _unreadable("a host that is no valid DNS name")
    if host in METADATA_NAMES:
        return Verdict(
            refused=f"{shown}, a name cloud resolvers answer with the metadata address, which "
            "clients of this registry are never sent to"
        )
    if policy is Policy.PUBLIC and ("." not in host or host.endswith(LOCAL_SUFFIXES)):
        return Verdict(
            refused=f"{shown}, a name only a local resolver answers: clients are sent only to "
            "public names for a registry named in a path"
        )
    return Verdict(name=host)


def _judge_host(raw: str, bracketed: bool, policy: Policy) -> Verdict:
    """The host of a URL as clients read it: an address judged here, or a name."""
    try:
        host = unquote_to_bytes(raw).decode("ascii").lower()
    except UnicodeDecodeError:
        return _unreadable("a host that is not ASCII once percent-decoded")
    shown = raw[:_SHOWN] if host == raw.lower() else f"{raw[:_SHOWN]} ({host[:_SHOWN]})"
    if bracketed:
        try:
            address = str(ipaddress.IPv6Address(host.split("%", 1)[0]))
        except ValueError:
            return _unreadable("an IPv6 literal that is no IPv6 address")
        embedded = judged(address)[1:]
        shown = f"[{address}]" + (f" ({embedded[0]})" if embedded else "")
        return Verdict(refused=_address(shown, address, policy))
    host = host.removesuffix(".")
    if not _NUMBER.fullmatch(host.rpartition(".")[2]):
        return _name(shown, host, policy)
    ipv4 = ipv4_number(host)
    if ipv4 is None:
        return _unreadable("a host ending in a number that is no IPv4 address")
    if str(ipv4) != raw:
        shown = f"{raw[:_SHOWN]} ({ipv4})"
    return Verdict(refused=_address(shown, str(ipv4), policy))


def judge(url: str, policy: Policy) -> Verdict:
    """Judge a redirect target by its text, as clients' URL parsers would read it."""
    match = _SCHEME.fullmatch(url)
    scheme = match[1].lower() if match else ""
    if match is None or scheme not in ("http", "https"):
        what = f"a {scheme[:20]}: URL" if scheme else "a URL without a scheme"
        return Verdict(refused=f"{what}; clients are sent only to http and https URLs")
    rest = match[2]
    if not rest.startswith("//"):
        return _unreadable("no '//' before it")
    authority = rest[2:]
    for end in "/?#":
        authority = authority.split(end, 1)[0]
    if not _AUTHORITY.fullmatch(authority):
        return _unreadable("an empty authority or one with characters outside RFC 3986")
    found = _host(authority)
    if isinstance(found, Verdict):
        return found
    verdict = _judge_host(*found, policy)
    if verdict.refused is None and "@" in authority:
        return Verdict(refused="a URL with user information, which clients would send as a login")
    return verdict


def judge_addresses(name: str, addresses: Iterable[str], policy: Policy) -> str | None:
    """Why a client may not be sent to `name`, which resolves to `addresses` (None: it may)."""
    for address in addresses:
        refused = _address(f"{name[:_SHOWN]} ({address.split('%', 1)[0]})", address, policy)
        if refused is not None:
            return refused
    return None


def refusal(url: str, policy: Policy, resolve: Callable[[str], list[str]]) -> str | None:
    """Why `url` may not be handed to a client under `policy` (None: it may).

    A DNS name is looked up with `resolve` and refused if any of its addresses would be. A
    name that does not resolve here (an error or a time-out) is passed on: this registry
    cannot judge it, the client resolves it in its own view, and a lookup that fails now
    should not fail a pull.
    """
    verdict = judge(url, policy)
    if verdict.name is None:
        return verdict.refused
    try:
        addresses = resolve(verdict.name)
    except OSError:
        return None
    return judge_addresses(verdict.name, addresses, policy)
