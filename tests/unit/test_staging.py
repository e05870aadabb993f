"""Resumable mirroring: a copy that a request cannot finish is continued by the next one.

Blob GETs through `Blobs` against a scripted upstream on 127.0.0.1 that honours `Range`
(or not) and can break off or stall mid-body (the HTTP edge is part of the subject), over
the in-memory bucket. Each request is one call of `Blobs.upstream`, as the handler makes it.
"""

from __future__ import annotations

import hashlib
import random
import re
import threading
import time
from collections.abc import Callable

import pytest

from doubles.at_once import AtOnce
from doubles.bucket import MemoryBucket
from ociwrap.bucket.interface import Bucket
from ociwrap.bucket.links import Links
from ociwrap.bucket.staging import PART_BYTES, Part, Progress, Staging, area, chain
from ociwrap.names.reference import Registry, Repository
from ociwrap.registry.blobs import Blobs
from ociwrap.registry.mirror import Mirror
from ociwrap.registry.wiring import anonymous
from ociwrap.runtime import deadline
from ociwrap.runtime.errors import RegistryError
from ociwrap.runtime.memcache import BoundedCache
from ociwrap.upstream.fetch import Fetcher
from ociwrap.upstream.transport import Transport

PART = PART_BYTES
DATA = random.Random(7).randbytes(2 * PART + PART // 2)  # two whole parts and a half
DIGEST = "sha256:" + hashlib.sha256(DATA).hexdigest()
RANGE = re.compile(r"bytes=([0-9]+)-")
#: Every operation of the bucket.
BUCKET_METHODS = [name for name in vars(Bucket) if not name.startswith("_")]


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Upstream:
    """A blob route: honours `Range` (unless told not to), and breaks each answer off
    after the blob offset in `cuts` (one entry per request, None: the whole body)."""

    def __init__(self, data: bytes = DATA, *, ranges: bool = True) -> None:
        self.data = data
        self.ranges = ranges
        self.cuts: list[int | None] = []
        self.content_range: str | None = None  # sent instead of the right one
        self.asked: list[str | None] = []  # the Range header of every request

    def __call__(self, handler):
        asked = handler.headers.get("Range")
        self.asked.append(asked)
        match = RANGE.fullmatch(asked or "")
        start = int(match[1]) if match and self.ranges else 0
        total = len(self.data)
        headers = {"Content-Length": str(total - start)}
        status = 200
        if start:
            status = 206
            headers["Content-Range"] = self.content_range or f"bytes {start}-{total - 1}/{total}"
        cut = self.cuts.pop(0) if self.cuts else None
        if cut is None:
            return status, headers, self.data[start:]
        handler.close_connection = True  # the client sees the body end early
        return status, headers, lambda wfile: wfile.write(self.data[start:cut])


@pytest.fixture
def store() -> MemoryBucket:
    return MemoryBucket()


@pytest.fixture
def on_bucket(store) -> Callable[[str, Callable], None]:
    """`on_bucket(method, hook)`: `hook(key)` runs before every later call of `method`."""

    def register(method: str, hook: Callable) -> None:
        store.before[method] = hook

    return register


@pytest.fixture
def bucket_calls(store) -> Callable[[str], list[str]]:
    """`bucket_calls(method)`: the keys of every later call of `method`."""

    def record(method: str) -> list[str]:
        seen: list[str] = []
        store.before[method] = seen.append
        return seen

    return record


def make_blobs(store: MemoryBucket) -> Blobs:
    """The blob service of one warm instance (its own memory)."""
    links = Links(store, BoundedCache(), ttl_seconds=60, private=lambda registry: False)
    mirror = Mirror(store, links, max_bytes=len(DATA) + 1)
    return Blobs(store, Fetcher(Transport()), mirror, presign_ttl_seconds=600, private=anonymous)


@pytest.fixture
def blobs(store) -> Blobs:
    return make_blobs(store)


@pytest.fixture
def repo(scripted) -> Repository:
    return Repository(Registry("stub", scripted.url, trusted=True), "team/app")


@pytest.fixture
def upstream(scripted, repo) -> Upstream:
    route = Upstream()
    scripted.routes["GET", f"/v2/{repo.path}/blobs/{DIGEST}"] = route
    return route


def keys(store: MemoryBucket, prefix: str) -> list[str]:
    return store.listing(prefix)


def staged(store: MemoryBucket, repo: Repository) -> list[str]:
    return keys(store, area(f"{repo.registry.url}/{repo.path}", DIGEST))


def get(blobs: Blobs, repo: Repository, digest: str = DIGEST) -> RegistryError | str:
    """One blob GET: the error it ends with, or where it redirects to."""
    try:
        return blobs.upstream(repo, digest).location
    except RegistryError as exc:
        return exc


def assert_served(store: MemoryBucket, location: str) -> None:
    assert f"/blobs/sha256/{DIGEST[7:]}" in location
    assert store.get_blob(DIGEST) == DATA


# -- resuming ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cut", "resumed_at"),
    [(2 * PART, 2 * PART), (PART + PART // 2, PART)],
    ids=["at-a-part-boundary", "mid-part"],
)
def test_a_copy_broken_off_is_continued_from_its_last_whole_part(
    blobs, store, repo, upstream, cut, resumed_at
):
    upstream.cuts = [cut]
    first = get(blobs, repo)
    assert isinstance(first, RegistryError) and first.status == 502
    assert "broke off" in first.message
    assert len(staged(store, repo)) == resumed_at // PART  # whole parts only
    assert keys(store, "blobs/") == []  # nothing visible before the digest checked out
    assert_served(store, get(blobs, repo))
    assert upstream.asked == [None, f"bytes={resumed_at}-"]
    assert staged(store, repo) == [] and keys(store, "uploads/") == []
    assert blobs.mirror.size(repo, DIGEST) == len(DATA)


def test_another_instance_rebuilds_the_hash_from_the_staged_parts(
    store, repo, upstream, bucket_calls
):
    upstream.cuts = [2 * PART + 10]
    assert isinstance(get(make_blobs(store), repo), RegistryError)
    reads = bucket_calls("read_part")
    assert_served(store, get(make_blobs(store), repo))  # a fresh instance: no hash in memory
    assert upstream.asked[-1] == f"bytes={2 * PART}-"
    read_back = [key for key in reads if key.startswith("uploads/")]
    assert len(read_back) == 2


def test_the_same_instance_continues_its_hash_without_reading_parts_back(
    blobs, store, repo, upstream, bucket_calls
):
    upstream.cuts = [2 * PART + 10]
    assert isinstance(get(blobs, repo), RegistryError)
    reads = bucket_calls("read_part")
    assert_served(store, get(blobs, repo))
    assert [key for key in reads if key.startswith("uploads/")] == []


def test_an_upstream_that_ignores_range_is_copied_from_the_start(blobs, store, repo, upstream):
    upstream.cuts = [PART + 10]
    assert isinstance(get(blobs, repo), RegistryError)
    upstream.ranges = False  # answers 200 with the whole blob
    assert_served(store, get(blobs, repo))
    assert upstream.asked[-1] == f"bytes={PART}-"
    assert keys(store, "uploads/") == []


@pytest.mark.parametrize(
    "content_range",
    [f"bytes 0-{len(DATA) - 1}/{len(DATA)}", f"bytes {PART}-{len(DATA) - 2}/{len(DATA)}", ""],
    ids=["elsewhere", "short", "missing"],
)
def test_a_range_answer_that_does_not_start_where_asked_is_refused(
    blobs, store, repo, upstream, content_range
):
    upstream.cuts = [PART + 10]
    get(blobs, repo)
    before = staged(store, repo)
    upstream.content_range = content_range or " "
    error = get(blobs, repo)
    assert isinstance(error, RegistryError)
    assert (error.status, error.code) == (502, "UNAVAILABLE")
    assert "Content-Range" in error.message
    assert keys(store, "blobs/") == [] and staged(store, repo) == before


def test_staged_parts_that_expired_are_not_continued_from(blobs, store, repo, upstream):
    upstream.cuts = [PART + 10]
    get(blobs, repo)
    for key in staged(store, repo):  # the bucket's lifecycle rule removed them
        store.expire(key)
    assert_served(store, get(blobs, repo))
    assert upstream.asked[-1] is None


def test_a_copy_whose_bytes_are_all_staged_is_finished_without_the_upstream(
    blobs, store, repo, upstream, on_bucket
):
    """The request that staged the last part ran out of time storing the blob: the next
    one checks and stores what is staged (a public upstream is not asked again)."""

    def out_of_time(key: str) -> None:
        raise RegistryError("UNAVAILABLE", "out of time", status=504)

    on_bucket("compose_blob", out_of_time)
    assert get(blobs, repo).status == 504
    del store.before["compose_blob"]
    assert staged(store, repo)[-1].endswith(".last") and keys(store, "blobs/") == []
    assert_served(store, get(make_blobs(store), repo))  # another instance: parts read back
    assert upstream.asked == [None]
    assert staged(store, repo) == []


def test_a_private_upstream_is_asked_for_the_last_part_again(
    blobs, store, repo, upstream, on_bucket
):
    """Its answer is the access check: a link to private bytes is made only on one."""
    blobs.mirror.links.private = lambda registry: registry == repo.registry

    def out_of_time(key: str) -> None:
        raise RegistryError("UNAVAILABLE", "out of time", status=504)

    on_bucket("compose_blob", out_of_time)
    get(blobs, repo)
    del store.before["compose_blob"]
    assert_served(store, get(blobs, repo))
    assert upstream.asked == [None, f"bytes={2 * PART}-"]


def test_the_rest_of_a_resumed_copy_counts_against_the_mirror_limit(blobs, store, repo, upstream):
    """MIRROR_MAX_BYTES lowered between two requests: the bytes staged count, so the rest
    of the blob is refused, as the whole blob would be."""
    upstream.cuts = [2 * PART]
    assert isinstance(get(blobs, repo), RegistryError)
    lowered = make_blobs(store)
    lowered.mirror.max_bytes = len(DATA) - 1
    refused = get(lowered, repo)
    assert (refused.code, refused.status) == ("DENIED", 403)
    assert upstream.asked == [None, f"bytes={2 * PART}-"]
    exactly = make_blobs(store)
    exactly.mirror.max_bytes = len(DATA)
    assert_served(store, get(exactly, repo))


def test_the_parts_stay_until_the_blob_is_linked(blobs, store, repo, upstream, monkeypatch):
    """Storing the link is the last step that can fail: the parts outlive it, so the retry
    finishes from them instead of copying the blob again."""
    add = blobs.mirror.links.add

    def fails_once(*args, **kwargs) -> None:
        monkeypatch.setattr(blobs.mirror.links, "add", add)
        raise RegistryError("UNAVAILABLE", "out of time", status=504)

    monkeypatch.setattr(blobs.mirror.links, "add", fails_once)
    assert get(blobs, repo).status == 504
    assert store.get_blob(DIGEST) == DATA and len(staged(store, repo)) == 3
    assert_served(store, get(blobs, repo))
    assert upstream.asked == [None]
    assert blobs.mirror.size(repo, DIGEST) == len(DATA) and staged(store, repo) == []


# -- trust ---------------------------------------------------------------------------------


def test_bytes_that_do_not_match_are_never_visible_and_their_parts_go(blobs, store, repo, upstream):
    upstream.cuts = [PART + 10]
    get(blobs, repo)
    upstream.data = DATA[:PART] + bytes(len(DATA) - PART)  # the rest is not the blob
    error = get(blobs, repo)
    assert isinstance(error, RegistryError) and error.status == 502
    assert f"blob {DIGEST} from upstream has digest" in error.message
    assert keys(store, "blobs/") == [] and keys(store, "tags/") == []
    assert staged(store, repo) == []  # a retry starts clean
    upstream.data = DATA
    assert_served(store, get(blobs, repo))
    assert upstream.asked[-1] is None


def test_another_repository_never_continues_a_copy_it_did_not_start(
    blobs, store, repo, upstream, scripted
):
    upstream.cuts = [PART + 10]
    get(blobs, repo)
    mine = staged(store, repo)
    other = Repository(repo.registry, "other/app")
    theirs = Upstream()
    scripted.routes["GET", f"/v2/other/app/blobs/{DIGEST}"] = theirs
    assert_served(store, get(blobs, other))
    assert theirs.asked == [None]  # from the first byte: none of team/app's bytes used
    assert blobs.mirror.size(repo, DIGEST) is None  # team/app has not given it all
    assert staged(store, repo) == mine
    get(blobs, repo)
    assert upstream.asked[-1] == f"bytes={PART}-"
    assert blobs.mirror.size(repo, DIGEST) == len(DATA)


def test_the_blob_is_put_together_only_from_a_whole_staged_copy(
    blobs, store, repo, upstream, on_bucket
):
    upstream.cuts = [PART + 10]
    get(blobs, repo)
    seen_at_composition: list[list[str]] = []
    on_bucket("compose_blob", lambda key: seen_at_composition.append(staged(store, repo)))
    assert_served(store, get(blobs, repo))
    [parts] = seen_at_composition
    assert [key.rsplit("/", 1)[1][:10] for key in parts] == [
        "part-00001",
        "part-00002",
        "part-00003",
    ]
    assert parts[-1].endswith(".last")


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "until-close"])
def test_a_blob_of_whole_parts_ends_with_a_whole_last_part(blobs, store, repo, scripted, declared):
    data = DATA[: 2 * PART]
    digest = digest_of(data)
    if declared:
        scripted.routes["GET", f"/v2/{repo.path}/blobs/{digest}"] = lambda h: (200, {}, data)
    else:
        scripted.routes["GET", f"/v2/{repo.path}/blobs/{digest}"] = lambda h: (
            200,
            {},
            lambda wfile: wfile.write(data),
        )
    assert f"/blobs/sha256/{digest[7:]}" in get(blobs, repo, digest)
    assert store.get_blob(digest) == data
    assert keys(store, "uploads/") == []


