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
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ociwrap import mediatypes as mt
from ociwrap.errors import RegistryError, manifest_invalid
from ociwrap.platforms import Platform, is_attestation, match

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
INVALID_FORMAT = "invalid upstream image format"
NO_PLATFORM = "no platform of the base image has a matching wrapper variant"

_DIGEST = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")

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


def sha256_digest(data: bytes) -> str:
    """`sha256:<hex>`, the digest form registries and clients use."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


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


def _invalid(role: str, reason: str) -> RegistryError:
    """`invalid upstream image format`, with which image and why in the detail."""
    return manifest_invalid(INVALID_FORMAT, detail={"image": role, "reason": reason})


def _check_descriptor(role: str, what: str, descriptor: Any) -> None:
    if not isinstance(descriptor, Mapping):
        raise _invalid(role, f"{what} is not a descriptor object")
    media_type = descriptor.get("mediaType")
    if not isinstance(media_type, str) or not media_type:
        raise _invalid(role, f"{what} has no mediaType")
    digest = descriptor.get("digest")
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise _invalid(role, f"{what} has no valid digest")
    size = descriptor.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise _invalid(role, f"{what} has no valid size")


def _check_manifest(role: str, manifest: Any) -> list[Mapping[str, Any]]:
    """Refuse anything but a schema-2 single-image manifest; return its layers."""
    if not isinstance(manifest, Mapping):
        raise _invalid(role, "manifest is not a JSON object")
    media_type = manifest.get("mediaType")
    if manifest.get("schemaVersion") == 1 or media_type in mt.SCHEMA1_TYPES:
        raise _invalid(role, "Docker schema 1 manifests are not supported")
    if media_type in mt.INDEX_TYPES or "manifests" in manifest:
        raise _invalid(role, "an index was given where a single-image manifest is needed")
    if media_type is not None and media_type not in mt.MANIFEST_TYPES:
        raise _invalid(role, f"unsupported manifest media type {media_type!r}")
    if manifest.get("schemaVersion") != 2:
        raise _invalid(role, "manifest schemaVersion is not 2")
    config = manifest.get("config")
    _check_descriptor(role, "config", config)
    if config["mediaType"] not in mt.CONFIG_TYPES:
        raise _invalid(role, f"config media type {config['mediaType']!r} is not an image config")
    layers = manifest.get("layers")
    if not isinstance(layers, list):
        raise _invalid(role, "manifest has no layers list")
    for number, layer in enumerate(layers, start=1):
        _check_descriptor(role, f"layer {number}", layer)
    return layers


def _check_pair(base_manifest: Any, wrapper_manifest: Any) -> tuple[list, list]:
    """Both manifests well-formed, and a wrapper that brings at least one layer."""
    base_layers = _check_manifest("base", base_manifest)
    wrapper_layers = _check_manifest("wrapper", wrapper_manifest)
    if not wrapper_layers:
        raise manifest_invalid(NO_LAYERS)
    return base_layers, wrapper_layers


def _diff_ids(role: str, config: Any, layer_count: int) -> list[str]:
    """The config's `rootfs.diff_ids`, which must describe exactly the manifest's layers."""
    if not isinstance(config, Mapping):
        raise _invalid(role, "config is not a JSON object")
    rootfs = config.get("rootfs")
    if not isinstance(rootfs, Mapping):
        raise _invalid(role, "config has no rootfs")
    if rootfs.get("type", "layers") != "layers":
        raise _invalid(role, f"config rootfs type {rootfs.get('type')!r} is not 'layers'")
    diff_ids = rootfs.get("diff_ids")
    if not isinstance(diff_ids, list) or not all(isinstance(d, str) for d in diff_ids):
        raise _invalid(role, "config has no rootfs.diff_ids list")
    if len(diff_ids) != layer_count:
        raise _invalid(
            role,
            f"config lists {len(diff_ids)} diff_ids but the manifest has {layer_count} layers",
        )
    return list(diff_ids)


def _container_config(role: str, config: Mapping[str, Any]) -> Mapping[str, Any]:
    """The `config` object of an image config (absent or null means empty)."""
    inner = config.get("config")
    if inner is None:
        return {}
    if not isinstance(inner, Mapping):
        raise _invalid(role, "config.config is not a JSON object")
    return inner


# --------------------------------------------------------------------------- config


def wrapper_entrypoint(wrapper_config: Mapping[str, Any]) -> str:
    """The executable the wrapper image declares in its `org.goci.wrapper` label.

    The label is the whole contract between a wrapper image and this service:
    without it there is nothing to put in front of the base entrypoint.
    """
    inner = wrapper_config.get("config") if isinstance(wrapper_config, Mapping) else None
    labels = inner.get("Labels") if isinstance(inner, Mapping) else None
    value = labels.get(WRAPPER_LABEL) if isinstance(labels, Mapping) else None
    if not isinstance(value, str) or not value.strip():
        raise RegistryError("MANIFEST_INVALID", MISSING_LABEL)
    return value


def _string_list(role: str, field: str, value: Any) -> list[str]:
    """Entrypoint/Env as a list; a lone string counts as one element, as Docker reads it."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    raise _invalid(role, f"config.{field} is not a list of strings")


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


