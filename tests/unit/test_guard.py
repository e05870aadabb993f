"""The address guard refuses before any packet leaves: path-named hosts must be public,
and nothing (alias or not) may lead to link-local or metadata addresses."""

import socket
from ipaddress import IPv4Address, IPv6Address

import pytest

from ociwrap.upstream.guard import (
    AddressRefused,
    Policy,
    allows,
    is_link_local_address,
    is_public_address,
    judged,
    refuses_name,
)
from ociwrap.upstream.session import UpstreamSession

NOT_PUBLIC = [
    "169.254.169.254",
    "127.0.0.1",
    "10.0.0.5",
    "172.16.3.4",
    "192.168.1.1",
    "0.0.0.0",
    "100.64.0.1",
    "::1",
    "fe80::1",
    "fd00::1",
    "::ffff:169.254.169.254",
    "224.0.0.1",
    # IPv6 that carries a private IPv4 address, judged by that address
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "64:ff9b:1::7f00:1",  # local-use NAT64 of 127.0.0.1
    "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
    "2002:c0a8:101::1",  # 6to4 of 192.168.1.1
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
    "::a9fe:a9fe",  # IPv4-compatible 169.254.169.254
    "::7f00:1",  # IPv4-compatible 127.0.0.1
]


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_private_addresses_are_not_public(address):
    assert not is_public_address(address)
    assert not allows(Policy.PUBLIC, address)


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "52.94.0.1", "2606:4700::1111", "64:ff9b::808:808", "2002:808:808::1"]
)
def test_public_addresses(address):
    assert is_public_address(address)
    assert allows(Policy.PUBLIC, address)


@pytest.mark.parametrize(
    "address",
    [
        "169.254.169.254",
        "169.254.0.1",
        "fe80::1",
        "fe80::1%eth0",
        "fd00:ec2::254",
        "::ffff:169.254.169.254",
        "64:ff9b::a9fe:a9fe",
        "2002:a9fe:a9fe::",
        "::a9fe:a9fe",
    ],
)
def test_link_local_is_refused_even_for_aliases(address):
    assert is_link_local_address(address)
    assert not allows(Policy.NOT_LINK_LOCAL, address)


@pytest.mark.parametrize("address", ["127.0.0.1", "10.0.0.5", "192.168.1.1", "::1", "fd00::1"])
def test_aliases_may_live_on_private_addresses(address):
    assert allows(Policy.NOT_LINK_LOCAL, address)


@pytest.mark.parametrize("policy", list(Policy))
def test_sessions_refuse_the_metadata_address_without_a_packet(no_network, policy):
    with pytest.raises(AddressRefused) as caught:
        UpstreamSession(policy).get("http://169.254.169.254/latest/meta-data/")
    assert caught.value.address == "169.254.169.254"
    assert not [a for a in no_network if a[0] == "connect"]


@pytest.mark.parametrize("host", ["localhost", "registry.localhost", "LOCALHOST."])
def test_localhost_names_are_refused_before_lookup(no_network, host):
    with pytest.raises(AddressRefused):
        UpstreamSession(Policy.PUBLIC).get(f"http://{host}/v2/")
    assert no_network == []


def test_names_resolving_to_private_addresses_are_refused(no_network, monkeypatch):
    """DNS answers are checked too: a public-looking name pointing inside is refused."""

    def resolve_inside(host, port, *args, **kwargs):
        no_network.append(("getaddrinfo", host))
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve_inside)
    with pytest.raises(AddressRefused) as caught:
        UpstreamSession(Policy.PUBLIC).get("https://registry.example.com/v2/")
    assert caught.value.address == "10.1.2.3"
    assert ("getaddrinfo", "registry.example.com") in no_network
    assert not [a for a in no_network if a[0] == "connect"]


def test_mixed_dns_answers_are_refused(no_network, monkeypatch):
    def resolve_mixed(host, port, *args, **kwargs):
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("52.94.0.1", port)),
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("64:ff9b::a9fe:a9fe", port, 0, 0)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", resolve_mixed)
    for policy in Policy:
        with pytest.raises(AddressRefused) as caught:
            UpstreamSession(policy).get("https://mixed.example.com/v2/")
        assert caught.value.address == "64:ff9b::a9fe:a9fe"
    assert not [a for a in no_network if a[0] == "connect"]


