"""The handler's HTTP: registry request paths and Accept headers parsed, values answered."""

import json

import pytest

from answers import content_reply, redirect_reply, size_reply, tags_reply
from ociwrap.registry.results import BlobSize, Content, Redirect, TagPage
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


# -- the registry's values, said in HTTP -------------------------------------------------------

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize("head", [False, True], ids=["GET", "HEAD"])
def test_content_is_a_200_with_its_real_length(head):
    reply = content_reply(Content(b'{"a":1}', OCI_MANIFEST, DIGEST), head)
    assert (reply.status, reply.body) == (200, b"" if head else b'{"a":1}')
    assert reply.headers == {
        "Content-Type": OCI_MANIFEST,
        "Content-Length": "7",
        "Docker-Content-Digest": DIGEST,
    }
    assert (
        "Docker-Content-Digest"
        not in content_reply(Content(b"{}", "application/json"), head).headers
    )


def test_a_blob_is_a_307_with_nothing_in_it_and_a_head_its_size():
    reply = redirect_reply(Redirect("https://cdn.example/x", DIGEST))
    assert (reply.status, reply.body) == (307, b"")
    assert reply.headers == {
        "Location": "https://cdn.example/x",
        "Content-Length": "0",
        "Docker-Content-Digest": DIGEST,
    }
    reply = size_reply(BlobSize(DIGEST, 1234))
    assert (reply.status, reply.body) == (200, b"")
    assert reply.headers == {
        "Content-Type": "application/octet-stream",
        "Content-Length": "1234",
        "Docker-Content-Digest": DIGEST,
    }


@pytest.mark.parametrize(
    ("page", "link"),
    [
        (TagPage("a/b", ("1", "2")), None),
        (TagPage("a/b", ("1", "2"), "2", 2), '</v2/a/b/tags/list?n=2&last=2>; rel="next"'),
        (TagPage("a/b", ("1",), "1"), '</v2/a/b/tags/list?last=1>; rel="next"'),
        (
            TagPage("a/b", ("v 1\r\n",), "v 1\r\n", 1),
            '</v2/a/b/tags/list?n=1&last=v%201%0D%0A>; rel="next"',
        ),
    ],
    ids=["last page", "sized", "unsized", "quoted"],
)
def test_tags_link_to_their_next_page_here(page, link):
    reply = tags_reply(page)
    assert reply.status == 200
    assert json.loads(reply.body) == {"name": "a/b", "tags": list(page.tags)}
    assert reply.headers.get("Link") == link
    assert reply.headers["Content-Length"] == str(len(reply.body))
