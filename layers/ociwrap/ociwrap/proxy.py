"""Pull-through proxy: manifests, blobs and tags of plain upstream repositories.

Data flows one way: request -> (store hit | upstream -> store) -> reply. Layer
bytes never enter a response: blobs are answered with a 307 to the upstream's
own signed URL, or, when the upstream serves bytes itself, to a presigned URL of
a digest-verified copy in S3.
"""

from __future__ import annotations

from urllib.parse import quote

from ociwrap import errors, mediatypes, replies
from ociwrap.reference import Repository, is_digest
from ociwrap.replies import Reply
from ociwrap.store import Store, StoredManifest
from ociwrap.upstream import Upstream, UpstreamBody

# What to ask an upstream for when the client did not say (and for wrap inputs).
ALL_MANIFEST_TYPES = (
    mediatypes.OCI_INDEX,
    mediatypes.OCI_MANIFEST,
    mediatypes.DOCKER_MANIFEST_LIST,
    mediatypes.DOCKER_MANIFEST,
)


def split_accept(values: list[str]) -> list[str]:
    """Media types from Accept headers, comma-joined or repeated, without q-values."""
    found: list[str] = []
    for value in values:
        for item in value.split(","):
            media_type = item.split(";")[0].strip()
            if media_type and media_type not in found and media_type != "*/*":
                found.append(media_type)
    return found or list(ALL_MANIFEST_TYPES)


class ProxyService:
    """Answers pull requests for proxied repositories."""

    def __init__(self, store: Store, upstream: Upstream, presign_ttl_seconds: int) -> None:
        self.store = store
        self.upstream = upstream
        self.presign_ttl_seconds = presign_ttl_seconds

    def manifest(self, repo: Repository, ref: str, accept: list[str], head: bool) -> Reply:
        """A manifest by tag (resolved with a HEAD upstream) or by digest (store first)."""
        if is_digest(ref):
            stored = self.manifest_by_digest(repo, ref)
            return replies.content(stored.body, stored.media_type, ref, head)
        described = self.upstream.head_manifest(repo, ref, accept)
        if described:
            stored = self.store.get_manifest(described.digest)
            if stored:
                return replies.content(stored.body, stored.media_type, described.digest, head)
            if head:
                return replies.described(described.media_type, described.digest, described.size)
        manifest = self.upstream.get_manifest(repo, ref, accept)
        self.store.put_manifest(manifest.digest, manifest.body, manifest.media_type)
        return replies.content(manifest.body, manifest.media_type, manifest.digest, head)

    def manifest_by_digest(self, repo: Repository, digest: str) -> StoredManifest:
        """A manifest's bytes by digest: from the store, else fetched, verified and stored."""
        stored = self.store.get_manifest(digest)
        if stored:
            return stored
        manifest = self.upstream.get_manifest(repo, digest, ALL_MANIFEST_TYPES)
        self.store.put_manifest(manifest.digest, manifest.body, manifest.media_type)
        return StoredManifest(body=manifest.body, media_type=manifest.media_type)

    def blob(self, repo: Repository, digest: str, head: bool, size: int | None = None) -> Reply:
        """HEAD: 200 with the size. GET: 307 to the upstream's target or to our S3 copy."""
        if head:
            if size is None:
                size = self.store.blob_size(digest)
            if size is None:
                size = self.upstream.blob_size(repo, digest)
            return replies.blob_head(digest, size)
        answer = self.upstream.get_blob(repo, digest)
        if answer.location:
            return replies.redirect(answer.location, digest)
        assert answer.response is not None
        with answer.response as response:
            if self.store.blob_size(digest) is None:
                self.store.copy_blob_stream(digest, UpstreamBody(response, repo.registry.name))
        return self.stored_blob(digest)

    def stored_blob(self, digest: str) -> Reply:
        """307 to a presigned URL of a blob in our bucket."""
        return replies.redirect(self.store.presign_blob(digest, self.presign_ttl_seconds), digest)

    def tags(self, name: str, repo: Repository, n: str | None, last: str | None) -> Reply:
        """The upstream's tags under our name, with a `Link` that points back here."""
        query: dict[str, str] = {}
        if n is not None:
            if not n.isdigit():
                raise errors.RegistryError(
                    "PAGINATION_NUMBER_INVALID", f"invalid number of results requested: {n!r}"
                )
            query["n"] = n
        if last:
            query["last"] = last
        tags, next_last = self.upstream.list_tags(repo, query)
        # Upstreams that ignore n/last (registry 2.x) get paginated here, in lexical order.
        tags = sorted(tags)
        if last:
            tags = [tag for tag in tags if tag > last]
        if n is not None and len(tags) > int(n):
            tags = tags[: int(n)]
            next_last = tags[-1] if tags else None
        headers = {}
        if next_last:
            page = f"n={n}&" if n else ""
            headers["Link"] = f'</v2/{name}/tags/list?{page}last={quote(next_last)}>; rel="next"'
        return replies.json_reply({"name": name, "tags": tags}, headers)
