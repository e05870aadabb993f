"""Which redirect targets may be handed to a client: pure judgement of a URL's text.

A client fetches a blob from whatever `Location` it is given; these are the URLs a hostile
upstream would try, spelled as clients' URL parsers (Go's net/url, curl, WHATWG) read them.
Nothing here resolves or connects: resolution is a function handed in.
"""

from __future__ import annotations

import ipaddress
import socket

import pytest

from ociwrap.upstream.guard import Policy
from ociwrap.upstream.locations import (
    Verdict,
    ipv4_number,
    judge,
    judge_addresses,
    refusal,
)

BOTH = (Policy.PUBLIC, Policy.NOT_LINK_LOCAL)

#: The metadata address (and its IPv6 neighbours) in every spelling a client may read so.
LINK_LOCAL = [
    "http://169.254.169.254/latest/meta-data/",
    "http://169.254.169.254:80/latest/meta-data/iam/security-credentials/",
    "https://169.254.0.1/",
    "http://169.254.169.254./latest/meta-data/",  # trailing dot
    "http://2852039166/latest/meta-data/",  # one decimal number
    "http://0xa9fea9fe/latest/meta-data/",  # one hex number
    "http://0XA9FEA9FE/",
    "http://0251.0376.0251.0376/latest/meta-data/",  # octal parts
    "http://0xa9.0xfe.0xa9.0xfe/",  # hex parts
    "http://169.254.43518/",  # the last part fills the rest
    "http://169.16689662/",
    "http://0251.254.169.254/",  # mixed
    "http://%31%36%39.254.169.254/",  # percent-escaped (Go and WHATWG decode hosts)
    "http://evil@169.254.169.254/latest/meta-data/",  # user information
    "http://user:pass@169.254.169.254/",
    "http://a@b@169.254.169.254/",  # the last @ counts
    "http://registry.example.com@169.254.169.254/",
    "http://169.254.169.254#@cdn.example.com/",  # the fragment ends the authority
    "http://169.254.169.254?@cdn.example.com/",
    "HTTP://169.254.169.254/",
    "http://[fe80::1]/",
    "http://[fe80::1%25eth0]/",  # zone id
    "http://[fe80::1%eth0]:8080/",
    "http://[FEBF::1]/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://[::ffff:169.254.169.254]/",  # IPv4-mapped
    "http://[::ffff:a9fe:a9fe]/",
    "http://[64:ff9b::a9fe:a9fe]/",  # NAT64
    "http://[64:ff9b:1::a9fe:a9fe]/",
    "http://[2002:a9fe:a9fe::1]/",  # 6to4
    "http://[::169.254.169.254]/",  # IPv4-compatible
]

#: URLs that clients do not all read alike, or that are no http(s) URL at all.
UNREADABLE = [
    "http://cdn.example.com\\@169.254.169.254/",  # WHATWG: host cdn.example.com; Go: error
    "http:\\\\169.254.169.254\\",
    "http:/169.254.169.254/",  # WHATWG reads the host; Go has none
    "http:169.254.169.254/",
    "http:///169.254.169.254/",
    "http://",
    "http://:80/",
    "http://1.2.3.4.5/",  # a number that is no address
    "http://08.1.1.1/",  # an octal part with an 8
    "http://256.1.1.1/",
    "http://1.2.3.4294967296/",
    "http://cdn.123/",  # ends in a number: WHATWG refuses it, glibc does not read it
    "http://cdn.0x1/",
    "http://169.254.169.254:80:80/",
    "http://169.254.169.254:x/",
    "http://[fe80::1/",
    "http://[fe80::1]x/",
    "http://[169.254.169.254]/",
    "http://[::ffff:0251.0376.0251.0376]/",
    "http://%ef%bc%91%ef%bc%96%ef%bc%99.254.169.254/",  # fullwidth digits, NFKC-mapped by WHATWG
    "http://169.254.169.254%00.cdn.example.com/",
    "http://cdn..example.com/",
    "http://-cdn.example.com/",
    "http://cdn example.com/",
    "http://cdn.example.com\t/",
    " http://169.254.169.254/",
    "file:///etc/passwd",
    "ftp://cdn.example.com/blob",
    "javascript:alert(1)",
    "data:text/plain,blob",
    "gopher://cdn.example.com/",
    "//169.254.169.254/",
    "/relative/path",
    "",
]

