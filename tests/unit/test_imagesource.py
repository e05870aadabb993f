"""The image source: verified tag records, stale-if-error, coalescing, S3 before upstream.

The in-memory upstream and bucket: what the source asks of each is counted there.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import Counter

import pytest

from doubles.bucket import MemoryBucket
from doubles.upstream import MemoryUpstream
from ociwrap.bucket.links import Links
from ociwrap.bucket.store import blob_key
from ociwrap.names.mediatypes import SERVABLE_TYPES
from ociwrap.names.reference import ImageRef, Registry, Repository
from ociwrap.registry.imagesource import MAX_CONFIG_BYTES, ImageSource, Resolved, with_role
from ociwrap.runtime import deadline, telemetry
from ociwrap.runtime.errors import RegistryError
from ociwrap.runtime.memcache import BoundedCache
from ociwrap.upstream.interface import Manifest

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"


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


# -- where each answer came from, and what is kept -----------------------------------------


class Recording(MemoryUpstream):
    """Remembers the Accept of every HEAD and GET of a manifest."""

    def __init__(self) -> None:
        super().__init__()
        self.accepts: list[tuple[str, tuple[str, ...]]] = []

    def head_manifest(self, repo, ref, accept):
        self.accepts.append(("head", tuple(accept)))
        return super().head_manifest(repo, ref, accept)

    def get_manifest(self, repo, ref, accept):
        self.accepts.append(("get", tuple(accept)))
        return super().get_manifest(repo, ref, accept)


def source_over(store, upstream, clock, private=False) -> ImageSource:
    """A source (a process) over `store`, its memory on `clock` too."""
    links = Links(store, BoundedCache(clock=clock), 60, private=lambda r: False, clock=clock)
    return ImageSource(
        store,
        upstream,
        links,
        tag_ttl_seconds=60,
        stale_if_error_seconds=3600,
        private=lambda registry: private,
        cache=BoundedCache(clock=clock),
        clock=clock,
    )


def test_each_resolution_says_which_level_answered(upstream, image, clock):
    store = MemoryBucket()
    serve(upstream, HONEST)
    source = source_over(store, upstream, clock)
    with telemetry.collecting() as stats:
        source.resolve(image)
    assert stats.cache == Counter({("tag", "upstream"): 1, ("manifest", "upstream"): 1})
    with telemetry.collecting() as stats:
        source.resolve(image)
    assert stats.cache == Counter({("tag", "memory"): 1})
    with telemetry.collecting() as stats:
        source_over(store, upstream, clock).resolve(image)  # a new process: the bucket's record
    assert stats.cache == Counter({("tag", "s3"): 1})
    with telemetry.collecting() as stats:
        source.manifest(image.repository, digest_of(HONEST))
    assert stats.cache == Counter({("manifest", "stored"): 1})


def test_the_record_says_digest_type_and_until_when(upstream, image, clock):
    store = MemoryBucket()
    serve(upstream, HONEST)
    source_over(store, upstream, clock).resolve(image)
    [key] = store.listing("tags/upstream/")
    assert store.get_json(key) == {
        "digest": digest_of(HONEST),
        "mediaType": OCI_MANIFEST,
        "expires": clock.now + 60,
    }


def test_a_record_read_from_the_bucket_is_remembered_for_what_is_left_of_its_ttl(
    upstream, image, clock
):
    store = MemoryBucket()
    serve(upstream, HONEST)
    source_over(store, upstream, clock).resolve(image)
    clock.now += 59
    source = source_over(store, upstream, clock)
    heads = upstream.count("head_manifest")
    assert source.resolve(image).media_type == OCI_MANIFEST
    reads = len(store.called("get_json"))
    assert source.resolve(image).digest == digest_of(HONEST)
    assert len(store.called("get_json")) == reads  # remembered in memory
    assert upstream.count("head_manifest") == heads
    clock.now += 1  # the record's last second is over: asked again
    source.resolve(image)
    assert upstream.count("head_manifest") == heads + 1


def test_a_record_at_its_expiry_is_not_fresh(upstream, image, clock):
    store = MemoryBucket()
    serve(upstream, HONEST)
    source_over(store, upstream, clock).resolve(image)
    clock.now += 60
    heads = upstream.count("head_manifest")
    source_over(store, upstream, clock).resolve(image)
    assert upstream.count("head_manifest") == heads + 1


def test_a_tag_is_asked_for_with_every_servable_type(image, clock):
    upstream = Recording()
    serve(upstream, HONEST)
    upstream.heads[PATH, "1"] = None
    source_over(MemoryBucket(), upstream, clock).resolve(image)
    assert [kind for kind, _ in upstream.accepts] == ["head", "get"]
    assert all(set(accept) == set(SERVABLE_TYPES) for _, accept in upstream.accepts)
    assert all(len(accept) == len(SERVABLE_TYPES) for _, accept in upstream.accepts)
    upstream.accepts.clear()
    source_over(MemoryBucket(), upstream, clock).manifest(image.repository, digest_of(HONEST))
    assert [(kind, set(accept)) for kind, accept in upstream.accepts] == [
        ("get", set(SERVABLE_TYPES))
    ]


def test_an_image_by_digest_resolves_to_that_digest(source, upstream, image):
    serve(upstream, HONEST)
    pinned = ImageRef(image.repository, digest=digest_of(HONEST))
    resolved = source.resolve(pinned)
    assert resolved == Resolved(pinned, digest_of(HONEST), OCI_MANIFEST)
    assert upstream.count("head_manifest") == 0


def test_a_stale_answer_is_logged_and_counted(upstream, image, clock, caplog):
    store = MemoryBucket()
    serve(upstream, HONEST)
    source_over(store, upstream, clock).resolve(image)
    clock.now += 61
    down(upstream, 503)
    source = source_over(store, upstream, clock)
    with telemetry.collecting() as stats, caplog.at_level(logging.WARNING, logger="ociwrap"):
        resolved = source.resolve(image)
    assert resolved == Resolved(image, digest_of(HONEST), OCI_MANIFEST)
    assert stats.events["stale"] == 1
    [line] = [r.getMessage() for r in caplog.records if "stale" in r.getMessage()]
    assert line.startswith(
        f"upstream failed; serving stale tag {image} -> {digest_of(HONEST)} (1 s past its TTL): "
        "upstream registry stub answered 503"
    )


def test_a_private_registry_is_never_answered_stale(upstream, image, clock):
    store = MemoryBucket()
    serve(upstream, HONEST)
    source_over(store, upstream, clock, private=True).resolve(image)
    clock.now += 61
    down(upstream, 503)
    with pytest.raises(RegistryError) as caught:
        source_over(store, upstream, clock, private=True).resolve(image)
    assert caught.value.code == "UNAVAILABLE"


def test_a_stored_document_of_another_type_is_not_served(source, upstream, image):
    source.store.put_manifest(digest_of(HONEST), HONEST, "application/json")
    assert source.stored(digest_of(HONEST)) is None
    source.keep(digest_of(HONEST), HONEST, OCI_MANIFEST)
    assert source.store.get_manifest(digest_of(HONEST)).media_type == OCI_MANIFEST
    assert source.stored(digest_of(HONEST)).media_type == OCI_MANIFEST


def test_bytes_that_do_not_hash_to_the_digest_name_the_repository(source, upstream, image):
    wanted = digest_of(HONEST)
    upstream.manifests[PATH, wanted] = (OTHER, OCI_MANIFEST)

    class Lying(MemoryUpstream):
        def get_manifest(self, repo, ref, accept):
            return Manifest(OTHER, OCI_MANIFEST, wanted)

    source.fetcher = Lying()
    with pytest.raises(RegistryError) as caught:
        source.fetch(image.repository, wanted, [OCI_MANIFEST])
    assert caught.value.message == (
        f"upstream registry stub sent a manifest for {wanted} "
        "whose bytes do not hash to that digest"
    )
    assert caught.value.detail == {"repository": f"stub/{PATH}"}
    assert source.store.listing("manifests/") == []


def test_a_config_is_fetched_once_kept_and_linked(upstream, image, clock):
    store = MemoryBucket()
    config = b'{"architecture": "amd64", "os": "linux", "rootfs": {"diff_ids": []}}'
    manifest_body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": digest_of(config), "size": len(config)},
            "layers": [],
        }
    ).encode()
    upstream.blobs[PATH, digest_of(config)] = config
    serve(upstream, manifest_body)
    source = source_over(store, upstream, clock)
    document = source.document(image, source.resolve(image).digest, "base")
    assert source.config(image, document, "base").document["architecture"] == "amd64"
    assert store.held(blob_key(digest_of(config))) == config
    other = source_over(store, upstream, clock)
    assert other.config(image, document, "base").document["os"] == "linux"
    assert upstream.count("small_blob") == 1  # linked: read from the bucket
    store.expire(blob_key(digest_of(config)))
    third = source_over(store, upstream, clock)
    assert third.config(image, document, "base").document["os"] == "linux"
    assert upstream.count("small_blob") == 2


def test_a_config_over_the_limit_is_named(source, upstream, image):
    big = b"{" + b" " * MAX_CONFIG_BYTES + b"}"
    manifest_body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": digest_of(big), "size": 10},
            "layers": [],
        }
    ).encode()
    upstream.blobs[PATH, digest_of(big)] = big
    serve(upstream, manifest_body)
    document = source.document(image, source.resolve(image).digest, "base")
    with pytest.raises(RegistryError) as caught:
        source.config(image, document, "base")
    assert caught.value.message == (
        f"upstream registry stub sent a image config larger than the limit of "
        f"{MAX_CONFIG_BYTES} bytes"
    )


def test_a_document_that_is_no_json_is_invalid_naming_its_role(source, upstream, image):
    source.store.put_manifest(digest_of(b"{"), b"{", OCI_MANIFEST)
    source.links.add(image.repository, digest_of(b"{"))
    with pytest.raises(RegistryError) as caught:
        source.document(image, digest_of(b"{"), "wrapper 2")
    assert caught.value.code == "MANIFEST_INVALID"
    assert caught.value.detail["image"] == "wrapper 2"
    assert caught.value.detail["reason"].startswith("not valid JSON")


# -- a request that waits for another's answer ----------------------------------------------


def test_a_request_that_waited_for_another_takes_its_answer_from_memory(upstream, image, clock):
    """Two first requests for one tag: the second finds no record, waits for the first,
    then takes the resolution the first one made (digest and media type) from memory."""
    store = MemoryBucket()
    serve(upstream, HONEST)
    source = source_over(store, upstream, clock)
    looked = threading.Event()
    second: dict = {}

    def resolve_second() -> None:
        with telemetry.collecting() as stats:
            second["resolved"] = source.resolve(image)
        second["cache"] = stats.cache

    def signal(key: str) -> None:
        if threading.current_thread().name == "second" and key.startswith("tags/upstream/"):
            looked.set()  # it found no record and goes for the lock next

    store.before["get_json"] = signal
    waiter = threading.Thread(target=resolve_second, name="second")

    def first_at_the_upstream(call) -> None:
        if call.operation == "head_manifest" and not waiter.is_alive():
            waiter.start()
            assert looked.wait(10)

    upstream.before = first_at_the_upstream
    assert source.resolve(image) == Resolved(image, digest_of(HONEST), OCI_MANIFEST)
    waiter.join(10)
    assert second["resolved"] == Resolved(image, digest_of(HONEST), OCI_MANIFEST)
    assert second["cache"] == Counter({("tag", "memory"): 1})
    assert upstream.count("head_manifest") == 1


# -- what memory holds, and for how long ----------------------------------------------------


def test_past_its_ttl_a_tag_is_no_longer_answered_from_memory(upstream, image, clock):
    store = MemoryBucket()
    serve(upstream, HONEST)
    source = source_over(store, upstream, clock)
    source.resolve(image)
    clock.now += 60
    reads = len(store.called("get_json"))
    with telemetry.collecting() as stats:
        assert source.resolve(image).digest == digest_of(HONEST)
    assert stats.cache == Counter({("tag", "upstream"): 1, ("manifest", "stored"): 1})
    assert len(store.called("get_json")) == reads + 1  # the bucket's record, expired too


def test_a_record_from_the_bucket_leaves_memory_when_its_ttl_ends(upstream, image, clock):
    store = MemoryBucket()
    serve(upstream, HONEST)
    source_over(store, upstream, clock).resolve(image)
    clock.now += 59
    source = source_over(store, upstream, clock)
    with telemetry.collecting() as stats:
        source.resolve(image)
    assert stats.cache == Counter({("tag", "s3"): 1})
    clock.now += 1
    with telemetry.collecting() as stats:
        source.resolve(image)
    assert stats.cache == Counter({("tag", "upstream"): 1, ("manifest", "stored"): 1})


def test_a_record_read_from_the_bucket_at_its_expiry_is_not_an_answer(upstream, image, clock):
    store = MemoryBucket()
    serve(upstream, HONEST)
    source_over(store, upstream, clock).resolve(image)
    clock.now += 60
    with telemetry.collecting() as stats:
        source_over(store, upstream, clock).resolve(image)
    assert stats.cache == Counter({("tag", "upstream"): 1, ("manifest", "stored"): 1})


def sized_source(upstream, clock, max_bytes: int) -> ImageSource:
    """A source whose memory holds at most `max_bytes` (every entry counts its size)."""
    store = MemoryBucket()
    cache = BoundedCache(max_bytes=max_bytes, clock=clock)
    links = Links(store, cache, 60, private=lambda r: False, clock=clock)
    return ImageSource(
        store,
        upstream,
        links,
        tag_ttl_seconds=60,
        stale_if_error_seconds=3600,
        private=lambda registry: False,
        cache=cache,
        clock=clock,
    )


def test_a_kept_manifest_is_read_back_from_memory(source):
    source.keep(digest_of(HONEST), HONEST, OCI_MANIFEST)
    assert source.stored(digest_of(HONEST)).body == HONEST
    assert source.store.called("get_manifest") == []


@pytest.mark.parametrize(("room", "reads"), [(0, 2), (1, 0)])
def test_a_manifest_larger_than_memory_holds_is_read_from_the_bucket(upstream, clock, room, reads):
    """`room` bytes more than the manifest in memory: without them it is not held."""
    source = sized_source(upstream, clock, len(HONEST) - 1 + room)
    source.keep(digest_of(HONEST), HONEST, OCI_MANIFEST)
    for _ in range(2):
        assert source.stored(digest_of(HONEST)).body == HONEST
    assert len(source.store.called("get_manifest")) == reads
    source.store.put_manifest(digest_of(OTHER), OTHER, OCI_MANIFEST)
    for _ in range(2):
        assert source.stored(digest_of(OTHER)).body == OTHER
    assert len(source.store.called("get_manifest")) == reads + (2 if reads else 1)


def image_with_config(upstream, config: bytes, path: str = PATH) -> bytes:
    """A manifest of `config` and no layers in `path`, served by the tag `1`; its bytes."""
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": digest_of(config), "size": len(config)},
            "layers": [],
        }
    ).encode()
    upstream.blobs[path, digest_of(config)] = config
    upstream.manifests[path, "1"] = (body, OCI_MANIFEST)
    upstream.manifests[path, digest_of(body)] = (body, OCI_MANIFEST)
    return body


CONFIG = b'{"architecture": "amd64", "os": "linux", "rootfs": {"diff_ids": []}}'


@pytest.mark.parametrize("room", [0, 1])
def test_a_document_larger_than_memory_holds_is_not_held(upstream, image, clock, room):
    body = image_with_config(upstream, CONFIG)
    source = sized_source(upstream, clock, len(body) - 1 + room)
    source.document(image, digest_of(body), "base")
    assert (source.documents.get(digest_of(body)) is not None) == (room == 1)


@pytest.mark.parametrize("room", [0, 1])
def test_a_config_larger_than_memory_holds_is_not_held(upstream, image, clock, room):
    body = image_with_config(upstream, CONFIG)
    source = sized_source(upstream, clock, len(CONFIG) - 1 + room)
    document = source.document(image, digest_of(body), "base")
    assert source.config(image, document, "base").document["os"] == "linux"
    assert (source.configs.get((0, digest_of(CONFIG))) is not None) == (room == 1)


def test_a_config_is_linked_with_its_size(source, upstream, image):
    body = image_with_config(upstream, CONFIG)
    document = source.document(image, digest_of(body), "base")
    source.config(image, document, "base")
    link = source.links.get(image.repository, digest_of(CONFIG))
    assert link is not None and link.size == len(CONFIG)


def test_a_config_read_for_one_repository_is_not_served_for_another_lacking_it(
    source, upstream, image
):
    body = image_with_config(upstream, CONFIG)
    document = source.document(image, digest_of(body), "base")
    assert source.config(image, document, "base").document["os"] == "linux"
    other = ImageRef(Repository(image.repository.registry, "team/other"), tag="1")
    with pytest.raises(RegistryError) as caught:
        source.config(other, document, "wrapper")
    assert caught.value.code == "BLOB_UNKNOWN"
    assert upstream.count("small_blob", digest_of(CONFIG)) == 2  # asked of both repositories


def test_a_config_that_is_no_json_is_invalid_naming_its_role(source, upstream, image):
    body = image_with_config(upstream, b"{not json")
    document = source.document(image, digest_of(body), "base")
    with pytest.raises(RegistryError) as caught:
        source.config(image, document, "wrapper 2")
    assert caught.value.code == "MANIFEST_INVALID"
    assert caught.value.detail["image"] == "wrapper 2"
    assert caught.value.detail["reason"].startswith("config is not valid JSON")


def test_a_config_that_does_not_fit_its_manifest_is_invalid_naming_its_role(
    source, upstream, image
):
    config = b'{"architecture": "amd64", "os": "linux", "rootfs": {"diff_ids": ["sha256:1"]}}'
    body = image_with_config(upstream, config)
    document = source.document(image, digest_of(body), "base")
    with pytest.raises(RegistryError) as caught:
        source.config(image, document, "wrapper 2")
    assert caught.value.detail == {
        "image": "wrapper 2",
        "reason": "config lists 1 diff_ids but the manifest has 0 layers",
    }


def test_a_manifest_kept_as_an_index_is_read_as_one_naming_its_role(source, image):
    """The media type a document was kept with says what it is: a manifest's bytes kept
    as an index are an index without entries."""
    source.keep(digest_of(HONEST), HONEST, "application/vnd.oci.image.index.v1+json")
    source.links.add(image.repository, digest_of(HONEST))
    with pytest.raises(RegistryError) as caught:
        source.document(image, digest_of(HONEST), "wrapper 2")
    assert caught.value.code == "MANIFEST_INVALID"
    assert caught.value.detail["image"] == "wrapper 2"


def test_a_long_reference_is_cut_short_in_the_message(source, upstream, image):
    wanted = "sha256:" + "a" * 200

    class Lying(MemoryUpstream):
        def get_manifest(self, repo, ref, accept):
            return Manifest(OTHER, OCI_MANIFEST, wanted)

    source.fetcher = Lying()
    with pytest.raises(RegistryError) as caught:
        source.fetch(image.repository, wanted, [OCI_MANIFEST])
    assert caught.value.message == (
        f"upstream registry stub sent a manifest for {'sha256:' + 'a' * 133} "
        "whose bytes do not hash to that digest"
    )


# -- the share of the deadline a refresh may use ---------------------------------------------


def deadline_seen(upstream) -> list:
    """The deadline current at each HEAD the upstream is asked (None outside one)."""
    seen: list = []

    def record(call) -> None:
        if call.operation == "head_manifest":
            current = deadline.current()
            seen.append(None if current is None else current.remaining())

    upstream.before = record
    return seen


def stale_source(upstream, image, clock, stale_seconds: float) -> ImageSource:
    """A new process over a bucket whose record of the tag is a second past its TTL."""
    store = MemoryBucket()
    serve(upstream, HONEST)
    source_over(store, upstream, clock).resolve(image)
    clock.now += 61
    links = Links(store, BoundedCache(clock=clock), 60, private=lambda r: False, clock=clock)
    return ImageSource(
        store,
        upstream,
        links,
        tag_ttl_seconds=60,
        stale_if_error_seconds=stale_seconds,
        private=lambda registry: False,
        cache=BoundedCache(clock=clock),
        clock=clock,
    )


@pytest.mark.parametrize(
    ("left", "stale_seconds", "refresh"),
    [
        (6.0, 3600, 3.0),  # half of what is left
        (20.0, 3600, 15.0),  # at most five seconds kept back
        (10.0, 3600, 5.0),  # half is exactly five
        (20.0, 1, 15.0),  # any stale window keeps time back
        (20.0, 0, 20.0),  # no stale window: nothing to keep time for
    ],
)
def test_with_a_stale_record_a_refresh_leaves_time_to_serve_it(
    upstream, image, clock, left, stale_seconds, refresh
):
    source = stale_source(upstream, image, clock, stale_seconds)
    seen = deadline_seen(upstream)
    with deadline.within(deadline.Deadline(left, clock=lambda: 500.0)):
        source.resolve(image)
    assert seen == [refresh]


def test_without_a_record_a_resolution_has_the_whole_deadline(source, upstream, image):
    serve(upstream, HONEST)
    seen = deadline_seen(upstream)
    with deadline.within(deadline.Deadline(20.0, clock=lambda: 500.0)):
        source.resolve(image)
    assert seen == [20.0]


def test_outside_a_request_a_refresh_has_no_deadline(upstream, image, clock):
    source = stale_source(upstream, image, clock, 3600)
    seen = deadline_seen(upstream)
    source.resolve(image)
    assert seen == [None]


def test_only_a_private_registry_is_never_answered_stale(upstream, image, clock):
    store = MemoryBucket()
    serve(upstream, HONEST)
    links = Links(store, BoundedCache(clock=clock), 60, private=lambda r: False, clock=clock)

    def source_private_to(name: str) -> ImageSource:
        return ImageSource(
            store,
            upstream,
            links,
            tag_ttl_seconds=60,
            stale_if_error_seconds=3600,
            private=lambda registry: registry.name == name,
            cache=BoundedCache(clock=clock),
            clock=clock,
        )

    source_private_to("stub").resolve(image)
    clock.now += 61
    down(upstream, 503)
    assert source_private_to("other").resolve(image).digest == digest_of(HONEST)
    with pytest.raises(RegistryError) as caught:
        source_private_to("stub").resolve(image)
    assert caught.value.code == "UNAVAILABLE"


# -- errors naming the base or a wrapper ------------------------------------------------------


def failing(exc: RegistryError):
    def call():
        raise exc

    return call


@pytest.mark.parametrize("code", ["MANIFEST_UNKNOWN", "NAME_UNKNOWN", "BLOB_UNKNOWN"])
def test_what_an_upstream_lacks_is_a_manifest_unknown_naming_the_image(image, code):
    with pytest.raises(RegistryError) as caught:
        with_role("wrapper 2", image, failing(RegistryError(code, "gone", status=404)))
    assert caught.value.code == "MANIFEST_UNKNOWN" and caught.value.status == 404
    assert caught.value.message == f"wrapper 2 image stub/{PATH}:1 not found: gone"
    assert caught.value.detail == {"image": f"stub/{PATH}:1", "role": "wrapper 2"}


def test_a_bad_descriptor_is_named_with_the_image_it_is_in(image):
    exc = RegistryError(
        "MANIFEST_INVALID", "layer 1 of x has digest 'y'", detail={"descriptor": "layer 1"}
    )
    with pytest.raises(RegistryError) as caught:
        with_role("base", image, failing(exc))
    assert caught.value.code == "MANIFEST_INVALID"
    assert caught.value.message == f"base image stub/{PATH}:1: layer 1 of x has digest 'y'"
    assert caught.value.detail == {
        "image": "base",
        "name": f"stub/{PATH}:1",
        "descriptor": "layer 1",
    }


@pytest.mark.parametrize("detail", [{"image": "base", "reason": "no layers"}, "no layers", None])
def test_an_invalid_document_is_told_as_it_was(image, detail):
    exc = RegistryError("MANIFEST_INVALID", "invalid upstream image format", detail=detail)
    with pytest.raises(RegistryError) as caught:
        with_role("base", image, failing(exc))
    assert caught.value is exc


def test_any_other_failure_keeps_its_code_status_detail_and_headers(image):
    exc = RegistryError(
        "TOOMANYREQUESTS", "slow down", {"registry": "stub"}, 429, {"Retry-After": "5"}
    )
    with pytest.raises(RegistryError) as caught:
        with_role("wrapper", image, failing(exc))
    error = caught.value
    assert (error.code, error.status) == ("TOOMANYREQUESTS", 429)
    assert error.message == f"wrapper image stub/{PATH}:1: slow down"
    assert error.detail == {"registry": "stub"}
    assert error.headers == {"Retry-After": "5"}


def test_an_upstream_time_out_stays_a_time_out(image):
    timed_out = RegistryError("UNAVAILABLE", "upstream registry stub timed out", status=504)
    with pytest.raises(RegistryError) as caught:
        with_role("base", image, failing(timed_out))
    assert (caught.value.code, caught.value.status) == ("UNAVAILABLE", 504)
    assert caught.value.message == f"base image stub/{PATH}:1: upstream registry stub timed out"
