"""Wrapped names, by wrap path or container token, turned into replies.

A wrapped name has exactly one tag (`latest` for a wrap path, whose base and
wrapper tags are in the name; the base tag for a token image), plus the digests
of what was composed for it. Blobs are answered only for digests the
composition is made of: a layer from the base or a wrapper repository, or the
generated config in our bucket. What came from a private upstream is shown only
while that upstream still confirms access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ociwrap import cosign, errors, replies
from ociwrap.blobs import Blobs
from ociwrap.composer import Composer
from ociwrap.digest import is_digest
from ociwrap.imagesource import ImageSource, with_role
from ociwrap.recipes import Recipe
from ociwrap.referrers import referrers_reply
from ociwrap.replies import Reply
from ociwrap.sources import SourceRecords
from ociwrap.store import OCTET_STREAM

if TYPE_CHECKING:
    from ociwrap.signatures import Signatures


class WrappedService:
    """Answers pulls of wrapped names."""

    def __init__(
        self,
        composer: Composer,
        sources: SourceRecords,
        images: ImageSource,
        blobs: Blobs,
        signatures: Signatures | None = None,
    ) -> None:
        self.composer = composer
        self.sources = sources
        self.images = images
        self.blobs = blobs
        self.signatures = signatures

    def _confirm_private(self, recipe: Recipe) -> None:
        """Tags of private upstreams are resolved again (within their TTL) before a stored
        answer is given, so access the upstream withdrew is withdrawn here too."""
        for role, image in (("base", recipe.base), *(("wrapper", w) for w in recipe.wrappers)):
            if self.images.links.private(image.repository.registry):
                with_role(role, image, lambda image=image: self.images.resolve(image))

    def manifest(self, recipe: Recipe, ref: str, head: bool) -> Reply:
        if is_digest(ref):
            self._confirm_private(recipe)
            record = self.sources.lookup(recipe.scope, ref) or {}
            stored = self.images.stored(ref) if record.get("kind") == "manifest" else None
            if stored is None:
                raise errors.manifest_unknown(
                    f"manifest {ref} was not composed for {recipe.name}", detail={"digest": ref}
                )
            return replies.content(stored.body, stored.media_type, ref, head)
        signed = cosign.signed_digest(ref)
        if signed is not None and ref != recipe.tag:
            return self._signature(recipe, signed, head)
        if ref != recipe.tag:
            where = (
                "put the base and wrapper tags in the name, "
                "wrap/<base-image>/<tag>/with/<wrapper-image>/<tag>"
                if recipe.name.startswith("wrap/")
                else "a container token image has its base image's tag"
            )
            raise errors.manifest_unknown(
                f"{recipe.name} has the one tag {recipe.tag!r}, not {ref!r}: {where}",
                detail={"tag": ref},
            )
        composition = self.composer.compose(recipe)
        return replies.content(composition.body, composition.media_type, composition.digest, head)

    def _signature(self, recipe: Recipe, digest: str, head: bool) -> Reply:
        """The `sha256-<hex>.sig` tag: the signature of a manifest composed for this name."""
        self._confirm_private(recipe)
        found = self.signatures.find(recipe, digest) if self.signatures is not None else None
        if found is None:
            why = "it was not composed here" if self.signatures else "signing is not configured"
            raise errors.manifest_unknown(
                f"{recipe.name} has no signature of {digest}: {why}",
                detail={"tag": cosign.signature_tag(digest)},
            )
        signature_digest, stored = found
        return replies.content(stored.body, stored.media_type, signature_digest, head)

    def referrers(self, recipe: Recipe, digest: str, artifact_type: str | None) -> Reply:
        """What refers to a composed manifest: its signature, when signing is on."""
        self._confirm_private(recipe)
        found = self.signatures.find(recipe, digest) if self.signatures is not None else None
        descriptors = []
        if found is not None:
            signature_digest, stored = found
            descriptors.append(cosign.signature_descriptor(signature_digest, len(stored.body)))
        return referrers_reply(descriptors, artifact_type)

    def blob(
        self, recipe: Recipe, digest: str, head: bool, *, inline_config_max_bytes: int = 0
    ) -> Reply:
        """A blob of the composition: HEAD answered here, GET by `307` to where it is.

        A generated config of up to `inline_config_max_bytes` is answered with its bytes
        instead (the handler asks for it for the page's same-origin reads: a browser would
        need CORS on the bucket to follow the redirect). It is kilobytes of JSON from our
        own bucket, never a layer; 0, the default, keeps the redirect for every client.
        """
        record = self.sources.lookup(recipe.scope, digest)
        if record is None or record.get("kind") != "blob":
            raise errors.blob_unknown(
                f"blob {digest} is not part of {recipe.name}", detail={"digest": digest}
            )
        size = int(record["size"])
        self._confirm_private(recipe)
        if record["source"] == "generated":
            if head:
                return replies.blob_head(digest, size)
            if size <= inline_config_max_bytes:
                body = self.blobs.store.get_blob(digest)
                if body is None:
                    raise errors.blob_unknown(
                        f"blob {digest} of {recipe.name} is missing from the registry's bucket",
                        detail={"digest": digest},
                    )
                return replies.content(body, OCTET_STREAM, digest, head=False)
            return self.blobs.stored(digest)
        if record["source"] == "base":
            image = recipe.base
        else:
            number = record.get("wrapper", 0)
            if not isinstance(number, int) or not 0 <= number < len(recipe.wrappers):
                raise errors.blob_unknown(f"blob {digest} is not part of {recipe.name}")
            image = recipe.wrappers[number]
        return self.blobs.upstream(image.repository, digest, head, size=size)

    def tags(self, recipe: Recipe) -> Reply:
        return replies.json_reply({"name": recipe.name, "tags": [recipe.tag]})