# -- time ----------------------------------------------------------------------------------


def test_the_deadline_stops_the_copy_and_its_parts_stay(blobs, store, repo, scripted, on_bucket):
    """The request that runs out of time answers 504; what it staged survives, nothing is
    written after its deadline, and nothing keeps copying once it has answered."""
    finished = threading.Event()
    answered = threading.Event()

    def write(wfile) -> None:
        try:
            wfile.write(DATA[: PART + 10])
            wfile.flush()
            answered.wait(10)  # the rest comes after the request has answered
            wfile.write(DATA[PART + 10 :])
        finally:
            finished.set()

    scripted.routes["GET", f"/v2/{repo.path}/blobs/{DIGEST}"] = lambda h: (
        200,
        {"Content-Length": str(len(DATA))},
        write,
    )
    late: list[str] = []
    for method in BUCKET_METHODS:
        on_bucket(
            method,
            lambda key, method=method: (
                late.append(method)
                if deadline.current() is not None and deadline.current().expired()
                else None
            ),
        )
    with deadline.within(deadline.Deadline(1.0)):
        error = get(blobs, repo)
    answered.set()
    assert isinstance(error, RegistryError)
    assert (error.status, error.code) == (504, "UNAVAILABLE")
    assert "upstream registry stub to send a blob" in error.message
    assert late == []  # no S3 call was even tried after the deadline
    parts = staged(store, repo)
    assert len(parts) == 1
    assert finished.wait(10)  # the upstream sent the rest (to nobody)
    time.sleep(0.3)
    assert staged(store, repo) == parts and keys(store, "blobs/") == []


