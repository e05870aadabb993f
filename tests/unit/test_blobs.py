"""Blob answers and mirroring: redirects only, bounded copies of byte-served blobs, one copy
per repository.

Over the in-memory bucket and upstream: no socket anywhere.
"""

from __future__ import annotations

import hashlib

import pytest

from doubles.bucket import MemoryBucket
from doubles.upstream import MemoryUpstream
from ociwrap.bucket.links import Links
from ociwrap.names.reference import Registry, Repository
from ociwrap.registry.blobs import Blobs
from ociwrap.registry.mirror import Mirror
from ociwrap.registry.results import BlobSize, Redirect
from ociwrap.registry.wiring import anonymous
from ociwrap.runtime import errors
from ociwrap.runtime.errors import RegistryError
from ociwrap.runtime.memcache import BoundedCache

LAYER = b"layer-bytes" * 500
DIGEST = "sha256:" + hashlib.sha256(LAYER).hexdigest()
APP = "team/app"


@pytest.fixture(autouse=True)
def names(dns) -> None:
    """The hosts of the signed URLs below resolve to public addresses (no query leaves)."""
    dns["cdn.example"] = ["93.184.215.14"]
    dns["bucket.s3.amazonaws.com"] = ["52.216.8.1"]


@pytest.fixture
def bucket() -> MemoryBucket:
    return MemoryBucket()


@pytest.fixture
def upstream() -> MemoryUpstream:
    return MemoryUpstream()


@pytest.fixture
def blobs(bucket, upstream) -> Blobs:
    links = Links(bucket, BoundedCache(), ttl_seconds=60, private=lambda registry: False)
    mirror = Mirror(bucket, links, max_bytes=len(LAYER))
    return Blobs(bucket, upstream, mirror, presign_ttl_seconds=600, private=anonymous)


@pytest.fixture
def repo() -> Repository:
    return Repository(Registry("stub", "http://stub.invalid", trusted=True), APP)


def keys(blobs: Blobs, prefix: str) -> list[str]:
    return blobs.store.listing(prefix)


def test_an_upstream_redirect_is_handed_on(blobs, upstream, repo):
    upstream.locations[APP, DIGEST] = "https://cdn.example/x"
    assert blobs.upstream(repo, DIGEST) == Redirect("https://cdn.example/x", DIGEST)
    assert keys(blobs, "") == []


def test_a_byte_served_blob_is_copied_once_per_repository(blobs, upstream, repo):
    upstream.blobs[APP, DIGEST] = LAYER
    first = blobs.upstream(repo, DIGEST)
    assert f"/blobs/sha256/{DIGEST[7:]}" in first.location and first.digest == DIGEST
    assert blobs.store.get_blob(DIGEST) == LAYER
    second = blobs.upstream(repo, DIGEST)
    assert f"/blobs/sha256/{DIGEST[7:]}" in second.location
    assert blobs.size(repo, DIGEST) == BlobSize(DIGEST, len(LAYER))
    assert len(upstream.calls) == 1


def test_another_repository_must_confirm_it_has_the_blob(blobs, upstream, repo):
    upstream.blobs[APP, DIGEST] = LAYER
    blobs.upstream(repo, DIGEST)
    other = Repository(repo.registry, "other/app")  # it has no such blob: 404
    with pytest.raises(RegistryError) as caught:
        blobs.upstream(other, DIGEST)
    assert caught.value.code == "BLOB_UNKNOWN"


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_blobs_over_the_mirror_limit_are_refused(blobs, upstream, repo, declared):
    upstream.blobs[APP, DIGEST] = LAYER + b"!"
    upstream.declares_size = declared
    with pytest.raises(RegistryError) as caught:
        blobs.upstream(repo, DIGEST)
    assert (caught.value.code, caught.value.status) == ("DENIED", 403)
    assert "MIRROR_MAX_BYTES" in caught.value.message
    assert keys(blobs, "blobs/") == []


def test_a_copy_that_outlasts_the_deadline_leaves_no_blob(blobs, upstream, repo):
    """The body stops part-way as the deadline runs out (what reading a dripping body ends
    with is tests/unit/test_transport.py's)."""
    upstream.blobs[APP, DIGEST] = LAYER
    upstream.cut = (500, errors.deadline_exceeded("upstream registry stub", 0.6))
    with pytest.raises(RegistryError) as caught:
        blobs.upstream(repo, DIGEST)
    assert caught.value.status == 504
    assert keys(blobs, "blobs/") == [] and keys(blobs, "tags/") == []


def test_a_blob_whose_bytes_lie_is_not_stored(blobs, upstream, repo):
    upstream.blobs[APP, DIGEST] = LAYER[::-1]
    with pytest.raises(RegistryError) as caught:
        blobs.upstream(repo, DIGEST)
    assert caught.value.status == 502
    assert keys(blobs, "") == []


