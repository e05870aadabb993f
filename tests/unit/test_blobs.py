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
from ociwrap.runtime import errors, telemetry
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
    assert caught.value.message == (
        f"blob {DIGEST} of stub/{APP} is larger than MIRROR_MAX_BYTES ({len(LAYER)} bytes), "
        "the most this registry copies from an upstream that serves blobs itself"
    )
    assert caught.value.detail == {"digest": DIGEST, "limit": len(LAYER)}
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


@pytest.mark.parametrize(
    "url",
    [
        "https://cdn.example/x?X-Amz-Date=20231114T221320Z",  # no lifetime
        "https://cdn.example/x?X-Amz-Date=20231114T221320Z&X-Amz-Expires=soon",
        "https://cdn.example/x?X-Amz-Expires=600",  # no signing time
    ],
)
def test_a_signed_url_missing_half_its_dates_has_no_expiry(url):
    from ociwrap.registry.blobs import url_expiry

    assert url_expiry(url) is None


def test_a_cloudfront_expiry_counts_when_the_s3_pair_is_incomplete():
    from ociwrap.registry.blobs import url_expiry

    assert url_expiry("https://cdn.example/x?X-Amz-Expires=600&Expires=1700000300") == 1_700_000_300


def test_a_reused_signed_url_lives_a_quarter_of_its_life(timed_blobs, upstream, repo):
    blobs, clock = timed_blobs
    url = sigv4("20231114T221320Z", 200)  # signed at 1_700_000_000: reused for 50 s
    upstream.locations[APP, DIGEST] = url
    with telemetry.collecting() as stats:
        assert blobs.upstream(repo, DIGEST) == Redirect(url, DIGEST)
    assert stats.redirects == {"upstream": 1} and stats.cache == {}
    clock.now += 49
    with telemetry.collecting() as stats:
        assert blobs.upstream(repo, DIGEST) == Redirect(url, DIGEST)
    assert stats.redirects == {"upstream": 1}
    assert stats.cache == {("location", "memory"): 1}
    assert len(upstream.calls) == 1


def test_a_signed_url_with_four_seconds_left_is_reused_for_one(timed_blobs, upstream, repo):
    blobs, clock = timed_blobs
    upstream.locations[APP, DIGEST] = sigv4("20231114T221320Z", 4)
    blobs.upstream(repo, DIGEST)
    blobs.upstream(repo, DIGEST)
    assert len(upstream.calls) == 1
    clock.now += 1
    blobs.upstream(repo, DIGEST)
    assert len(upstream.calls) == 2


def test_an_expired_or_private_signed_url_takes_no_place_in_memory(bucket, upstream, repo):
    cache = BoundedCache()
    links = Links(bucket, BoundedCache(), ttl_seconds=60, private=lambda registry: False)
    mirror = Mirror(bucket, links, max_bytes=len(LAYER))
    private = Blobs(bucket, upstream, mirror, 600, cache, private=lambda registry: True)
    upstream.locations[APP, DIGEST] = "https://cdn.example/x"
    private.upstream(repo, DIGEST)
    assert len(cache) == 1  # only that the registry redirects
    cache = BoundedCache()
    public = Blobs(bucket, upstream, mirror, 600, cache, private=anonymous)
    upstream.locations[APP, DIGEST] = sigv4("20231114T221320Z", 60)  # long gone
    public.upstream(repo, DIGEST)
    assert len(cache) == 1


def test_a_signed_url_longer_than_the_memory_bound_is_not_kept(bucket, upstream, repo):
    links = Links(bucket, BoundedCache(), ttl_seconds=60, private=lambda registry: False)
    mirror = Mirror(bucket, links, max_bytes=len(LAYER))
    blobs = Blobs(bucket, upstream, mirror, 600, BoundedCache(max_bytes=40), private=anonymous)
    upstream.locations[APP, DIGEST] = "https://cdn.example/" + "x" * 40
    blobs.upstream(repo, DIGEST)
    blobs.upstream(repo, DIGEST)
    assert len(upstream.calls) == 2


def test_a_copy_in_the_bucket_is_counted_as_an_s3_redirect(blobs, upstream, repo):
    upstream.blobs[APP, DIGEST] = LAYER
    with telemetry.collecting() as stats:
        blobs.upstream(repo, DIGEST)
        blobs.upstream(repo, DIGEST)
    assert stats.redirects == {"s3": 2}


def test_a_redirecting_upstream_that_serves_bytes_is_copied_from_the_start(blobs, upstream, repo):
    blobs._learn(repo.registry, True)
    upstream.blobs[APP, DIGEST] = LAYER
    assert f"/blobs/sha256/{DIGEST[7:]}" in blobs.upstream(repo, DIGEST).location
    assert blobs.store.get_blob(DIGEST) == LAYER


def test_a_copy_held_already_is_not_made_again_for_its_repository(blobs, bucket, upstream, repo):
    upstream.blobs[APP, DIGEST] = LAYER
    blobs.upstream(repo, DIGEST)
    blobs._learn(repo.registry, True)  # as if it had redirected since
    bucket.calls.clear()
    blobs.upstream(repo, DIGEST)
    assert [method for method, _ in bucket.calls] == ["presign_blob"]
    assert upstream.bodies[-1].closed


def test_a_copy_held_for_another_repository_is_checked_and_linked_for_this_one(
    blobs, upstream, repo
):
    other = Repository(repo.registry, "other/app")
    upstream.blobs[APP, DIGEST] = LAYER
    upstream.blobs[other.path, DIGEST] = LAYER
    blobs.upstream(repo, DIGEST)
    blobs._learn(repo.registry, True)
    blobs.upstream(other, DIGEST)  # its bytes are read and checked: it gets its link
    assert blobs.mirror.size(other, DIGEST) == len(LAYER)


def test_a_blob_removed_by_the_lifecycle_is_looked_for_once_and_copied_again(
    blobs, bucket, upstream, repo
):
    upstream.blobs[APP, DIGEST] = LAYER
    blobs.upstream(repo, DIGEST)
    fresh = Blobs(bucket, upstream, blobs.mirror, 600, private=anonymous)
    bucket.expire("blobs/")
    bucket.calls.clear()
    assert f"/blobs/sha256/{DIGEST[7:]}" in fresh.upstream(repo, DIGEST).location
    assert bucket.called("blob_written") == [f"blobs/sha256/{DIGEST[7:]}"] * 2
    assert bucket.get_blob(DIGEST) == LAYER


def test_a_blob_gone_as_soon_as_it_was_stored_is_a_503(blobs, bucket, upstream, repo):
    upstream.blobs[APP, DIGEST] = LAYER
    bucket.before["blob_written"] = lambda key: bucket.objects.pop(key, None)
    with pytest.raises(RegistryError) as caught:
        blobs.upstream(repo, DIGEST)
    assert caught.value.status == 503
    assert caught.value.message == f"blob {DIGEST} went from the bucket as it was stored"