def test_rebuilding_a_hash_stops_at_the_deadline(store, on_bucket, bucket_calls):
    """Parts are read back in chunks that check the deadline; the copy stops there and
    writes nothing more."""
    staging = Staging(store)
    source = "http://up.example/team/app"
    for number in (1, 2):
        key = f"{area(source, DIGEST)}part-{number:05d}.{'0' * 32}"
        store.put_part(key, DATA[(number - 1) * PART :][:PART])
    assert staging.progress(source, DIGEST) == Progress(2 * PART, complete=False)
    clock = [0.0]
    on_bucket("read_part", lambda key: clock.__setitem__(0, clock[0] + 10))
    puts = bucket_calls("put_part")
    with (
        deadline.within(deadline.Deadline(5, clock=lambda: clock[0])),
        pytest.raises(RegistryError) as caught,
    ):
        staging.copy(
            source, DIGEST, iter([DATA[2 * PART :]]), 2 * PART, len(DATA), lambda size: None
        )
    assert caught.value.status == 504
    assert caught.value.message == (
        "the request's deadline (5 s) ran out while waiting for artifact storage (S3)"
    )
    assert puts == [] and keys(store, "blobs/") == []


# -- the staging itself, without an upstream ---------------------------------------------------

SOURCE = "https://registry-1.docker.io/library/busybox"


