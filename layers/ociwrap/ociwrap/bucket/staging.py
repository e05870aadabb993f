"""Resumable copies of large blobs: whole parts staged under `uploads/`, kept across requests.

A blob from an upstream that serves its bytes itself is copied into the bucket while
the client waits, and a slow upstream can need more time than one request has (at
most 28 s). So a copy is written in parts that outlive the request, and the client's
retry continues it:

* A copy belongs to one source (an upstream repository) and one digest; its parts live
  under `uploads/<sha256 of the source>/<hex>/`, so a copy is only ever continued with
  bytes the same source sent.
* Each part is one object of PART_BYTES (the last may be shorter, and its key says it is
  the last), put once it is complete: what exists is always whole parts, and the parts
  present are the progress. A key also names its writer (a random id per request), so
  an object never changes once written: neither two copies of one blob at once nor an
  upstream that sends different bytes each time can swap a part under a copy that has
  already hashed it.
* sha256 runs over the bytes in order. A copy from the first byte hashes them as they
  pass; one that continues at a part boundary takes the hash up where this instance
  left it (kept in memory at every part boundary: a retry usually reaches the same warm
  instance), or else rebuilds it by reading the staged parts back, several at once (S3
  is much faster than the upstream that made the copy slow).
* Only when all bytes are in and the digest matched are the parts put together under
  `blobs/` (inside S3, see `Store.compose_blob`), and only once the caller has recorded
  the blob (its link) are they deleted. A copy whose parts are all staged but that is
  not stored yet (time ran out) is finished from them (`finish`). A mismatch deletes
  every part of the copy, so a retry starts clean. A blob of one part is checked in
  memory and written directly.
* Upstream bytes are read on a deadline a little earlier than the request's, which
  leaves time to store the part they complete. Nothing runs past the request's
  deadline: S3 calls are refused after it, part reads check it between chunks, threads
  are joined. What an interrupted copy leaves expires with `uploads/` after a day.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from ociwrap.bucket.interface import Bucket
from ociwrap.names.digest import Hasher, encoded
from ociwrap.runtime import deadline, errors
from ociwrap.runtime.concurrency import ordered_map
from ociwrap.runtime.memcache import BoundedCache

#: The size of every staged part but the last (S3 copies parts of 5 MiB or more).
PART_BYTES = 8 * 1024 * 1024
#: Parts read back at once to rebuild a hash (so about this many parts sit in memory).
READS_AT_ONCE = 4
#: Upstream bytes are read on a deadline this much earlier than the request's, at most
#: this share of its budget: the time to store the part they complete.
STORE_RESERVE_SECONDS = 2.0
STORE_RESERVE_SHARE = 0.1
_PART_NAME = re.compile(r"part-([0-9]{5})\.([0-9a-f]{32})(\.last)?")


@dataclass(frozen=True)
class Part:
    """A staged object: its place in the blob (from 1), key, size, and whether it ends it."""

    number: int
    key: str
    size: int
    last: bool


def area(source: str, digest: str) -> str:
    """The key prefix of one source's copy of one blob."""
    return f"uploads/{hashlib.sha256(source.encode()).hexdigest()}/{encoded(digest)}/"


def chain(parts: Iterable[Part]) -> list[Part]:
    """The staged parts that hold the blob's bytes from the first on, in order: whole parts
    up to a gap, then a last part if there is one. Any copy of a part will do: the bytes
    are checked against the digest before they are used."""
    by_number: dict[int, list[Part]] = {}
    for part in parts:
        by_number.setdefault(part.number, []).append(part)
    found: list[Part] = []
    for number in range(1, len(by_number) + 1):
        candidates = by_number.get(number, [])
        last = next((p for p in candidates if p.last and 0 < p.size <= PART_BYTES), None)
        if last is not None:
            return [*found, last]
        whole = next((p for p in candidates if not p.last and p.size == PART_BYTES), None)
        if whole is None:
            break
        found.append(whole)
    return found


def _reading_deadline() -> deadline.Deadline | None:
    current = deadline.current()
    if current is None:
        return None
    return current.keeping(min(STORE_RESERVE_SECONDS, current.budget * STORE_RESERVE_SHARE))


def _read_on(chunks: Iterator[bytes], until: deadline.Deadline | None) -> Iterator[bytes]:
    """`chunks`, each read on the deadline `until` (what runs in between keeps its own)."""
    while True:
        with deadline.within(until):
            chunk = next(chunks, None)
        if chunk is None:
            return
        yield chunk


def _in_time() -> None:
    current = deadline.current()
    if current is not None and current.expired():
        raise errors.deadline_exceeded("artifact storage (S3)", current.budget)


@dataclass(frozen=True)
class Progress:
    """How far a copy has come: the bytes its whole parts hold from the first on (where the
    upstream is asked to go on from), and whether its last part is staged too."""

    resume_at: int
    complete: bool


