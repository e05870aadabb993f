"""Wrapped names, by wrap path or container token: their documents, blobs and tag.

A wrapped name has exactly one tag (`latest` for a wrap path, whose base and
wrapper tags are in the name; the base tag for a token image), plus the digests
of what was composed for it. Blobs are answered only for digests the
composition is made of: a layer from the base or a wrapper repository, or the
generated config in our bucket. What came from a private upstream is shown only
while that upstream still confirms access. With signing configured, each composed
manifest also has a signature (`sha256-<hex>.sig`) and its provenance
(`sha256-<hex>.att`), both listed by the referrers API. A composed manifest or config
(or a signature's or attestation's document) that the bucket's lifecycle removed is
made again on request, from what its source record says it was made of (see `retention`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from ociwrap.bucket.sources import SourceRecords, attested_subject, composed_from, signed_subject
from ociwrap.image.recipes import Recipe
from ociwrap.names.digest import is_digest
from ociwrap.names.reference import WRAP_FORM, ImageRef, Registry, is_wrap_path
from ociwrap.registry.blobs import Blobs
from ociwrap.registry.compositions import Composer
from ociwrap.registry.imagesource import ImageSource, with_role
from ociwrap.registry.referrers import referrers_of
from ociwrap.registry.results import BlobSize, Content, Redirect, Referrers, TagPage
from ociwrap.runtime import errors
from ociwrap.runtime.errors import RegistryError
from ociwrap.signing import cosign, provenance

if TYPE_CHECKING:
    from ociwrap.registry.attestations import Attestations
    from ociwrap.registry.signatures import Signatures

Held = TypeVar("Held")


class WrappedService:
    """Answers pulls of wrapped names."""

    def __init__(
        self,
        composer: Composer,
        sources: SourceRecords,
        images: ImageSource,
        blobs: Blobs,
        signatures: Signatures | None = None,
        *,
        private: Callable[[Registry], bool],
        attestations: Attestations | None = None,
    ) -> None:
        self.composer = composer
        self.sources = sources
        self.images = images
        self.blobs = blobs
        self.signatures = signatures
        self.attestations = attestations  # with signing: provenance of what is composed
        self.private = private  # registries asked with a login: confirmed on every pull

    def _confirm_private(self, recipe: Recipe) -> None:
        """Tags of private upstreams are resolved again (within their TTL) before a stored
        answer is given, so access the upstream withdrew is withdrawn here too."""
        for role, image in (("base", recipe.base), *(("wrapper", w) for w in recipe.wrappers)):
            if self.private(image.repository.registry):
                with_role(role, image, lambda image=image: self.images.resolve(image))

    def manifest(self, recipe: Recipe, ref: str) -> Content:
        if is_digest(ref):
            self._confirm_private(recipe)
            record = self.sources.lookup(recipe.scope, ref) or {}
            if record.get("kind") != "manifest":
                raise errors.manifest_unknown(
                    f"manifest {ref} was not composed for {recipe.name}", detail={"digest": ref}
                )
            held = partial(self.images.stored, ref)
            stored = held() or self._again(recipe, ref, record, held, errors.manifest_unknown)
            return Content(stored.body, stored.media_type, ref)
        signed, attested = cosign.signed_digest(ref), provenance.attested_digest(ref)
        if signed is not None and ref != recipe.tag:
            return self._attached(recipe, signed, "signature", cosign.signature_tag(signed))
        if attested is not None and ref != recipe.tag:
            tag = provenance.attestation_tag(attested)
            return self._attached(recipe, attested, "provenance", tag)
        if ref != recipe.tag:
            where = (
                f"put the base and wrapper tags in the name, {WRAP_FORM}"
                if is_wrap_path(recipe.name)
                else "a container token image has its base image's tag"
            )
            raise errors.manifest_unknown(
                f"{recipe.name} has the one tag {recipe.tag!r}, not {ref!r}: {where}",
                detail={"tag": ref},
            )
        composition = self.composer.compose(recipe)
        return Content(composition.body, composition.media_type, composition.digest)

    def _attached(self, recipe: Recipe, digest: str, kind: str, tag: str) -> Content:
        """The `sha256-<hex>.sig` (`.att`) tag: the signature (provenance) of a manifest
        composed for this name."""
        self._confirm_private(recipe)
        maker = self.signatures if kind == "signature" else self.attestations
        found = maker.find(recipe, digest) if maker is not None else None
        if found is None and maker is not None and self._made_again(recipe, digest):
            found = maker.find(recipe, digest)  # made now, from what it is about
        if found is None:
            why = "signing is not configured"
            if maker is not None:
                why = "it was not composed here" + (
                    "" if kind == "signature" else ", or before signing was configured"
                )
            raise errors.manifest_unknown(
                f"{recipe.name} has no {kind} of {digest}: {why}", detail={"tag": tag}
            )
        attached, stored = found
        return Content(stored.body, stored.media_type, attached)

    def referrers(self, recipe: Recipe, digest: str, artifact_type: str | None) -> Referrers:
        """What refers to a composed manifest: its signature and provenance, when signing
        is on."""
        self._confirm_private(recipe)
        descriptors = []
        for maker, describe in (
            (self.signatures, cosign.signature_descriptor),
            (self.attestations, provenance.attestation_descriptor),
        ):
            found = maker.find(recipe, digest) if maker is not None else None
            if found is not None:
                descriptors.append(describe(found[0], len(found[1].body)))
        return referrers_of(descriptors, artifact_type)

    def _part(self, recipe: Recipe, digest: str) -> tuple[dict[str, Any], int, ImageRef | None]:
        """A blob of the composition (else 404), once private upstreams confirm access: its
        source record, its size, and the image whose repository holds it (None for the
        generated config, which is in our bucket)."""
        record = self.sources.lookup(recipe.scope, digest)
        if record is None or record.get("kind") != "blob":
            raise errors.blob_unknown(
                f"blob {digest} is not part of {recipe.name}", detail={"digest": digest}
            )
        size = int(record["size"])
        self._confirm_private(recipe)
        if record["source"] == "generated":
            return record, size, None
        if record["source"] == "base":
            return record, size, recipe.base
        number = record.get("wrapper", 0)
        if not isinstance(number, int) or not 0 <= number < len(recipe.wrappers):
            raise errors.blob_unknown(f"blob {digest} is not part of {recipe.name}")
        return record, size, recipe.wrappers[number]

    def blob(self, recipe: Recipe, digest: str) -> Redirect:
        """Where to fetch a blob of the composition: a layer where its upstream says, the
        generated config from our bucket."""
        record, _, image = self._part(recipe, digest)
        if image is not None:
            return self.blobs.upstream(image.repository, digest)
        stored = partial(self.blobs.stored, digest)
        return stored() or self._again(recipe, digest, record, stored, errors.blob_unknown)

    def blob_size(self, recipe: Recipe, digest: str) -> BlobSize:
        """The size of a blob of the composition, as its source record says (nobody asked)."""
        _, size, _ = self._part(recipe, digest)
        return BlobSize(digest, size)

    def generated_blob(self, recipe: Recipe, digest: str) -> bytes | None:
        """The bytes of the blob this registry made for the name (its config: kilobytes of
        JSON from our bucket, never a layer); None for a layer of it."""
        record, _, image = self._part(recipe, digest)
        if image is not None:
            return None
        read = partial(self.blobs.store.get_blob, digest)
        return read() or self._again(recipe, digest, record, read, errors.blob_unknown)

    def _made_again(self, recipe: Recipe, digest: str) -> bool:
        """Whether a manifest composed for this name was gone from the bucket and is now
        made again (404 when it cannot be)."""
        record = self.sources.lookup(recipe.scope, digest) or {}
        if record.get("kind") != "manifest" or self.images.stored(digest) is not None:
            return False
        held = partial(self.images.stored, digest)
        self._again(recipe, digest, record, held, errors.manifest_unknown)
        return True

    def _again(
        self,
        recipe: Recipe,
        digest: str,
        record: dict[str, Any],
        held: Callable[[], Held | None],
        unknown: Callable[..., RegistryError],
    ) -> Held:
        """What `held` finds once a document of this name that the bucket no longer holds
        (its lifecycle removed it) is made again: a signature's from its signature record,
        a composed manifest or config by composing the base and wrapper digests it was made
        of again (the same digests). `unknown` (404) says why when it cannot be."""
        why = "nothing records what it was made of (pull the name by its tag)"
        subject, inputs = signed_subject(record), composed_from(record, len(recipe.wrappers))
        attested = attested_subject(record)
        maker = self.signatures if subject is not None else self.attestations
        try:
            if subject is not None or attested is not None:
                kind = "signature" if subject is not None else "provenance"
                why = f"its {kind} is no longer recorded"
                if maker is None:
                    why = "signing is not configured"
                else:
                    maker.restore(recipe, subject or str(attested))
            elif inputs is not None:
                why = "composing its base and wrapper digests again made other digests"
                self.composer.recompose(recipe, *inputs)
        except RegistryError as exc:
            if exc.status != 404:
                raise
            why = exc.message
        found = held()
        if found is None:
            raise unknown(
                f"{digest} of {recipe.name} is no longer in the registry's bucket (it expired) "
                f"and cannot be made again: {why}",
                detail={"digest": digest},
            )
        return found

    def tags(self, recipe: Recipe) -> TagPage:
        return TagPage(recipe.name, (recipe.tag,))
