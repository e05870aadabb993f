"""The image source: verified tag records, stale-if-error, coalescing, S3 before upstream.

The in-memory upstream and bucket: what the source asks of each is counted there.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time

import pytest

from doubles.bucket import MemoryBucket
from doubles.upstream import MemoryUpstream
from ociwrap.bucket.links import Links
from ociwrap.names.reference import ImageRef, Registry, Repository
from ociwrap.registry.imagesource import ImageSource
from ociwrap.runtime.errors import RegistryError
from ociwrap.runtime.memcache import BoundedCache

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
PATH = "team/app"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def upstream() -> MemoryUpstream:
    """The upstream, in memory."""
    return MemoryUpstream()


@pytest.fixture
def source(upstream, clock) -> ImageSource:
    store = MemoryBucket()
    links = Links(store, BoundedCache(), 60, private=lambda registry: False, clock=clock)
    return ImageSource(
        store,
        upstream,
        links,
        tag_ttl_seconds=60,
        stale_if_error_seconds=3600,
        private=lambda registry: False,
        clock=clock,
    )


@pytest.fixture
def image(upstream) -> ImageRef:
    return ImageRef(
        Repository(Registry("stub", "http://stub.invalid", trusted=True), PATH), tag="1"
    )


def serve(upstream, body: bytes, head_digest: str | None = None) -> None:
    """The tag answers HEAD with `head_digest` (default: the body's) and GET with `body`;
    the digest answers whatever the tag's GET does."""
    claimed = head_digest or digest_of(body)
    upstream.recover()
    upstream.heads[PATH, "1"] = claimed
    upstream.manifests[PATH, "1"] = (body, OCI_MANIFEST)
    upstream.manifests[PATH, claimed] = (body, OCI_MANIFEST)


def down(upstream, status: int = 500) -> None:
    upstream.fail(status)


def record_keys(source: ImageSource) -> list[str]:
    return source.store.listing("tags/")


def test_a_tag_resolves_to_verified_bytes_and_is_remembered(source, upstream, image):
    serve(upstream, HONEST)
    resolved = source.resolve(image)
    assert (resolved.digest, resolved.media_type) == (digest_of(HONEST), OCI_MANIFEST)
    assert source.store.get_manifest(digest_of(HONEST)).body == HONEST
    seen = len(upstream.calls)
    assert source.resolve(image).digest == digest_of(HONEST)
    assert len(upstream.calls) == seen  # within the TTL: no upstream request


def test_a_lying_head_is_never_remembered(source, upstream, image):
    serve(upstream, OTHER, head_digest=digest_of(HONEST))
    with pytest.raises(RegistryError) as caught:
        source.resolve(image)
    assert caught.value.status == 502 and "stub" in caught.value.message
    assert record_keys(source) == []
    serve(upstream, HONEST)
    assert source.resolve(image).digest == digest_of(HONEST)


def test_head_that_tells_nothing_falls_back_to_get(source, upstream, image):
    serve(upstream, HONEST)
    upstream.heads[PATH, "1"] = None  # a 405
    assert source.resolve(image).digest == digest_of(HONEST)


def test_a_generic_content_type_gets_the_documents_media_type(source, upstream, image):
    serve(upstream, HONEST)
    upstream.manifests[PATH, digest_of(HONEST)] = (HONEST, "application/json")
    assert source.resolve(image).media_type == OCI_MANIFEST


@pytest.mark.parametrize("status", [500, 503, 429])
def test_a_failing_upstream_is_answered_from_the_stale_record(
    source, upstream, image, clock, caplog, status
):
    serve(upstream, HONEST)
    assert source.resolve(image).digest == digest_of(HONEST)
    source.tags.discard(record_keys(source)[0])  # as a cold process would
    clock.now += 61
    down(upstream, status)
    with caplog.at_level(logging.WARNING, logger="ociwrap"):
        assert source.resolve(image).digest == digest_of(HONEST)
    assert "stale" in caplog.text
    clock.now += 3600
    with pytest.raises(RegistryError):
        source.resolve(image)


def test_a_deleted_tag_is_not_served_stale(source, upstream, image, clock):
    serve(upstream, HONEST)
    source.resolve(image)
    clock.now += 61
    down(upstream, 404)
    with pytest.raises(RegistryError) as caught:
        source.resolve(image)
    assert caught.value.code == "MANIFEST_UNKNOWN"


def test_concurrent_first_requests_ask_the_upstream_once(source, upstream, image):
    serve(upstream, HONEST)

    def slowly(call):
        if call.operation == "head_manifest":
            time.sleep(0.2)

    upstream.before = slowly
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
    assert upstream.count("head_manifest") == 1


def test_manifests_by_digest_come_from_s3_when_this_repository_gave_them(source, upstream, image):
    serve(upstream, HONEST)
    source.store.put_manifest(digest_of(HONEST), HONEST, OCI_MANIFEST)
    # stored, but another repository gave it: this one must have it too
    assert source.manifest(image.repository, digest_of(HONEST)).body == HONEST
    assert len(upstream.calls) == 1
    assert source.manifest(image.repository, digest_of(HONEST)).body == HONEST
    assert len(upstream.calls) == 1


def test_a_stored_manifest_is_not_served_for_a_repository_that_lacks_it(source, upstream, image):
    source.store.put_manifest(digest_of(HONEST), HONEST, OCI_MANIFEST)
    upstream.fail(404, "get_manifest")
    with pytest.raises(RegistryError) as caught:
        source.manifest(image.repository, digest_of(HONEST))
    assert caught.value.code == "MANIFEST_UNKNOWN"
