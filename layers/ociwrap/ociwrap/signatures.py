"""Signatures of composed images, made once and kept beside the composition.

With signing configured, every manifest a composition makes (each platform's and the
index) is signed when it is composed, for the name it is pulled as:
`<PUBLIC_HOSTNAME>/<wrapped name>` is the payload's `docker-reference`, which
`sigstoreSigned` policies match against the pulled name (never the request's
`Host`, which a client chooses). The signature manifest and its two blobs are
stored like the composition's own, recorded as part of the wrapped name (so they
are served under it), and found by a record per name and digest. A manifest that
was composed before signing was on, or is pulled under another spelling of the
same wrap, or was signed by a key since rotated, is signed the first time its signature
is asked for; never again after.

ECDSA signatures are randomised: two instances signing the same manifest at once
make two valid signature manifests, and the record keeps the last one written.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from ociwrap import cosign, telemetry
from ociwrap.concurrency import parallel_map
from ociwrap.imagesource import ImageSource
from ociwrap.memcache import BoundedCache
from ociwrap.recipes import Recipe
from ociwrap.records import signature_key
from ociwrap.signing import Signer
from ociwrap.sources import SourceRecords, blob_source, manifest_source
from ociwrap.store import Store, StoredManifest

PARALLEL_SIGNATURES = 4


class Signatures:
    """Signs composed manifests of wrapped names and finds their signatures."""

    def __init__(
        self,
        signer: Signer,
        hostname: str,
        store: Store,
        images: ImageSource,
        sources: SourceRecords,
        cache: BoundedCache,
    ) -> None:
        self.signer = signer
        self.hostname = hostname
        self.store = store
        self.images = images
        self.sources = sources
        self.hot = cache

    def _record_key(self, recipe: Recipe, digest: str) -> str:
        key_id = hashlib.sha256(self.signer.public_key_pem()).hexdigest()[:16]
        return signature_key(key_id, self.reference(recipe), digest)

    def reference(self, recipe: Recipe) -> str:
        """The identity signatures of this wrapped name carry."""
        return f"{self.hostname}/{recipe.name}"

    def sign(self, recipe: Recipe, manifests: Sequence[tuple[str, str, int]]) -> None:
        """Sign each (digest, media type, size) composed for `recipe`, and keep them."""
        parallel_map(
            lambda entry: self._sign_one(recipe, *entry), list(manifests), PARALLEL_SIGNATURES
        )

    def _sign_one(
        self, recipe: Recipe, digest: str, media_type: str, size: int
    ) -> cosign.SignatureManifest:
        reference = self.reference(recipe)
        payload = cosign.make_payload(reference, digest)
        telemetry.event("signatures")
        signed = cosign.signature_manifest(
            payload,
            self.signer.sign(payload),
            {"mediaType": media_type, "digest": digest, "size": size},
        )
        self.store.put_blob(signed.config_digest, signed.config)
        self.store.put_blob(signed.payload_digest, signed.payload)
        self.images.keep(signed.digest, signed.body, cosign.OCI_MANIFEST)
        self.sources.record(
            recipe.scope,
            {
                signed.config_digest: blob_source("generated", len(signed.config)),
                signed.payload_digest: blob_source("generated", len(signed.payload)),
                signed.digest: {**manifest_source(), "signature": True},
            },
        )
        record = {"digest": signed.digest, "size": len(signed.body)}
        key = self._record_key(recipe, digest)
        self.store.put_json(key, record)
        self.hot.put(key, record)
        return signed

    def find(self, recipe: Recipe, digest: str) -> tuple[str, StoredManifest] | None:
        """The signature manifest (digest, bytes) of a manifest composed for `recipe`;
        None when `digest` is no composed manifest of it (signatures are not signed)."""
        key = self._record_key(recipe, digest)
        record = self.hot.get_or_load(key, lambda: self.store.get_json(key))
        if isinstance(record, dict):
            stored = self.images.stored(record["digest"])
            if stored is not None:
                return record["digest"], stored
        source = self.sources.lookup(recipe.scope, digest)
        if not source or source.get("kind") != "manifest" or source.get("signature"):
            return None
        signed_manifest = self.images.stored(digest)
        if signed_manifest is None:
            return None
        signed = self._sign_one(
            recipe, digest, signed_manifest.media_type, len(signed_manifest.body)
        )
        return signed.digest, StoredManifest(signed.body, cosign.OCI_MANIFEST)
