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

The record keeps the signature manifest itself, and records never expire: when the
bucket's lifecycle removes the signature's documents (see `retention`), they are stored
again from it (the payload and config are made from the signed name and digest), and a
composition made again keeps the signature it had. A signature is never made anew for
what was signed already, so its digest stays what clients saw.

ECDSA signatures are randomised: two instances signing the same manifest at once
make two valid signature manifests, and the record keeps the last one written.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from ociwrap.bucket.interface import StoredManifest
from ociwrap.bucket.records import signature_key
from ociwrap.bucket.sources import signing
from ociwrap.image.recipes import Recipe
from ociwrap.registry.attached import Attached
from ociwrap.runtime import telemetry
from ociwrap.runtime.concurrency import parallel_map
from ociwrap.signing import cosign

PARALLEL_SIGNATURES = 4


class Signatures(Attached):
    """Signs composed manifests of wrapped names and finds their signatures."""

    kind = "signature"
    record_key = staticmethod(signature_key)
    marker = staticmethod(signing)

    def sign(self, recipe: Recipe, manifests: Sequence[tuple[str, str, int]]) -> None:
        """Sign each (digest, media type, size) composed for `recipe`, and keep them; one
        signed before (a composition made again) keeps its signature."""

        def sign_one(digest: str, media_type: str, size: int) -> None:
            if self.restore(recipe, digest) is None:
                self._sign_one(recipe, digest, media_type, size)

        parallel_map(lambda entry: sign_one(*entry), list(manifests), PARALLEL_SIGNATURES)

    def _sign_one(
        self, recipe: Recipe, digest: str, media_type: str, size: int
    ) -> cosign.SignatureManifest:
        payload = cosign.make_payload(self.name(recipe), digest)
        telemetry.event("signatures")
        signed = cosign.signature_manifest(
            payload,
            self.signer.sign(payload),
            {"mediaType": media_type, "digest": digest, "size": size},
        )
        self._keep(recipe, digest, signed)
        return signed

    def restore(self, recipe: Recipe, digest: str) -> cosign.SignatureManifest | None:
        """Store again the signature of `digest` that its record holds (the bucket's lifecycle
        may have removed its documents); None when no record holds one."""
        record = self._record(recipe, digest)
        text = record.get("manifest") if record is not None else None
        if record is None or not isinstance(text, str):
            return None
        try:
            document = json.loads(text)
            [layer] = cosign.signed_layers(document)
            payload = cosign.make_payload(self.name(recipe), digest)
            signed = cosign.signature_manifest(payload, layer.signature, document["subject"])
        except (ValueError, KeyError, TypeError, cosign.SignatureFormatError):
            return None
        if signed.digest != record["digest"]:
            return None
        self._keep(recipe, digest, signed)
        return signed

    def find(self, recipe: Recipe, digest: str) -> tuple[str, StoredManifest] | None:
        """The signature manifest (digest, bytes) of a manifest composed for `recipe`;
        None when `digest` is no composed manifest of it (signatures are not signed)."""
        found = self.recorded(recipe, digest)
        if found is not None:
            return found
        source = self.sources.lookup(recipe.scope, digest)
        if not source or source.get("kind") != "manifest":
            return None
        if source.get("signature") or source.get("attestation"):
            return None  # a signature or attestation is not signed itself
        signed_manifest = self.images.stored(digest)
        if signed_manifest is None:
            return None
        signed = self._sign_one(
            recipe, digest, signed_manifest.media_type, len(signed_manifest.body)
        )
        return signed.digest, StoredManifest(signed.body, cosign.OCI_MANIFEST)
