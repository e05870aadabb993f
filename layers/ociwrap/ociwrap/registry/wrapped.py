"""Wrapped names, by wrap path or container token, turned into replies.

A wrapped name has exactly one tag (`latest` for a wrap path, whose base and
wrapper tags are in the name; the base tag for a token image), plus the digests
of what was composed for it. Blobs are answered only for digests the
composition is made of: a layer from the base or a wrapper repository, or the
generated config in our bucket. What came from a private upstream is shown only
while that upstream still confirms access. A composed manifest or config (or a
signature's document) that the bucket's lifecycle removed is made again on request,
from what its source record says it was made of (see `retention`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from ociwrap.bucket.sources import SourceRecords, composed_from, signed_subject
from ociwrap.bucket.store import OCTET_STREAM
from ociwrap.image.recipes import Recipe
from ociwrap.names.digest import is_digest
from ociwrap.names.reference import is_wrap_path
from ociwrap.registry import replies
from ociwrap.registry.blobs import Blobs
from ociwrap.registry.compositions import Composer
from ociwrap.registry.imagesource import ImageSource, with_role
from ociwrap.registry.referrers import referrers_reply
from ociwrap.registry.replies import Reply
from ociwrap.runtime import errors
from ociwrap.runtime.errors import RegistryError
from ociwrap.signing import cosign

if TYPE_CHECKING:
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
            if record.get("kind") != "manifest":
                raise errors.manifest_unknown(
                    f"manifest {ref} was not composed for {recipe.name}", detail={"digest": ref}
                )
            held = partial(self.images.stored, ref)
            stored = held() or self._again(recipe, ref, record, held, errors.manifest_unknown)
            return replies.content(stored.body, stored.media_type, ref, head)
        signed = cosign.signed_digest(ref)
        if signed is not None and ref != recipe.tag:
            return self._signature(recipe, signed, head)
        if ref != recipe.tag:
            where = (
                "put the base and wrapper tags in the name, "
                "wrap/<base-image>/<tag>/with/<wrapper-image>/<tag>"
                if is_wrap_path(recipe.name)
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
        if found is None and self.signatures is not None and self._made_again(recipe, digest):
            found = self.signatures.find(recipe, digest)  # signed now, from what it signs
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
                read = partial(self.blobs.store.get_blob, digest)
                body = read() or self._again(recipe, digest, record, read, errors.blob_unknown)
                return replies.content(body, OCTET_STREAM, digest, head=False)
            stored = partial(self.blobs.stored, digest)
            return stored() or self._again(recipe, digest, record, stored, errors.blob_unknown)
        if record["source"] == "base":
            image = recipe.base
        else:
            number = record.get("wrapper", 0)
            if not isinstance(number, int) or not 0 <= number < len(recipe.wrappers):
                raise errors.blob_unknown(f"blob {digest} is not part of {recipe.name}")
            image = recipe.wrappers[number]
        return self.blobs.upstream(image.repository, digest, head, size=size)

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
        try:
            if subject is not None:
                why = "its signature is no longer recorded"
                if self.signatures is None:
                    why = "signing is not configured"
                else:
                    self.signatures.restore(recipe, subject)
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

    def tags(self, recipe: Recipe) -> Reply:
        return replies.json_reply({"name": recipe.name, "tags": [recipe.tag]})
