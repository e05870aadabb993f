"""The bucket is a cache: what its lifecycle removes is made again by the next request.

The real handler over an in-process S3 (moto) and a scripted upstream on 127.0.0.1
(aliased `stub`). The lifecycle is played by deleting objects; a new function instance
(`cold`) is what meets the bucket after the days have passed, since a warm instance's
memory never outlives what it holds (see `retention`).
"""

from __future__ import annotations

import calendar
import json
import re
import time
from collections.abc import Callable, Iterator
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from moto import mock_aws

import app
import wiring
from ociwrap.bucket.links import Links
from ociwrap.bucket.retention import MIN_URL_SECONDS, HeldBlobs, removal_time, url_seconds
from ociwrap.bucket.sources import composed_from
from ociwrap.bucket.store import Store, blob_key, manifest_key
from ociwrap.registry.blobs import Blobs
from ociwrap.registry.mirror import Mirror
from ociwrap.registry.settings import Settings
from ociwrap.runtime.aws import make_s3_client
from ociwrap.runtime.memcache import BoundedCache
from ociwrap.upstream.fetch import Fetcher
from ociwrap.upstream.transport import Transport
from ociwrap_local.events import LocalContext, build_event, decode_result
from scripted_upstream import digest_of, handler_on_stub

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
WRAP = "wrap/stub/team/base/1/with/stub/team/wrapper/1"
BUCKET = "unit-bucket"
DAY = 86400


def utc(text: str) -> float:
    return float(calendar.timegm(time.strptime(text, "%Y-%m-%d %H:%M")))


# -- when the lifecycle removes an object (pure) --------------------------------------------


@pytest.mark.parametrize(
    ("written", "days", "removed"),
    [
        # S3's own example: created 2014-01-15 10:30 UTC, a 3-day rule, removed from 01-19.
        ("2014-01-15 10:30", 3, "2014-01-19 00:00"),
        ("2014-01-15 00:00", 1, "2014-01-16 00:00"),
        ("2014-01-31 23:59", 30, "2014-03-03 00:00"),
    ],
)
def test_the_lifecycle_counts_from_the_last_write_to_the_next_midnight(written, days, removed):
    assert removal_time(utc(written), days) == utc(removed)


def test_a_url_never_outlives_its_blob_by_more_than_a_minute():
    assert url_seconds(until=10_000, now=0, presign_seconds=3600) == 3600
    assert url_seconds(until=1_000, now=0, presign_seconds=3600) == 1000
    assert url_seconds(until=10, now=0, presign_seconds=3600) == MIN_URL_SECONDS
    assert url_seconds(until=0, now=10, presign_seconds=3600) == MIN_URL_SECONDS


# -- the setting ----------------------------------------------------------------------------


