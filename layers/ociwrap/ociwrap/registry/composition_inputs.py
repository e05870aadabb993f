"""The inputs of a composition: base and wrappers resolved, admitted and read.

Each image of a recipe is resolved to a digest (or taken at the digest a composition
was made of) and admitted by WRAPPER_POLICY before any of it is read; then its
manifest or index, and its configs, come through the `ImageSource`, every error
naming the image's role (base, wrapper N). What the policy verified of an image stays
with it (`Admitted`), for the composition's provenance.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ociwrap.bucket.interface import StoredManifest
from ociwrap.image.documents import Descriptor, Image, ImageIndex, ImageManifest, invalid
from ociwrap.names.reference import ImageRef
from ociwrap.registry.imagesource import ImageSource, Resolved, with_role

if TYPE_CHECKING:
    from ociwrap.registry.verification import SignatureCheck

_PLATFORM_KEYS = ("os", "architecture", "variant", "os.version")


@dataclass(frozen=True)
class Admitted(Resolved):
    """An image resolved and admitted, with what WRAPPER_POLICY verified of it (None when
    no policy is set): the rule, the key and the signature, as `SignatureCheck` says."""

    verdict: Mapping[str, Any] | None = field(default=None, compare=False)


class CompositionInputs:
    """Reads the base and wrappers of recipes, admitted by the policy when one is set."""

    def __init__(self, images: ImageSource, check: SignatureCheck | None = None) -> None:
        self.images = images
        self.check = check  # admits base and wrappers by WRAPPER_POLICY

    def resolve(self, role: str, image: ImageRef) -> Admitted:
        """An image of the recipe resolved to its digest, and admitted by the policy."""
        resolved = with_role(role, image, lambda: self.images.resolve(image))
        assert isinstance(resolved, Resolved)
        return self.admit(role, resolved)

    def pinned(self, role: str, image: ImageRef, digest: str) -> Admitted:
        """An image of the recipe as it was at `digest` (its name unchanged), admitted."""
        stored = with_role(role, image, lambda: self.images.manifest(image.repository, digest))
        assert isinstance(stored, StoredManifest)
        return self.admit(role, Resolved(image, digest, stored.media_type))

    def admit(self, role: str, resolved: Resolved) -> Admitted:
        verdict = self.check.check(role, resolved) if self.check is not None else None
        return Admitted(resolved.image, resolved.digest, resolved.media_type, verdict)

    def document(self, resolved: Resolved, digest: str, role: str) -> Any:
        return with_role(
            role, resolved.image, lambda: self.images.document(resolved.image, digest, role)
        )

    def manifest(self, resolved: Resolved, digest: str, role: str) -> ImageManifest:
        document = self.document(resolved, digest, role)
        if not isinstance(document, ImageManifest):
            raise invalid(role, f"index entry {digest} is itself an index")
        return document

    def image(self, resolved: Resolved, digest: str, role: str) -> Image:
        manifest = self.manifest(resolved, digest, role)
        config = with_role(
            role, resolved.image, lambda: self.images.config(resolved.image, manifest, role)
        )
        return Image(manifest, config)

    def wrapper_document(self, wrapper: Resolved, role: str) -> Any:
        """A wrapper's manifest or index; a single-platform wrapper's config is read now
        too, beside the base's, rather than after it."""
        document = self.document(wrapper, wrapper.digest, role)
        if isinstance(document, ImageManifest):
            self.image(wrapper, wrapper.digest, role)
        return document

    def platforms(self, base: Resolved) -> tuple[bool, tuple[Descriptor, ...]]:
        """The base's runnable platforms; a single-platform base is an index of one,
        with the platform its config names, so the wrapper variant is chosen by the
        same rules as for a multi-platform base."""
        document = self.document(base, base.digest, "base")
        if isinstance(document, ImageIndex):
            return True, document.images()
        config = self.image(base, base.digest, "base").config.document
        platform = {key: config[key] for key in _PLATFORM_KEYS if isinstance(config.get(key), str)}
        size = len(self.images.manifest(base.image.repository, base.digest).body)
        raw = {
            "mediaType": base.media_type,
            "digest": base.digest,
            "size": size,
            "platform": {key: value for key, value in platform.items() if value},
        }
        return False, (Descriptor(base.media_type, base.digest, size, raw),)