def test_refusals_are_not_retried(no_network, monkeypatch):
    lookups = []

    def resolve(host, port, *args, **kwargs):
        lookups.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    with pytest.raises(AddressRefused):
        UpstreamSession(Policy.NOT_LINK_LOCAL).get("http://metadata.example/")
    assert lookups == ["metadata.example"]


# -- the judgement itself, boundary by boundary --------------------------------------------


@pytest.mark.parametrize(
    ("address", "addresses"),
    [
        ("10.0.0.1", [IPv4Address("10.0.0.1")]),
        ("fe80::1%eth0", [IPv6Address("fe80::1")]),
        ("fe80::1%a%b", [IPv6Address("fe80::1")]),
        ("::ffff:10.0.0.1", [IPv6Address("::ffff:a00:1"), IPv4Address("10.0.0.1")]),
        ("64:ff9b::a9fe:a9fe", [IPv6Address("64:ff9b::a9fe:a9fe"), IPv4Address("169.254.169.254")]),
        (
            "64:ff9b:1:8000::a9fe:a9fe",
            [IPv6Address("64:ff9b:1:8000::a9fe:a9fe"), IPv4Address("169.254.169.254")],
        ),
        ("::a9fe:a9fe", [IPv6Address("::a9fe:a9fe"), IPv4Address("169.254.169.254")]),
        # just outside the NAT64 (64:ff9b::/96) and IPv4-compatible (::/96) prefixes
        ("64:ff9b::1:a9fe:a9fe", [IPv6Address("64:ff9b::1:a9fe:a9fe")]),
        ("::1:a9fe:a9fe", [IPv6Address("::1:a9fe:a9fe")]),
        ("2002:a9fe:a9fe::", [IPv6Address("2002:a9fe:a9fe::"), IPv4Address("169.254.169.254")]),
    ],
)
def test_judged_addresses(address, addresses):
    assert judged(address) == addresses


@pytest.mark.parametrize(
    "address",
    [
        "169.254.0.0",
        "169.254.255.255",
        "fe80::",
        "febf:ffff::1",
        "fd00:ec2::254",
        "64:ff9b:1:ffff::a9fe:1",
    ],
)
def test_edges_of_link_local(address):
    assert is_link_local_address(address)
    assert not allows(Policy.NOT_LINK_LOCAL, address)


@pytest.mark.parametrize(
    "address",
    [
        "169.253.255.255",
        "169.255.0.1",
        "fe7f:ffff::1",
        "fec0::1",
        "fd00:ec2::253",
        "fd00:ec2::255",
        "::1:a9fe:a9fe",
        "64:ff9b::1:a9fe:a9fe",
    ],
)
def test_neighbours_of_link_local_are_allowed_for_aliases(address):
    assert not is_link_local_address(address)
    assert allows(Policy.NOT_LINK_LOCAL, address)


@pytest.mark.parametrize(
    ("policy", "host", "refused"),
    [
        (Policy.PUBLIC, "localhost", True),
        (Policy.PUBLIC, "LOCALHOST.", True),
        (Policy.PUBLIC, "localhost..", True),
        (Policy.PUBLIC, "registry.localhost", True),
        (Policy.PUBLIC, "a.b.localhost.", True),
        (Policy.PUBLIC, ".localhost", True),
        (Policy.PUBLIC, "localhost.example.com", False),
        (Policy.PUBLIC, "mylocalhost", False),
        (Policy.PUBLIC, "localhost .", False),
        (Policy.PUBLIC, "registry.example.com", False),
        (Policy.NOT_LINK_LOCAL, "localhost", False),
        (Policy.NOT_LINK_LOCAL, "registry.localhost", False),
    ],
)
def test_names_refused_before_lookup(policy, host, refused):
    assert refuses_name(policy, host) is refused


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        (Policy.PUBLIC, "refusing to connect to r.example (10.0.0.1): not a public address"),
        (
            Policy.NOT_LINK_LOCAL,
            "refusing to connect to r.example (10.0.0.1): not allowed (link-local)",
        ),
    ],
)
def test_refusals_say_what_and_why(policy, message):
    refused = AddressRefused("r.example", "10.0.0.1", policy)
    assert str(refused) == message
    assert (refused.host, refused.address, refused.policy) == ("r.example", "10.0.0.1", policy)
    assert not isinstance(refused, OSError)
