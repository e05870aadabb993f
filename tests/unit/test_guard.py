"""The outbound guard refuses non-public addresses before any packet leaves."""

import socket

import pytest
import requests

from ociwrap.guard import is_public_address, make_session, refused_address


@pytest.mark.parametrize(
    "address",
    [
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
    ],
)
def test_private_addresses_are_not_public(address):
    assert not is_public_address(address)


@pytest.mark.parametrize("address", ["8.8.8.8", "52.94.0.1", "2606:4700::1111"])
def test_public_addresses(address):
    assert is_public_address(address)


def test_guarded_session_refuses_metadata_address(no_network):
    session = make_session(guarded=True)
    with pytest.raises(requests.ConnectionError) as caught:
        session.get("http://169.254.169.254/latest/meta-data/", timeout=1)
    refused = refused_address(caught.value)
    assert refused is not None and refused.address == "169.254.169.254"
    assert not [a for a in no_network if a[0] == "connect"]


def test_guarded_session_refuses_names_resolving_to_private(no_network, monkeypatch):
    """DNS answers are checked too: a public-looking name pointing inside is refused."""

    def resolve_inside(host, port, *args, **kwargs):
        no_network.append(("getaddrinfo", host))
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve_inside)
    session = make_session(guarded=True)
    with pytest.raises(requests.ConnectionError) as caught:
        session.get("https://registry.example.com/v2/", timeout=1)
    assert refused_address(caught.value).address == "10.1.2.3"
    assert ("getaddrinfo", "registry.example.com") in no_network
    assert not [a for a in no_network if a[0] == "connect"]


def test_mixed_dns_answers_are_refused(no_network, monkeypatch):
    def resolve_mixed(host, port, *args, **kwargs):
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("52.94.0.1", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", resolve_mixed)
    with pytest.raises(requests.ConnectionError) as caught:
        make_session(guarded=True).get("https://mixed.example.com/v2/", timeout=1)
    assert refused_address(caught.value).address == "127.0.0.1"
    assert not [a for a in no_network if a[0] == "connect"]
