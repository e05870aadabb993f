"""Composed images are valid images: every descriptor digest an upstream hands us is a valid
digest of its algorithm, else `400 MANIFEST_INVALID` naming it, and nothing is stored.

A hostile upstream (in memory, aliased `stub`) serves base and wrapper images,
single manifests and indexes, whose descriptors carry digests the OCI grammar accepts but
no client can use: upper-case hex, too short, a non-hex character, an unknown algorithm.
The handler runs in process over the in-memory bucket, which is inspected after.
"""

from __future__ import annotations

import json

import pytest

import app
from doubles.bucket import MemoryBucket
from doubles.handler import handler_on_memory
from doubles.upstream import MemoryUpstream
from ociwrap.names.digest import digest_problem
from ociwrap_local.events import LocalContext, build_event
from scripted_upstream import digest_of, one_layer_image

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
GOOD = digest_of(b"a layer")
BAD_DIGESTS = {
    "upper-case hex": "sha256:" + GOOD.split(":")[1].upper(),
    "short": "sha256:abc123",
    "non-hex character": "sha256:" + "g" + GOOD.split(":")[1][1:],
    "unknown algorithm": "md5:" + "0" * 32,
    "sha512 of sha256's length": "sha512:" + GOOD.split(":")[1],
}
WRAP = "/v2/wrap/stub/team/base/1/with/stub/team/wrapper/1/manifests/latest"
NAMES = {"base": "team/base", "wrapper": "team/wrapper"}


@pytest.fixture
def upstream() -> MemoryUpstream:
    return MemoryUpstream()


@pytest.fixture
def bucket() -> MemoryBucket:
    return MemoryBucket()


@pytest.fixture
def call(monkeypatch, upstream, bucket, on_doubles, no_network):
    handler_on_memory(monkeypatch, upstream)
    on_doubles(bucket, upstream)

    def call(path: str) -> dict:
        event = build_event("GET", path, [("Accept", f"{OCI_MANIFEST},{OCI_INDEX}")], b"")
        return app.lambda_handler(event, LocalContext(aws_request_id="unit"))

    return call


def other(side: str) -> str:
    return "wrapper" if side == "base" else "base"


def assert_kept_only(bucket: MemoryBucket, *allowed: str) -> None:
    """Every key in the bucket is about one of `allowed` (a digest's hex, a repository
    path): what the upstreams served that was valid, and nothing composed from it."""
    keys = bucket.listing()
    assert all(any(mark in key for mark in allowed) for key in keys), keys


def marks_of(side: str) -> list[str]:
    """What keys about the valid `side` image hold: its repository path, and the hex of
    its manifest and blobs (read at the same time as the hostile image)."""
    paths = image_paths(side)
    return [f"/{NAMES[side]}/", *(digest_of(data).split(":")[1] for data in paths.values())]


def kept_only_the_other_side(bucket: MemoryBucket, side: str) -> None:
    """The other image (valid) may be kept; nothing of `side`'s and nothing composed is."""
    assert_kept_only(bucket, *marks_of(other(side)))


def image_paths(side: str) -> dict[str, bytes]:
    """The stub's one-layer image of `side`, by path (manifest by tag and digest, blobs)."""
    return one_layer_image(NAMES[side], "/w/run" if side == "wrapper" else None)


def with_digest(side: str, field: str, digest: str) -> dict[str, bytes]:
    """The `side` image with its layer's (or config's) digest replaced, served by tag."""
    paths = image_paths(side)
    manifest = json.loads(paths[f"/v2/{NAMES[side]}/manifests/1"])
    descriptor = manifest["layers"][0] if field == "layer" else manifest["config"]
    descriptor["digest"] = digest
    body = json.dumps(manifest).encode()
    return {
        **{path: data for path, data in paths.items() if "/manifests/" not in path},
        f"/v2/{NAMES[side]}/manifests/1": body,
        f"/v2/{NAMES[side]}/manifests/{digest_of(body)}": body,
    }


def as_index(side: str, paths: dict[str, bytes], entry_digest: str | None = None) -> dict:
    """`paths` (an image) listed in an index served by tag; its entry's digest replaced
    by `entry_digest` when given."""
    name = NAMES[side]
    manifest = paths[f"/v2/{name}/manifests/1"]
    entry = {
        "mediaType": OCI_MANIFEST,
        "digest": entry_digest or digest_of(manifest),
        "size": len(manifest),
        "platform": {"os": "linux", "architecture": "amd64"},
    }
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]})
    body = index.encode()
    return {
        **paths,
        f"/v2/{name}/manifests/1": body,
        f"/v2/{name}/manifests/{digest_of(body)}": body,
    }


