"""Pull-through names: manifests, blobs and tags of upstream repositories.

Data flows one way: request → image source (memory | S3 | upstream, verified)
→ reply. Tags are resolved through TTL'd records like the inputs of wrapped
names; a client whose `Accept` does not cover the tag's media type gets what
the upstream answers for exactly its `Accept` instead.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from ociwrap.image.jsondoc import DocumentError, parse_json
from ociwrap.names.digest import encoded, is_digest
from ociwrap.names.reference import ImageRef, Repository
from ociwrap.registry import replies
from ociwrap.registry.blobs import Blobs
from ociwrap.registry.imagesource import ImageSource
from ociwrap.registry.referrers import OCI_INDEX, descriptors_of, referrers_reply
from ociwrap.registry.replies import Reply
from ociwrap.runtime import errors
from ociwrap.runtime.errors import RegistryError
from ociwrap.upstream.fetch import Fetcher

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

    def __init__(self, images: ImageSource, fetcher: Fetcher, blobs: Blobs) -> None:
        self.images = images
        self.fetcher = fetcher
        self.blobs = blobs

    def manifest(self, repo: Repository, ref: str, accept: list[str], head: bool) -> Reply:
        """A manifest by digest (held, else fetched and verified) or by tag (resolved)."""
        if is_digest(ref):
            stored = self.images.manifest(repo, ref)
            return replies.content(stored.body, stored.media_type, ref, head)
        resolved = self.images.resolve(ImageRef(repository=repo, tag=ref))
        if resolved.media_type in accept:
            stored = self.images.manifest(repo, resolved.digest)
            return replies.content(stored.body, stored.media_type, resolved.digest, head)
        fetched = self.images.fetch(repo, ref, accept)
        return replies.content(fetched.body, fetched.media_type, fetched.digest, head)

    def blob(self, repo: Repository, digest: str, head: bool) -> Reply:
        return self.blobs.upstream(repo, digest, head)

    def referrers(self, repo: Repository, digest: str, artifact_type: str | None) -> Reply:
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
        return referrers_reply(descriptors_of(document), artifact_type)

    def tags(self, name: str, repo: Repository, n: str | None, last: str | None) -> Reply:
        """The upstream's tags under our name, with a `Link` that points back here."""
        size = page_size(n)
        tags, next_last = self.fetcher.tags(repo, size, last)
        # Upstreams that ignore n/last (registry 2.x) get paginated here, in lexical order.
        tags = sorted(tags)
        if last:
            tags = [tag for tag in tags if tag > last]
        if size is not None and len(tags) > size:
            tags = tags[:size]
            next_last = tags[-1] if tags else None
        headers = {}
        if next_last:
            page = f"n={size}&" if size is not None else ""
            headers["Link"] = f'</v2/{name}/tags/list?{page}last={quote(next_last)}>; rel="next"'
        return replies.json_reply({"name": name, "tags": tags}, headers)