def part(number: int, size: int = PART, last: bool = False) -> Part:
    return Part(number, f"k{number}{'.last' if last else ''}", size, last)


def test_the_chain_ends_at_a_gap_or_at_a_part_that_is_not_whole():
    assert chain([part(1), part(3)]) == [part(1)]
    assert chain([part(1), part(2, PART - 1)]) == [part(1)]
    assert chain([part(1, PART - 1)]) == []
    assert chain([part(1), part(2), part(3, 1, last=True)]) == [part(1), part(2), part(3, 1, True)]


def test_a_last_part_holds_one_byte_to_a_whole_part_never_none():
    assert chain([part(1, 1, last=True)]) == [part(1, 1, True)]
    assert chain([part(1, PART, last=True)]) == [part(1, PART, True)]
    assert chain([part(1, 0, last=True)]) == []
    assert chain([part(1, PART + 1, last=True)]) == []


def cut_after(data: bytes, end: int):
    """The upstream's chunks of `data` up to `end`, then it hangs up."""
    yield data[:end]
    raise ConnectionError("upstream hung up")


def test_a_small_blob_is_checked_and_stored_without_staging(store):
    data = b"a config of a few bytes"
    sizes: list[int] = []
    staging = Staging(store)
    assert staging.copy(SOURCE, digest_of(data), iter([data]), 0, None, sizes.append) == len(data)
    assert sizes == [len(data)] and store.get_blob(digest_of(data)) == data
    assert [method for method, _ in store.calls] == ["blob_size", "put_blob", "get_blob"]
    staging.copy(SOURCE, digest_of(data), iter([data]), 0, len(data), sizes.append)
    assert sizes == [len(data)] * 2 and store.called("put_blob") == [
        f"blobs/sha256/{digest_of(data)[7:]}"
    ]


