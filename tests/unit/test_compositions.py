"""Compositions as a client pulls them: multi-platform bases and wrappers composed platform
by platform into an index, the names and digests they were made of in their annotations,
composed once and read back (from memory, then from their record), and made again when
their record or documents are gone. The handler over the in-memory bucket and upstream."""

from __future__ import annotations

import json

import app
from doubles.bucket import MemoryBucket
from doubles.pulls import (
    MULTI,
    OCI_INDEX,
    OCI_MANIFEST,
    WRAP,
    manifest,
    push_image,
    push_index,
)
from doubles.upstream import digest_of
from ociwrap.bucket.store import blob_key, manifest_key

BASE_NAME = "org.opencontainers.image.base.name"
BASE_DIGEST = "org.opencontainers.image.base.digest"
WRAPPER_NAME = "org.goci.wrapper.name"
WRAPPER_DIGEST = "org.goci.wrapper.digest"


def platforms_of(index: dict) -> list[str]:
    return [entry["platform"]["architecture"] for entry in index["manifests"]]


def test_a_multi_platform_wrap_is_an_index_of_each_platform_composed(call, upstream):
    base = push_index(upstream, "team/multi", ["amd64", "arm64"])
    tools = push_index(upstream, "team/tools", ["arm64", "amd64"], label="/w/run")
    digest, body = manifest(call, MULTI, "latest")
    index = json.loads(body)
    assert index["mediaType"] == OCI_INDEX and platforms_of(index) == ["amd64", "arm64"]
    assert index["annotations"] == {
        BASE_NAME: "stub/team/multi:1",
        BASE_DIGEST: base,
        WRAPPER_NAME: "stub/team/tools:1",
        WRAPPER_DIGEST: tools,
    }
    base_entries = json.loads(upstream.manifests["team/multi", "1"][0])["manifests"]
    tool_entries = json.loads(upstream.manifests["team/tools", "1"][0])["manifests"]
    for entry, base_entry, tool_entry in zip(
        index["manifests"], base_entries, reversed(tool_entries), strict=True
    ):
        assert entry["mediaType"] == OCI_MANIFEST
        got, composed = manifest(call, MULTI, entry["digest"])
        assert got == entry["digest"] and entry["size"] == len(composed)
        document = json.loads(composed)
        arch = entry["platform"]["architecture"]
        layers = [layer["digest"] for layer in document["layers"]]
        assert layers == [
            digest_of(f"layer of team/multi for {arch}".encode()),
            digest_of(f"layer of team/tools for {arch}".encode()),
        ]
        assert document["annotations"][BASE_DIGEST] == base_entry["digest"]
        assert document["annotations"][WRAPPER_DIGEST] == tool_entry["digest"]
        config = document["config"]["digest"]
        status, _, data = call(
            "GET", f"/v2/{MULTI}/blobs/{config}", [("Sec-Fetch-Site", "same-origin")]
        )
        assert status == 200 and json.loads(data)["architecture"] == arch
    assert manifest(call, MULTI, digest)[1] == body


def test_a_single_platform_base_takes_its_platform_from_the_wrapper_index(call, upstream):
    push_image(upstream, "team/multi", "arm64")
    upstream.manifests["team/multi", "1"] = upstream.manifests[
        "team/multi", push_image(upstream, "team/multi", "arm64")["digest"]
    ]
    push_index(upstream, "team/tools", ["amd64", "arm64"], label="/w/run")
    _, body = manifest(call, MULTI, "latest")
    document = json.loads(body)
    assert document["mediaType"] == OCI_MANIFEST
    assert [layer["digest"] for layer in document["layers"]] == [
        digest_of(b"layer of team/multi for arm64"),
        digest_of(b"layer of team/tools for arm64"),
    ]


def logged(caplog) -> dict:
    """The request log line of the last request."""
    return [r.__dict__ for r in caplog.records if r.getMessage() == "request"][-1]


def test_a_composition_is_made_once_then_read_from_memory(call, bucket, caplog):
    digest, body = manifest(call, WRAP, "latest")
    assert logged(caplog)["compositions"] == 1
    bucket.calls.clear()
    assert manifest(call, WRAP, "latest") == (digest, body)
    assert logged(caplog)["compositions"] == 0
    assert [method for method, _ in bucket.calls] == []


def test_a_new_instance_reads_the_composition_from_its_record_alone(call, bucket):
    digest, body = manifest(call, WRAP, "latest")
    app.reset_service()
    bucket.calls.clear()
    assert manifest(call, WRAP, "latest") == (digest, body)
    assert bucket.called("get_manifest") == []
    assert len(bucket.called("get_json")) == 3  # the base's and wrapper's tags, the record


def composition_record(bucket: MemoryBucket) -> str:
    [key] = bucket.listing("tags/compositions/")
    return key


def test_a_record_whose_manifest_does_not_match_its_digest_is_read_from_the_bucket(call, bucket):
    digest, body = manifest(call, WRAP, "latest")
    key = composition_record(bucket)
    record = json.loads(bucket.held(key))
    assert record == {"digest": digest, "mediaType": OCI_MANIFEST, "manifest": body.decode()}
    for changed in (
        {"manifest": body.decode() + " "},
        {"mediaType": "text/plain"},
        {"manifest": None},
    ):
        bucket.put_json(key, {**record, **changed})
        app.reset_service()
        assert manifest(call, WRAP, "latest") == (digest, body)
        assert bucket.called("get_manifest")[-1] == manifest_key(digest)


def test_a_record_whose_manifest_is_gone_is_composed_again(call, bucket, caplog):
    digest, body = manifest(call, WRAP, "latest")
    key = composition_record(bucket)
    record = json.loads(bucket.held(key))
    bucket.put_json(key, {"digest": digest})
    bucket.expire(manifest_key(digest))
    app.reset_service()
    caplog.clear()
    assert manifest(call, WRAP, "latest") == (digest, body)
    assert logged(caplog)["compositions"] == 1
    assert json.loads(bucket.held(key)) == record
    assert bucket.held(manifest_key(digest)) == body


def test_a_new_wrapper_digest_is_a_new_composition(call, upstream, bucket):
    first, _ = manifest(call, WRAP, "latest")
    push_image(upstream, "team/wrapper", "amd64", label="/w/other")
    upstream.manifests["team/wrapper", "1"] = upstream.manifests[
        "team/wrapper", push_image(upstream, "team/wrapper", "amd64", label="/w/other")["digest"]
    ]
    bucket.expire("tags/upstream/")
    app.reset_service()
    second, body = manifest(call, WRAP, "latest")
    assert second != first
    assert len(bucket.listing("tags/compositions/")) == 2
    assert json.loads(body)["annotations"][WRAPPER_DIGEST] == digest_of(
        upstream.manifests["team/wrapper", "1"][0]
    )


def test_every_document_is_stored_before_the_composition_record(call, bucket):
    digest, body = manifest(call, WRAP, "latest")
    config = json.loads(body)["config"]["digest"]
    writes = [key for method, key in bucket.calls if method.startswith("put")]
    record = writes.index(composition_record(bucket))
    assert writes.index(manifest_key(digest)) < record
    assert writes.index(blob_key(config)) < record
    sources = [n for n, key in enumerate(writes) if key.startswith("tags/sources/")]
    assert sources and max(sources) < record
