"""Blob answers and mirroring: redirects only, bounded copies of byte-served blobs, one copy
per repository.

A scripted upstream on 127.0.0.1 and moto's in-process S3 (one mock for the module).
"""

from __future__ import annotations

import hashlib

import boto3
import pytest

from ociwrap.bucket.links import Links
from ociwrap.bucket.store import Store
from ociwrap.names.reference import Registry, Repository
from ociwrap.registry.blobs import Blobs
from ociwrap.registry.mirror import Mirror
from ociwrap.runtime import deadline
from ociwrap.runtime.errors import RegistryError
from ociwrap.runtime.memcache import BoundedCache
from ociwrap.upstream.fetch import Fetcher
from ociwrap.upstream.transport import Transport
from scripted_upstream import drip

LAYER = b"layer-bytes" * 500
DIGEST = "sha256:" + hashlib.sha256(LAYER).hexdigest()
PATH = f"/v2/team/app/blobs/{DIGEST}"


@pytest.fixture(autouse=True)
def names(dns) -> None:
    """The hosts of the signed URLs below resolve to public addresses (no query leaves)."""
    dns["cdn.example"] = ["93.184.215.14"]
    dns["bucket.s3.amazonaws.com"] = ["52.216.8.1"]


@pytest.fixture
def blobs(s3, request) -> Blobs:
    bucket = f"unit-{request.node.name.lower().replace('_', '-')[:40].strip('-')}"
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=bucket)
    store = Store(s3, bucket)
    links = Links(store, BoundedCache(), ttl_seconds=60, private=lambda registry: False)
    mirror = Mirror(store, links, max_bytes=len(LAYER))
    return Blobs(store, Fetcher(Transport()), mirror, presign_ttl_seconds=600)


@pytest.fixture
def repo(scripted) -> Repository:
    return Repository(Registry("stub", scripted.url, trusted=True), "team/app")


def keys(blobs: Blobs, prefix: str) -> list[str]:
    listing = blobs.store.s3.list_objects_v2(Bucket=blobs.store.bucket, Prefix=prefix)
    return [item["Key"] for item in listing.get("Contents", [])]


def test_an_upstream_redirect_is_handed_on(blobs, scripted, repo):
    scripted.routes["GET", PATH] = lambda h: (307, {"Location": "https://cdn.example/x"}, b"")
    reply = blobs.upstream(repo, DIGEST, head=False)
    assert (reply.status, reply.headers["Location"], reply.body) == (
        307,
        "https://cdn.example/x",
        b"",
    )
    assert keys(blobs, "") == []


def test_a_byte_served_blob_is_copied_once_per_repository(blobs, scripted, repo):
    scripted.routes["GET", PATH] = lambda h: (200, {}, LAYER)
    first = blobs.upstream(repo, DIGEST, head=False)
    assert first.status == 307 and f"/blobs/sha256/{DIGEST[7:]}" in first.headers["Location"]
    assert blobs.store.get_blob(DIGEST) == LAYER
    second = blobs.upstream(repo, DIGEST, head=False)
    head = blobs.upstream(repo, DIGEST, head=True)
    assert second.status == 307 and head.headers["Content-Length"] == str(len(LAYER))
    assert len(scripted.requests_to("/blobs/")) == 1


def test_another_repository_must_confirm_it_has_the_blob(blobs, scripted, repo):
    scripted.routes["GET", PATH] = lambda h: (200, {}, LAYER)
    blobs.upstream(repo, DIGEST, head=False)
    other = Repository(repo.registry, "other/app")
    scripted.routes["GET", f"/v2/other/app/blobs/{DIGEST}"] = lambda h: (404, {}, b"")
    with pytest.raises(RegistryError) as caught:
        blobs.upstream(other, DIGEST, head=False)
    assert caught.value.code == "BLOB_UNKNOWN"


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_blobs_over_the_mirror_limit_are_refused(blobs, scripted, repo, declared):
    big = LAYER + b"!"
    if declared:
        scripted.routes["GET", PATH] = lambda h: (200, {}, big)
    else:
        scripted.routes["GET", PATH] = lambda h: (200, {"Connection": "close"}, drip(big, 0))
    with pytest.raises(RegistryError) as caught:
        blobs.upstream(repo, DIGEST, head=False)
    assert (caught.value.code, caught.value.status) == ("DENIED", 403)
    assert "MIRROR_MAX_BYTES" in caught.value.message
    assert keys(blobs, "blobs/") == []


