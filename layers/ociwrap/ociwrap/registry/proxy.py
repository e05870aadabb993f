"""Pull-through names: manifests, blobs and tags of upstream repositories.

Data flows one way: request → image source (memory | S3 | upstream, verified)
→ value. Tags are resolved through TTL'd records like the inputs of wrapped
names; a client whose `Accept` does not cover the tag's media type gets what
the upstream answers for exactly its `Accept` instead.
"""

from __future__ import annotations

import re

from ociwrap.image.jsondoc import DocumentError, parse_json
from ociwrap.names.digest import encoded, is_digest
from ociwrap.names.mediatypes import OCI_INDEX
from ociwrap.names.reference import ImageRef, Repository
from ociwrap.registry.blobs import Blobs
from ociwrap.registry.imagesource import ImageSource
from ociwrap.registry.referrers import descriptors_of, referrers_of
from ociwrap.registry.results import BlobSize, Content, Redirect, Referrers, TagPage
from ociwrap.runtime import errors
from ociwrap.runtime.errors import RegistryError
from ociwrap.upstream.interface import Upstream

#: `n` of `tags/list`: ASCII digits (str.isdigit would take any script's), at most a million.
_PAGE_SIZE = re.compile(r"[0-9]{1,6}")


def page_size(n: str | None) -> int | None:
    """The `n` query parameter as a number, or PAGINATION_NUMBER_INVALID."""
    if n is None:
        return None
    if not _PAGE_SIZE.fullmatch(n):
        raise errors.pagination_invalid(
            f"invalid number of results requested: {n[:20]!r}", detail={"n": n[:20]}
        )
    return int(n)


class ProxyService:
    """Answers pull requests for proxied repositories."""

    def __init__(self, images: ImageSource, fetcher: Upstream, blobs: Blobs) -> None:
        self.images = images
        self.fetcher = fetcher
        self.blobs = blobs

    def manifest(self, repo: Repository, ref: str, accept: list[str]) -> Content:
        """A manifest by digest (held, else fetched and verified) or by tag (resolved)."""
        if is_digest(ref):
            stored = self.images.manifest(repo, ref)
            return Content(stored.body, stored.media_type, ref)
        resolved = self.images.resolve(ImageRef(repository=repo, tag=ref))
        if resolved.media_type in accept:
            stored = self.images.manifest(repo, resolved.digest)
            return Content(stored.body, stored.media_type, resolved.digest)
        fetched = self.images.fetch(repo, ref, accept)
        return Content(fetched.body, fetched.media_type, fetched.digest)

    def blob(self, repo: Repository, digest: str) -> Redirect:
        return self.blobs.upstream(repo, digest)

    def blob_size(self, repo: Repository, digest: str) -> BlobSize:
        return self.blobs.size(repo, digest)

    def held_config(self, repo: Repository, digest: str, limit: int) -> bytes | None:
        """A config of `repo` read already (for a composition), when it is at most `limit`
        bytes of JSON: where a wrapped image's settings come from is read from it. None
        for anything else, held or not (a layer, a larger blob): nothing is fetched for
        this, so no layer flows through."""
        link = self.images.links.get(repo, digest)
        if link is None or link.size is None or link.size > limit:
            return None
        data = self.images.store.get_blob(digest)
        if data is None or len(data) > limit:
            return None
        try:
            value = parse_json(data)
        except DocumentError:
            return None
        return data if isinstance(value, dict) else None

    def referrers(self, repo: Repository, digest: str, artifact_type: str | None) -> Referrers:
        """The upstream's referrers of `digest`; for an upstream without the referrers API,
        the index its referrers tag (`sha256-<hex>`) holds; else none."""
        document = self.fetcher.referrers(repo, digest)
        if document is None:
            try:
                fetched = self.fetcher.get_manifest(repo, f"sha256-{encoded(digest)}", [OCI_INDEX])
                document = parse_json(fetched.body)
            except RegistryError as exc:
                if exc.code not in ("MANIFEST_UNKNOWN", "NAME_UNKNOWN"):
                    raise
                document = None
            except DocumentError:
                document = None
        return referrers_of(descriptors_of(document), artifact_type)

    def tags(self, name: str, repo: Repository, n: str | None, last: str | None) -> TagPage:
        """The upstream's tags under our name, and where the next page starts."""
        size = page_size(n)
        tags, next_last = self.fetcher.tags(repo, size, last)
        # Upstreams that ignore n/last (registry 2.x) get paginated here, in lexical order.
        tags = sorted(tags)
        if last:
            tags = [tag for tag in tags if tag > last]
        if size is not None and len(tags) > size:
            tags = tags[:size]
            next_last = tags[-1] if tags else None
        return TagPage(name, tuple(tags), next_last or None, size)