#: What public registries really hand out: left to the lookup of their names.
PUBLIC_NAMES = [
    (
        "https://production.cloudflare.docker.com/registry-v2/docker/registry/v2/blobs/"
        "sha256/ab/abcd/data?verify=1700000000-abc%3D",
        "production.cloudflare.docker.com",
    ),
    (
        "https://pkg-containers.githubusercontent.com/ghcr1/blobs/sha256:abcd?se=2024&sig=x%2By",
        "pkg-containers.githubusercontent.com",
    ),
    (
        "https://prod-us-east-1-starport-layer-bucket.s3.us-east-1.amazonaws.com/6c31-123/"
        "a7b?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=abc",
        "prod-us-east-1-starport-layer-bucket.s3.us-east-1.amazonaws.com",
    ),
    ("https://cdn01.quay.io/quayio-production-s3/sha256/ab/abcd?Expires=1", "cdn01.quay.io"),
    ("HTTPS://CDN.Example.COM./blob", "cdn.example.com"),
    ("https://cdn.example.com:8443/blob", "cdn.example.com"),
    ("https://storage_1.example.com/blob", "storage_1.example.com"),
]

#: Public addresses, written as addresses.
PUBLIC_ADDRESSES = [
    "https://1.1.1.1/blob",
    "http://8.8.8.8:8080/blob?x=169.254.169.254",
    "http://[2606:4700:4700::1111]/blob",
    "https://93.184.215.14/#@169.254.169.254",
]

#: Where a registry's own network lives: fine for an alias, never for a path-named host.
PRIVATE = [
    "http://10.0.0.5:9000/bucket/blob",
    "http://192.168.1.10/blob",
    "http://172.16.0.1/blob",
    "http://127.0.0.1:5001/blob",
    "http://2130706433/blob",  # 127.0.0.1
    "http://0x7f.1/blob",  # 127.0.0.1
    "http://0/blob",  # 0.0.0.0
    "http://100.64.0.1/blob",  # shared address space
    "http://[::1]/blob",
    "http://[fd12:3456::1]/blob",
    "http://[::ffff:10.0.0.5]/blob",
]

#: Names only a local resolver answers: fine for an alias (looked up), never for a path.
LOCAL_NAMES = [
    ("http://localhost:9000/blob", "localhost"),
    ("http://minio/blob", "minio"),
    ("http://minio.corp.internal/blob", "minio.corp.internal"),
    ("http://nas.local/blob", "nas.local"),
    ("http://box.home.arpa/blob", "box.home.arpa"),
    ("http://app.localhost/blob", "app.localhost"),
]

METADATA_NAMES = [
    "http://instance-data/latest/meta-data/",
    "http://instance-data.ec2.internal/latest/meta-data/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://metadata/computeMetadata/v1/",
    "http://Metadata.Google.Internal./computeMetadata/v1/",
]


@pytest.mark.parametrize("policy", BOTH)
@pytest.mark.parametrize("url", LINK_LOCAL)
def test_link_local_targets_are_refused_however_spelled(url, policy):
    verdict = judge(url, policy)
    assert verdict.refused is not None and verdict.name is None
    assert "link-local" in verdict.refused


@pytest.mark.parametrize("policy", BOTH)
@pytest.mark.parametrize("url", UNREADABLE)
def test_targets_that_clients_read_differently_are_refused(url, policy):
    verdict = judge(url, policy)
    assert verdict.refused is not None and verdict.name is None


@pytest.mark.parametrize(
    ("url", "scheme"),
    [("file:///etc/passwd", "file"), ("javascript:alert(1)", "javascript"), ("data:,x", "data")],
)
def test_only_http_and_https_are_handed_out(url, scheme):
    assert judge(url, Policy.NOT_LINK_LOCAL).refused == (
        f"a {scheme}: URL; clients are sent only to http and https URLs"
    )