def test_a_small_blob_that_lies_is_refused_and_its_mismatch_named(store):
    data = b"not what was asked for"
    staging = Staging(store)
    store.before["delete_keys"] = lambda key: (_ for _ in ()).throw(OSError("S3 is down"))
    with pytest.raises(RegistryError) as caught:
        staging.copy(SOURCE, DIGEST, iter([data]), 0, None, lambda size: None)
    assert caught.value.status == 502
    assert caught.value.message == f"blob {DIGEST} from upstream has digest {digest_of(data)}"
    assert store.called("put_blob") == []


@pytest.mark.parametrize("size", [2 * PART, None], ids=["declared", "chunked"])
def test_a_blob_of_whole_parts_ends_in_a_last_part_even_unfinished(store, size):
    data = DATA[: 2 * PART]

    def refused(key: str) -> None:
        raise RegistryError("UNAVAILABLE", "out of time", status=504)

    store.before["compose_blob"] = refused
    staging = Staging(store)
    with pytest.raises(RegistryError):
        staging.copy(SOURCE, digest_of(data), iter([data]), 0, size, lambda size: None)
    assert staging.progress(SOURCE, digest_of(data)) == Progress(PART, complete=True)
    del store.before["compose_blob"]
    sizes: list[int] = []
    assert staging.finish(SOURCE, digest_of(data), sizes.append) == 2 * PART
    assert sizes == [2 * PART] and store.get_blob(digest_of(data)) == data
    assert len(staging.hashes) == 0 and keys(store, "uploads/") == []


def test_a_copy_is_remembered_only_while_its_parts_are_there(store):
    staging = Staging(store)
    with pytest.raises(ConnectionError):
        staging.copy(SOURCE, DIGEST, cut_after(DATA, 2 * PART + 5), 0, len(DATA), print)
    assert len(staging.hashes) == 1
    store.expire("uploads/")  # the lifecycle, or a copy elsewhere that failed its check
    other = Staging(store)
    with pytest.raises(ConnectionError):
        other.copy(SOURCE, DIGEST, cut_after(DATA, 2 * PART + 5), 0, len(DATA), print)
    assert staging.progress(SOURCE, DIGEST) == Progress(2 * PART, complete=False)
    assert len(staging.hashes) == 0  # its own parts are gone: never continued from
    sizes: list[int] = []
    rest = iter([DATA[2 * PART :]])
    assert staging.copy(SOURCE, DIGEST, rest, 2 * PART, len(DATA), sizes.append) == len(DATA)
    assert sizes == [len(DATA)] and store.get_blob(DIGEST) == DATA
    assert len(staging.hashes) == 0 and keys(store, "uploads/") == []


