"""Blob answers: never bytes, only where to get them, and sizes.

A blob GET is answered with a `307`: to the upstream's own signed URL when it
hands one out (Docker Hub, ghcr.io, ECR, S3-backed registries), otherwise to a
presigned URL of a digest-verified copy in our bucket. Copies are bounded by
MIRROR_MAX_BYTES and by the request's deadline; each copy is recorded for the
upstream repository it came from, so the next request for it is answered from
S3 without opening the upstream again (and a blob copied for one repository is
not handed out for another that never confirmed it has it). A HEAD answers the
size itself: a HEAD that followed a redirect to a GET-signed URL would fail.
"""

from __future__ import annotations

from collections.abc import Iterator

import requests

from ociwrap import errors, replies
from ociwrap.memcache import BoundedCache
from ociwrap.records import mirror_record_key
from ociwrap.reference import Repository
from ociwrap.replies import Reply
from ociwrap.store import Store
from ociwrap.upstream.bodies import iter_body
from ociwrap.upstream.fetch import Fetcher


class Blobs:
    """Answers blob requests for upstream repositories and for blobs in our bucket."""

    def __init__(
        self,
        store: Store,
        fetcher: Fetcher,
        cache: BoundedCache,
        *,
        presign_ttl_seconds: int,
        mirror_max_bytes: int,
    ) -> None:
        self.store = store
        self.fetcher = fetcher
        self.hot = cache
        self.presign_ttl_seconds = presign_ttl_seconds
        self.mirror_max_bytes = mirror_max_bytes

    def upstream(self, repo: Repository, digest: str, head: bool, size: int | None = None) -> Reply:
        """A blob of an upstream repository; `size` when the caller already knows it."""
        mirrored = self._mirrored(repo, digest)
        if head:
            if size is None:
                size = mirrored if mirrored is not None else self.fetcher.blob_size(repo, digest)
            return replies.blob_head(digest, size)
        if mirrored is not None:
            return self.stored(digest)
        answer = self.fetcher.blob(repo, digest)
        if answer.location:
            return replies.redirect(answer.location, digest)
        assert answer.response is not None
        with answer.response as response:
            copied = self.store.blob_size(digest)
            if copied is None:
                copied = self.store.copy_blob(digest, self._body(repo, digest, response))
        key = mirror_record_key(repo, digest)
        self.store.put_json(key, {"size": copied})
        self.hot.put(key, copied)
        return self.stored(digest)

    def stored(self, digest: str) -> Reply:
        """307 to a presigned URL of a blob in our bucket."""
        return replies.redirect(self.store.presign_blob(digest, self.presign_ttl_seconds), digest)

    def _mirrored(self, repo: Repository, digest: str) -> int | None:
        """The size of a blob already copied from this repository, or None."""
        key = mirror_record_key(repo, digest)

        def load() -> int | None:
            record = self.store.get_json(key)
            size = record.get("size") if isinstance(record, dict) else None
            return size if isinstance(size, int) else None

        return self.hot.get_or_load(key, load)

    def _body(self, repo: Repository, digest: str, response: requests.Response) -> Iterator[bytes]:
        limit = self.mirror_max_bytes

        def too_large() -> errors.RegistryError:
            return errors.denied(
                f"blob {digest} of {repo} is larger than MIRROR_MAX_BYTES ({limit} bytes), "
                "the most this registry copies from an upstream that serves blobs itself",
                detail={"digest": digest, "limit": limit},
            )

        return iter_body(response, limit, "blob", repo.registry.name, too_large)
