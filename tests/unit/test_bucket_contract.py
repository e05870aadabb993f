"""The in-memory bucket answers as the S3 store does: one set of tests, run on both.

Unit tests above the bucket run on `MemoryBucket`; these keep it honest against `Store`
on moto's S3 (the only place besides the S3 adapter's own tests that starts moto).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from botocore.exceptions import ClientError

from doubles.bucket import MemoryBucket
from ociwrap.bucket.interface import Bucket
from ociwrap.bucket.store import Store

PART = 5 * 1024 * 1024  # S3's smallest part but the last
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture(params=["s3", "memory"])
def bucket(request) -> Iterator[Bucket]:
    if request.param == "memory":
        yield MemoryBucket()
        return
    client = request.getfixturevalue("s3")
    name = f"contract-{len(client.list_buckets()['Buckets'])}"
    client.create_bucket(Bucket=name)
    yield Store(client, name)


def test_manifests_keep_their_bytes_and_media_type(bucket):
    body = b'{"schemaVersion":2}'
    assert bucket.get_manifest(digest_of(body)) is None
    bucket.put_manifest(digest_of(body), body, OCI_MANIFEST)
    stored = bucket.get_manifest(digest_of(body))
    assert (stored.body, stored.media_type) == (body, OCI_MANIFEST)


def test_blobs_have_a_size_a_write_time_and_their_bytes(bucket):
    data = b"config bytes"
    assert (bucket.blob_size(digest_of(data)), bucket.blob_written(digest_of(data))) == (None, None)
    assert bucket.get_blob(digest_of(data)) is None
    bucket.put_blob(digest_of(data), data)
    assert bucket.blob_size(digest_of(data)) == len(data)
    assert isinstance(bucket.blob_written(digest_of(data)), float)
    assert bucket.get_blob(digest_of(data)) == data


def test_records_round_trip_as_json(bucket):
    assert bucket.get_json("tags/x") is None
    bucket.put_json("tags/x", {"b": [1, "two"], "a": None})
    assert bucket.get_json("tags/x") == {"a": None, "b": [1, "two"]}


def test_staged_parts_are_listed_read_composed_and_deleted(bucket):
    first, last = b"a" * PART, b"tail"
    bucket.put_part("uploads/s/d/part-1", first)
    bucket.put_part("uploads/s/d/part-2", last)
    bucket.put_part("uploads/s/other", b"x")
    listed = bucket.list_parts("uploads/s/d/")
    assert sorted((item.key, item.size) for item in listed) == [
        ("uploads/s/d/part-1", PART),
        ("uploads/s/d/part-2", 4),
    ]
    assert b"".join(bucket.read_part("uploads/s/d/part-2")) == last
    digest = digest_of(first + last)
    bucket.compose_blob(digest, ["uploads/s/d/part-1", "uploads/s/d/part-2"])
    assert bucket.get_blob(digest) == first + last
    bucket.delete_keys(["uploads/s/d/part-1", "uploads/s/d/part-2", "uploads/s/d/gone"])
    assert bucket.list_parts("uploads/s/d/") == []
    assert [item.key for item in bucket.list_parts("uploads/s/")] == ["uploads/s/other"]


def test_a_composition_with_a_part_gone_fails_and_leaves_nothing(bucket):
    bucket.put_part("uploads/t/part-1", b"a" * PART)
    digest = digest_of(b"whatever")
    with pytest.raises(ClientError):
        bucket.compose_blob(digest, ["uploads/t/part-1", "uploads/t/missing"])
    assert bucket.blob_size(digest) is None


def test_a_presigned_url_names_the_blob_and_its_lifetime(bucket):
    digest = digest_of(b"x")
    bucket.put_blob(digest, b"x")
    url = urlsplit(bucket.presign_blob(digest, 1234))
    assert url.scheme == "https"
    assert url.path.endswith(f"/blobs/sha256/{digest[7:]}")
    assert parse_qs(url.query)["X-Amz-Expires"] == ["1234"]
