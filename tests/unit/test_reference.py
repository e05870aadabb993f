"""Name resolution: registries, Docker Hub defaults, aliases, wrap paths, routes."""

import pytest

from ociwrap.errors import RegistryError
from ociwrap.reference import (
    parse_image_path,
    parse_route,
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


@pytest.mark.parametrize(
    ("path", "kind", "name", "ref"),
    [
        ("/v2/", "ping", "", ""),
        ("/v2", "ping", "", ""),
        ("/v2/a/b/manifests/latest", "manifests", "a/b", "latest"),
        ("/v2/a/manifests/x/manifests/1", "manifests", "a/manifests/x", "1"),
        ("/v2/a/blobs/sha256:" + "0" * 64, "blobs", "a", "sha256:" + "0" * 64),
        ("/v2/a/b/tags/list", "tags", "a/b", ""),
    ],
)
def test_parse_route(path, kind, name, ref):
    route = parse_route(path)
    assert route is not None
    assert (route.kind, route.name, route.ref) == (kind, name, ref)


def test_unknown_route():
    assert parse_route("/v2/a/blobs/uploads/123") is None


def test_wrap_spellings_share_one_identity():
    """`busybox/1` and `docker.io/library/busybox/1` are the same wrap (same blob records)."""
    from ociwrap.wrap import wrap_key

    short = parse_wrap_name("wrap/busybox/1/with/acme/tool/2", {})
    long = parse_wrap_name("wrap/docker.io/library/busybox/1/with/index.docker.io/acme/tool/2", {})
    assert wrap_key(short) == wrap_key(long)
    other = parse_wrap_name("wrap/busybox/2/with/acme/tool/2", {})
    assert wrap_key(other) != wrap_key(short)
