"""Hop markers and self-reference, as pure rules: the `Via` entry, its parsing, and which
aliases and hosts are this registry itself."""

from __future__ import annotations

import re

import pytest

from ociwrap.registry.settings import Settings
from ociwrap.runtime import hops
from ociwrap.runtime.errors import RegistryError

#: RFC 9110 section 7.6.3: `Via = #( received-protocol RWS received-by [ RWS comment ] )`,
#: received-by a `uri-host [ ":" port ]` or a pseudonym (a token), comment in parentheses.
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_VIA_ENTRY = re.compile(
    rf"(?:{_TOKEN}/)?{_TOKEN} (?:[A-Za-z0-9.-]+(?::[0-9]+)?|{_TOKEN})(?: \([^()]*\))?"
)


@pytest.mark.parametrize(
    ("public_hostname", "bucket"),
    [("registry.example.com", "b"), ("127.0.0.1:5000", "b"), (None, "ociwrap-local")],
)
def test_the_entry_is_valid_via_syntax(public_hostname, bucket):
    name = hops.own_name(public_hostname, bucket)
    assert _VIA_ENTRY.fullmatch(hops.entry(name))
    assert hops.ociwrap_hops(hops.entry(name)) == (name,)


def test_without_a_public_hostname_the_name_is_a_pseudonym_of_the_bucket():
    one, other = hops.own_name(None, "bucket-one"), hops.own_name(None, "bucket-two")
    assert one != other and re.fullmatch(r"ociwrap-[0-9a-f]{12}", one)
    assert "bucket" not in one  # says nothing of the bucket
    assert hops.own_name("registry.example.com", "bucket-one") == "registry.example.com"


def test_only_ociwrap_entries_are_read():
    via = (
        "1.1 varnish, HTTP/1.1 a.example.com (ociwrap), 1.0 fred (squid/3.1), "
        "1.1 b.example.com:8443 (ociwrap) , 1.1 c.example.com (ociwrap-ish), 2 x (ociwrap) junk"
    )
    assert hops.ociwrap_hops(via) == ("a.example.com", "b.example.com:8443")
    assert hops.ociwrap_hops("") == ()


@pytest.mark.parametrize(
    ("via", "names"),
    [
        ("1.1\tme.example.com\t(ociwrap)", ("me.example.com",)),  # RWS: spaces or tabs
        ("1.1 ME.Example.com (ociwrap)", ("me.example.com",)),  # host names have no case
        ("1.1 my_host (ociwrap)", ("my_host",)),
        ("1.1 m (ociwrap)", ("m",)),
        ("1.1 " + "a" * 261 + " (ociwrap)", ("a" * 261,)),  # 253 for a name, 8 for a port
        ("1.1 " + "a" * 262 + " (ociwrap)", ()),
        ("1.1  (ociwrap)", ()),
        ("1x1 me (ociwrap)", ()),
        ("1.1me (ociwrap)", ()),
        ("1.1 me(ociwrap)", ()),
    ],
)
def test_what_an_entry_may_be(via, names):
    assert hops.ociwrap_hops(via) == names


def test_upstream_requests_carry_the_hops_a_request_came_through():
    assert hops.via("me.example.com") == "1.1 me.example.com (ociwrap)"
    assert not hops.forwarded()
    with hops.within(("a.example.com",)):
        assert hops.forwarded()
        assert hops.via("me.example.com") == (
            "1.1 a.example.com (ociwrap), 1.1 me.example.com (ociwrap)"
        )
    assert not hops.forwarded()


def test_a_request_that_came_back_is_refused_and_the_refusal_names_every_hop():
    with pytest.raises(RegistryError) as refused:
        hops.check_incoming(("a.example.com", "me.example.com"), "me.example.com")
    error = refused.value
    assert (error.status, error.code) == (403, "DENIED")
    assert error.message == (
        "request loop: this request already passed through this registry (me.example.com): "
        "a registry alias or an image name points ociwrap at itself"
    )
    assert error.detail == {"via": ["a.example.com", "me.example.com"]}
    assert hops.came_back(error.headers["Via"], "me.example.com")
    assert hops.came_back(error.headers["Via"], "a.example.com")
    assert not hops.came_back(error.headers["Via"], "b.example.com")
    hops.check_incoming(("a.example.com",), "me.example.com")  # another registry: served


def test_a_chain_of_registries_is_bounded():
    chain = tuple(f"r{n}.example.com" for n in range(8))
    hops.check_incoming(chain[:-1], "me.example.com")
    with pytest.raises(RegistryError) as refused:
        hops.check_incoming(chain, "me.example.com")
    assert refused.value.message == (
        "request loop: this request already passed through 8 ociwrap registries"
    )


@pytest.mark.parametrize(
    ("url", "public_hostname", "here"),
    [
        ("https://registry.example.com", "registry.example.com", True),
        ("https://registry.example.com:443/", "registry.example.com", True),
        ("http://REGISTRY.example.com", "registry.example.com", True),
        ("https://registry.example.com:5443", "registry.example.com", False),
        ("https://mirror.example.com", "registry.example.com", False),
        ("http://127.0.0.1:5000", "127.0.0.1:5000", True),
        ("http://127.0.0.1:5001", "127.0.0.1:5000", False),
        ("http://127.0.0.1", "127.0.0.1:5000", False),
        ("http://127.0.0.1", "127.0.0.1:80", True),
        ("http://registry.example.com:443", "registry.example.com", False),
        ("https://registry.example.com:99999", "registry.example.com", False),
        ("https://registry.example.com", None, False),
    ],
)
def test_which_alias_points_here(url, public_hostname, here):
    assert hops.alias_points_here(url, public_hostname) is here


def test_an_alias_to_the_public_hostname_is_a_start_up_error():
    env = {"ARTIFACT_BUCKET": "b", "PUBLIC_HOSTNAME": "registry.example.com"}
    with pytest.raises(ValueError, match=r"REGISTRY_ALIASES entry self=.*PUBLIC_HOSTNAME"):
        Settings.from_env({**env, "REGISTRY_ALIASES": "self=https://registry.example.com"})
    with pytest.raises(ValueError, match="fetch from itself"):
        Settings.from_env(
            {
                **env,
                "PUBLIC_HOSTNAME": "127.0.0.1:5000",
                "REGISTRY_ALIASES": "me=http://127.0.0.1:5000",
            }
        )
    settings = Settings.from_env({**env, "REGISTRY_ALIASES": "corp=https://r.corp.example"})
    assert settings.aliases == {"corp": "https://r.corp.example"}


def test_a_path_host_is_here_by_its_host():
    assert hops.host_is_here("registry.example.com", "registry.example.com")
    assert hops.host_is_here("registry.example.com", "registry.example.com:8443")
    assert not hops.host_is_here("ghcr.io", "registry.example.com")
    assert not hops.host_is_here("registry.example.com", None)