def _merge_labels(base: Any, wrapper: Any) -> dict[str, str] | None:
    """Base labels in base order, wrapper labels override or follow; None when neither has any."""
    for side, labels in (("base", base), ("wrapper", wrapper)):
        if labels is not None and not isinstance(labels, Mapping):
            raise _invalid(side, "config.Labels is not a JSON object")
    if not base and not wrapper:
        return None
    merged = dict(base or {})
    merged.update(wrapper or {})
    return merged


def _history(
    side: str, config: Mapping[str, Any], layer_count: int, created: str | None
) -> list[Json]:
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


def compose_config(
    base_manifest: Mapping[str, Any],
    base_config: Mapping[str, Any],
    wrapper_manifest: Mapping[str, Any],
    wrapper_config: Mapping[str, Any],
) -> Json:
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

    The manifests are needed for their layer counts: a config whose diff_ids
    do not match its manifest would make clients fail on unpacking, so such an
    upstream image is refused here instead.
    """
    base_layers, wrapper_layers = _check_pair(base_manifest, wrapper_manifest)
    base_diff_ids = _diff_ids("base", base_config, len(base_layers))
    wrapper_diff_ids = _diff_ids("wrapper", wrapper_config, len(wrapper_layers))
    base_inner = _container_config("base", base_config)
    wrapper_inner = _container_config("wrapper", wrapper_config)
    label = wrapper_entrypoint(wrapper_config)

    composed: Json = copy.deepcopy(dict(base_config))
    inner: Json = copy.deepcopy(dict(base_inner))

    inner["Entrypoint"] = [label, *_string_list("base", "Entrypoint", base_inner.get("Entrypoint"))]

    base_env = _string_list("base", "Env", base_inner.get("Env"))
    wrapper_env = _string_list("wrapper", "Env", wrapper_inner.get("Env"))
    if wrapper_env:
        inner["Env"] = merge_env(base_env, wrapper_env)

    labels = _merge_labels(base_inner.get("Labels"), wrapper_inner.get("Labels"))
    if labels is not None:
        inner["Labels"] = labels

    composed["config"] = inner
    composed["rootfs"] = {"type": "layers", "diff_ids": base_diff_ids + wrapper_diff_ids}

    created = _created(base_config)
    history = _history("base", base_config, len(base_layers), created)
    history += _history("wrapper", wrapper_config, len(wrapper_layers), _created(wrapper_config))
    wrap_entry: Json = {}
    if created:
        wrap_entry["created"] = created
    wrap_entry["created_by"] = f"ociwrap: entrypoint {label}"
    wrap_entry["empty_layer"] = True
    history.append(wrap_entry)
    composed["history"] = history
    return composed


# --------------------------------------------------------------------------- manifest


def _oci_layer(layer: Mapping[str, Any]) -> Json:
    """A copy of a layer descriptor (digest, size, urls, annotations...) with an OCI media type."""
    copied: Json = copy.deepcopy(dict(layer))
    copied["mediaType"] = mt.to_oci(layer["mediaType"])
    return copied


def _check_annotations(annotations: Mapping[str, str]) -> dict[str, str]:
    if not isinstance(annotations, Mapping) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in annotations.items()
    ):
        raise TypeError("annotations must map strings to strings")
    return dict(annotations)


def compose_manifest(
    base_manifest: Mapping[str, Any],
    wrapper_manifest: Mapping[str, Any],
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
    base_layers, wrapper_layers = _check_pair(base_manifest, wrapper_manifest)
    notes = _check_annotations(annotations)
    manifest: Json = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {
            "mediaType": mt.OCI_CONFIG,
            "digest": sha256_digest(config_bytes),
            "size": len(config_bytes),
        },
        "layers": [_oci_layer(layer) for layer in [*base_layers, *wrapper_layers]],
    }
    if notes:
        manifest["annotations"] = notes
    return manifest


def compose_image(
    base_manifest: Mapping[str, Any],
    base_config: Mapping[str, Any],
    wrapper_manifest: Mapping[str, Any],
    wrapper_config: Mapping[str, Any],
    annotations: Mapping[str, str],
) -> Composed:
    """Compose and serialise a wrapped single-platform image.

    The caller is expected to have checked that each config's bytes match the
    digest its manifest names (the upstream client does that on fetch).
    """
    config = compose_config(base_manifest, base_config, wrapper_manifest, wrapper_config)
    try:
        config_bytes = canonical_json(config)
    except ValueError as exc:  # NaN, or text that is not valid Unicode
        raise _invalid("base or wrapper", f"config cannot be serialised: {exc}") from exc
    manifest = compose_manifest(base_manifest, wrapper_manifest, config_bytes, annotations)
    try:
        manifest_bytes = canonical_json(manifest)
    except ValueError as exc:
        raise _invalid("base or wrapper", f"manifest cannot be serialised: {exc}") from exc
    return Composed(
        manifest_bytes=manifest_bytes,
        manifest_digest=sha256_digest(manifest_bytes),
        config_bytes=config_bytes,
        config_digest=sha256_digest(config_bytes),
        media_type=mt.OCI_MANIFEST,
    )


# --------------------------------------------------------------------------- index


def _is_index(document: Mapping[str, Any]) -> bool:
    return document.get("mediaType") in mt.INDEX_TYPES or isinstance(
        document.get("manifests"), list
    )


def _index_entries(role: str, index: Any) -> list[Mapping[str, Any]]:
    """Entries of an index that are runnable images: no attestations, no nested indexes."""
    if not isinstance(index, Mapping) or not isinstance(index.get("manifests"), list):
        raise _invalid(role, "index has no manifests list")
    entries = []
    for number, entry in enumerate(index["manifests"], start=1):
        _check_descriptor(role, f"index entry {number}", entry)
        if is_attestation(entry) or entry["mediaType"] not in mt.MANIFEST_TYPES:
            continue
        entries.append(entry)
    return entries


def plan_platforms(
    base_index: Mapping[str, Any], wrapper: Mapping[str, Any]
) -> list[tuple[Mapping[str, Any], Mapping[str, Any] | None]]:
    """Pair each base platform with the wrapper manifest that will be stacked on it.

    Returns `(base entry, wrapper entry)` in base order. The wrapper entry is
    None when `wrapper` is a single-image manifest: a wrapper published for one
    platform (typically a script) serves every base platform. With a wrapper
    index, each base platform takes the variant `platforms.match` chooses and
    base platforms the wrapper does not provide are left out of the wrapped
    index. Attestations and entries that are not image manifests are dropped
    on both sides.
    """
    base_entries = _index_entries("base", base_index)
    if not isinstance(wrapper, Mapping):
        raise _invalid("wrapper", "manifest is not a JSON object")
    if not _is_index(wrapper):
        _check_manifest("wrapper", wrapper)
        plan: list[tuple[Mapping[str, Any], Mapping[str, Any] | None]] = [
            (entry, None) for entry in base_entries
        ]
        wrapper_platforms: list[str] = ["any"]
    else:
        wrapper_entries = _index_entries("wrapper", wrapper)
        plan = []
        for entry in base_entries:
            chosen = match(Platform.from_descriptor(entry), wrapper_entries)
            if chosen is not None:
                plan.append((entry, chosen))
        wrapper_platforms = [str(Platform.from_descriptor(e)) for e in wrapper_entries]
    if not plan:
        raise RegistryError(
            "MANIFEST_UNKNOWN",
            NO_PLATFORM,
            detail={
                "base": [str(Platform.from_descriptor(e)) for e in base_entries],
                "wrapper": wrapper_platforms,
            },
            status=404,
        )
    return plan


def compose_index(
    entries: Sequence[tuple[Mapping[str, Any], Composed]],
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
        platform = base_entry.get("platform")
        manifests.append(composed.descriptor(platform if isinstance(platform, Mapping) else None))
    index: Json = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": manifests}
    if notes:
        index["annotations"] = notes
    index_bytes = canonical_json(index)
    return ComposedIndex(
        manifest_bytes=index_bytes,
        manifest_digest=sha256_digest(index_bytes),
        children=tuple(composed for _, composed in entries),
        media_type=mt.OCI_INDEX,
    )
