"""Pure composition of a wrapped image from a base image and a wrapper image.

The wrapped image is the base image with every wrapper layer stacked on top
and the wrapper's executable (its `org.goci.wrapper` label) put in front of
the base entrypoint. Nothing is rebuilt: the new manifest points at the
upstream layers by their unchanged digests, and only a new config and a new
manifest are made here.

Everything in this module is JSON in, JSON out: no I/O, no clock, no
randomness. Two Lambdas composing the same inputs must write the same bytes
under the same keys, and a client that pulled a wrapped image yesterday must
get the same digest today, so every output is serialised by `canonical_json`
and every digest is taken over exactly those bytes.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ociwrap.image.documents import Descriptor, Image, ImageManifest, invalid
from ociwrap.image.recipes import Overrides
from ociwrap.image.wrapped_config import as_wrappers, check_pair, compose_config
from ociwrap.names import mediatypes as mt
from ociwrap.names.digest import sha256_of

#: Manifest annotations the caller fills in (see `compose_manifest`).
ANNOTATION_BASE_NAME = "org.opencontainers.image.base.name"
ANNOTATION_BASE_DIGEST = "org.opencontainers.image.base.digest"
ANNOTATION_WRAPPER_NAME = "org.goci.wrapper.name"
ANNOTATION_WRAPPER_DIGEST = "org.goci.wrapper.digest"

Json = dict[str, Any]


def canonical_json(obj: Any) -> bytes:
    """The one serialisation of every document this service makes.

    Compact separators, keys in insertion order (which this module controls,
    and which for upstream documents is their own order, fixed by their
    digest), UTF-8 without `\\u` escapes. Dict order does not depend on the
    hash seed, so the bytes are the same in every process. NaN and infinities
    are refused: they are not JSON and clients would reject them.
    """
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.encode("utf-8")


@dataclass(frozen=True)
class Composed:
    """A wrapped single-platform image: the manifest and config to store and serve."""

    manifest_bytes: bytes
    manifest_digest: str
    config_bytes: bytes
    config_digest: str
    media_type: str = mt.OCI_MANIFEST

    @property
    def size(self) -> int:
        """Length of the manifest bytes, as descriptors and `Content-Length` need it."""
        return len(self.manifest_bytes)

    def descriptor(self, platform: Mapping[str, Any] | None = None) -> Json:
        """A descriptor of this manifest, for an index entry."""
        entry: Json = {
            "mediaType": self.media_type,
            "digest": self.manifest_digest,
            "size": self.size,
        }
        if platform is not None:
            entry["platform"] = copy.deepcopy(dict(platform))
        return entry


@dataclass(frozen=True)
class ComposedIndex:
    """A wrapped multi-platform image: the index and the wrapped manifests it lists.

    Field names match `Composed` where they mean the same, so a caller stores
    and serves either the same way.
    """

    manifest_bytes: bytes
    manifest_digest: str
    children: tuple[Composed, ...]
    media_type: str = mt.OCI_INDEX

    @property
    def size(self) -> int:
        """Length of the index bytes."""
        return len(self.manifest_bytes)


# --------------------------------------------------------------------------- manifest


def _oci_layer(layer: Descriptor) -> Json:
    """A copy of a layer descriptor (digest, size, urls, annotations...) with an OCI media type."""
    copied: Json = copy.deepcopy(dict(layer.raw))
    copied["mediaType"] = mt.to_oci(layer.media_type)
    return copied


def _check_annotations(annotations: Mapping[str, str]) -> dict[str, str]:
    if not isinstance(annotations, Mapping) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in annotations.items()
    ):
        raise TypeError("annotations must map strings to strings")
    return dict(annotations)


def compose_manifest(
    base: ImageManifest,
    wrappers: ImageManifest | Sequence[ImageManifest],
    config_bytes: bytes,
    annotations: Mapping[str, str],
) -> Json:
    """The wrapped image's OCI manifest: the new config, base layers, then every wrapper's.

    Layer descriptors are copied whole (so `urls` of foreign layers and layer
    annotations survive) and only their media type is mapped to OCI; the
    digests, and so the blobs clients fetch, stay the upstreams'. The caller
    passes the annotations (`ANNOTATION_BASE_NAME`, `ANNOTATION_BASE_DIGEST`,
    `ANNOTATION_WRAPPER_NAME`, `ANNOTATION_WRAPPER_DIGEST`); they are written
    in the order given and left out when empty.
    """
    chain = [wrappers] if isinstance(wrappers, ImageManifest) else list(wrappers)
    check_pair(base, chain)
    notes = _check_annotations(annotations)
    manifest: Json = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {
            "mediaType": mt.OCI_CONFIG,
            "digest": sha256_of(config_bytes),
            "size": len(config_bytes),
        },
        "layers": [
            _oci_layer(layer)
            for layer in (*base.layers, *(layer for wrapper in chain for layer in wrapper.layers))
        ],
    }
    if notes:
        manifest["annotations"] = notes
    return manifest


def compose_image(
    base: Image,
    wrappers: Image | Sequence[Image],
    annotations: Mapping[str, str],
    overrides: Overrides | None = None,
) -> Composed:
    """Compose and serialise a wrapped single-platform image.

    The caller is expected to have checked that each config's bytes match the
    digest its manifest names (the upstream fetcher does that on fetch).
    """
    chain = as_wrappers(wrappers)
    config = compose_config(base, chain, overrides)
    try:
        config_bytes = canonical_json(config)
    except ValueError as exc:  # NaN, or text that is not valid Unicode
        raise invalid("base or wrapper", f"config cannot be serialised: {exc}") from exc
    manifest = compose_manifest(
        base.manifest, [wrapper.manifest for wrapper in chain], config_bytes, annotations
    )
    try:
        manifest_bytes = canonical_json(manifest)
    except ValueError as exc:
        raise invalid("base or wrapper", f"manifest cannot be serialised: {exc}") from exc
    return Composed(
        manifest_bytes=manifest_bytes,
        manifest_digest=sha256_of(manifest_bytes),
        config_bytes=config_bytes,
        config_digest=sha256_of(config_bytes),
    )


# --------------------------------------------------------------------------- index


def compose_index(
    entries: Sequence[tuple[Descriptor, Composed]],
    annotations: Mapping[str, str],
) -> ComposedIndex:
    """The wrapped OCI index: one entry per wrapped platform manifest, in the order given.

    Each entry's `platform` is copied verbatim from the base index entry it
    replaces (pass the base descriptor as the first element of each pair), so
    clients select the same platform they would select in the base.
    """
    if not entries:
        raise ValueError("an index needs at least one wrapped manifest")
    notes = _check_annotations(annotations)
    manifests: list[Json] = []
    for base_entry, composed in entries:
        platform = base_entry.raw.get("platform")
        manifests.append(composed.descriptor(platform if isinstance(platform, Mapping) else None))
    index: Json = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": manifests}
    if notes:
        index["annotations"] = notes
    index_bytes = canonical_json(index)
    return ComposedIndex(
        manifest_bytes=index_bytes,
        manifest_digest=sha256_of(index_bytes),
        children=tuple(composed for _, composed in entries),
    )