def test_the_retention_defaults_to_thirty_days():
    assert Settings.from_env({"ARTIFACT_BUCKET": "b"}).cache_retention_days == 30
    assert (
        Settings.from_env(
            {"ARTIFACT_BUCKET": "b", "CACHE_RETENTION_DAYS": "2"}
        ).cache_retention_days
        == 2
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CACHE_RETENTION_DAYS": "0"}, "CACHE_RETENTION_DAYS must be at least 1"),
        (
            {"CACHE_RETENTION_DAYS": "a month"},
            "CACHE_RETENTION_DAYS must be a whole number of days",
        ),
        # A tag record refreshed a day ago may be served stale for a day more: a one-day
        # retention would remove it first.
        ({"CACHE_RETENTION_DAYS": "1"}, "must cover TAG_TTL_SECONDS + STALE_IF_ERROR_SECONDS"),
        (
            {"CACHE_RETENTION_DAYS": "3", "STALE_IF_ERROR_SECONDS": str(3 * DAY)},
            "would remove tag records that stale-if-error may still serve",
        ),
    ],
)
def test_a_retention_that_is_too_short_is_refused(env, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        Settings.from_env({"ARTIFACT_BUCKET": "b", **env})


def test_a_retention_of_one_day_is_fine_when_the_stale_window_fits():
    env = {"CACHE_RETENTION_DAYS": "1", "TAG_TTL_SECONDS": "300", "STALE_IF_ERROR_SECONDS": "3600"}
    assert Settings.from_env({"ARTIFACT_BUCKET": "b", **env}).cache_retention_days == 1


def test_source_records_name_their_inputs_only_when_whole():
    base, wrapper = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    assert composed_from({"base": base, "wrappers": [wrapper]}, 1) == (base, (wrapper,))
    assert composed_from({"kind": "manifest"}, 1) is None  # recorded before inputs were
    assert composed_from({"base": base, "wrappers": [wrapper]}, 2) is None
    assert composed_from({"base": base, "wrappers": ["sha256:12"]}, 1) is None
    assert composed_from({"base": 7, "wrappers": [wrapper]}, 1) is None


# -- through the handler ---------------------------------------------------------------------


@pytest.fixture
def env(monkeypatch, scripted, loopback_only) -> Iterator[pytest.MonkeyPatch]:
    """The handler's environment: moto's S3 in-process, the scripted upstream as `stub`."""
    handler_on_stub(monkeypatch, scripted)
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        app.reset_service()
        yield monkeypatch
        app.reset_service()


@pytest.fixture
def signing(env, tmp_path) -> None:
    """Signing with a key file, for the name registry.example.com/..."""
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "signing.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    env.setenv("SIGNING_KEY_FILE", str(path))
    env.setenv("PUBLIC_HOSTNAME", "registry.example.com")
    app.reset_service()


Call = Callable[..., tuple[int, dict[str, str], bytes]]


@pytest.fixture
def call(env) -> Call:
    """`call(method, path, headers=())` -> (status, headers with lower-case names, body)."""

    def call(method: str, path: str, headers=()) -> tuple[int, dict[str, str], bytes]:
        event = build_event(method, path, [("Host", "registry.example.com"), *headers], b"")
        status, pairs, body = decode_result(app.lambda_handler(event, LocalContext()))
        return status, {name.lower(): value for name, value in pairs}, body

    return call


def s3():
    return boto3.client("s3")


def keys(prefix: str = "") -> list[str]:
    listing = s3().list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def expire(*prefixes: str) -> None:
    """What the lifecycle does, days later: these objects are gone, and so are the
    instances that served them (a new one meets the bucket)."""
    for prefix in prefixes:
        for key in keys(prefix):
            s3().delete_object(Bucket=BUCKET, Key=key)
    app.reset_service()


#: Every prefix the template's lifecycle rules expire after CACHE_RETENTION_DAYS.
CACHE = ("manifests/", "blobs/", "tags/upstream/", "tags/links/", "tags/compositions/")


def held(key: str) -> bytes | None:
    try:
        return s3().get_object(Bucket=BUCKET, Key=key)["Body"].read()
    except s3().exceptions.NoSuchKey:
        return None


def redirected_to_held(answer: tuple[int, dict[str, str], bytes], digest: str) -> None:
    """A 307 to a presigned URL of the blob, which the bucket holds with its bytes."""
    status, headers, body = answer
    assert status == 307, body
    assert f"/blobs/sha256/{digest[7:]}" in headers["location"]
    data = held(blob_key(digest))
    assert data is not None and digest_of(data) == digest


def manifest(call: Call, name: str, ref: str) -> tuple[str, bytes]:
    status, headers, body = call("GET", f"/v2/{name}/manifests/{ref}", [("Accept", OCI_MANIFEST)])
    assert status == 200, body
    return headers["docker-content-digest"], body


def errors_of(body: bytes) -> dict:
    [error] = json.loads(body)["errors"]
    return error


def test_a_mirrored_layer_that_expired_is_copied_again(call, scripted):
    _, body = manifest(call, "stub/team/base", "1")
    layer = json.loads(body)["layers"][0]["digest"]
    redirected_to_held(call("GET", f"/v2/stub/team/base/blobs/{layer}"), layer)
    expire(blob_key(layer))  # its link stays: it is not believed
    redirected_to_held(call("GET", f"/v2/stub/team/base/blobs/{layer}"), layer)
    assert len(scripted.requests_to(f"/blobs/{layer}")) == 2


def test_an_upstream_config_copy_that_expired_is_copied_again(call, scripted):
    manifest(call, WRAP, "latest")  # reads the base's config into the bucket
    _, body = manifest(call, "stub/team/base", "1")
    config = json.loads(body)["config"]["digest"]
    assert held(blob_key(config)) is not None
    expire(blob_key(config))
    redirected_to_held(call("GET", f"/v2/stub/team/base/blobs/{config}"), config)


def test_a_blob_from_the_bucket_costs_one_head_per_instance(call):
    """The price of not believing a record: one S3 HEAD per blob and instance."""
    _, body = manifest(call, "stub/team/base", "1")
    layer = json.loads(body)["layers"][0]["digest"]
    call("GET", f"/v2/stub/team/base/blobs/{layer}")
    app.reset_service()  # a new instance: nothing in memory
    calls: list[str] = []
    client = wiring.service().proxy.blobs.store.s3
    client.meta.events.register("before-call.s3", lambda model, **kw: calls.append(model.name))
    redirected_to_held(call("GET", f"/v2/stub/team/base/blobs/{layer}"), layer)
    assert calls == ["GetObject", "HeadObject"]  # the link, and whether the blob is there
    calls.clear()
    call("GET", f"/v2/stub/team/base/blobs/{layer}")
    assert calls == []  # the same instance believes both until the blob may expire


def test_a_proxied_manifest_that_expired_is_fetched_again_by_digest(call, scripted):
    digest, body = manifest(call, "stub/team/base", "1")
    expire(manifest_key(digest))
    assert manifest(call, "stub/team/base", digest) == (digest, body)
    assert held(manifest_key(digest)) == body
    assert len(scripted.requests_to(f"/manifests/{digest}")) == 2


def test_a_composition_that_expired_is_composed_again_to_the_same_digests(call):
    digest, body = manifest(call, WRAP, "latest")
    config = json.loads(body)["config"]["digest"]
    expire(*CACHE)
    assert keys("manifests/") == keys("blobs/") == []
    assert manifest(call, WRAP, digest) == (digest, body)  # a pinned digest, by digest
    assert held(manifest_key(digest)) == body
    redirected_to_held(call("GET", f"/v2/{WRAP}/blobs/{config}"), config)
    assert manifest(call, WRAP, "latest") == (digest, body)


def test_a_composed_config_that_expired_is_composed_again(call):
    _, body = manifest(call, WRAP, "latest")
    config = json.loads(body)["config"]["digest"]
    expire(blob_key(config))
    redirected_to_held(call("GET", f"/v2/{WRAP}/blobs/{config}"), config)


def test_the_page_reads_a_composed_config_that_expired(call):
    _, body = manifest(call, WRAP, "latest")
    config = json.loads(body)["config"]["digest"]
    expire(*CACHE)
    status, _, data = call("GET", f"/v2/{WRAP}/blobs/{config}", [("Sec-Fetch-Site", "same-origin")])
    assert status == 200 and digest_of(data) == config


def test_a_digest_whose_base_is_gone_upstream_is_a_404_saying_why(call, scripted):
    digest, body = manifest(call, WRAP, "latest")
    base = json.loads(body)["annotations"]["org.opencontainers.image.base.digest"]
    del scripted.routes["GET", f"/v2/team/base/manifests/{base}"]
    expire(*CACHE)
    status, _, answer = call("GET", f"/v2/{WRAP}/manifests/{digest}", [("Accept", OCI_MANIFEST)])
    error = errors_of(answer)
    assert (status, error["code"]) == (404, "MANIFEST_UNKNOWN")
    assert (
        "is no longer in the registry's bucket (it expired) and cannot be made again"
        in error["message"]
    )
    assert "base image" in error["message"]


def test_a_composition_recorded_without_its_inputs_is_a_404_saying_so(call):
    digest, body = manifest(call, WRAP, "latest")
    config = json.loads(body)["config"]["digest"]
    for key in keys("tags/sources/"):  # as they were written before they named inputs
        record = json.loads(held(key))
        stripped = {k: v for k, v in record.items() if k not in ("base", "wrappers")}
        s3().put_object(Bucket=BUCKET, Key=key, Body=json.dumps(stripped).encode())
    expire(*CACHE)
    status, _, answer = call("GET", f"/v2/{WRAP}/manifests/{digest}", [("Accept", OCI_MANIFEST)])
    assert status == 404 and "nothing records what it was made of" in errors_of(answer)["message"]
    status, _, answer = call("GET", f"/v2/{WRAP}/blobs/{config}")
    assert (status, errors_of(answer)["code"]) == (404, "BLOB_UNKNOWN")
    assert manifest(call, WRAP, "latest")[0] == digest  # by tag it is composed anew


def signature(call: Call, digest: str) -> tuple[str, bytes]:
    tag = "sha256-" + digest[7:] + ".sig"
    return manifest(call, WRAP, tag)


@pytest.mark.usefixtures("signing")
def test_a_signature_that_expired_is_stored_again_from_its_record(call):
    digest, _ = manifest(call, WRAP, "latest")
    signed, body = signature(call, digest)
    layers = json.loads(body)["layers"]
    expire(manifest_key(signed), *(blob_key(layer["digest"]) for layer in layers))
    assert signature(call, digest) == (signed, body)  # the same signature, not a new one
    assert manifest(call, WRAP, signed) == (signed, body)
    expire(*CACHE)
    assert manifest(call, WRAP, signed) == (signed, body)  # by its own digest too
    expire(*CACHE)
    payload = layers[0]["digest"]
    redirected_to_held(call("GET", f"/v2/{WRAP}/blobs/{payload}"), payload)


@pytest.mark.usefixtures("signing")
def test_a_composition_made_again_keeps_its_signature(call):
    digest, _ = manifest(call, WRAP, "latest")
    signed, body = signature(call, digest)
    expire(*CACHE)
    assert manifest(call, WRAP, "latest")[0] == digest  # composed again
    assert held(manifest_key(signed)) == body  # ... and its signature stored again
    assert signature(call, digest) == (signed, body)


# -- what an instance believes ----------------------------------------------------------------


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def bucket_store(monkeypatch) -> Iterator[Store]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        client = make_s3_client(region="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield Store(client, BUCKET)


def test_a_blob_is_believed_held_until_the_lifecycle_may_first_remove_it(bucket_store):
    data = b"generated config"
    bucket_store.put_blob(digest_of(data), data)
    written = bucket_store.blob_written(digest_of(data))
    clock = Clock(written)
    until = removal_time(written, 30)
    held_blobs = HeldBlobs(bucket_store, 30, 3600, BoundedCache(clock=clock), clock)
    assert held_blobs.until(digest_of(data)) == until
    bucket_store.s3.delete_object(Bucket=BUCKET, Key=blob_key(digest_of(data)))
    clock.now = until - 3600 - 1  # a URL handed out now still lives before the removal
    assert held_blobs.until(digest_of(data)) == until
    clock.now = until - 3600  # later, the bucket is asked again
    assert held_blobs.until(digest_of(data)) is None


def test_urls_of_a_blob_close_to_its_removal_live_only_as_long_as_it_does(bucket_store):
    data = b"layer bytes"
    bucket_store.put_blob(digest_of(data), data)
    until = removal_time(bucket_store.blob_written(digest_of(data)), 30)
    clock = Clock(until - 600)
    links = Links(bucket_store, BoundedCache(), ttl_seconds=60, private=lambda registry: False)
    mirror = Mirror(bucket_store, links, max_bytes=1024)
    blobs = Blobs(bucket_store, Fetcher(Transport()), mirror, 3600, clock=clock, retention_days=30)
    reply = blobs.stored(digest_of(data))
    assert reply is not None
    assert parse_qs(urlsplit(reply.headers["Location"]).query)["X-Amz-Expires"] == ["600"]
    clock.now = until - 7200
    reply = blobs.stored(digest_of(data))
    assert parse_qs(urlsplit(reply.headers["Location"]).query)["X-Amz-Expires"] == ["3600"]
