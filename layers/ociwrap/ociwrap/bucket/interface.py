"""What the registry asks of its bucket: the one interface every service is written against.

The deployment's bucket is S3 (`store.Store`); anything with these operations will do
(cf. distribution's storage driver interface). Keys are the layout the design names:
`manifests/`, `blobs/` (content-addressed), records (JSON), and `uploads/` (the staged
parts of blob copies, see `staging`). A failure of the bucket itself (throttling,
permissions, a missing part) is raised as whatever the implementation raises: callers
let it through to the handler (a retryable 503), or treat it as "not done".
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class StoredManifest:
    body: bytes
    media_type: str


@dataclass(frozen=True)
class Listed:
    """An object under a prefix: its key and size."""

    key: str
    size: int


class Bucket(Protocol):
    """Manifests and blobs by digest, JSON records and staged parts by key."""

    def get_manifest(self, digest: str) -> StoredManifest | None:
        """The manifest stored under `digest`, or None."""
        ...

    def put_manifest(self, digest: str, body: bytes, media_type: str) -> None: ...

    def blob_size(self, digest: str) -> int | None:
        """The size of the stored blob, or None when the bucket does not hold it."""
        ...

    def blob_written(self, digest: str) -> float | None:
        """When the blob was last written (epoch s; lifecycle rules count from it), or None
        when the bucket does not hold it."""
        ...

    def get_blob(self, digest: str) -> bytes | None: ...

    def put_blob(self, digest: str, body: bytes) -> None:
        """Store a small blob whose bytes are in memory and verified."""
        ...

    def compose_blob(self, digest: str, parts: Sequence[str]) -> None:
        """Store a blob as the concatenation of the staged parts `parts` (keys), whose bytes
        matched `digest`; the blob appears whole or not at all. Raises when a part is gone."""
        ...

    def presign_blob(self, digest: str, ttl_seconds: int) -> str:
        """A URL a client can GET the blob from, without credentials, for `ttl_seconds`."""
        ...

    def get_json(self, key: str) -> Any | None:
        """A record this registry wrote (so parsing it is safe), or None."""
        ...

    def put_json(self, key: str, value: Any) -> None: ...

    def put_part(self, key: str, data: bytes) -> None:
        """Write a staged part (written once, never changed)."""
        ...

    def read_part(self, key: str) -> Iterator[bytes]:
        """A staged part's bytes in chunks (closing the iterator stops the read)."""
        ...

    def list_parts(self, prefix: str) -> list[Listed]:
        """Every object whose key starts with `prefix`."""
        ...

    def delete_keys(self, keys: Sequence[str]) -> None:
        """Delete the objects at `keys` (absent ones are no error)."""
        ...
