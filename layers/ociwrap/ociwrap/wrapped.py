"""Wrapped names, by wrap path or container token, turned into replies.

A wrapped name has exactly one tag (`latest` for a wrap path, whose base and
wrapper tags are in the name; the base tag for a token image), plus the digests
of what was composed for it. Blobs are answered only for digests the
composition is made of: a layer from the base or a wrapper repository, or the
generated config in our bucket. What came from a private upstream is shown only
while that upstream still confirms access.
"""

from __future__ import annotations

from ociwrap import errors, replies
from ociwrap.blobs import Blobs
from ociwrap.composer import Composer
from ociwrap.digest import is_digest
from ociwrap.imagesource import ImageSource, with_role
from ociwrap.recipes import Recipe
from ociwrap.replies import Reply
from ociwrap.sources import SourceRecords


class WrappedService:
    """Answers pulls of wrapped names."""

    def __init__(
        self, composer: Composer, sources: SourceRecords, images: ImageSource, blobs: Blobs
    ) -> None:
        self.composer = composer
        self.sources = sources
        self.images = images
        self.blobs = blobs

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

    def blob(self, recipe: Recipe, digest: str, head: bool) -> Reply:
        record = self.sources.lookup(recipe.scope, digest)
        if record is None or record.get("kind") != "blob":
            raise errors.blob_unknown(
                f"blob {digest} is not part of {recipe.name}", detail={"digest": digest}
            )
        size = int(record["size"])
        self._confirm_private(recipe)
        if record["source"] == "generated":
            return replies.blob_head(digest, size) if head else self.blobs.stored(digest)
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
