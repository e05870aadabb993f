"""Name resolution: registries, Docker Hub defaults, aliases, wrap paths, references."""

import pytest

from ociwrap.errors import RegistryError
from ociwrap.records import wrap_key
from ociwrap.reference import (
    check_reference,
    parse_image_path,
    parse_wrap_name,
    resolve_repository,
)

ALIASES = {"local": "http://127.0.0.1:5001"}


@pytest.mark.parametrize(
    ("name", "registry", "path", "trusted"),
    [
        ("busybox", "docker.io", "library/busybox", False),
        ("acme/tool", "docker.io", "acme/tool", False),
        ("docker.io/busybox", "docker.io", "library/busybox", False),
        ("index.docker.io/acme/tool", "docker.io", "acme/tool", False),
        ("ghcr.io/acme/tools/wrapper", "ghcr.io", "acme/tools/wrapper", False),
        ("localhost/x", "localhost", "x", False),
        ("local/test/img", "local", "test/img", True),
    ],
)
def test_resolve_repository(name, registry, path, trusted):
    repo = resolve_repository(name, ALIASES)
    assert (repo.registry.name, repo.path, repo.registry.trusted) == (registry, path, trusted)


def test_registry_urls():
    assert resolve_repository("busybox", {}).registry.url == "https://registry-1.docker.io"
    assert resolve_repository("quay.io/a/b", {}).registry.url == "https://quay.io"
    assert resolve_repository("local/a", ALIASES).registry.url == "http://127.0.0.1:5001"


@pytest.mark.parametrize("name", ["Busybox", "a//b", "a/-b", "ghcr.io/", "x" * 256, "a/b_"])
def test_invalid_names(name):
    with pytest.raises(RegistryError) as caught:
        resolve_repository(name, {})
    assert caught.value.code == "NAME_INVALID"
    assert caught.value.status == 400


def test_image_path_with_tag_and_pin():
    ref = parse_image_path("ubuntu/22.04", {})
    assert str(ref) == "docker.io/library/ubuntu:22.04"
    pinned = parse_image_path("ghcr.io/acme/tool/sha256-" + "a" * 64, {})
    assert pinned.digest == "sha256:" + "a" * 64
    assert pinned.reference == pinned.digest


def test_wrap_name_splits_at_first_with():
    wrap = parse_wrap_name("wrap/ubuntu/22.04/with/ghcr.io/acme/tools/wrapper/v1", {})
    assert wrap is not None
    assert str(wrap.base) == "docker.io/library/ubuntu:22.04"
    assert str(wrap.wrapper) == "ghcr.io/acme/tools/wrapper:v1"
    assert parse_wrap_name("library/busybox", {}) is None


@pytest.mark.parametrize("name", ["wrap/ubuntu/22.04", "wrap/ubuntu/with/x/1", "wrap/u/1/with/x"])
def test_bad_wrap_names(name):
    with pytest.raises(RegistryError) as caught:
        parse_wrap_name(name, {})
    assert caught.value.code == "NAME_INVALID"


def test_wrap_spellings_share_one_identity():
    """`busybox/1` and `docker.io/library/busybox/1` are the same wrap (same blob records)."""
    short = parse_wrap_name("wrap/busybox/1/with/acme/tool/2", {})
    long = parse_wrap_name("wrap/docker.io/library/busybox/1/with/index.docker.io/acme/tool/2", {})
    assert wrap_key(short) == wrap_key(long)
    other = parse_wrap_name("wrap/busybox/2/with/acme/tool/2", {})
    assert wrap_key(other) != wrap_key(short)


@pytest.mark.parametrize("ref", ["latest", "1.36", "v1_2-3.x", "A" * 128])
def test_tags_are_references(ref):
    assert check_reference(ref) == ref


@pytest.mark.parametrize(
    ("ref", "code", "status"),
    [
        ("-bad-tag", "MANIFEST_UNKNOWN", 404),
        (".hidden", "MANIFEST_UNKNOWN", 404),
        ("a" * 129, "MANIFEST_UNKNOWN", 404),
        ("tag with space", "MANIFEST_UNKNOWN", 404),
        ("bad:ref", "DIGEST_INVALID", 400),
        ("sha256:" + "0" * 63, "DIGEST_INVALID", 400),
        ("sha256:" + "A" * 64, "DIGEST_INVALID", 400),
    ],
)
def test_references_that_are_neither_tag_nor_digest(ref, code, status):
    """A reference that cannot be a tag names no manifest (404, as the conformance suite
    expects); one written as a digest but malformed stays a 400."""
    with pytest.raises(RegistryError) as caught:
        check_reference(ref)
    assert (caught.value.code, caught.value.status) == (code, status)


def test_wrap_image_tags_must_be_tags():
    with pytest.raises(RegistryError) as caught:
        parse_image_path("ubuntu/-x", {})
    assert caught.value.code == "NAME_INVALID"