@pytest.mark.parametrize("policy", BOTH)
@pytest.mark.parametrize(("url", "name"), PUBLIC_NAMES)
def test_public_names_are_left_to_their_addresses(url, name, policy):
    assert judge(url, policy) == Verdict(name=name)


@pytest.mark.parametrize("policy", BOTH)
@pytest.mark.parametrize("url", PUBLIC_ADDRESSES)
def test_public_addresses_are_handed_out(url, policy):
    assert judge(url, policy) == Verdict()


@pytest.mark.parametrize("url", PRIVATE)
def test_private_addresses_only_for_aliases(url):
    refused = judge(url, Policy.PUBLIC).refused
    assert refused is not None and "not a public address" in refused
    assert judge(url, Policy.NOT_LINK_LOCAL) == Verdict()


@pytest.mark.parametrize(("url", "name"), LOCAL_NAMES)
def test_local_names_only_for_aliases(url, name):
    refused = judge(url, Policy.PUBLIC).refused
    assert refused is not None and "local resolver" in refused
    assert judge(url, Policy.NOT_LINK_LOCAL) == Verdict(name=name)


@pytest.mark.parametrize("policy", BOTH)
@pytest.mark.parametrize("url", METADATA_NAMES)
def test_metadata_host_names_are_refused_whatever_they_resolve_to_here(url, policy):
    refused = judge(url, policy).refused
    assert refused is not None and "metadata" in refused


@pytest.mark.parametrize("policy", BOTH)
def test_user_information_is_never_handed_out(policy):
    refused = judge("https://user:secret@cdn.example.com/blob", policy).refused
    assert refused == "a URL with user information, which clients would send as a login"


def test_refusals_name_the_host_and_the_address_it_stands_for():
    refused = judge("http://0xa9fea9fe/latest/meta-data/iam?X-Amz-Signature=s", Policy.PUBLIC)
    assert refused.refused is not None
    assert refused.refused.startswith("0xa9fea9fe (169.254.169.254), a link-local address")
    assert "meta-data" not in refused.refused and "Signature" not in refused.refused
    mapped = judge("http://[::ffff:169.254.169.254]/", Policy.NOT_LINK_LOCAL).refused
    assert mapped is not None and mapped.startswith("[::ffff:a9fe:a9fe] (169.254.169.254)")
    long = judge(f"http://{'a' * 300}.internal/", Policy.PUBLIC).refused
    assert long is not None and len(long) < 300


# -- IPv4 numbers, against the C library's reading of them ---------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "169.254.169.254",
        "2852039166",
        "0xa9fea9fe",
        "0251.0376.0251.0376",
        "0xa9.0xfe.0xa9.0xfe",
        "169.254.43518",
        "169.16689662",
        "0",
        "0x0",
        "00",
        "127.1",
        "4294967295",
        "0377.0377.0377.0377",
    ],
)
def test_ipv4_numbers_read_as_inet_aton_reads_them(host):
    assert ipv4_number(host) == ipaddress.IPv4Address(socket.inet_aton(host))


@pytest.mark.parametrize(
    "host",
    [
        "4294967296",
        "1.2.3.4.5",
        "256.1.1.1",
        "1.256.1",
        "08",
        "0x1g",
        "1..2",
        "1.2.3.",
        "1_0",
        "+1",
    ],
)
def test_ipv4_numbers_that_stand_for_no_address(host):
    assert ipv4_number(host) is None
    with pytest.raises(OSError):
        socket.inet_aton(host)


def test_a_bare_hex_prefix_is_zero_as_the_url_standard_reads_it():
    assert ipv4_number("0x") == ipv4_number("0x.0") == ipaddress.IPv4Address("0.0.0.0")


# -- names, resolved as the caller resolves them -------------------------------------------


