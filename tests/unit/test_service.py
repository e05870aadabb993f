"""Every request kind reaches the right answer for proxied and wrapped names alike, and
every name and reference is checked before anything is asked of an upstream. The handler
over the in-memory bucket and upstream (aliased `stub`)."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives import serialization

from doubles.pulls import WRAP, error_of, manifest, signing_with_a_key_file
from doubles.upstream import MemoryUpstream
from ociwrap.bucket.store import blob_key

BAD_DIGEST = "sha256:" + "AB" * 32
UNKNOWN = "sha256:" + "ab" * 32


def config_of(upstream: MemoryUpstream, path: str) -> tuple[str, bytes]:
    document = json.loads(upstream.manifests[path, "1"][0])
    digest = document["config"]["digest"]
    return digest, upstream.blobs[path, digest]


@pytest.mark.parametrize("name", ["stub/team/base", WRAP])
@pytest.mark.parametrize("kind", ["blobs", "referrers"])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_digest_that_is_no_digest_is_refused_before_any_upstream_is_asked(
    call, upstream, name, kind, method
):
    status, _, body = call(method, f"/v2/{name}/{kind}/{BAD_DIGEST}")
    assert status == 400
    if method == "GET":
        assert error_of(body)["code"] == "DIGEST_INVALID"
    assert upstream.calls == []


@pytest.mark.parametrize("name", ["stub/team/base", WRAP])
def test_a_reference_that_is_no_tag_or_digest_is_refused_before_any_upstream_is_asked(
    call, upstream, name
):
    status, _, body = call("GET", f"/v2/{name}/manifests/-tag")
    error = error_of(body)
    assert (status, error["code"]) == (404, "MANIFEST_UNKNOWN")
    assert error["message"] == "manifest reference '-tag' is neither a valid tag nor a digest"
    status, _, body = call("GET", f"/v2/{name}/manifests/{BAD_DIGEST}")
    assert (status, error_of(body)["code"]) == (400, "DIGEST_INVALID")
    assert upstream.calls == []


def test_a_same_origin_read_of_a_digest_that_is_no_digest_is_refused(call, upstream):
    status, _, _ = call(
        "GET", f"/v2/{WRAP}/blobs/{BAD_DIGEST}", [("Sec-Fetch-Site", "same-origin")]
    )
    assert status == 400 and upstream.calls == []


def test_a_proxied_blob_head_is_its_size_from_the_upstream(call, upstream):
    digest, data = config_of(upstream, "team/base")
    status, headers, body = call("HEAD", f"/v2/stub/team/base/blobs/{digest}")
    assert (status, body) == (200, b"")
    assert headers["content-length"] == str(len(data))
    assert headers["docker-content-digest"] == digest
    assert upstream.count("blob") == 0


def test_a_proxied_blob_is_a_redirect_even_for_a_same_origin_read(call, upstream, bucket):
    digest, data = config_of(upstream, "team/base")
    status, headers, _ = call(
        "GET", f"/v2/stub/team/base/blobs/{digest}", [("Sec-Fetch-Site", "same-origin")]
    )
    assert status == 307 and f"/blobs/sha256/{digest[7:]}" in headers["location"]
    assert bucket.held(blob_key(digest)) == data


def test_a_wrapped_names_tags_are_its_own_and_a_proxied_names_the_upstreams(call, upstream):
    upstream.tag_lists["team/base"] = ["1", "2"]
    status, _, body = call("GET", "/v2/stub/team/base/tags/list?n=1")
    assert (status, json.loads(body)) == (200, {"name": "stub/team/base", "tags": ["1"]})
    status, _, body = call("GET", f"/v2/{WRAP}/tags/list")
    assert (status, json.loads(body)) == (200, {"name": WRAP, "tags": ["latest"]})
    assert [c.operation for c in upstream.calls] == ["tags"]


def test_a_wrapped_names_referrers_are_its_own(call, upstream):
    digest, _ = manifest(call, WRAP, "latest")
    upstream.referrer_indexes["team/base", digest] = {"manifests": [{"digest": UNKNOWN}]}
    status, _, body = call("GET", f"/v2/{WRAP}/referrers/{digest}")
    assert status == 200 and json.loads(body)["manifests"] == []
    assert upstream.count("referrers") == 0


def test_a_proxied_manifest_and_a_wrapped_one_by_digest(call, upstream):
    digest, body = manifest(call, "stub/team/base", "1")
    assert body == upstream.manifests["team/base", "1"][0]
    wrapped, _ = manifest(call, WRAP, "latest")
    assert manifest(call, WRAP, wrapped)[0] == wrapped
    status, _, answer = call("GET", f"/v2/{WRAP}/manifests/{digest}")
    assert (status, error_of(answer)["code"]) == (404, "MANIFEST_UNKNOWN")


def test_without_signing_there_is_no_signing_key(call):
    status, _, body = call("GET", "/v1alpha/signing-key")
    error = error_of(body)
    assert (status, error["code"]) == (404, "NAME_UNKNOWN")
    assert error["message"] == (
        "signing is not configured: set SIGNING_KMS_KEY_ID or SIGNING_KEY_FILE"
    )


def test_with_signing_the_signing_key_is_its_public_key(call, monkeypatch, tmp_path):
    key = signing_with_a_key_file(monkeypatch, tmp_path)
    status, _, body = call("GET", "/v1alpha/signing-key")
    assert status == 200
    assert body == key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
