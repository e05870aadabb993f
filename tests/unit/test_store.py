"""The S3 store: content-addressed keys, verified streaming copies, presigned URLs."""

from __future__ import annotations

import hashlib
import io
from urllib.parse import parse_qs, urlparse

import boto3
import pytest
from moto import mock_aws

from ociwrap.aws import make_s3_client
from ociwrap.errors import RegistryError
from ociwrap.store import PART_BYTES, Store


@pytest.fixture
def store(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket="unit-bucket")
        yield Store(make_s3_client(), "unit-bucket")


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def keys(store: Store) -> list[str]:
    listing = store.s3.list_objects_v2(Bucket=store.bucket)
    return sorted(obj["Key"] for obj in listing.get("Contents", []))


def test_manifest_round_trip_keeps_bytes_and_type(store):
    body = b'{"schemaVersion":2}'
    store.put_manifest(digest_of(body), body, "application/vnd.oci.image.manifest.v1+json")
    stored = store.get_manifest(digest_of(body))
    assert stored.body == body
    assert stored.media_type == "application/vnd.oci.image.manifest.v1+json"
    assert store.get_manifest(digest_of(b"other")) is None


def chunks(data: bytes, size: int = 64 * 1024):
    stream = io.BytesIO(data)
    while chunk := stream.read(size):
        yield chunk


@pytest.mark.parametrize("length", [1_100_000, PART_BYTES * 2 + 12345], ids=["small", "staged"])
def test_streamed_blob_becomes_visible_only_when_digest_matches(store, length):
    data = (b"layer-bytes" * (length // 11 + 1))[:length]
    size = store.copy_blob(digest_of(data), chunks(data))
    assert size == len(data)
    assert store.blob_size(digest_of(data)) == len(data)
    assert store.get_blob(digest_of(data)) == data
    assert keys(store) == [f"blobs/sha256/{digest_of(data)[7:]}"]


@pytest.mark.parametrize("length", [100, PART_BYTES + 1], ids=["small", "staged"])
def test_corrupt_stream_is_never_stored(store, length):
    claimed = digest_of(b"what the upstream promised")
    with pytest.raises(RegistryError) as caught:
        store.copy_blob(claimed, chunks(b"x" * length))
    assert caught.value.status == 502
    assert store.blob_size(claimed) is None
    assert keys(store) == []  # the staging object is gone too


def test_a_stream_that_fails_midway_leaves_no_blob_and_no_upload(store):
    def failing():
        yield b"a" * PART_BYTES
        yield b"b" * 1000
        raise RegistryError("UNAVAILABLE", "upstream broke off", status=502)

    with pytest.raises(RegistryError):
        store.copy_blob(digest_of(b"whatever"), failing())
    assert keys(store) == []
    uploads = store.s3.list_multipart_uploads(Bucket=store.bucket)
    assert uploads.get("Uploads", []) == []


def test_presigned_url_carries_ttl_and_key(store):
    digest = digest_of(b"x")
    store.put_blob(digest, b"x")
    url = urlparse(store.presign_blob(digest, 1234))
    query = parse_qs(url.query)
    assert query["X-Amz-Expires"] == ["1234"]
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert url.scheme == "https"
    assert url.netloc.startswith("unit-bucket.s3.")
    assert url.path.endswith(f"/blobs/sha256/{digest[7:]}")


def test_custom_endpoint_gives_path_style_urls(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = make_s3_client("http://127.0.0.1:9", region="us-east-1")
    url = client.generate_presigned_url(
        "get_object", Params={"Bucket": "b", "Key": "k"}, ExpiresIn=60
    )
    assert url.startswith("http://127.0.0.1:9/b/k?")


def test_no_s3_call_starts_after_the_deadline(no_network, monkeypatch):
    """S3 draws from the request's deadline like the upstreams: nothing is sent once it passed."""
    from ociwrap import deadline

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    store = Store(make_s3_client("http://127.0.0.1:9", region="us-east-1"), "b")
    with deadline.within(deadline.Deadline(0)), pytest.raises(RegistryError) as caught:
        store.get_manifest(digest_of(b"x"))
    assert caught.value.status == 504
    assert "artifact storage (S3)" in caught.value.message
    assert no_network == []
