"""The bucket is a cache: what its lifecycle removes is made again by the next request.

The real handler over the in-memory bucket and upstream (aliased `stub`). The lifecycle is
played by deleting objects; a new function instance (`app.reset_service()`) is what meets
the bucket after the days have passed, since a warm instance's memory never outlives what
it holds (see `retention`).
"""

from __future__ import annotations

import calendar
import json
import re
import time
from collections.abc import Callable, Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

import app
from doubles.bucket import MemoryBucket
from doubles.handler import handler_on_memory
from doubles.upstream import MemoryUpstream
from ociwrap.bucket.links import Links
from ociwrap.bucket.retention import MIN_URL_SECONDS, HeldBlobs, removal_time, url_seconds
from ociwrap.bucket.sources import composed_from
from ociwrap.bucket.store import blob_key, manifest_key
from ociwrap.registry.blobs import Blobs
from ociwrap.registry.mirror import Mirror
from ociwrap.registry.settings import Settings
from ociwrap.registry.wiring import anonymous
from ociwrap.runtime.memcache import BoundedCache
from ociwrap_local.events import LocalContext, build_event, decode_result
from scripted_upstream import digest_of

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
WRAP = "wrap/stub/team/base/1/with/stub/team/wrapper/1"
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
def upstream() -> MemoryUpstream:
    return MemoryUpstream()


@pytest.fixture
def bucket() -> MemoryBucket:
    return MemoryBucket()


@pytest.fixture
def env(monkeypatch, upstream, bucket, on_doubles) -> Iterator[pytest.MonkeyPatch]:
    """The handler's environment: the in-memory bucket, the in-memory upstream as `stub`."""
    handler_on_memory(monkeypatch, upstream)
    on_doubles(bucket, upstream)
    return monkeypatch


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


def expire(bucket: MemoryBucket, *prefixes: str) -> None:
    """What the lifecycle does, days later: these objects are gone, and so are the
    instances that served them (a new one meets the bucket)."""
    bucket.expire(*prefixes)
    app.reset_service()


#: Every prefix the template's lifecycle rules expire after CACHE_RETENTION_DAYS.
CACHE = ("manifests/", "blobs/", "tags/upstream/", "tags/links/", "tags/compositions/")


def redirected_to_held(
    bucket: MemoryBucket, answer: tuple[int, dict[str, str], bytes], digest: str
) -> None:
    """A 307 to a presigned URL of the blob, which the bucket holds with its bytes."""
    status, headers, body = answer
    assert status == 307, body
    assert f"/blobs/sha256/{digest[7:]}" in headers["location"]
    data = bucket.held(blob_key(digest))
    assert data is not None and digest_of(data) == digest


def manifest(call: Call, name: str, ref: str) -> tuple[str, bytes]:
    status, headers, body = call("GET", f"/v2/{name}/manifests/{ref}", [("Accept", OCI_MANIFEST)])
    assert status == 200, body
    return headers["docker-content-digest"], body


def errors_of(body: bytes) -> dict:
    [error] = json.loads(body)["errors"]
    return error


def test_a_mirrored_layer_that_expired_is_copied_again(call, bucket, upstream):
    _, body = manifest(call, "stub/team/base", "1")
    layer = json.loads(body)["layers"][0]["digest"]
    redirected_to_held(bucket, call("GET", f"/v2/stub/team/base/blobs/{layer}"), layer)
    expire(bucket, blob_key(layer))  # its link stays: it is not believed
    redirected_to_held(bucket, call("GET", f"/v2/stub/team/base/blobs/{layer}"), layer)
    assert upstream.count("blob", layer) == 2


def test_an_upstream_config_copy_that_expired_is_copied_again(call, bucket, upstream):
    manifest(call, WRAP, "latest")  # reads the base's config into the bucket
    _, body = manifest(call, "stub/team/base", "1")
    config = json.loads(body)["config"]["digest"]
    assert bucket.held(blob_key(config)) is not None
    expire(bucket, blob_key(config))
    redirected_to_held(bucket, call("GET", f"/v2/stub/team/base/blobs/{config}"), config)


def test_a_blob_from_the_bucket_costs_one_head_per_instance(call, bucket):
    """The price of not believing a record: one S3 HEAD per blob and instance."""
    _, body = manifest(call, "stub/team/base", "1")
    layer = json.loads(body)["layers"][0]["digest"]
    call("GET", f"/v2/stub/team/base/blobs/{layer}")
    app.reset_service()  # a new instance: nothing in memory
    bucket.calls.clear()
    redirected_to_held(bucket, call("GET", f"/v2/stub/team/base/blobs/{layer}"), layer)
    reads = [method for method, _ in bucket.calls if method != "presign_blob"]
    assert reads == ["get_json", "blob_written"]  # the link, and whether the blob is there
    bucket.calls.clear()
    call("GET", f"/v2/stub/team/base/blobs/{layer}")
    assert [method for method, _ in bucket.calls if method != "presign_blob"] == []