def test_a_name_is_judged_by_every_address_it_resolves_to():
    name = "169.254.169.254.nip.io"
    assert "link-local" in judge_addresses(name, ["93.184.215.14", "169.254.169.254"], BOTH[1])
    assert judge_addresses(name, ["93.184.215.14", "2606:4700::1"], Policy.PUBLIC) is None
    private = judge_addresses("cdn.example.com", ["10.0.0.5"], Policy.PUBLIC)
    assert private is not None and private.startswith("cdn.example.com (10.0.0.5)")
    assert judge_addresses("cdn.example.com", ["10.0.0.5"], Policy.NOT_LINK_LOCAL) is None
    assert "link-local" in judge_addresses("x.example", ["fe80::1%eth0"], Policy.NOT_LINK_LOCAL)


def test_refusal_resolves_names_only():
    looked_up: list[str] = []

    def resolve(name: str) -> list[str]:
        looked_up.append(name)
        return {"meta.attacker.example": ["169.254.169.254"]}.get(name, ["93.184.215.14"])

    refused = refusal("http://meta.attacker.example/latest/meta-data/", Policy.PUBLIC, resolve)
    assert refused is not None and "meta.attacker.example (169.254.169.254)" in refused
    assert refusal("https://cdn.example.com/blob", Policy.PUBLIC, resolve) is None
    assert refusal("http://169.254.169.254/", Policy.NOT_LINK_LOCAL, resolve) is not None
    assert refusal("http://10.0.0.5/", Policy.NOT_LINK_LOCAL, resolve) is None
    assert looked_up == ["meta.attacker.example", "cdn.example.com"]


def test_a_name_that_does_not_resolve_here_is_passed_on():
    def unknown(name: str) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "unknown name")

    def slow(name: str) -> list[str]:
        raise TimeoutError(f"looking up {name} took too long")

    for resolve in (unknown, slow):
        assert refusal("https://cdn.example.com/blob", Policy.PUBLIC, resolve) is None


# -- what a refusal says --------------------------------------------------------------------

UNREADABLE = "a URL whose host clients do not all read alike"


@pytest.mark.parametrize(
    ("url", "policy", "refused"),
    [
        ("http://[::1/", BOTH[1], f"{UNREADABLE} (an unclosed or trailed IPv6 literal)"),
        ("http://[::1]x/", BOTH[1], f"{UNREADABLE} (an unclosed or trailed IPv6 literal)"),
        ("http://[::1]]/", BOTH[1], f"{UNREADABLE} (an unclosed or trailed IPv6 literal)"),
        ("http://cdn.example.com:x/", BOTH[1], f"{UNREADABLE} (a port that is no number)"),
        ("http://cdn-.example.com/", BOTH[1], f"{UNREADABLE} (a host that is no valid DNS name)"),
        (
            "http://%ff.example.com/",
            BOTH[1],
            f"{UNREADABLE} (a host that is not ASCII once percent-decoded)",
        ),
        ("http://[::zz]/", BOTH[1], f"{UNREADABLE} (an IPv6 literal that is no IPv6 address)"),
        (
            "http://a.256/",
            BOTH[1],
            f"{UNREADABLE} (a host ending in a number that is no IPv4 address)",
        ),
        ("http:cdn.example.com/", BOTH[1], f"{UNREADABLE} (no '//' before it)"),
        (
            "http:///blob",
            BOTH[1],
            f"{UNREADABLE} (an empty authority or one with characters outside RFC 3986)",
        ),
        (
            "cdn.example.com/blob",
            BOTH[1],
            "a URL without a scheme; clients are sent only to http and https URLs",
        ),
        (
            "x" * 30 + "://a/",
            BOTH[1],
            f"a {'x' * 20}: URL; clients are sent only to http and https URLs",
        ),
        (
            "http://169.254.169.254/",
            BOTH[1],
            "169.254.169.254, a link-local address (where cloud metadata endpoints live), which "
            "clients of this registry are never sent to",
        ),
        (
            "http://10.0.0.5/",
            Policy.PUBLIC,
            "10.0.0.5, which is not a public address: clients are sent only to public addresses "
            "for a registry named in a path",
        ),
        (
            "http://metad%61ta/",
            BOTH[1],
            "metad%61ta (metadata), a name cloud resolvers answer "
            "with the metadata address, which clients of this registry are never sent to",
        ),
        (
            "http://registry.local/",
            Policy.PUBLIC,
            "registry.local, a name only a local resolver answers: clients are sent only to "
            "public names for a registry named in a path",
        ),
        ("http://[fe80::1%25eth0%25x]/", BOTH[1], None),
        ("http://[::1]/", BOTH[1], None),
        ("http://0x0a.0.0.5/", BOTH[1], None),
        (
            "http://0x0a.0.0.5/",
            Policy.PUBLIC,
            "0x0a.0.0.5 (10.0.0.5), which is not a public address: clients are sent only to "
            "public addresses for a registry named in a path",
        ),
        (
            "http://[fd00::1]/",
            Policy.PUBLIC,
            "[fd00::1], which is not a public address: clients are sent only to public addresses "
            "for a registry named in a path",
        ),
    ],
)
def test_refusals_say_why(url, policy, refused):
    verdict = judge(url, policy)
    if refused is None and verdict.refused is not None:
        assert "link-local" in verdict.refused  # the zone id is no part of the address
        return
    assert verdict.refused == refused


