"""What the registry's services answer, as values: no status codes, no headers.

The handler decides how each is said in HTTP (a `200` with the bytes, a `307` to
the location, a size for a HEAD, a `Link` to the next page of tags), as
distribution's handlers and cue-labs/oci's server do over their registry interfaces.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ociwrap.names.mediatypes import OCI_INDEX

#: A descriptor as an OCI index lists it (`mediaType`, `digest`, `size`, …).
Descriptor = dict[str, Any]


@dataclass(frozen=True)
class Content:
    """A manifest, index or other document: its exact bytes (the ones digested)."""

    body: bytes
    media_type: str
    digest: str | None = None


@dataclass(frozen=True)
class Redirect:
    """Where a client fetches a blob's bytes itself (never through this registry)."""

    location: str
    digest: str


@dataclass(frozen=True)
class BlobSize:
    """A blob's size, what a HEAD asks: answered without the location (a HEAD that
    followed a URL signed for GET would fail)."""

    digest: str
    size: int


@dataclass(frozen=True)
class TagPage:
    """One page of a repository's tags, and the last tag to go on from (None: no more).

    `page_size` is the `n` the client asked for, if any: the next page asks for the same.
    """

    name: str
    tags: tuple[str, ...]
    next_last: str | None = None
    page_size: int | None = None


@dataclass(frozen=True)
class Referrers:
    """The manifests that refer to a digest; `filtered` when only those of the asked
    `artifactType` are listed (clients are told, as the spec requires)."""

    descriptors: tuple[Descriptor, ...]
    filtered: bool = False

    def index(self) -> Descriptor:
        """The OCI image index that lists them, the referrers API's document."""
        return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": list(self.descriptors)}
