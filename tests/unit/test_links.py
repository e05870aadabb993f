"""Repository links: which repositories a stored blob may be served under, and for how long.

Over the in-memory bucket, with one settable clock for the links and the instance's memory
cache. A new `Links` over the same bucket is a new function instance (cold memory).
"""

from __future__ import annotations

import pytest

from doubles.bucket import MemoryBucket
from ociwrap.bucket.links import Link, Links
from ociwrap.bucket.records import link_key
from ociwrap.names.reference import Registry, Repository
from ociwrap.runtime.memcache import BoundedCache

DIGEST = "sha256:" + "c" * 64
TTL = 300.0
DOCKER_HUB = Registry("docker.io", "https://registry-1.docker.io")
PRIVATE = Registry("corp", "https://r.corp.example", trusted=True)
BUSYBOX = Repository(DOCKER_HUB, "library/busybox")
SECRET = Repository(PRIVATE, "team/secret")


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def bucket(clock: Clock) -> MemoryBucket:
    return MemoryBucket(clock=clock)


def instance(bucket: MemoryBucket, clock: Clock) -> Links:
    """A function instance's links: its own memory, the shared bucket."""
    return Links(
        bucket, BoundedCache(clock=clock), TTL, lambda registry: registry is PRIVATE, clock=clock
    )


def test_no_link_until_the_repository_gave_the_blob(bucket, clock):
    assert instance(bucket, clock).get(BUSYBOX, DIGEST) is None


def test_a_public_repositorys_link_lasts_and_is_read_by_a_new_instance(bucket, clock):
    instance(bucket, clock).add(BUSYBOX, DIGEST, 1234)
    assert bucket.get_json(link_key(BUSYBOX, DIGEST)) == {"size": 1234, "expires": None}
    clock.now += 365 * 86400
    assert instance(bucket, clock).get(BUSYBOX, DIGEST) == Link(1234, None)
    assert instance(bucket, clock).get(SECRET, DIGEST) is None


def test_a_private_repositorys_link_lasts_exactly_its_ttl(bucket, clock):
    links = instance(bucket, clock)
    links.add(SECRET, DIGEST, 99)
    expires = clock.now + TTL
    assert bucket.get_json(link_key(SECRET, DIGEST)) == {"size": 99, "expires": expires}
    clock.now = expires - 1
    assert links.get(SECRET, DIGEST) == Link(99, expires)
    assert instance(bucket, clock).get(SECRET, DIGEST) == Link(99, expires)
    clock.now = expires
    assert links.get(SECRET, DIGEST) is None
    assert instance(bucket, clock).get(SECRET, DIGEST) is None


def test_a_link_is_read_from_the_bucket_once_per_instance(bucket, clock):
    instance(bucket, clock).add(BUSYBOX, DIGEST, 5)
    links = instance(bucket, clock)
    before = len(bucket.called("get_json"))
    assert links.get(BUSYBOX, DIGEST) == Link(5, None)
    clock.now += 10 * 86400
    assert links.get(BUSYBOX, DIGEST) == Link(5, None)
    assert len(bucket.called("get_json")) == before + 1


def test_a_link_just_written_is_answered_from_memory(bucket, clock):
    links = instance(bucket, clock)
    links.add(BUSYBOX, DIGEST, 5)
    links.add(SECRET, DIGEST, 6)
    clock.now += TTL - 1
    assert links.get(BUSYBOX, DIGEST) == Link(5, None)
    assert links.get(SECRET, DIGEST) == Link(6, clock.now + 1)
    assert bucket.called("get_json") == []


def test_a_private_link_read_back_is_remembered_until_it_expires_only(bucket, clock):
    instance(bucket, clock).add(SECRET, DIGEST, 6)
    clock.now += 100
    links = instance(bucket, clock)
    assert links.get(SECRET, DIGEST) == Link(6, clock.now + TTL - 100)
    clock.now += TTL - 101
    assert links.get(SECRET, DIGEST) is not None
    assert len(bucket.called("get_json")) == 1  # remembered
    clock.now += 1  # expired: the instance forgets it and asks the bucket again
    assert links.get(SECRET, DIGEST) is None
    assert len(bucket.called("get_json")) == 2


def test_memory_of_a_private_link_written_here_ends_with_the_link(bucket, clock):
    links = instance(bucket, clock)
    links.add(SECRET, DIGEST, 6)
    clock.now += TTL
    assert links.get(SECRET, DIGEST) is None
    assert bucket.called("get_json") == [link_key(SECRET, DIGEST)]


def test_a_link_without_a_size_has_none(bucket, clock):
    instance(bucket, clock).add(BUSYBOX, DIGEST)
    assert instance(bucket, clock).get(BUSYBOX, DIGEST) == Link(None, None)


@pytest.mark.parametrize(
    ("record", "link"),
    [
        ({"size": "12", "expires": None}, Link(None, None)),
        ({"size": 12, "expires": "soon"}, Link(12, None)),
        ({"size": 12}, Link(12, None)),
        ({"expires": 1_800_000_000}, Link(None, 1_800_000_000.0)),
    ],
)
def test_what_a_record_does_not_say_plainly_is_left_out(bucket, clock, record, link):
    bucket.put_json(link_key(BUSYBOX, DIGEST), record)
    got = instance(bucket, clock).get(BUSYBOX, DIGEST)
    assert got == link
    if link.expires is not None:
        assert isinstance(got.expires, float)


@pytest.mark.parametrize("record", [None, [], "link", 5])
def test_a_record_that_is_no_object_is_no_link(bucket, clock, record):
    bucket.put_json(link_key(BUSYBOX, DIGEST), record)
    assert instance(bucket, clock).get(BUSYBOX, DIGEST) is None
