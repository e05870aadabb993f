"""Copies of upstream blobs in our bucket, for upstreams that serve blob bytes themselves.

Clients are only ever redirected, never sent bytes by the function; when an
upstream has no URL to redirect to, its blob is copied (streamed, verified)
into the bucket once. A copy is bounded by MIRROR_MAX_BYTES and by the
request's deadline, and linked to the upstream repository it came from
(`links`), so the next request is answered from S3 without opening the upstream
again, and a blob copied for one repository is not handed out for another that
never gave it to us.
"""

from __future__ import annotations

from collections.abc import Iterator

import requests

from ociwrap import errors
from ociwrap.digest import Hasher
from ociwrap.errors import RegistryError
from ociwrap.links import Links
from ociwrap.reference import Repository
from ociwrap.store import Store
from ociwrap.upstream.bodies import iter_body


def verified_size(digest: str, chunks: Iterator[bytes]) -> int:
    """The size of a stream whose bytes must match `digest` (a 502 if they do not)."""
    hasher = Hasher()
    for chunk in chunks:
        hasher.update(chunk)
    if hasher.digest != digest:
        raise errors.blob_mismatch(digest, hasher.digest)
    return hasher.size


class Mirror:
    """Which upstream blobs a repository has in the bucket, and making copies."""

    def __init__(self, store: Store, links: Links, max_bytes: int) -> None:
        self.store = store
        self.links = links
        self.max_bytes = max_bytes

    def size(self, repo: Repository, digest: str) -> int | None:
        """The size of a blob this repository gave us (and may still be shown), or None."""
        link = self.links.get(repo, digest)
        return link.size if link is not None else None

    def copy(self, repo: Repository, digest: str, response: requests.Response) -> int:
        """Copy the blob `response` carries and link it to `repo`.

        When the bucket has the blob already (from another repository) the bytes are
        still read and checked: a link is only ever made for bytes this repository sent.
        """
        with response:
            body = self._body(repo, digest, response)
            if self.store.blob_size(digest) is None:
                size = self.store.copy_blob(digest, body)
            else:
                size = verified_size(digest, body)
        self.links.add(repo, digest, size)
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
