"""The S3 store: content-addressed keys, verified streaming copies, presigned URLs."""

from __future__ import annotations

import hashlib
import io
from urllib.parse import parse_qs, urlparse

import boto3
import pytest
from moto import mock_aws

from ociwrap.errors import RegistryError
from ociwrap.store import Store, make_s3_client


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


def test_streamed_blob_becomes_visible_only_when_digest_matches(store):
    data = b"layer-bytes" * 100_000
    size = store.copy_blob_stream(digest_of(data), io.BytesIO(data))
    assert size == len(data)
    assert store.blob_size(digest_of(data)) == len(data)
    assert keys(store) == [f"blobs/sha256/{digest_of(data)[7:]}"]


def test_corrupt_stream_is_never_stored(store):
    claimed = digest_of(b"what the upstream promised")
    with pytest.raises(RegistryError) as caught:
        store.copy_blob_stream(claimed, io.BytesIO(b"something else"))
    assert caught.value.status == 502
    assert store.blob_size(claimed) is None
    assert keys(store) == []  # the staging object is gone too


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