def test_a_copy_that_outlasts_the_deadline_leaves_no_blob(blobs, scripted, repo):
    scripted.routes["GET", PATH] = lambda h: (
        200,
        {"Content-Length": str(len(LAYER))},
        drip(LAYER[:10], 0.2, repeat=50),
    )
    with deadline.within(deadline.Deadline(0.6)), pytest.raises(RegistryError) as caught:
        blobs.upstream(repo, DIGEST, head=False)
    assert caught.value.status == 504
    assert keys(blobs, "blobs/") == [] and keys(blobs, "tags/") == []


def test_a_blob_whose_bytes_lie_is_not_stored(blobs, scripted, repo):
    scripted.routes["GET", PATH] = lambda h: (200, {}, LAYER[::-1])
    with pytest.raises(RegistryError) as caught:
        blobs.upstream(repo, DIGEST, head=False)
    assert caught.value.status == 502
    assert keys(blobs, "") == []


def test_head_with_a_known_size_asks_nobody(blobs, scripted, repo):
    reply = blobs.upstream(repo, DIGEST, head=True, size=1234)
    assert reply.headers["Content-Length"] == "1234" and scripted.seen == []


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
    blobs.hot = BoundedCache(clock=clock)
    return blobs, clock


def test_a_public_upstreams_signed_url_is_reused_while_it_is_young(timed_blobs, scripted, repo):
    blobs, clock = timed_blobs
    url = sigv4("20231114T221320Z", 200)  # reused for a quarter: 50 s
    scripted.routes["GET", PATH] = lambda h: (307, {"Location": url}, b"")
    for _ in range(3):
        assert blobs.upstream(repo, DIGEST, head=False).headers["Location"] == url
    assert len(scripted.requests_to("/blobs/")) == 1
    clock.now += 51
    blobs.upstream(repo, DIGEST, head=False)
    assert len(scripted.requests_to("/blobs/")) == 2
    other = Repository(repo.registry, "other/app")
    scripted.routes["GET", f"/v2/other/app/blobs/{DIGEST}"] = lambda h: (404, {}, b"")
    with pytest.raises(RegistryError):  # another repository is asked itself
        blobs.upstream(other, DIGEST, head=False)


def test_a_private_upstream_is_asked_every_time(blobs, scripted, repo):
    blobs.mirror.links.private = lambda registry: True
    scripted.routes["GET", PATH] = lambda h: (307, {"Location": "https://cdn.example/x"}, b"")
    blobs.upstream(repo, DIGEST, head=False)
    blobs.upstream(repo, DIGEST, head=False)
    assert len(scripted.requests_to("/blobs/")) == 2


def test_a_redirecting_upstream_is_asked_before_the_bucket(blobs, scripted, repo):
    scripted.routes["GET", PATH] = lambda h: (307, {"Location": "https://cdn.example/x"}, b"")
    calls: list[str] = []
    blobs.mirror.links.store.s3.meta.events.register(
        "before-call.s3.GetObject", lambda **kwargs: calls.append("get")
    )
    blobs.upstream(repo, DIGEST, head=False)
    assert calls == ["get"]  # not known yet: our copy is looked for first
    other = f"sha256:{'ab' * 32}"
    scripted.routes["GET", f"/v2/team/app/blobs/{other}"] = lambda h: (
        307,
        {"Location": "https://cdn.example/y"},
        b"",
    )
    assert blobs.upstream(repo, other, head=False).headers["Location"] == "https://cdn.example/y"
    assert calls == ["get"]  # it redirects: no S3 request for a copy that cannot exist


def test_an_upstream_that_turns_to_serving_bytes_still_gets_its_copy_checked(blobs, scripted, repo):
    scripted.routes["GET", PATH] = lambda h: (200, {}, LAYER)
    blobs.upstream(repo, DIGEST, head=False)  # copied
    blobs._learn(repo.registry, True)  # as if it had redirected since
    reply = blobs.upstream(repo, DIGEST, head=False)
    assert reply.status == 307 and f"/blobs/sha256/{DIGEST[7:]}" in reply.headers["Location"]
    assert len(keys(blobs, "uploads/")) == 0
    assert blobs.store.get_blob(DIGEST) == LAYER
