"""The S3 store: content-addressed keys, blobs composed from staged parts, presigned URLs."""

from __future__ import annotations

import hashlib
from urllib.parse import parse_qs, urlparse

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from ociwrap.bucket.store import Store
from ociwrap.runtime.aws import make_s3_client
from ociwrap.runtime.errors import RegistryError


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


def test_manifest_round_trip_keeps_bytes_and_type(store):
    body = b'{"schemaVersion":2}'
    store.put_manifest(digest_of(body), body, "application/vnd.oci.image.manifest.v1+json")
    stored = store.get_manifest(digest_of(body))
    assert stored.body == body
    assert stored.media_type == "application/vnd.oci.image.manifest.v1+json"
    assert store.get_manifest(digest_of(b"other")) is None


PART = 5 * 1024 * 1024  # S3's smallest part but the last


def test_a_blob_is_composed_from_staged_objects_inside_s3(store):
    first, second = b"a" * PART, b"tail"
    for key, body in (("uploads/x/1", first), ("uploads/x/2", second)):
        store.s3.put_object(Bucket=store.bucket, Key=key, Body=body)
    store.compose_blob(digest_of(first + second), ["uploads/x/1", "uploads/x/2"])
    assert store.get_blob(digest_of(first + second)) == first + second
    assert store.s3.list_multipart_uploads(Bucket=store.bucket).get("Uploads", []) == []


def test_a_composition_that_fails_leaves_nothing_visible(store):
    store.s3.put_object(Bucket=store.bucket, Key="uploads/x/1", Body=b"a" * PART)
    digest = digest_of(b"whatever")
    with pytest.raises(ClientError):
        store.compose_blob(digest, ["uploads/x/1", "uploads/x/missing"])
    assert store.blob_size(digest) is None
    assert store.s3.list_multipart_uploads(Bucket=store.bucket).get("Uploads", []) == []


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
    from ociwrap.runtime import deadline

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    store = Store(make_s3_client("http://127.0.0.1:9", region="us-east-1"), "b")
    with deadline.within(deadline.Deadline(0)), pytest.raises(RegistryError) as caught:
        store.get_manifest(digest_of(b"x"))
    assert caught.value.status == 504
    assert "artifact storage (S3)" in caught.value.message
    assert no_network == []