def test_a_proxied_manifest_that_expired_is_fetched_again_by_digest(call, bucket, upstream):
    digest, body = manifest(call, "stub/team/base", "1")
    expire(bucket, manifest_key(digest))
    assert manifest(call, "stub/team/base", digest) == (digest, body)
    assert bucket.held(manifest_key(digest)) == body
    assert upstream.count("head_manifest", digest) + upstream.count("get_manifest", digest) == 2


def test_a_composition_that_expired_is_composed_again_to_the_same_digests(call, bucket):
    digest, body = manifest(call, WRAP, "latest")
    config = json.loads(body)["config"]["digest"]
    expire(bucket, *CACHE)
    assert bucket.listing("manifests/") == bucket.listing("blobs/") == []
    assert manifest(call, WRAP, digest) == (digest, body)  # a pinned digest, by digest
    assert bucket.held(manifest_key(digest)) == body
    redirected_to_held(bucket, call("GET", f"/v2/{WRAP}/blobs/{config}"), config)
    assert manifest(call, WRAP, "latest") == (digest, body)


def test_a_composed_config_that_expired_is_composed_again(call, bucket):
    _, body = manifest(call, WRAP, "latest")
    config = json.loads(body)["config"]["digest"]
    expire(bucket, blob_key(config))
    redirected_to_held(bucket, call("GET", f"/v2/{WRAP}/blobs/{config}"), config)


def test_the_page_reads_a_composed_config_that_expired(call, bucket):
    _, body = manifest(call, WRAP, "latest")
    config = json.loads(body)["config"]["digest"]
    expire(bucket, *CACHE)
    status, _, data = call("GET", f"/v2/{WRAP}/blobs/{config}", [("Sec-Fetch-Site", "same-origin")])
    assert status == 200 and digest_of(data) == config


def test_a_digest_whose_base_is_gone_upstream_is_a_404_saying_why(call, bucket, upstream):
    digest, body = manifest(call, WRAP, "latest")
    base = json.loads(body)["annotations"]["org.opencontainers.image.base.digest"]
    del upstream.manifests["team/base", base]
    expire(bucket, *CACHE)
    status, _, answer = call("GET", f"/v2/{WRAP}/manifests/{digest}", [("Accept", OCI_MANIFEST)])
    error = errors_of(answer)
    assert (status, error["code"]) == (404, "MANIFEST_UNKNOWN")
    assert (
        "is no longer in the registry's bucket (it expired) and cannot be made again"
        in error["message"]
    )
    assert "base image" in error["message"]


def test_a_composition_recorded_without_its_inputs_is_a_404_saying_so(call, bucket):
    digest, body = manifest(call, WRAP, "latest")
    config = json.loads(body)["config"]["digest"]
    for key in bucket.listing("tags/sources/"):  # as they were written before they named inputs
        record = json.loads(bucket.held(key))
        stripped = {k: v for k, v in record.items() if k not in ("base", "wrappers")}
        bucket.put_json(key, stripped)
    expire(bucket, *CACHE)
    status, _, answer = call("GET", f"/v2/{WRAP}/manifests/{digest}", [("Accept", OCI_MANIFEST)])
    assert status == 404 and "nothing records what it was made of" in errors_of(answer)["message"]
    status, _, answer = call("GET", f"/v2/{WRAP}/blobs/{config}")
    assert (status, errors_of(answer)["code"]) == (404, "BLOB_UNKNOWN")
    assert manifest(call, WRAP, "latest")[0] == digest  # by tag it is composed anew


def signature(call: Call, digest: str) -> tuple[str, bytes]:
    tag = "sha256-" + digest[7:] + ".sig"
    return manifest(call, WRAP, tag)


@pytest.mark.usefixtures("signing")
def test_a_signature_that_expired_is_stored_again_from_its_record(call, bucket):
    digest, _ = manifest(call, WRAP, "latest")
    signed, body = signature(call, digest)
    layers = json.loads(body)["layers"]
    expire(bucket, manifest_key(signed), *(blob_key(layer["digest"]) for layer in layers))
    assert signature(call, digest) == (signed, body)  # the same signature, not a new one
    assert manifest(call, WRAP, signed) == (signed, body)
    expire(bucket, *CACHE)
    assert manifest(call, WRAP, signed) == (signed, body)  # by its own digest too
    expire(bucket, *CACHE)
    payload = layers[0]["digest"]
    redirected_to_held(bucket, call("GET", f"/v2/{WRAP}/blobs/{payload}"), payload)


