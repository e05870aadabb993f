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

from ociwrap import mediatypes as mt
from ociwrap.digest import sha256_of
from ociwrap.documents import Descriptor, Image, ImageManifest, invalid, string_list
from ociwrap.errors import RegistryError, manifest_invalid

#: Label of the wrapper image naming the executable that becomes the entrypoint.
WRAPPER_LABEL = "org.goci.wrapper"

#: Manifest annotations the caller fills in (see `compose_manifest`).
ANNOTATION_BASE_NAME = "org.opencontainers.image.base.name"
ANNOTATION_BASE_DIGEST = "org.opencontainers.image.base.digest"
ANNOTATION_WRAPPER_NAME = "org.goci.wrapper.name"
ANNOTATION_WRAPPER_DIGEST = "org.goci.wrapper.digest"

#: Error messages users see, worded as Goci Wrapper words them.
MISSING_LABEL = f"wrapper image missing '{WRAPPER_LABEL}' label"
NO_LAYERS = "wrapper image has no layers"

#: Docker and containerd refuse images with more layers than this (overlayfs' limit).
MAX_LAYERS = 127

Json = dict[str, Any]


def canonical_json(obj: Any) -> bytes:
    """The one serialisation of every document this service makes.

    Compact separators, keys in insertion order (which this module controls,
    and which for upstream documents is their own order, fixed by their
    digest), UTF-8 without `\\u` escapes. Dict order does not depend on the
    hash seed, so the bytes are the same in every process. NaN and infinities
    are refused: they are not JSON and clients would reject them.
    """
    return json.dumps(
        obj, separators=(",", ":"), sort_keys=False, ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


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


# --------------------------------------------------------------------------- checks


def _check_pair(base: ImageManifest, wrapper: ImageManifest) -> None:
    """A wrapper that brings at least one layer, and a result clients can unpack."""
    if not wrapper.layers:
        raise manifest_invalid(NO_LAYERS)
    count = len(base.layers) + len(wrapper.layers)
    if count > MAX_LAYERS:
        raise manifest_invalid(
            f"the wrapped image would have {count} layers; at most {MAX_LAYERS} are allowed",
            detail={"base": len(base.layers), "wrapper": len(wrapper.layers)},
        )


# --------------------------------------------------------------------------- config


def wrapper_entrypoint(labels: Mapping[str, Any] | None) -> str:
    """The executable the wrapper image declares in its `org.goci.wrapper` label.

    The label is the whole contract between a wrapper image and this service:
    without it there is nothing to put in front of the base entrypoint.
    """
    value = labels.get(WRAPPER_LABEL) if isinstance(labels, Mapping) else None
    if not isinstance(value, str) or not value.strip():
        raise RegistryError("MANIFEST_INVALID", MISSING_LABEL)
    return value


def _env_name(entry: str) -> str:
    return entry.split("=", 1)[0]


def merge_env(base_env: Sequence[str], wrapper_env: Sequence[str]) -> list[str]:
    """Base variables in base order; the wrapper's override same-named ones in place
    and new ones follow in wrapper order. `PATH` is the exception: the base's is kept,
    because the base's programs (its entrypoint, its `Cmd`) must still be found; the
    wrapper's `PATH` is used only when the base has none.
    """
    merged = list(base_env)
    positions: dict[str, list[int]] = {}
    for index, entry in enumerate(merged):
        positions.setdefault(_env_name(entry), []).append(index)
    base_has_path = "PATH" in positions
    for entry in wrapper_env:
        name = _env_name(entry)
        if name == "PATH" and base_has_path:
            continue
        if name in positions:
            for index in positions[name]:
                merged[index] = entry
        else:
            positions[name] = [len(merged)]
            merged.append(entry)
    return merged


def _merge_labels(
    base: Mapping[str, Any] | None, wrapper: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """Base labels in base order, wrapper labels override or follow; None when neither has any."""
    if not base and not wrapper:
        return None
    merged = dict(base or {})
    merged.update(wrapper or {})
    return merged


def _history(side: str, config: Mapping[str, Any], layer_count: int) -> list[Json]:
    """The side's history if it describes its layers, else one synthetic entry per layer.

    Clients (`docker history`, image scanners) pair history entries that are not
    `empty_layer` with layers by position, so the composed history must have
    exactly one such entry per layer. A history that is missing, malformed or
    counts a different number of layers cannot be paired and is replaced as a
    whole: a partial repair would attribute commands to the wrong layers.
    """
    history = config.get("history")
    if isinstance(history, list) and all(isinstance(entry, Mapping) for entry in history):
        filled = sum(1 for entry in history if entry.get("empty_layer") is not True)
        if filled == layer_count:
            return [copy.deepcopy(dict(entry)) for entry in history]
    created = _created(config)
    synthetic: list[Json] = []
    for number in range(1, layer_count + 1):
        entry: Json = {}
        if created:
            entry["created"] = created
        entry["created_by"] = f"ociwrap: {side} layer"
        entry["comment"] = (
            f"layer {number} of {layer_count} of the {side} image, "
            "whose history was missing or did not match its layers"
        )
        synthetic.append(entry)
    return synthetic


def _created(config: Mapping[str, Any]) -> str | None:
    value = config.get("created")
    return value if isinstance(value, str) and value else None


def compose_config(base: Image, wrapper: Image) -> Json:
    """The wrapped image's config: the base config, run through the wrapper.

    * `Entrypoint` = [wrapper label] + base `Entrypoint`; `Cmd` untouched (even
      null), so the wrapper receives exactly what the base would have run.
    * `Env` merged by `merge_env`; `Labels` merged with the wrapper winning.
    * Everything else (`User`, `WorkingDir`, ports, volumes, `StopSignal`,
      `created`, `os`, `architecture`, `variant`, `os.version`, `author`) is
      the base's: the wrapped image must behave as the base does.
    * `rootfs.diff_ids` = base + wrapper, matching the manifest's layer order,
      and `history` extended likewise, plus one `empty_layer` entry recording
      the wrap. Its timestamp is the base's `created`, never the clock, so the
      digest does not change between pulls.
    """
    _check_pair(base.manifest, wrapper.manifest)
    label = wrapper_entrypoint(wrapper.config.labels)
    base_inner = base.config.container
    wrapper_inner = wrapper.config.container

    composed: Json = copy.deepcopy(dict(base.config.document))
    inner: Json = copy.deepcopy(dict(base_inner))
    inner["Entrypoint"] = [label, *string_list("base", "Entrypoint", base_inner.get("Entrypoint"))]

    wrapper_env = string_list("wrapper", "Env", wrapper_inner.get("Env"))
    if wrapper_env:
        inner["Env"] = merge_env(string_list("base", "Env", base_inner.get("Env")), wrapper_env)

    labels = _merge_labels(base_inner.get("Labels"), wrapper_inner.get("Labels"))
    if labels is not None:
        inner["Labels"] = copy.deepcopy(labels)

    composed["config"] = inner
    composed["rootfs"] = {
        "type": "layers",
        "diff_ids": [*base.config.diff_ids, *wrapper.config.diff_ids],
    }

    history = _history("base", base.config.document, len(base.manifest.layers))
    history += _history("wrapper", wrapper.config.document, len(wrapper.manifest.layers))
    wrap_entry: Json = {}
    created = _created(base.config.document)
    if created:
        wrap_entry["created"] = created
    wrap_entry["created_by"] = f"ociwrap: entrypoint {label}"
    wrap_entry["empty_layer"] = True
    history.append(wrap_entry)
    composed["history"] = history
    return composed


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
    wrapper: ImageManifest,
    config_bytes: bytes,
    annotations: Mapping[str, str],
) -> Json:
    """The wrapped image's OCI manifest: the new config, base layers, then all wrapper layers.

    Layer descriptors are copied whole (so `urls` of foreign layers and layer
    annotations survive) and only their media type is mapped to OCI; the
    digests, and so the blobs clients fetch, stay the upstreams'. The caller
    passes the annotations (`ANNOTATION_BASE_NAME`, `ANNOTATION_BASE_DIGEST`,
    `ANNOTATION_WRAPPER_NAME`, `ANNOTATION_WRAPPER_DIGEST`); they are written
    in the order given and left out when empty.
    """
    _check_pair(base, wrapper)
    notes = _check_annotations(annotations)
    manifest: Json = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {
            "mediaType": mt.OCI_CONFIG,
            "digest": sha256_of(config_bytes),
            "size": len(config_bytes),
        },
        "layers": [_oci_layer(layer) for layer in (*base.layers, *wrapper.layers)],
    }
    if notes:
        manifest["annotations"] = notes
    return manifest


def compose_image(base: Image, wrapper: Image, annotations: Mapping[str, str]) -> Composed:
    """Compose and serialise a wrapped single-platform image.

    The caller is expected to have checked that each config's bytes match the
    digest its manifest names (the upstream fetcher does that on fetch).
    """
    config = compose_config(base, wrapper)
    try:
        config_bytes = canonical_json(config)
    except ValueError as exc:  # NaN, or text that is not valid Unicode
        raise invalid("base or wrapper", f"config cannot be serialised: {exc}") from exc
    manifest = compose_manifest(base.manifest, wrapper.manifest, config_bytes, annotations)
    try:
        manifest_bytes = canonical_json(manifest)
    except ValueError as exc:
        raise invalid("base or wrapper", f"manifest cannot be serialised: {exc}") from exc
    return Composed(
        manifest_bytes=manifest_bytes,
        manifest_digest=sha256_of(manifest_bytes),
        config_bytes=config_bytes,
        config_digest=sha256_of(config_bytes),
        media_type=mt.OCI_MANIFEST,
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
        media_type=mt.OCI_INDEX,
    )
