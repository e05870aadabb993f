"""What the registry asks of upstream registries: the one interface its services use.

The deployment's implementation is `fetch.Fetcher` (the distribution API over HTTP, cf.
cue-labs/oci's `ociregistry.Interface` for reading); anything with these operations will
do. Whatever it hands back is verified already: manifests against their digest and media
type, small blobs against their digest, redirect targets against the address policy.
Failures are `RegistryError`s a client can be shown (404, 401, 429, 502, 504).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from ociwrap.names.reference import Repository
from ociwrap.runtime.errors import RegistryError


@dataclass(frozen=True)
class Manifest:
    """Manifest bytes exactly as served, with their verified media type and digest."""

    body: bytes
    media_type: str
    digest: str


class BlobBody(Protocol):
    """The bytes of an upstream blob answer, read once, bounded as they are read."""

    def chunks(self, limit: int, too_large: Callable[[], RegistryError]) -> Iterator[bytes]:
        """The (decoded) bytes in chunks; `too_large()` is raised once they pass `limit`."""
        ...

    def close(self) -> None:
        """Let go of the answer (read or not)."""
        ...


@dataclass
class Blob:
    """An upstream blob answer: a redirect target to hand out, or a body to copy.

    The body holds the blob's bytes from `start` on (0 unless a range was asked for and
    granted); `size` is the blob's whole size when the answer declares it plainly.
    """

    location: str | None = None
    body: BlobBody | None = None
    start: int = 0
    size: int | None = None


class Upstream(Protocol):
    """Manifests, blobs, referrers and tags of upstream repositories."""

    def head_manifest(self, repo: Repository, ref: str, accept: Iterable[str]) -> str | None:
        """The digest `ref` points to, without counting as a pull; None when the upstream
        does not tell that way. A claim: the bytes must be fetched before it is believed."""
        ...

    def get_manifest(self, repo: Repository, ref: str, accept: Iterable[str]) -> Manifest:
        """The manifest `ref` names, verified."""
        ...

    def blob(self, repo: Repository, digest: str, start: int = 0) -> Blob:
        """Where a client may fetch the blob (a signed URL), or its bytes from `start` on
        (an upstream may send all of them instead: `Blob.start` says)."""
        ...

    def blob_size(self, repo: Repository, digest: str) -> int: ...

    def small_blob(self, repo: Repository, digest: str, limit: int, what: str) -> bytes:
        """A small blob (an image config) in memory, verified against `digest`."""
        ...

    def referrers(self, repo: Repository, digest: str) -> Any | None:
        """The referrers index of `digest` (parsed), or None when the upstream has no
        referrers API."""
        ...

    def tags(
        self, repo: Repository, n: int | None, last: str | None
    ) -> tuple[list[str], str | None]:
        """One page of valid tags and the upstream's next `last`, if it paginates."""
        ...