def test_the_longest_name_is_253_characters():
    label = "a" * 63
    name = ".".join([label, label, label, "a" * 61])  # 253
    assert judge(f"http://{name}/", Policy.PUBLIC) == Verdict(name=name)
    longer = name[:-1] + "aa.b"
    assert judge(f"http://{longer}/", Policy.PUBLIC).refused == (
        f"{UNREADABLE} (a host that is no valid DNS name)"
    )


def test_only_the_authority_is_judged():
    assert judge("http://cdn.example.com/a/b?c=d/e#f/g", Policy.PUBLIC) == Verdict(
        name="cdn.example.com"
    )
    assert judge("http://cdn.example.com?x=169.254.169.254", Policy.PUBLIC) == Verdict(
        name="cdn.example.com"
    )


@pytest.mark.parametrize("host", ["1.2.3.4.5", "0.0.0.0.1"])
def test_five_numbers_are_no_ipv4_address(host):
    assert ipv4_number(host) is None


def test_an_address_is_shown_without_its_zone():
    refused = judge_addresses("x.example", ["fe80::1%eth0%x"], Policy.NOT_LINK_LOCAL)
    assert refused is not None and refused.startswith("x.example (fe80::1), a link-local address")


def test_refusal_judges_under_the_policy_given():
    def resolve(name: str) -> list[str]:
        return ["10.0.0.5"]

    assert refusal("http://cdn.example.com/", Policy.NOT_LINK_LOCAL, resolve) is None
    assert refusal("http://cdn.example.com/", Policy.PUBLIC, resolve) is not None
    assert refusal("http://10.0.0.5/", Policy.NOT_LINK_LOCAL, resolve) is None
    assert refusal("http://10.0.0.5/", Policy.PUBLIC, resolve) is not None


# -- the grammar, one character or bound at a time ------------------------------------------

USER_INFORMATION = "a URL with user information, which clients would send as a login"


@pytest.mark.parametrize("char", list("~!$&'()*+,;="))
def test_every_rfc_3986_sub_delimiter_may_stand_in_user_information(char):
    # RFC 3986 allows it there, so clients agree on the host: refused for the login alone
    url = f"http://user{char}name@cdn.example.com/blob"
    assert judge(url, Policy.NOT_LINK_LOCAL).refused == USER_INFORMATION


@pytest.mark.parametrize("char", ["\\", "^", "`", "{", "|", "}", '"', "<", ">", " "])
def test_characters_outside_rfc_3986_in_the_authority_are_unreadable(char):
    url = f"http://user{char}name@cdn.example.com/blob"
    assert judge(url, Policy.NOT_LINK_LOCAL).refused == (
        f"{UNREADABLE} (an empty authority or one with characters outside RFC 3986)"
    )