def refusal(result: dict) -> dict:
    assert result["statusCode"] == 400, result
    (error,) = json.loads(result["body"])["errors"]
    assert error["code"] == "MANIFEST_INVALID"
    return error


@pytest.mark.parametrize("side", ["base", "wrapper"])
@pytest.mark.parametrize("bad", BAD_DIGESTS.values(), ids=BAD_DIGESTS)
def test_a_bad_layer_digest_is_refused_and_nothing_stored(call, upstream, bucket, side, bad):
    hostile = with_digest(side, "layer", bad)
    upstream.serve_paths(hostile)
    error = refusal(call(WRAP))
    manifest = digest_of(hostile[f"/v2/{NAMES[side]}/manifests/1"])
    assert error["message"] == (
        f"{side} image stub/{NAMES[side]}:1: layer 1 of stub/{NAMES[side]}@{manifest} "
        f"has digest {bad!r}: {digest_problem(bad)}"
    )
    assert error["detail"]["descriptor"] == "layer 1" and error["detail"]["image"] == side
    kept_only_the_other_side(bucket, side)


@pytest.mark.parametrize("side", ["base", "wrapper"])
def test_a_bad_config_digest_is_refused_and_nothing_stored(call, upstream, bucket, side):
    upstream.serve_paths(with_digest(side, "config", BAD_DIGESTS["upper-case hex"]))
    error = refusal(call(WRAP))
    assert f"{side} image stub/{NAMES[side]}:1: config of stub/{NAMES[side]}@" in error["message"]
    assert "not a valid sha256 digest (64 lowercase hex characters)" in error["message"]
    kept_only_the_other_side(bucket, side)


@pytest.mark.parametrize("side", ["base", "wrapper"])
@pytest.mark.parametrize("bad", ["upper-case hex", "short", "unknown algorithm"])
def test_a_bad_index_entry_digest_is_refused_and_nothing_stored(call, upstream, bucket, side, bad):
    upstream.serve_paths(as_index(side, image_paths(side), BAD_DIGESTS[bad]))
    error = refusal(call(WRAP))
    assert f"{side} image stub/{NAMES[side]}:1: index entry 1 of " in error["message"]
    assert f"has digest {BAD_DIGESTS[bad]!r}" in error["message"]
    kept_only_the_other_side(bucket, side)


@pytest.mark.parametrize("side", ["base", "wrapper"])
def test_a_bad_layer_in_an_index_manifest_is_refused_before_composing(call, upstream, bucket, side):
    hostile = as_index(side, with_digest(side, "layer", BAD_DIGESTS["non-hex character"]))
    upstream.serve_paths(hostile)
    error = refusal(call(WRAP))
    assert f"{side} image stub/{NAMES[side]}:1: layer 1 of stub/{NAMES[side]}@" in error["message"]
    # The index itself is valid and was kept as the upstream's (with its tag record), and
    # so was the other image; nothing else: not the manifest with the bad layer, nothing
    # composed (no config, manifest or record of a composition).
    index = digest_of(hostile[f"/v2/{NAMES[side]}/manifests/1"]).split(":")[1]
    assert_kept_only(bucket, index, f"/{NAMES[side]}/1.json", *marks_of(other(side)))


def test_a_proxied_manifest_with_a_bad_digest_is_refused_and_not_kept(call, upstream, bucket):
    upstream.serve_paths(with_digest("base", "layer", BAD_DIGESTS["short"]))
    error = refusal(call("/v2/stub/team/base/manifests/1"))
    assert error["message"].startswith("layer 1 of stub/team/base@sha256:")
    assert bucket.listing() == []


def test_valid_sha512_layer_digests_compose(call, upstream, bucket):
    sha512 = "sha512:" + "ab" * 64
    upstream.serve_paths(with_digest("base", "layer", sha512))
    result = call(WRAP)
    assert result["statusCode"] == 200, result
    assert json.loads(result["body"])["layers"][0]["digest"] == sha512


def test_an_index_entry_by_sha512_must_name_the_bytes_served(call, upstream, bucket):
    paths = image_paths("base")
    wrong = "sha512:" + "cd" * 64  # well formed, but not the digest of what is served
    hostile = as_index("base", paths, wrong)
    hostile[f"/v2/team/base/manifests/{wrong}"] = paths["/v2/team/base/manifests/1"]
    upstream.serve_paths(hostile)
    result = call(WRAP)
    assert result["statusCode"] == 502, result
    message = json.loads(result["body"])["errors"][0]["message"]
    assert f"sent a manifest for {wrong} whose bytes do not hash to that digest" in message
    assert not any("cdcdcdcd" in key for key in bucket.listing())
