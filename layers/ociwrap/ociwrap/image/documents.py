"""Image manifests, indexes and configs, parsed once into small frozen types.

Upstream JSON is checked here, once, when it is parsed (cf. go-containerregistry's
`v1.Manifest`, `v1.IndexManifest` and `v1.ConfigFile`); composition then works
on these values and never re-checks dicts. Parsing is pure: a malformed
document is `400 MANIFEST_INVALID` "invalid upstream image format" whose detail
says which image (base or wrapper) and why.

Descriptors keep the JSON object they were read from (`raw`), so what is copied
into a composed manifest or index (urls, annotations, platform spelling) is
byte-for-byte the upstream's.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ociwrap.image.platforms import Platform, is_attestation
from ociwrap.names import mediatypes as mt
from ociwrap.names.digest import digest_problem, is_any_digest
from ociwrap.runtime.errors import RegistryError, manifest_invalid

INVALID_FORMAT = "invalid upstream image format"
#: Indexes list a few platforms and their attestations; more is no image a client would pick.
MAX_INDEX_ENTRIES = 256

Json = Mapping[str, Any]


def invalid(role: str, reason: str) -> RegistryError:
    """`invalid upstream image format`, with which image and why in the detail."""
    return manifest_invalid(INVALID_FORMAT, detail={"image": role, "reason": reason})


@dataclass(frozen=True)
class Descriptor:
    """What a manifest, index entry or layer points at."""

    media_type: str
    digest: str
    size: int
    raw: Json

    @property
    def platform(self) -> Platform:
        return Platform.from_descriptor(self.raw)

    @property
    def is_attestation(self) -> bool:
        return is_attestation(self.raw)


@dataclass(frozen=True)
class ImageManifest:
    """A single-image manifest: a config and layers."""

    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]


@dataclass(frozen=True)
class ImageIndex:
    """A multi-platform index (or Docker manifest list)."""

    media_type: str
    manifests: tuple[Descriptor, ...]

    def images(self) -> tuple[Descriptor, ...]:
        """Entries that are runnable images: no attestations, no nested indexes."""
        return tuple(
            entry
            for entry in self.manifests
            if not entry.is_attestation and entry.media_type in mt.MANIFEST_TYPES
        )


@dataclass(frozen=True)
class ImageConfig:
    """An image config: the whole document plus the parts composition reads."""

    document: Json
    container: Json
    diff_ids: tuple[str, ...]
    #: `Entrypoint` and `Env` as lists of strings (a lone string is one element).
    entrypoint: tuple[str, ...] = ()
    env: tuple[str, ...] = ()

    @property
    def platform(self) -> Platform:
        """The config names its platform with the same keys an index entry's platform has."""
        return Platform.from_dict(self.document)

    @property
    def labels(self) -> Json:
        labels = self.container.get("Labels")
        return labels if isinstance(labels, Mapping) else {}


@dataclass(frozen=True)
class Image:
    """A single-platform image: its manifest and the config it names."""

    manifest: ImageManifest
    config: ImageConfig


Document = ImageManifest | ImageIndex


def shown(digest: str) -> str:
    """A digest as error messages quote it: escaped, cut after 140 characters (a sha512
    digest is 135)."""
    return repr(digest if len(digest) <= 140 else digest[:139] + "…")


def parse_descriptor(value: Any, role: str, what: str) -> Descriptor:
    if not isinstance(value, Mapping):
        raise invalid(role, f"{what} is not a descriptor object")
    media_type = value.get("mediaType")
    if not isinstance(media_type, str) or not media_type:
        raise invalid(role, f"{what} has no mediaType")
    digest = value.get("digest")
    if not isinstance(digest, str) or not is_any_digest(digest):
        raise invalid(role, f"{what} has no valid digest")
    problem = digest_problem(digest)
    if problem is not None:
        raise invalid(role, f"{what} has digest {shown(digest)}: {problem}")
    size = value.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise invalid(role, f"{what} has no valid size")
    return Descriptor(media_type, digest, size, value)


def _descriptors(document: Json) -> Iterator[tuple[str, Any]]:
    """(what, descriptor) of every descriptor a manifest or an index holds, by the names
    errors give them."""
    for key, what in (("config", "config"), ("subject", "subject")):
        if key in document:
            yield what, document[key]
    for key, what in (("layers", "layer"), ("manifests", "index entry")):
        entries = document.get(key)
        if isinstance(entries, list):
            for number, entry in enumerate(entries, start=1):
                yield f"{what} {number}", entry


def check_digests(document: Any, manifest: str) -> None:
    """`400 MANIFEST_INVALID` naming the first descriptor (of `manifest`, e.g.
    `repo@sha256:…`) whose digest is not a valid digest of its algorithm.

    Run on every upstream manifest and index before it is kept, proxied or composed
    from, so that no document with such a descriptor is stored, served or signed."""
    if not isinstance(document, Mapping):
        return
    for what, descriptor in _descriptors(document):
        if not isinstance(descriptor, Mapping):
            continue
        digest = descriptor.get("digest")
        problem = digest_problem(digest) if isinstance(digest, str) else "not a string"
        if problem is not None:
            said = f"digest {shown(digest)}" if isinstance(digest, str) else "no valid digest"
            raise manifest_invalid(
                f"{what} of {manifest} has {said}: {problem}",
                detail={"manifest": manifest, "descriptor": what, "reason": problem},
            )


