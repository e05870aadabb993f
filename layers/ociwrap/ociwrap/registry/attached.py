"""Documents attached to composed manifests: what signatures and attestations share.

Both are a cosign-layout manifest with a config and one layer, about a manifest composed
for a wrapped name, made for the name it is pulled as (`<PUBLIC_HOSTNAME>/<wrapped
name>`) with the composition signing key. Both are stored like the composition's own
documents, recorded as part of the wrapped name (so they are served under it), and found
by a record per key, name and digest that never expires: when the bucket's lifecycle
removes the documents, they are stored again from the record (`restore`, which each kind
does its own way), so their digest stays what clients saw.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from ociwrap.bucket.interface import Bucket, StoredManifest
from ociwrap.bucket.sources import Record, SourceRecords, blob_source, manifest_source
from ociwrap.image.recipes import Recipe
from ociwrap.registry.imagesource import ImageSource
from ociwrap.runtime.memcache import BoundedCache, Namespace
from ociwrap.signing.cosign import OCI_MANIFEST, SignatureManifest
from ociwrap.signing.signers import Signer


class Attached(ABC):
    """Keeps and finds one kind of document attached to composed manifests."""

    #: What its source records flag ("signature", "attestation"); names its record cache.
    kind: str
    #: (key id, name, digest) -> where its record lives.
    record_key: Callable[[str, str, str], str]
    #: subject digest -> what its documents' source records add.
    marker: Callable[[str], Record]

    def __init__(
        self,
        signer: Signer,
        hostname: str,
        store: Bucket,
        images: ImageSource,
        sources: SourceRecords,
        cache: BoundedCache,
    ) -> None:
        self.signer = signer
        self.hostname = hostname
        self.store = store
        self.images = images
        self.sources = sources
        self.hot: Namespace[dict[str, Any]] = cache.namespace(f"{self.kind} records")

    def name(self, recipe: Recipe) -> str:
        """The name this wrapped name's documents are made for."""
        return f"{self.hostname}/{recipe.name}"

    def _record_key(self, recipe: Recipe, digest: str) -> str:
        key_id = hashlib.sha256(self.signer.public_key_pem()).hexdigest()[:16]
        return self.record_key(key_id, self.name(recipe), digest)

    def _keep(self, recipe: Recipe, digest: str, made: SignatureManifest, **recorded: str) -> None:
        """Store a document of `digest`: its manifest and blobs, their source records, and
        its record (the manifest, and what else `recorded` names)."""
        self.store.put_blob(made.config_digest, made.config)
        self.store.put_blob(made.payload_digest, made.payload)
        self.images.keep(made.digest, made.body, OCI_MANIFEST)
        about = self.marker(digest)
        self.sources.record(
            recipe.scope,
            {
                made.config_digest: blob_source("generated", len(made.config)) | about,
                made.payload_digest: blob_source("generated", len(made.payload)) | about,
                made.digest: {**manifest_source(), self.kind: True} | about,
            },
        )
        record = {
            "digest": made.digest,
            "size": len(made.body),
            "manifest": made.body.decode(),
            **recorded,
        }
        key = self._record_key(recipe, digest)
        self.store.put_json(key, record)
        self.hot.put(key, record, size=len(made.body) + sum(map(len, recorded.values())))

    def _record(self, recipe: Recipe, digest: str) -> dict[str, Any] | None:
        key = self._record_key(recipe, digest)
        record = self.hot.get_or_load(key, lambda: self.store.get_json(key))
        return (
            record if isinstance(record, dict) and isinstance(record.get("digest"), str) else None
        )

    @abstractmethod
    def restore(self, recipe: Recipe, digest: str) -> SignatureManifest | None:
        """Store again the document of `digest` its record holds; None when none does."""

    def recorded(self, recipe: Recipe, digest: str) -> tuple[str, StoredManifest] | None:
        """The document of `digest` its record names (digest, bytes), stored again from the
        record when the lifecycle removed it; None when no record names one."""
        record = self._record(recipe, digest)
        if record is None:
            return None
        stored = self.images.stored(record["digest"])
        if stored is not None:
            return record["digest"], stored
        restored = self.restore(recipe, digest)
        if restored is None:
            return None
        return restored.digest, StoredManifest(restored.body, OCI_MANIFEST)