def test_a_copy_that_does_not_start_where_the_parts_end_is_refused(store):
    staging = Staging(store)
    with pytest.raises(RegistryError) as caught:
        staging.copy(SOURCE, DIGEST, iter([DATA[PART:]]), PART, len(DATA), print)
    assert caught.value.status == 503
    assert caught.value.message == (
        f"the staged parts of blob {DIGEST} changed during its copy; try again"
    )


def test_finishing_needs_a_staged_last_part(store):
    staging = Staging(store)
    for stage in ([], [DATA[:PART]]):
        for number, data in enumerate(stage, 1):
            store.put_part(f"{area(SOURCE, DIGEST)}part-{number:05d}.{'0' * 32}", data)
        with pytest.raises(RegistryError) as caught:
            staging.finish(SOURCE, DIGEST, print)
        assert caught.value.status == 503
        assert caught.value.message == (
            f"the staged parts of blob {DIGEST} changed during its copy; try again"
        )
    assert keys(store, "blobs/") == []


def test_a_mismatch_lets_go_of_the_copy(store):
    staging = Staging(store)
    wrong = DATA[:PART] + bytes(len(DATA) - PART)
    with pytest.raises(ConnectionError):
        staging.copy(SOURCE, DIGEST, cut_after(wrong, PART + 5), 0, len(DATA), print)
    assert len(staging.hashes) == 1
    with pytest.raises(RegistryError):
        staging.copy(SOURCE, DIGEST, iter([wrong[PART:]]), PART, len(DATA), print)
    assert len(staging.hashes) == 0 and keys(store, "uploads/") == []


def test_four_parts_are_read_back_at_once_and_never_a_fifth(store):
    data = random.Random(5).randbytes(5 * PART + 1)
    for number in range(1, 6):
        key = f"{area(SOURCE, digest_of(data))}part-{number:05d}.{'0' * 32}"
        store.put_part(key, data[(number - 1) * PART : number * PART])
    reading = AtOnce(4, "reads")
    store.before["read_part"] = reading
    rest = iter([data[5 * PART :]])
    size = Staging(store).copy(SOURCE, digest_of(data), rest, 5 * PART, len(data), print)
    assert size == len(data) and reading.most == 4


def test_only_objects_named_as_parts_count_as_progress(store):
    where, writer = area(SOURCE, DIGEST), "0" * 32
    store.put_part(f"{where}part-00001-{writer}", DATA[:PART])
    assert Staging(store).progress(SOURCE, DIGEST) == Progress(0, complete=False)
    store.put_part(f"{where}part-00001.{writer}", DATA[:PART])
    store.put_part(f"{where}part-00002.{writer}-last", DATA[PART : PART + 5])
    assert Staging(store).progress(SOURCE, DIGEST) == Progress(PART, complete=False)


def test_a_copy_started_again_from_the_first_byte_that_lies_clears_what_was_staged(store):
    """An upstream that ignores `Range` sends from the first byte again: a short answer
    that does not match drops the parts an earlier attempt staged too."""
    staging = Staging(store)
    with pytest.raises(ConnectionError):
        staging.copy(SOURCE, DIGEST, cut_after(DATA, PART + 5), 0, len(DATA), print)
    assert len(keys(store, "uploads/")) == 1
    with pytest.raises(RegistryError) as caught:
        staging.copy(SOURCE, DIGEST, iter([b"short"]), 0, None, print)
    assert caught.value.status == 502
    assert keys(store, "uploads/") == [] and len(staging.hashes) == 0


def test_finishing_a_copy_whose_parts_change_meanwhile_is_refused(store):
    where, writer = area(SOURCE, DIGEST), "0" * 32
    for number, data in enumerate([DATA[:PART], DATA[PART : 2 * PART]], 1):
        store.put_part(f"{where}part-{number:05d}.{writer}", data)
    store.put_part(f"{where}part-00003.{writer}.last", DATA[2 * PART :])
    listings = []

    def listing(prefix: str) -> None:
        listings.append(prefix)
        if len(listings) == 2:  # a copy elsewhere finished and cleared them in between
            store.expire(f"{where}part-00002")

    store.before["list_parts"] = listing
    with pytest.raises(RegistryError) as caught:
        Staging(store).finish(SOURCE, DIGEST, print)
    assert caught.value.status == 503
    assert caught.value.message == (
        f"the staged parts of blob {DIGEST} changed during its copy; try again"
    )