def test_the_size_of_a_blob_not_copied_is_the_upstreams(blobs, upstream, repo):
    upstream.blobs[APP, DIGEST] = b"x" * 1234
    assert blobs.size(repo, DIGEST) == BlobSize(DIGEST, 1234)
    assert [call.operation for call in upstream.calls] == ["blob_size"]


# -- fewer round trips: signed URLs reused, redirecting upstreams asked first --------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def sigv4(signed_at: str, expires: int) -> str:
    return (
        "https://bucket.s3.amazonaws.com/x?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        f"&X-Amz-Date={signed_at}&X-Amz-Expires={expires}&X-Amz-Signature=abc"
    )


@pytest.mark.parametrize(
    ("url", "expiry"),
    [
        (sigv4("20231114T221320Z", 1200), 1_700_000_000 + 1200),
        ("https://cdn.example/x?Expires=1700000300&Signature=s", 1_700_000_300),
        (
            "https://storage.googleapis.com/x?X-Goog-Date=20231114T221320Z&X-Goog-Expires=600",
            1_700_000_600,
        ),
        ("https://cdn.example/x?x-amz-date=20231114T221320Z&x-amz-expires=60", 1_700_000_060),
        ("https://cdn.example/x", None),
        ("https://cdn.example/x?Expires=soon", None),
        (sigv4("2023-11-14", 60), None),
    ],
)
def test_signed_url_expiry(url, expiry):
    from ociwrap.registry.blobs import url_expiry

    assert url_expiry(url) == expiry


def test_how_long_a_signed_url_is_reused():
    from ociwrap.registry.blobs import location_ttl

    now = 1_700_000_000.0
    assert location_ttl(sigv4("20231114T221320Z", 3000), now) == 60  # at most a minute
    assert location_ttl(sigv4("20231114T221320Z", 100), now) == 25  # a quarter of its life
    assert location_ttl(sigv4("20231114T221320Z", 100), now + 200) == 0  # expired
    assert location_ttl("https://cdn.example/x", now) == 15  # it says nothing: briefly


@pytest.fixture
def timed_blobs(blobs) -> tuple[Blobs, Clock]:
    clock = Clock()
    blobs.clock = clock
    blobs.locations = BoundedCache(clock=clock).namespace("blob locations")
    return blobs, clock


def test_a_public_upstreams_signed_url_is_reused_while_it_is_young(timed_blobs, upstream, repo):
    blobs, clock = timed_blobs
    url = sigv4("20231114T221320Z", 200)  # reused for a quarter: 50 s
    upstream.locations[APP, DIGEST] = url
    for _ in range(3):
        assert blobs.upstream(repo, DIGEST).location == url
    assert len(upstream.calls) == 1
    clock.now += 51
    blobs.upstream(repo, DIGEST)
    assert len(upstream.calls) == 2
    other = Repository(repo.registry, "other/app")  # it has no such blob: 404
    with pytest.raises(RegistryError):  # another repository is asked itself
        blobs.upstream(other, DIGEST)


def test_a_private_upstream_is_asked_every_time(blobs, upstream, repo):
    blobs.private = lambda registry: True
    upstream.locations[APP, DIGEST] = "https://cdn.example/x"
    blobs.upstream(repo, DIGEST)
    blobs.upstream(repo, DIGEST)
    assert len(upstream.calls) == 2


def reads(bucket: MemoryBucket) -> list[str]:
    """The bucket's reads so far (S3 GetObject requests)."""
    return [method for method, _ in bucket.calls if method.startswith("get_")]


def test_a_redirecting_upstream_is_asked_before_the_bucket(blobs, bucket, upstream, repo):
    upstream.locations[APP, DIGEST] = "https://cdn.example/x"
    blobs.upstream(repo, DIGEST)
    assert len(reads(bucket)) == 1  # not known yet: our copy is looked for first
    other = f"sha256:{'ab' * 32}"
    upstream.locations[APP, other] = "https://cdn.example/y"
    assert blobs.upstream(repo, other).location == "https://cdn.example/y"
    assert len(reads(bucket)) == 1  # it redirects: no S3 request for a copy that cannot exist


def test_an_upstream_that_turns_to_serving_bytes_still_gets_its_copy_checked(blobs, upstream, repo):
    upstream.blobs[APP, DIGEST] = LAYER
    blobs.upstream(repo, DIGEST)  # copied
    blobs._learn(repo.registry, True)  # as if it had redirected since
    assert f"/blobs/sha256/{DIGEST[7:]}" in blobs.upstream(repo, DIGEST).location
    assert len(keys(blobs, "uploads/")) == 0
    assert blobs.store.get_blob(DIGEST) == LAYER
