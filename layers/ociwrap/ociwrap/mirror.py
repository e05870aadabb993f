"""Copies of upstream blobs in our bucket, for upstreams that serve blob bytes themselves.

Clients are only ever redirected, never sent bytes by the function; when an
upstream has no URL to redirect to, its blob is copied (streamed, verified)
into the bucket once. A copy is bounded by MIRROR_MAX_BYTES and by the
request's deadline, and recorded for the upstream repository it came from, so
the next request is answered from S3 without opening the upstream again, and a
blob copied for one repository is not handed out for another that never
confirmed it has it.
"""

from __future__ import annotations

from collections.abc import Iterator

import requests

from ociwrap import errors
from ociwrap.errors import RegistryError
from ociwrap.memcache import BoundedCache
from ociwrap.records import mirror_record_key
from ociwrap.reference import Repository
from ociwrap.store import Store
from ociwrap.upstream.bodies import iter_body


class Mirror:
    """Which upstream blobs are in the bucket (per repository), and making copies."""

    def __init__(self, store: Store, cache: BoundedCache, max_bytes: int) -> None:
        self.store = store
        self.hot = cache
        self.max_bytes = max_bytes

    def size(self, repo: Repository, digest: str) -> int | None:
        """The size of a blob already copied from this repository, or None."""
        key = mirror_record_key(repo, digest)

        def load() -> int | None:
            record = self.store.get_json(key)
            size = record.get("size") if isinstance(record, dict) else None
            return size if isinstance(size, int) else None

        return self.hot.get_or_load(key, load)

    def copy(self, repo: Repository, digest: str, response: requests.Response) -> int:
        """Copy the blob `response` carries (unless the bucket has it) and record it."""
        with response:
            size = self.store.blob_size(digest)
            if size is None:
                size = self.store.copy_blob(digest, self._body(repo, digest, response))
        key = mirror_record_key(repo, digest)
        self.store.put_json(key, {"size": size})
        self.hot.put(key, size)
        return size

    def _body(self, repo: Repository, digest: str, response: requests.Response) -> Iterator[bytes]:
        limit = self.max_bytes

        def too_large() -> RegistryError:
            return errors.denied(
                f"blob {digest} of {repo} is larger than MIRROR_MAX_BYTES ({limit} bytes), "
                "the most this registry copies from an upstream that serves blobs itself",
                detail={"digest": digest, "limit": limit},
            )

        return iter_body(response, limit, "blob", repo.registry.name, too_large)