class Staging:
    """Resumable copies of streamed blobs into the store, verified before they appear."""

    def __init__(self, store: Bucket, hashes: BoundedCache | None = None) -> None:
        self.store = store
        #: area -> (keys of the parts hashed, the hash after them), at part boundaries.
        self.hashes = hashes if hashes is not None else BoundedCache(max_entries=64)

    def progress(self, source: str, digest: str) -> Progress:
        """How far a copy of `digest` from `source` has come (nothing staged: 0)."""
        where = area(source, digest)
        listed = self._list(where)
        known = self.hashes.get(where)
        if known is not None and not set(known[0]) <= {part.key for part in listed}:
            self.hashes.discard(where)  # its parts are gone: never continue from them
        found = chain(listed)
        whole = sum(1 for part in found if not part.last)
        return Progress(whole * PART_BYTES, bool(found) and found[-1].last)

    def copy(
        self,
        source: str,
        digest: str,
        chunks: Iterator[bytes],
        start: int,
        size: int | None,
        stored: Callable[[int], None],
    ) -> int:
        """Stage the blob's bytes from `start` (0 or `Progress.resume_at`) and, once all are
        in and match `digest`, store the blob; returns its size.

        `size` is the blob's whole size when known: a part that ends before it is stored
        at once, otherwise when a further byte (or the end) shows whether it is the last.
        `stored(size)` is called once the blob is in the store, before its parts are
        deleted, so a failure there loses nothing. An error (the upstream broke off, time
        ran out) leaves the parts stored so far for the next attempt.
        """
        where = area(source, digest)
        keys, hasher = self._hash_before(where, digest, start)
        writer = uuid.uuid4().hex
        pending = bytearray()
        for chunk in _read_on(chunks, _reading_deadline()):
            pending += chunk
            while len(pending) > PART_BYTES or (
                len(pending) == PART_BYTES
                and size is not None
                and (len(keys) + 1) * PART_BYTES < size
            ):
                part = bytes(pending[:PART_BYTES])
                del pending[:PART_BYTES]
                hasher.update(part)
                keys.append(self._put(where, len(keys) + 1, writer, part, last=False))
                self.hashes.put(where, (tuple(keys), hasher.copy()))
        hasher.update(pending)
        if not keys:  # the whole blob fits one part (and the copy started at 0)
            self._check(where, digest, hasher)
            if self.store.blob_size(digest) is None:
                self.store.put_blob(digest, bytes(pending))
            stored(hasher.size)
            return hasher.size
        if pending:
            keys.append(self._put(where, len(keys) + 1, writer, bytes(pending), last=True))
        return self._store(where, digest, keys, hasher, stored)

    def finish(self, source: str, digest: str, stored: Callable[[int], None]) -> int:
        """Store a blob whose bytes are all staged (the request that staged the last of them
        ran out of time before it could), as `copy` would; returns its size."""
        where = area(source, digest)
        found = chain(self._list(where))
        if not found or not found[-1].last:
            raise errors.storage_unavailable(
                f"the staged parts of blob {digest} changed during its copy; try again"
            )
        keys, hasher = self._hash_before(where, digest, PART_BYTES * (len(found) - 1))
        hasher.update(self._read(found[-1]))
        return self._store(where, digest, [*keys, found[-1].key], hasher, stored)

    def _store(
        self,
        where: str,
        digest: str,
        keys: list[str],
        hasher: Hasher,
        stored: Callable[[int], None],
    ) -> int:
        """Put the parts together under the blob's name if their bytes are the digest's."""
        self._check(where, digest, hasher)
        try:
            if self.store.blob_size(digest) is None:
                self.store.compose_blob(digest, keys)
        except Exception:  # whatever the bucket raises: a part gone, say
            if self.store.blob_size(digest) is None:
                raise
            # A copy of the same blob at once finished first and deleted the parts; these
            # bytes matched the digest all the same.
        stored(hasher.size)
        self.hashes.discard(where)
        self._clear(where)
        return hasher.size

    def _hash_before(self, where: str, digest: str, start: int) -> tuple[list[str], Hasher]:
        """The keys of the parts before `start` and the hash of their bytes."""
        if start == 0:
            return [], Hasher()
        known = self.hashes.get(where)
        if known is not None and known[1].size == start:
            return list(known[0]), known[1].copy()
        prefix = [part for part in chain(self._list(where)) if not part.last]
        prefix = prefix[: start // PART_BYTES]
        if len(prefix) * PART_BYTES != start:
            raise errors.storage_unavailable(
                f"the staged parts of blob {digest} changed during its copy; try again"
            )
        hasher = Hasher()
        with contextlib.closing(ordered_map(self._read, prefix, READS_AT_ONCE)) as datas:
            for data in datas:
                hasher.update(data)
        return [part.key for part in prefix], hasher

    def _check(self, where: str, digest: str, hasher: Hasher) -> None:
        """Refuse bytes that are not `digest`, and drop the copy made of them."""
        if hasher.digest != digest:
            self.hashes.discard(where)
            self._clear(where)
            raise errors.blob_mismatch(digest, hasher.digest)

    def _put(self, where: str, number: int, writer: str, data: bytes, last: bool) -> str:
        key = f"{where}part-{number:05d}.{writer}{'.last' if last else ''}"
        self.store.put_part(key, data)
        return key

    def _read(self, part: Part) -> bytes:
        """A staged part's bytes, read in chunks that stop at the deadline."""
        chunks = []
        with contextlib.closing(self.store.read_part(part.key)) as body:
            for chunk in body:
                _in_time()
                chunks.append(chunk)
        return b"".join(chunks)

    def _list(self, where: str) -> list[Part]:
        parts = []
        for item in self.store.list_parts(where):
            match = _PART_NAME.fullmatch(item.key[len(where) :])
            if match:
                parts.append(Part(int(match[1]), item.key, item.size, match[3] is not None))
        return parts

    def _clear(self, where: str) -> None:
        """Delete every part of a copy (what fails to go expires with `uploads/`, so any
        failure of the bucket here is left at that)."""
        with contextlib.suppress(Exception):
            self.store.delete_keys([part.key for part in self._list(where)])
