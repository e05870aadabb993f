"""Digests: sha256 as this registry serves it, the OCI grammar for upstream descriptors,
path-safe pins, and hashing streams."""

import pytest

from ociwrap.names.digest import (
    Hasher,
    check_digest,
    digest_matches,
    digest_problem,
    encoded,
    from_pin,
    is_any_digest,
    is_digest,
    sha256_of,
)
from ociwrap.runtime.errors import RegistryError

EMPTY = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
ABC = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
HEX = "0123456789abcdef" * 4


def test_sha256_of_known_inputs():
    assert sha256_of(b"") == EMPTY
    assert sha256_of(b"abc") == ABC


@pytest.mark.parametrize("value", ["sha256:" + HEX, EMPTY, "sha256:" + "0" * 64])
def test_sha256_digests(value):
    assert is_digest(value)
    assert check_digest(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "sha256:" + HEX[:63],
        "sha256:" + HEX + "0",
        "sha256:" + HEX.upper(),
        "sha256:" + "g" * 64,
        "sha512:" + HEX + HEX,
        "sha256-" + HEX,
        "Sha256:" + HEX,
        " sha256:" + HEX,
        "sha256:" + HEX + "\n",
        "sha256:",
        "",
    ],
)
def test_not_sha256_digests(value):
    assert not is_digest(value)
    with pytest.raises(RegistryError) as caught:
        check_digest(value)
    error = caught.value
    assert (error.code, error.status) == ("DIGEST_INVALID", 400)
    assert error.message == (
        f"invalid digest {value!r}: expected sha256:<64 lowercase hex characters>"
    )
    assert error.detail == {"digest": value}


@pytest.mark.parametrize(
    "value",
    [
        "sha256:" + HEX,
        "sha512:" + HEX + HEX,
        "multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8",
        "sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564",
        "a.b:x",
        "a_b:x",
        "a-b:x",
        "a.1:x",
        "a:aZ9=_-",
        "1:a",
    ],
)
def test_digests_of_any_algorithm(value):
    assert is_any_digest(value)


@pytest.mark.parametrize(
    "value",
    [
        "sha256",
        ":abc",
        "sha256:",
        "Sha256:abc",
        "a+:x",
        "+a:x",
        "a..b:x",
        "a:b c",
        "a:x/y",
        "a:x:y",
        "a:x+y",
        "",
    ],
)
def test_not_digests_of_any_algorithm(value):
    assert not is_any_digest(value)


def test_encoded_is_everything_after_the_algorithm():
    assert encoded("sha256:" + HEX) == HEX
    assert encoded("a:b:c") == "b:c"


def test_pins():
    assert from_pin("sha256-" + HEX) == "sha256:" + HEX


@pytest.mark.parametrize(
    "component",
    [
        "sha256-" + HEX[:63],
        "sha256-" + HEX + "0",
        "sha256-" + HEX.upper(),
        "sha256:" + HEX,
        "sha512-" + HEX,
        "sha256_" + HEX,
        "xsha256-" + HEX,
        "latest",
    ],
)
def test_not_pins(component):
    assert from_pin(component) is None


def test_hasher_counts_and_hashes_what_passes():
    hasher = Hasher()
    assert (hasher.size, hasher.digest) == (0, EMPTY)
    hasher.update(b"ab")
    hasher.update(b"c")
    assert (hasher.size, hasher.digest) == (3, ABC)


def test_a_hasher_copy_goes_on_apart_from_the_original():
    hasher = Hasher()
    hasher.update(b"ab")
    twin = hasher.copy()
    twin.update(b"c")
    assert (twin.size, twin.digest) == (3, ABC)
    hasher.update(b"c")
    assert (hasher.size, hasher.digest) == (3, ABC)  # the original was left where it was


def test_data_matches_its_sha256_and_sha512_digest():
    import hashlib

    sha512 = "sha512:" + hashlib.sha512(b"abc").hexdigest()
    assert digest_matches(b"abc", ABC)
    assert digest_matches(b"abc", sha512)
    assert not digest_matches(b"abd", ABC)
    assert not digest_matches(b"abc", "md5:900150983cd24fb0d6963f7d28e17f72")
    assert not digest_matches(b"abc", "sha256")
    # the hex after the first colon, all of it
    assert not digest_matches(b"abc", ABC + ":x")


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (ABC, None),
        ("sha512:" + "a" * 128, None),
        ("md5:" + "a" * 32, "not a digest of a supported algorithm (sha256, sha512)"),
        ("sha256" + "a" * 64, "not a digest of a supported algorithm (sha256, sha512)"),
        ("sha256:" + "A" * 64, "not a valid sha256 digest (64 lowercase hex characters)"),
        ("sha256:" + "a" * 63, "not a valid sha256 digest (64 lowercase hex characters)"),
        ("sha256:" + "a" * 64 + ":", "not a valid sha256 digest (64 lowercase hex characters)"),
        ("sha512:" + "a" * 64, "not a valid sha512 digest (128 lowercase hex characters)"),
    ],
)
def test_digest_problems_are_named(value, problem):
    assert digest_problem(value) == problem
