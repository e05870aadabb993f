"""Media types of OCI and Docker images, and the Docker → OCI mapping.

Upstreams serve both families: Docker Hub still hands out Docker schema-2
manifests for most images, while newer builders push OCI. A composed image is
always OCI, so every descriptor copied into it is translated with `to_oci`.
The bytes behind a descriptor never change (a Docker gzip layer *is* an OCI
gzip layer), so the digests stay the same and clients fetch the upstream blobs
unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# OCI image-spec.
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
# Deprecated in image-spec 1.1, still produced for Windows base layers and
# understood by every client; they are what a Docker foreign layer maps to.
OCI_LAYER_NONDIST_TAR = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_LAYER_NONDIST_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"

# Docker image manifest v2, schema 2 (and the schema-1 types we refuse).
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_ZSTD = "application/vnd.docker.image.rootfs.diff.tar.zstd"
DOCKER_FOREIGN_LAYER_TAR = "application/vnd.docker.image.rootfs.foreign.diff.tar"
DOCKER_FOREIGN_LAYER_GZIP = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
DOCKER_SCHEMA1_MANIFEST = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED_MANIFEST = "application/vnd.docker.distribution.manifest.v1+prettyjws"

# Cosign's signatures (sigstore/cosign specs/SIGNATURE_SPEC.md).
COSIGN_SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
COSIGN_SIGNATURE_ARTIFACT = "application/vnd.dev.cosign.artifact.sig.v1+json"

# Attestations: in-toto statements in DSSE envelopes, as `cosign attest` stores them.
IN_TOTO = "application/vnd.in-toto+json"
DSSE_ENVELOPE = "application/vnd.dsse.envelope.v1+json"

# Everything else this registry answers or stores.
OCTET_STREAM = "application/octet-stream"
JSON = "application/json"
PEM = "application/x-pem-file"
HTML = "text/html; charset=utf-8"
CSS = "text/css; charset=utf-8"
JAVASCRIPT = "text/javascript; charset=utf-8"
SVG = "image/svg+xml"
PLAIN_TEXT = "text/plain; charset=utf-8"
#: `Accept` values that stand for every type.
WILDCARDS = frozenset({"*/*", "application/*"})

#: Single-image manifests: a config plus layers, something that can be composed.
MANIFEST_TYPES: frozenset[str] = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
#: Multi-platform manifests: a list of descriptors of manifests.
INDEX_TYPES: frozenset[str] = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
#: What this registry serves as a manifest, and the order it asks upstreams for them.
SERVABLE_TYPES: tuple[str, ...] = (OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST)
#: Schema 1 predates content-addressed configs; it cannot be composed.
SCHEMA1_TYPES: frozenset[str] = frozenset({DOCKER_SCHEMA1_MANIFEST, DOCKER_SCHEMA1_SIGNED_MANIFEST})
#: Configs that describe a runnable container image (not an artifact).
CONFIG_TYPES: frozenset[str] = frozenset({OCI_CONFIG, DOCKER_CONFIG})
_DOCKER_TO_OCI: dict[str, str] = {
    DOCKER_MANIFEST: OCI_MANIFEST,
    DOCKER_MANIFEST_LIST: OCI_INDEX,
    DOCKER_CONFIG: OCI_CONFIG,
    DOCKER_LAYER_TAR: OCI_LAYER_TAR,
    DOCKER_LAYER_GZIP: OCI_LAYER_GZIP,
    DOCKER_LAYER_ZSTD: OCI_LAYER_ZSTD,
    DOCKER_FOREIGN_LAYER_TAR: OCI_LAYER_NONDIST_TAR,
    DOCKER_FOREIGN_LAYER_GZIP: OCI_LAYER_NONDIST_GZIP,
}


def to_oci(media_type: str) -> str:
    """The OCI media type for the same bytes; types without an equivalent are unchanged.

    Unknown types pass through so that a layer type this module has never heard
    of still reaches the client exactly as its upstream described it.
    """
    return _DOCKER_TO_OCI.get(media_type, media_type)


def bare(content_type: str | None) -> str:
    """A media type without parameters (`; charset=...`), surrounding blanks or case."""
    if not content_type:
        return ""
    return content_type.split(";", 1)[0].strip().lower()


def is_index_type(media_type: str) -> bool:
    """An OCI index or a Docker manifest list: a list of platform manifests."""
    return media_type in INDEX_TYPES


def detect_media_type(manifest: Mapping[str, Any], content_type: str | None = None) -> str:
    """The media type a fetched manifest really has.

    The document's own `mediaType` field is what its digest commits to, so it
    wins over the HTTP header. The header is trusted next, but only when it
    names a manifest type: registries and proxies in front of them answer
    `application/json` or `text/plain` for OCI manifests that omit the field
    (allowed by image-spec 1.0). Failing both, the shape decides: `manifests`
    means an index, `config` plus `layers` an image manifest, schema version 1
    a schema-1 manifest. An unrecognised header is returned as a last resort,
    and "" when nothing at all is known.
    """
    declared = manifest.get("mediaType") if isinstance(manifest, Mapping) else None
    if isinstance(declared, str) and declared:
        return declared
    header = bare(content_type)
    if header in SERVABLE_TYPES or header in SCHEMA1_TYPES:
        return header
    if isinstance(manifest, Mapping):
        if isinstance(manifest.get("manifests"), list):
            return OCI_INDEX
        if isinstance(manifest.get("layers"), list) and "config" in manifest:
            return OCI_MANIFEST
        if manifest.get("schemaVersion") == 1 or "fsLayers" in manifest:
            return DOCKER_SCHEMA1_MANIFEST
    return header
