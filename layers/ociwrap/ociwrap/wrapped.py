"""Wrapped names: `wrap/<base>/with/<wrapper>` turned into replies.

A wrapped name has exactly one tag, `latest` (the base and wrapper tags are in
the name), plus the digests of what was composed for it. Blobs are answered
only for digests the composition is made of: a layer from the base or wrapper
repository, or the generated config in our bucket.
"""

from __future__ import annotations

from ociwrap import errors, replies
from ociwrap.blobs import Blobs
from ociwrap.composer import Composer
from ociwrap.digest import is_digest
from ociwrap.imagesource import ImageSource, with_role
from ociwrap.reference import WrapName
from ociwrap.replies import Reply
from ociwrap.sources import SourceRecords

TAG = "latest"


class WrappedService:
    """Answers pulls of wrapped names."""

    def __init__(
        self, composer: Composer, sources: SourceRecords, images: ImageSource, blobs: Blobs
    ) -> None:
        self.composer = composer
        self.sources = sources
        self.images = images
        self.blobs = blobs

    def _confirm_private(self, wrap: WrapName) -> None:
        """What a private upstream gave us is shown only while it still confirms access:
        its tags are resolved again (within their TTL) before a stored answer is given."""
        for role, image in (("base", wrap.base), ("wrapper", wrap.wrapper)):
            if self.images.links.private(image.repository.registry):
                with_role(role, image, lambda image=image: self.images.resolve(image))

    def manifest(self, wrap: WrapName, ref: str, head: bool) -> Reply:
        if is_digest(ref):
            self._confirm_private(wrap)
            record = self.sources.lookup(wrap, ref) or {}
            stored = self.images.stored(ref) if record.get("kind") == "manifest" else None
            if stored is None:
                raise errors.manifest_unknown(
                    f"manifest {ref} was not composed for {wrap.name}", detail={"digest": ref}
                )
            return replies.content(stored.body, stored.media_type, ref, head)
        if ref != TAG:
            raise errors.manifest_unknown(
                f"a wrapped name has the one tag {TAG!r}, not {ref!r}: put the base and wrapper "
                "tags in the name, wrap/<base-image>/<tag>/with/<wrapper-image>/<tag>",
                detail={"tag": ref},
            )
        composition = self.composer.compose(wrap)
        return replies.content(composition.body, composition.media_type, composition.digest, head)

    def blob(self, wrap: WrapName, digest: str, head: bool) -> Reply:
        record = self.sources.lookup(wrap, digest)
        if record is None or record.get("kind") != "blob":
            raise errors.blob_unknown(
                f"blob {digest} is not part of {wrap.name}", detail={"digest": digest}
            )
        size = int(record["size"])
        self._confirm_private(wrap)
        if record["source"] == "generated":
            return replies.blob_head(digest, size) if head else self.blobs.stored(digest)
        image = wrap.base if record["source"] == "base" else wrap.wrapper
        return self.blobs.upstream(image.repository, digest, head, size=size)

    def tags(self, wrap: WrapName) -> Reply:
        return replies.json_reply({"name": wrap.name, "tags": [TAG]})