@pytest.mark.usefixtures("signing")
def test_a_composition_made_again_keeps_its_signature(call, bucket):
    digest, _ = manifest(call, WRAP, "latest")
    signed, body = signature(call, digest)
    expire(bucket, *CACHE)
    assert manifest(call, WRAP, "latest")[0] == digest  # composed again
    assert bucket.held(manifest_key(signed)) == body  # ... and its signature stored again
    assert signature(call, digest) == (signed, body)


# -- what an instance believes ----------------------------------------------------------------


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def bucket_store() -> MemoryBucket:
    """A bucket whose objects were written on 2024-05-01 at 10:30 UTC."""
    return MemoryBucket(clock=lambda: utc("2024-05-01 10:30"))


def test_a_blob_is_believed_held_until_the_lifecycle_may_first_remove_it(bucket_store):
    data = b"generated config"
    bucket_store.put_blob(digest_of(data), data)
    written = bucket_store.blob_written(digest_of(data))
    clock = Clock(written)
    until = removal_time(written, 30)
    held_blobs = HeldBlobs(bucket_store, 30, 3600, BoundedCache(clock=clock), clock)
    assert held_blobs.until(digest_of(data)) == until
    bucket_store.expire(blob_key(digest_of(data)))
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
    blobs = Blobs(
        bucket_store,
        MemoryUpstream(),
        mirror,
        3600,
        clock=clock,
        private=anonymous,
        retention_days=30,
    )
    found = blobs.stored(digest_of(data))
    assert found is not None
    assert parse_qs(urlsplit(found.location).query)["X-Amz-Expires"] == ["600"]
    clock.now = until - 7200
    found = blobs.stored(digest_of(data))
    assert parse_qs(urlsplit(found.location).query)["X-Amz-Expires"] == ["3600"]


def test_a_blob_in_its_last_minute_still_gets_a_url_of_one_minute():
    until = utc("2024-05-31 00:00")
    assert url_seconds(until=until, now=until - 61, presign_seconds=3600) == 61
    assert url_seconds(until=until, now=until - 60, presign_seconds=3600) == 60
    assert url_seconds(until=until, now=until - 59, presign_seconds=3600) == 60
    assert url_seconds(until=until, now=until + 5, presign_seconds=3600) == 60


def test_a_blob_with_under_a_second_of_belief_left_is_remembered_for_it(bucket_store):
    data = b"config"
    bucket_store.put_blob(digest_of(data), data)
    until = removal_time(bucket_store.blob_written(digest_of(data)), 30)
    clock = Clock(until - 3600 - 0.5)
    held_blobs = HeldBlobs(bucket_store, 30, 3600, BoundedCache(clock=clock), clock)
    bucket_store.calls.clear()
    assert held_blobs.until(digest_of(data)) == held_blobs.until(digest_of(data)) == until
    assert bucket_store.called("blob_written") == [blob_key(digest_of(data))]


def test_a_blob_with_no_belief_left_takes_no_place_in_memory(bucket_store):
    data = b"config"
    bucket_store.put_blob(digest_of(data), data)
    until = removal_time(bucket_store.blob_written(digest_of(data)), 30)
    clock = Clock(until - 3600)
    cache = BoundedCache(max_entries=1, clock=clock)
    cache.namespace("links").put("kept", "link")
    held_blobs = HeldBlobs(bucket_store, 30, 3600, cache, clock)
    assert held_blobs.until(digest_of(data)) == until
    assert cache.namespace("links").get("kept") == "link"


def test_the_blob_service_believes_on_its_own_clock(bucket_store):
    data = b"layer bytes"
    bucket_store.put_blob(digest_of(data), data)
    clock = Clock(utc("2024-05-02 00:00"))
    links = Links(bucket_store, BoundedCache(), ttl_seconds=60, private=lambda registry: False)
    blobs = Blobs(
        bucket_store,
        MemoryUpstream(),
        Mirror(bucket_store, links, max_bytes=1024),
        3600,
        BoundedCache(clock=clock),
        clock,
        private=anonymous,
    )
    assert blobs.stored(digest_of(data)) is not None
    assert blobs.stored(digest_of(data)) is not None
    assert bucket_store.called("blob_written") == [blob_key(digest_of(data))]
