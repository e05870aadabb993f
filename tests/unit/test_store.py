"""The S3 store: content-addressed keys, blobs composed from staged parts, presigned URLs."""

from __future__ import annotations

import hashlib
from urllib.parse import parse_qs, urlparse

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from doubles.at_once import AtOnce
from ociwrap.bucket.store import Store
from ociwrap.runtime.aws import make_s3_client
from ociwrap.runtime.errors import RegistryError


@pytest.fixture
def store(s3):
    """A bucket of its own on the module's moto S3."""
    name = f"unit-bucket-{len(s3.list_buckets()['Buckets'])}"
    s3.create_bucket(Bucket=name)
    return Store(s3, name)


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
    assert url.netloc.startswith(f"{store.bucket}.s3.")
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


@pytest.fixture
def offline(s3):
    """A store whose S3 answers come from botocore's Stubber: nothing is sent."""
    from botocore.stub import Stubber

    with Stubber(s3) as stubber:
        yield Store(s3, "unit-bucket"), stubber
        stubber.assert_no_pending_responses()


@pytest.mark.parametrize("code", ["404", "NoSuchKey", "NotFound"])
def test_a_missing_object_reads_as_absent_however_s3_names_it(offline, code):
    store, stubber = offline
    stubber.add_client_error("head_object", service_error_code=code, http_status_code=404)
    stubber.add_client_error("get_object", service_error_code=code, http_status_code=404)
    assert store.blob_size(digest_of(b"x")) is None
    assert store.get_json("tags/x.json") is None


def test_a_refusal_of_s3_is_raised_not_taken_for_absence(offline):
    store, stubber = offline
    stubber.add_client_error("head_object", service_error_code="AccessDenied", http_status_code=403)
    stubber.add_client_error("get_object", service_error_code="AccessDenied", http_status_code=403)
    with pytest.raises(ClientError):
        store.blob_written(digest_of(b"x"))
    with pytest.raises(ClientError):
        store.get_blob(digest_of(b"x"))


def test_blobs_and_records_are_stored_with_their_content_types(store):
    store.put_blob(digest_of(b"x"), b"x")
    head = store.s3.head_object(Bucket=store.bucket, Key=f"blobs/sha256/{digest_of(b'x')[7:]}")
    assert head["ContentType"] == "application/octet-stream"
    store.put_json("tags/r.json", {"b": [1, "two"], "a": None})
    record = store.s3.get_object(Bucket=store.bucket, Key="tags/r.json")
    assert record["ContentType"] == "application/json"
    assert record["Body"].read() == b'{"a": null, "b": [1, "two"]}'
    assert store.blob_size(digest_of(b"x")) == 1


@pytest.fixture
def sent(store):
    """`sent(operation)`: the parameters of every later `operation` request to S3 (until
    the end of the test)."""
    hooks: list[tuple[str, str]] = []

    def record(operation: str) -> list[dict]:
        seen: list[dict] = []
        event, unique = f"provide-client-params.s3.{operation}", f"sent-{len(hooks)}"
        store.s3.meta.events.register(
            event, lambda params, **_: seen.append(dict(params)), unique_id=unique
        )
        hooks.append((event, unique))
        return seen

    yield record
    for event, unique in hooks:
        store.s3.meta.events.unregister(event, unique_id=unique)


def test_parts_are_copied_in_order_into_an_octet_stream(store, sent):
    keys = ["uploads/y/1", "uploads/y/2"]
    bodies = [b"a" * PART, b"end"]
    for key, body in zip(keys, bodies, strict=True):
        store.s3.put_object(Bucket=store.bucket, Key=key, Body=body)
    copies, completions = sent("UploadPartCopy"), sent("CompleteMultipartUpload")
    digest = digest_of(b"".join(bodies))
    store.compose_blob(digest, keys)
    assert sorted((c["PartNumber"], c["CopySource"]["Key"]) for c in copies) == [
        (1, "uploads/y/1"),
        (2, "uploads/y/2"),
    ]
    parts = completions[0]["MultipartUpload"]["Parts"]
    assert [part["PartNumber"] for part in parts] == [1, 2]
    assert all(part["ETag"] for part in parts)
    head = store.s3.head_object(Bucket=store.bucket, Key=f"blobs/sha256/{digest[7:]}")
    assert head["ContentType"] == "application/octet-stream"
    assert store.get_blob(digest) == b"".join(bodies)


def test_a_staged_part_is_read_a_mebibyte_at_a_time(store):
    store.put_part("uploads/z/part", b"p" * (1024 * 1024 + 1))
    assert [len(chunk) for chunk in store.read_part("uploads/z/part")] == [1024 * 1024, 1]


def test_keys_are_deleted_a_thousand_per_request_quietly(store, sent):
    requests = sent("DeleteObjects")
    keys = [f"uploads/many/{n:04d}" for n in range(1001)]
    store.delete_keys(keys)
    assert [len(r["Delete"]["Objects"]) for r in requests] == [1000, 1]
    assert [r["Delete"]["Objects"][0]["Key"] for r in requests] == [keys[0], keys[1000]]
    assert all(r["Delete"]["Quiet"] is True for r in requests)
    store.delete_keys([])
    assert len(requests) == 2


@pytest.fixture
def hook(s3):
    """`hook(operation, call)`: `call(params)` runs before every later `operation` request
    to S3 is even built (until the end of the test)."""
    hooks: list[tuple[str, str]] = []

    def register(operation: str, call) -> None:
        event, unique = f"provide-client-params.s3.{operation}", f"hook-{len(hooks)}"
        s3.meta.events.register(event, lambda params, **_: call(params), unique_id=unique)
        hooks.append((event, unique))

    yield register
    for event, unique in hooks:
        s3.meta.events.unregister(event, unique_id=unique)


def refuse(failure: BaseException):
    def call(params) -> None:
        raise failure

    return call


@pytest.mark.parametrize(
    "abort_failure",
    [
        ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "AbortMultipartUpload"),
        EndpointConnectionError(endpoint_url="https://s3.amazonaws.com"),
        RegistryError("UNAVAILABLE", "the request's deadline ran out", status=504),
    ],
    ids=["refused", "unreachable", "deadline"],
)
def test_a_failed_abort_never_hides_why_the_composition_failed(offline, hook, abort_failure):
    store, stubber = offline
    stubber.add_response("create_multipart_upload", {"UploadId": "u1"})
    stubber.add_client_error("upload_part_copy", "NoSuchKey", http_status_code=404)
    hook("AbortMultipartUpload", refuse(abort_failure))
    with pytest.raises(ClientError) as caught:
        store.compose_blob(digest_of(b"x"), ["uploads/x/gone"])
    assert caught.value.response["Error"]["Code"] == "NoSuchKey"


def test_eight_parts_are_copied_at_once_and_never_a_ninth(offline, hook):
    store, stubber = offline
    copying = AtOnce(8, "copies")

    stubber.add_response("create_multipart_upload", {"UploadId": "u1"})
    for number in range(1, 10):
        stubber.add_response("upload_part_copy", {"CopyPartResult": {"ETag": f'"e{number}"'}})
    stubber.add_response("complete_multipart_upload", {})
    hook("UploadPartCopy", copying)
    store.compose_blob(digest_of(b"x"), [f"uploads/x/{n}" for n in range(1, 10)])
    assert copying.most == 8
