"""Composing wrapped images: resolve both images, plan platforms, compose once, store.

A composition is keyed by the resolved base and wrapper digests (and their
names, which the annotations carry), so it is computed once and every later
pull of the same wrap reads it back. The work itself is pure (`compose`,
`platforms`); this module fetches its inputs through the `ImageSource`, runs
the platforms of an index in parallel, and stores configs, manifests and the
source records of every blob before the composition record points at them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ociwrap import compose
from ociwrap.concurrency import KeyedLocks, parallel_map
from ociwrap.documents import Descriptor, Image, ImageIndex, ImageManifest, invalid
from ociwrap.imagesource import ImageSource, Resolved, with_role
from ociwrap.memcache import BoundedCache
from ociwrap.platforms import plan_platforms
from ociwrap.records import composition_key, wrap_key
from ociwrap.reference import ImageRef, WrapName
from ociwrap.sources import SourceRecords, blob_source, manifest_source
from ociwrap.store import Store

PARALLEL_PLATFORMS = 4
_PLATFORM_KEYS = ("os", "architecture", "variant", "os.version")


@dataclass(frozen=True)
class Composition:
    """A composed manifest or index, ready to serve."""

    digest: str
    media_type: str
    body: bytes


def annotations(
    base: ImageRef, base_digest: str, wrapper: ImageRef, wrapper_digest: str
) -> dict[str, str]:
    return {
        compose.ANNOTATION_BASE_NAME: str(base),
        compose.ANNOTATION_BASE_DIGEST: base_digest,
        compose.ANNOTATION_WRAPPER_NAME: str(wrapper),
        compose.ANNOTATION_WRAPPER_DIGEST: wrapper_digest,
    }


class Composer:
    """Makes (or finds) the composition of a wrap's current base and wrapper."""

    def __init__(
        self, images: ImageSource, store: Store, sources: SourceRecords, cache: BoundedCache
    ) -> None:
        self.images = images
        self.store = store
        self.sources = sources
        self.hot = cache
        self._locks = KeyedLocks()

    def compose(self, wrap: WrapName) -> Composition:
        """The wrapped manifest (or index) for the current base and wrapper digests.

        Other processes composing the same wrap at once write the same bytes to
        the same keys; within this process later callers wait and reuse it.
        """
        with self._locks.lock(wrap_key(wrap)):
            base = with_role("base", wrap.base, lambda: self.images.resolve(wrap.base))
            wrapper = with_role("wrapper", wrap.wrapper, lambda: self.images.resolve(wrap.wrapper))
            key = composition_key(wrap.base, base.digest, wrap.wrapper, wrapper.digest)
            record = self.hot.get_or_load(key, lambda: self.store.get_json(key))
            if record:
                stored = self.images.stored(record["digest"])
                if stored is not None:
                    return Composition(record["digest"], stored.media_type, stored.body)
            composition = self._compose_now(wrap, base, wrapper)
            record = {"digest": composition.digest, "mediaType": composition.media_type}
            self.store.put_json(key, record)
            self.hot.put(key, record)
            return composition

    def _document(self, resolved: Resolved, digest: str, role: str) -> Any:
        return with_role(
            role, resolved.image, lambda: self.images.document(resolved.image, digest, role)
        )

    def _manifest(self, resolved: Resolved, digest: str, role: str) -> ImageManifest:
        document = self._document(resolved, digest, role)
        if not isinstance(document, ImageManifest):
            raise invalid(role, f"index entry {digest} is itself an index")
        return document

    def _image(self, resolved: Resolved, digest: str, role: str) -> Image:
        manifest = self._manifest(resolved, digest, role)
        config = with_role(
            role, resolved.image, lambda: self.images.config(resolved.image, manifest, role)
        )
        return Image(manifest, config)

    def _platforms(self, base: Resolved) -> tuple[bool, tuple[Descriptor, ...]]:
        """The base's runnable platforms; a single-platform base is an index of one,
        with the platform its config names, so the wrapper variant is chosen by the
        same rules as for a multi-platform base."""
        document = self._document(base, base.digest, "base")
        if isinstance(document, ImageIndex):
            return True, document.images()
        config = self._image(base, base.digest, "base").config.document
        platform = {key: config[key] for key in _PLATFORM_KEYS if isinstance(config.get(key), str)}
        size = len(self.images.manifest(base.image.repository, base.digest).body)
        raw = {
            "mediaType": base.media_type,
            "digest": base.digest,
            "size": size,
            "platform": {key: value for key, value in platform.items() if value},
        }
        return False, (Descriptor(base.media_type, base.digest, size, raw),)

    def _compose_now(self, wrap: WrapName, base: Resolved, wrapper: Resolved) -> Composition:
        base_is_index, base_entries = self._platforms(base)
        wrapper_document = self._document(wrapper, wrapper.digest, "wrapper")
        if isinstance(wrapper_document, ImageIndex):
            wrapper_entries: tuple[Descriptor, ...] | None = wrapper_document.images()
        else:
            wrapper_entries = None
        plan = plan_platforms(base_entries, wrapper_entries)

        def compose_platform(
            pair: tuple[Descriptor, Descriptor | None],
        ) -> tuple[Descriptor, compose.Composed]:
            base_entry, wrapper_entry = pair
            wrapper_digest = wrapper.digest if wrapper_entry is None else wrapper_entry.digest
            return base_entry, self._compose_one(
                wrap, base, base_entry.digest, wrapper, wrapper_digest
            )

        entries = parallel_map(compose_platform, plan, PARALLEL_PLATFORMS)
        if not base_is_index:
            composed = entries[0][1]
            return Composition(
                composed.manifest_digest, composed.media_type, composed.manifest_bytes
            )
        index = compose.compose_index(
            entries, annotations(wrap.base, base.digest, wrap.wrapper, wrapper.digest)
        )
        self.images.keep(index.manifest_digest, index.manifest_bytes, index.media_type)
        self.sources.record(wrap, {index.manifest_digest: manifest_source()})
        return Composition(index.manifest_digest, index.media_type, index.manifest_bytes)

    def _compose_one(
        self,
        wrap: WrapName,
        base: Resolved,
        base_digest: str,
        wrapper: Resolved,
        wrapper_digest: str,
    ) -> compose.Composed:
        """Compose one platform: store its config, manifest and blob sources."""
        base_image = self._image(base, base_digest, "base")
        wrapper_image = self._image(wrapper, wrapper_digest, "wrapper")
        composed = compose.compose_image(
            base_image,
            wrapper_image,
            annotations(wrap.base, base_digest, wrap.wrapper, wrapper_digest),
        )
        self.store.put_blob(composed.config_digest, composed.config_bytes)
        self.images.keep(composed.manifest_digest, composed.manifest_bytes, composed.media_type)
        sources: dict[str, dict] = {}
        for side, image in (("base", base_image), ("wrapper", wrapper_image)):
            for layer in image.manifest.layers:
                sources.setdefault(layer.digest, blob_source(side, layer.size))
        sources[composed.config_digest] = blob_source("generated", len(composed.config_bytes))
        sources[composed.manifest_digest] = manifest_source()
        self.sources.record(wrap, sources)
        return composed
