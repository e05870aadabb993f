"""Blob answers: never bytes, only where to get them, and sizes.

A blob GET is answered with a `307`: to the upstream's own signed URL when it
hands one out (Docker Hub, ghcr.io, ECR, S3-backed registries), otherwise to a
presigned URL of a verified copy in our bucket (see `mirror`). A HEAD answers
the size itself: a HEAD that followed a redirect to a GET-signed URL would fail.
"""

from __future__ import annotations

from ociwrap import replies, telemetry
from ociwrap.mirror import Mirror
from ociwrap.reference import Repository
from ociwrap.replies import Reply
from ociwrap.store import Store
from ociwrap.upstream.fetch import Fetcher


class Blobs:
    """Answers blob requests for upstream repositories and for blobs in our bucket."""

    def __init__(
        self, store: Store, fetcher: Fetcher, mirror: Mirror, presign_ttl_seconds: int
    ) -> None:
        self.store = store
        self.fetcher = fetcher
        self.mirror = mirror
        self.presign_ttl_seconds = presign_ttl_seconds

    def upstream(self, repo: Repository, digest: str, head: bool, size: int | None = None) -> Reply:
        """A blob of an upstream repository; `size` when the caller already knows it."""
        mirrored = self.mirror.size(repo, digest)
        if head:
            if size is None:
                size = mirrored if mirrored is not None else self.fetcher.blob_size(repo, digest)
            return replies.blob_head(digest, size)
        if mirrored is not None:
            return self.stored(digest)
        answer = self.fetcher.blob(repo, digest)
        if answer.location:
            telemetry.redirect("upstream")
            return replies.redirect(answer.location, digest)
        assert answer.response is not None
        self.mirror.copy(repo, digest, answer.response)
        return self.stored(digest)

    def stored(self, digest: str) -> Reply:
        """307 to a presigned URL of a blob in our bucket."""
        telemetry.redirect("s3")
        return replies.redirect(self.store.presign_blob(digest, self.presign_ttl_seconds), digest)
