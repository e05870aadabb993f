"""Copies of upstream blobs in our bucket, for upstreams that serve blob bytes themselves.

Clients are only ever redirected, never sent bytes by the function; when an
upstream has no URL to redirect to, its blob is copied (streamed, verified)
into the bucket once. A copy is bounded by MIRROR_MAX_BYTES, and one that does
not fit a request's deadline is continued by the client's retry from the parts
staged so far (`staging`). It is linked to the upstream repository it came from
(`links`), so the next request is answered from S3 without opening the upstream
again, and a blob copied for one repository is not handed out for another that
never gave it to us; for the same reason a copy is only continued with bytes
from the repository that began it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from ociwrap.bucket.interface import Bucket
from ociwrap.bucket.links import Links
from ociwrap.bucket.staging import Staging
from ociwrap.names.reference import Repository
from ociwrap.runtime import errors
from ociwrap.runtime.errors import RegistryError
from ociwrap.upstream.interface import Blob


def _source(repo: Repository) -> str:
    """The repository as it is reached (not as an alias spells it): whose bytes a copy holds."""
    return f"{repo.registry.url}/{repo.path}"


class Mirror:
    """Which upstream blobs a repository has in the bucket, and making copies."""

    def __init__(self, store: Bucket, links: Links, max_bytes: int) -> None:
        self.links = links
        self.max_bytes = max_bytes
        self.staging = Staging(store)

    def size(self, repo: Repository, digest: str) -> int | None:
        """The size of a blob this repository gave us (and may still be shown), or None."""
        link = self.links.get(repo, digest)
        return link.size if link is not None else None

    def resume(self, repo: Repository, digest: str) -> int | None:
        """Where to ask the repository for the blob from: where a copy an earlier request
        began goes on (0: from the start). None when all its bytes were staged already and
        the copy is now stored and linked; a private upstream is asked for its last part
        again all the same, as its answer is the access check."""
        source = _source(repo)
        progress = self.staging.progress(source, digest)
        if progress.complete and not self.links.private(repo.registry):
            self.staging.finish(source, digest, self._linking(repo, digest))
            return None
        return progress.resume_at

    def copy(self, repo: Repository, digest: str, blob: Blob) -> int:
        """Copy (or go on copying) the blob whose bytes `blob` carries and link it to `repo`.

        When the bucket has the blob already (from another repository) the bytes are
        still read and checked: a link is only ever made for bytes this repository sent.
        """
        assert blob.body is not None
        with contextlib.closing(blob.body) as body:
            chunks = body.chunks(self.max_bytes - blob.start, lambda: self._too_large(repo, digest))
            return self.staging.copy(
                _source(repo), digest, chunks, blob.start, blob.size, self._linking(repo, digest)
            )

    def _linking(self, repo: Repository, digest: str) -> Callable[[int], None]:
        return lambda size: self.links.add(repo, digest, size)

    def _too_large(self, repo: Repository, digest: str) -> RegistryError:
        return errors.denied(
            f"blob {digest} of {repo} is larger than MIRROR_MAX_BYTES ({self.max_bytes} bytes), "
            "the most this registry copies from an upstream that serves blobs itself",
            detail={"digest": digest, "limit": self.max_bytes},
        )
