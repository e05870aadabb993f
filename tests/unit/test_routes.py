"""The handler's HTTP parsing: registry request paths and Accept headers."""

import pytest

from routes import parse_route, split_accept

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
SERVABLE_TYPES = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
]


@pytest.mark.parametrize(
    ("path", "kind", "name", "ref"),
    [
        ("/v2/", "ping", "", ""),
        ("/v2", "ping", "", ""),
        ("/v2/a/b/manifests/latest", "manifests", "a/b", "latest"),
        ("/v2/a/manifests/x/manifests/1", "manifests", "a/manifests/x", "1"),
        ("/v2/a/blobs/sha256:" + "0" * 64, "blobs", "a", "sha256:" + "0" * 64),
        ("/v2/a/b/tags/list", "tags", "a/b", ""),
        ("/v2/_catalog", "catalog", "", ""),
    ],
)
def test_parse_route(path, kind, name, ref):
    route = parse_route(path)
    assert route is not None
    assert (route.kind, route.name, route.ref) == (kind, name, ref)


@pytest.mark.parametrize(
    "path", ["/v2/a/blobs/uploads/123", "/v2/a/manifests/", "/v3/", "/v2/a/tags/list/x"]
)
def test_unknown_route(path):
    assert parse_route(path) is None


def test_accept_is_split_without_parameters():
    joined = f"{OCI_MANIFEST}, {DOCKER_MANIFEST};q=0.9,{OCI_MANIFEST}"
    assert split_accept([joined]) == [OCI_MANIFEST, DOCKER_MANIFEST]


@pytest.mark.parametrize("value", ["", "*/*", "application/*;q=0.1"])
def test_no_or_wildcard_accept_means_every_manifest_type(value):
    assert set(split_accept([value])) == set(SERVABLE_TYPES)


def test_wildcard_keeps_what_else_was_named():
    assert split_accept(["text/plain, */*"])[:1] == ["text/plain"]