def _check_schema(value: Any, role: str) -> Json:
    if not isinstance(value, Mapping):
        raise invalid(role, "manifest is not a JSON object")
    if value.get("schemaVersion") == 1 or value.get("mediaType") in mt.SCHEMA1_TYPES:
        raise invalid(role, "Docker schema 1 manifests are not supported")
    return value


def is_index(value: Any, media_type: str = "") -> bool:
    """An index by its media type, its own `mediaType`, or its shape (a `manifests` list)."""
    if not isinstance(value, Mapping):
        return False
    declared = value.get("mediaType")
    return (
        mt.is_index_type(media_type)
        or (isinstance(declared, str) and mt.is_index_type(declared))
        or isinstance(value.get("manifests"), list)
    )


def parse_manifest(value: Any, role: str) -> ImageManifest:
    """A schema-2 single-image manifest whose config is an image config."""
    manifest = _check_schema(value, role)
    if is_index(manifest):
        raise invalid(role, "an index was given where a single-image manifest is needed")
    media_type = manifest.get("mediaType")
    if media_type is not None and media_type not in mt.MANIFEST_TYPES:
        raise invalid(role, f"unsupported manifest media type {str(media_type)[:80]!r}")
    if manifest.get("schemaVersion") != 2:
        raise invalid(role, "manifest schemaVersion is not 2")
    config = parse_descriptor(manifest.get("config"), role, "config")
    if config.media_type not in mt.CONFIG_TYPES:
        raise invalid(role, f"config media type {config.media_type[:80]!r} is not an image config")
    layers = manifest.get("layers")
    if not isinstance(layers, list):
        raise invalid(role, "manifest has no layers list")
    return ImageManifest(
        media_type=media_type or mt.OCI_MANIFEST,
        config=config,
        layers=tuple(
            parse_descriptor(layer, role, f"layer {number}")
            for number, layer in enumerate(layers, start=1)
        ),
    )


def parse_index(value: Any, role: str) -> ImageIndex:
    """An index of at most `MAX_INDEX_ENTRIES` valid descriptors."""
    index = _check_schema(value, role)
    entries = index.get("manifests")
    if not isinstance(entries, list):
        raise invalid(role, "index has no manifests list")
    if len(entries) > MAX_INDEX_ENTRIES:
        raise invalid(
            role, f"index has {len(entries)} entries; at most {MAX_INDEX_ENTRIES} are supported"
        )
    media_type = index.get("mediaType")
    return ImageIndex(
        media_type=media_type if isinstance(media_type, str) and media_type else mt.OCI_INDEX,
        manifests=tuple(
            parse_descriptor(entry, role, f"index entry {number}")
            for number, entry in enumerate(entries, start=1)
        ),
    )


def parse_document(value: Any, role: str, media_type: str = "") -> Document:
    """A manifest or an index, whichever the document is."""
    _check_schema(value, role)
    return parse_index(value, role) if is_index(value, media_type) else parse_manifest(value, role)


def string_list(role: str, field: str, value: Any) -> list[str]:
    """Entrypoint/Env as a list; a lone string counts as one element, as Docker reads it."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    raise invalid(role, f"config.{field} is not a list of strings")


def parse_config(value: Any, role: str, layer_count: int) -> ImageConfig:
    """An image config whose `rootfs.diff_ids` describe exactly `layer_count` layers."""
    if not isinstance(value, Mapping):
        raise invalid(role, "config is not a JSON object")
    rootfs = value.get("rootfs")
    if not isinstance(rootfs, Mapping):
        raise invalid(role, "config has no rootfs")
    if rootfs.get("type", "layers") != "layers":
        raise invalid(role, f"config rootfs type {str(rootfs.get('type'))[:40]!r} is not 'layers'")
    diff_ids = rootfs.get("diff_ids")
    if not isinstance(diff_ids, list) or not all(isinstance(d, str) for d in diff_ids):
        raise invalid(role, "config has no rootfs.diff_ids list")
    if len(diff_ids) != layer_count:
        raise invalid(
            role,
            f"config lists {len(diff_ids)} diff_ids but the manifest has {layer_count} layers",
        )
    container = value.get("config")
    if container is None:
        container = {}
    if not isinstance(container, Mapping):
        raise invalid(role, "config.config is not a JSON object")
    entrypoint = string_list(role, "Entrypoint", container.get("Entrypoint"))
    env = string_list(role, "Env", container.get("Env"))
    labels = container.get("Labels")
    if labels is not None and not isinstance(labels, Mapping):
        raise invalid(role, "config.Labels is not a JSON object")
    return ImageConfig(
        document=value,
        container=container,
        diff_ids=tuple(diff_ids),
        entrypoint=tuple(entrypoint),
        env=tuple(env),
    )


def parse_image(manifest: Any, config: Any, role: str) -> Image:
    """A manifest and its config, checked against each other."""
    parsed = parse_manifest(manifest, role)
    return Image(parsed, parse_config(config, role, len(parsed.layers)))