@pytest.mark.parametrize(
    ("url", "scheme"),
    [
        ("s3://bucket/blob", "s3"),
        ("svn+ssh://cdn.example.com/", "svn+ssh"),
        ("x.y://cdn.example.com/", "x.y"),
        ("chrome-extension://abc/", "chrome-extension"),
        ("h://cdn.example.com/", "h"),
    ],
)
def test_other_schemes_are_named_in_the_refusal(url, scheme):
    assert judge(url, Policy.NOT_LINK_LOCAL).refused == (
        f"a {scheme}: URL; clients are sent only to http and https URLs"
    )


def test_a_scheme_with_nothing_after_it_has_no_authority():
    assert judge("http:", Policy.NOT_LINK_LOCAL).refused == f"{UNREADABLE} (no '//' before it)"


@pytest.mark.parametrize(
    "authority", ["cdn.example.com:", "cdn.example.com:5", "cdn.example.com:65535"]
)
def test_a_port_has_at_most_five_digits(authority):
    assert judge(f"https://{authority}/blob", Policy.PUBLIC) == Verdict(name="cdn.example.com")
    assert judge(f"https://[2606:4700::1111]{authority[15:]}/", Policy.PUBLIC) == Verdict()


@pytest.mark.parametrize("authority", ["cdn.example.com:123456", "[2606:4700::1111]:123456"])
def test_a_port_of_six_digits_is_no_port(authority):
    refused = judge(f"https://{authority}/blob", Policy.PUBLIC).refused
    assert refused is not None and refused.startswith(UNREADABLE)


@pytest.mark.parametrize(
    "host",
    [
        "a.b.example",  # one-character labels
        "1cdn.example.com",  # a label may start with a digit
        "cdn1.example.com",
        "_acme.example.com",  # or an underscore, at either end
        "cdn_.example.com",
        "x-1.example.com",
    ],
)
def test_labels_as_dns_names_spell_them(host):
    assert judge(f"https://{host}/blob", Policy.PUBLIC) == Verdict(name=host)


def test_a_label_has_at_most_63_characters():
    at_limit = "a" * 63 + ".example.com"
    assert judge(f"https://{at_limit}/", Policy.PUBLIC) == Verdict(name=at_limit)
    past = "a" * 64 + ".example.com"
    assert judge(f"https://{past}/", Policy.PUBLIC).refused == (
        f"{UNREADABLE} (a host that is no valid DNS name)"
    )


@pytest.mark.parametrize("host", ["cdn!example.com", "cdn$example.com", "cdn,example.com"])
def test_labels_are_separated_by_dots_only(host):
    assert judge(f"https://{host}/", Policy.PUBLIC).refused == (
        f"{UNREADABLE} (a host that is no valid DNS name)"
    )


def test_a_refusal_shows_the_first_100_characters_of_the_host():
    host = "a" * 60 + "." + "b" * 60 + ".internal"
    assert judge(f"http://{host}/", Policy.PUBLIC).refused == (
        f"{host[:100]}, a name only a local resolver answers: clients are sent only to "
        "public names for a registry named in a path"
    )


def test_five_parts_are_no_address_even_when_the_last_is_zero():
    assert ipv4_number("1.2.3.4.0") is None
    assert judge("http://1.2.3.4.0/", Policy.NOT_LINK_LOCAL).refused == (
        f"{UNREADABLE} (a host ending in a number that is no IPv4 address)"
    )


def test_a_name_of_254_characters_is_one_too_long():
    label = "a" * 63
    name = ".".join([label, label, label, "a" * 62])  # 254
    assert judge(f"http://{name}/", Policy.PUBLIC).refused == (
        f"{UNREADABLE} (a host that is no valid DNS name)"
    )


def test_everything_after_the_first_zone_separator_is_the_zone():
    assert judge("http://[fe80::1%25eth0%25x]/", Policy.NOT_LINK_LOCAL).refused == (
        "[fe80::1], a link-local address (where cloud metadata endpoints live), which clients "
        "of this registry are never sent to"
    )
