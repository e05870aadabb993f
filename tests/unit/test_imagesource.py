"""The image source: verified tag records, stale-if-error, coalescing, S3 before upstream.

A scripted upstream on 127.0.0.1 and moto's in-process S3 (one mock for the module).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time

import boto3
import pytest

from ociwrap.bucket.links import Links
from ociwrap.bucket.store import Store
from ociwrap.names.reference import ImageRef, Registry, Repository
from ociwrap.registry.imagesource import ImageSource
from ociwrap.runtime.errors import RegistryError
from ociwrap.runtime.memcache import BoundedCache
from ociwrap.upstream.fetch import Fetcher
from ociwrap.upstream.transport import Transport

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def manifest(seed: str) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "size": 2,
                "digest": "sha256:" + hashlib.sha256(seed.encode()).hexdigest(),
            },
            "layers": [],
        }
    ).encode()


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


HONEST, OTHER = manifest("honest"), manifest("other")
TAG_PATH = "/v2/team/app/manifests/1"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def source(s3, scripted, clock, request) -> ImageSource:
    bucket = f"unit-{request.node.name.lower().replace('_', '-')[:40].strip('-')}"
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=bucket)
    store = Store(s3, bucket)
    links = Links(store, BoundedCache(), 60, private=lambda registry: False, clock=clock)
    return ImageSource(
        store,
        Fetcher(Transport()),
        links,
        tag_ttl_seconds=60,
        stale_if_error_seconds=3600,
        clock=clock,
    )


@pytest.fixture
def image(scripted) -> ImageRef:
    return ImageRef(Repository(Registry("stub", scripted.url, trusted=True), "team/app"), tag="1")


def serve(scripted, body: bytes, head_digest: str | None = None) -> None:
    """The tag answers HEAD with `head_digest` (default: the body's) and GET with `body`;
    the digest answers whatever the tag's GET does."""
    claimed = head_digest or digest_of(body)
    scripted.routes["HEAD", TAG_PATH] = lambda h: (
        200,
        {"Docker-Content-Digest": claimed, "Content-Type": OCI_MANIFEST},
        b"",
    )
    scripted.routes["GET", TAG_PATH] = lambda h: (200, {"Content-Type": OCI_MANIFEST}, body)
    scripted.routes["GET", f"/v2/team/app/manifests/{claimed}"] = lambda h: (
        200,
        {"Content-Type": OCI_MANIFEST},
        body,
    )


def down(scripted, status: int = 500) -> None:
    for route in list(scripted.routes):
        scripted.routes[route] = lambda h: (status, {}, b"")


def record_keys(source: ImageSource) -> list[str]:
    listing = source.store.s3.list_objects_v2(Bucket=source.store.bucket, Prefix="tags/")
    return [item["Key"] for item in listing.get("Contents", [])]


def test_a_tag_resolves_to_verified_bytes_and_is_remembered(source, scripted, image):
    serve(scripted, HONEST)
    resolved = source.resolve(image)
    assert (resolved.digest, resolved.media_type) == (digest_of(HONEST), OCI_MANIFEST)
    assert source.store.get_manifest(digest_of(HONEST)).body == HONEST
    seen = len(scripted.seen)
    assert source.resolve(image).digest == digest_of(HONEST)
    assert len(scripted.seen) == seen  # within the TTL: no upstream request


def test_a_lying_head_is_never_remembered(source, scripted, image):
    serve(scripted, OTHER, head_digest=digest_of(HONEST))
    with pytest.raises(RegistryError) as caught:
        source.resolve(image)
    assert caught.value.status == 502 and "stub" in caught.value.message
    assert record_keys(source) == []
    serve(scripted, HONEST)
    assert source.resolve(image).digest == digest_of(HONEST)


def test_head_that_tells_nothing_falls_back_to_get(source, scripted, image):
    serve(scripted, HONEST)
    scripted.routes["HEAD", TAG_PATH] = lambda h: (405, {}, b"")
    assert source.resolve(image).digest == digest_of(HONEST)


def test_a_generic_content_type_gets_the_documents_media_type(source, scripted, image):
    serve(scripted, HONEST)
    scripted.routes["GET", f"/v2/team/app/manifests/{digest_of(HONEST)}"] = lambda h: (
        200,
        {"Content-Type": "application/json"},
        HONEST,
    )
    assert source.resolve(image).media_type == OCI_MANIFEST


@pytest.mark.parametrize("status", [500, 503, 429])
def test_a_failing_upstream_is_answered_from_the_stale_record(
    source, scripted, image, clock, caplog, status
):
    serve(scripted, HONEST)
    assert source.resolve(image).digest == digest_of(HONEST)
    source.hot.discard(record_keys(source)[0])  # as a cold process would
    clock.now += 61
    down(scripted, status)
    with caplog.at_level(logging.WARNING, logger="ociwrap"):
        assert source.resolve(image).digest == digest_of(HONEST)
    assert "stale" in caplog.text
    clock.now += 3600
    with pytest.raises(RegistryError):
        source.resolve(image)


def test_a_deleted_tag_is_not_served_stale(source, scripted, image, clock):
    serve(scripted, HONEST)
    source.resolve(image)
    clock.now += 61
    down(scripted, 404)
    with pytest.raises(RegistryError) as caught:
        source.resolve(image)
    assert caught.value.code == "MANIFEST_UNKNOWN"


def test_concurrent_first_requests_ask_the_upstream_once(source, scripted, image):
    serve(scripted, HONEST)
    slow_head = scripted.routes["HEAD", TAG_PATH]

    def slowly(handler):
        time.sleep(0.2)
        return slow_head(handler)

    scripted.routes["HEAD", TAG_PATH] = slowly
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(source.resolve(image).digest))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [digest_of(HONEST)] * 8
    assert len([s for s in scripted.seen if s[0] == "HEAD"]) == 1


def test_manifests_by_digest_come_from_s3_when_this_repository_gave_them(source, scripted, image):
    serve(scripted, HONEST)
    source.store.put_manifest(digest_of(HONEST), HONEST, OCI_MANIFEST)
    # stored, but another repository gave it: this one must have it too
    assert source.manifest(image.repository, digest_of(HONEST)).body == HONEST
    assert len(scripted.seen) == 1
    assert source.manifest(image.repository, digest_of(HONEST)).body == HONEST
    assert len(scripted.seen) == 1


def test_a_stored_manifest_is_not_served_for_a_repository_that_lacks_it(source, scripted, image):
    source.store.put_manifest(digest_of(HONEST), HONEST, OCI_MANIFEST)
    scripted.routes["GET", f"/v2/team/app/manifests/{digest_of(HONEST)}"] = lambda h: (
        404,
        {},
        b"",
    )
    with pytest.raises(RegistryError) as caught:
        source.manifest(image.repository, digest_of(HONEST))
    assert caught.value.code == "MANIFEST_UNKNOWN"
