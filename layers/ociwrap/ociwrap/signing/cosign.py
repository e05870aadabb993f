"""cosign's signature format, as pure functions of JSON and bytes (no keys, no I/O).

A cosign signature of manifest `sha256:<hex>` in repository R is the tag
`sha256-<hex>.sig` of R: an OCI image manifest whose layers are "simple signing"
payloads (`application/vnd.dev.cosign.simplesigning.v1+json`), each carrying the
base64 of an ECDSA (ASN.1 DER) signature of its exact bytes in the annotation
`dev.cosignproject.cosign/signature`. The payload names the signed digest and the
repository it was signed for:

    {"critical": {"identity": {"docker-reference": "host/repo"},
                  "image": {"docker-manifest-digest": "sha256:..."},
                  "type": "cosign container image signature"},
     "optional": null}

This is what `cosign verify --key`, policy-controller and containers/image's
`sigstoreSigned` policies read. The signature manifests made here also carry
`artifactType` and `subject`, as cosign's OCI 1.1 mode writes them, so the same
manifest answers the referrers API.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ociwrap.image.jsondoc import DocumentError, parse_json
from ociwrap.names import mediatypes as mt
from ociwrap.names.digest import encoded, is_digest, sha256_of

SIMPLE_SIGNING = mt.COSIGN_SIMPLE_SIGNING
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
SIGNATURE_ARTIFACT_TYPE = mt.COSIGN_SIGNATURE_ARTIFACT
PAYLOAD_TYPE = "cosign container image signature"
OCI_MANIFEST = mt.OCI_MANIFEST
OCI_CONFIG = mt.OCI_CONFIG
_SUFFIX = ".sig"
#: A payload is a few hundred bytes; anything much larger is not one of ours to read.
MAX_PAYLOAD_BYTES = 64 * 1024
#: An ECDSA P-256 DER signature is at most 72 bytes; base64 of a few hundred is generous.
MAX_SIGNATURE_CHARS = 1024


class SignatureFormatError(ValueError):
    """A signature manifest or payload that is not in cosign's format."""


def signature_tag(digest: str) -> str:
    """`sha256:<hex>` → `sha256-<hex>.sig`, the tag cosign keeps that digest's signature under."""
    return f"sha256-{encoded(digest)}{_SUFFIX}"


def signed_digest(tag: str) -> str | None:
    """The digest a `sha256-<hex>.sig` tag is the signature of; None for other tags."""
    if not tag.startswith("sha256-") or not tag.endswith(_SUFFIX):
        return None
    digest = "sha256:" + tag[len("sha256-") : -len(_SUFFIX)]
    return digest if is_digest(digest) else None


def make_payload(docker_reference: str, digest: str) -> bytes:
    """The simple-signing payload of `digest` signed for `docker_reference` (host/repo)."""
    document = {
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": digest},
            "type": PAYLOAD_TYPE,
        },
        "optional": None,
    }
    return json.dumps(document, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Payload:
    """What a verified payload says."""

    docker_reference: str
    digest: str


def read_payload(data: bytes) -> Payload:
    """Parse a payload (bounded), checking its type and the fields a verifier relies on."""
    if len(data) > MAX_PAYLOAD_BYTES:
        raise SignatureFormatError(f"payload is larger than {MAX_PAYLOAD_BYTES} bytes")
    try:
        document = parse_json(data, max_depth=8)
    except DocumentError as exc:
        raise SignatureFormatError(f"payload is {exc}") from exc
    critical = document.get("critical") if isinstance(document, dict) else None
    if not isinstance(critical, dict) or critical.get("type") != PAYLOAD_TYPE:
        raise SignatureFormatError(f"payload is no {PAYLOAD_TYPE!r}")
    image, identity = critical.get("image"), critical.get("identity")
    digest = image.get("docker-manifest-digest") if isinstance(image, dict) else None
    reference = identity.get("docker-reference") if isinstance(identity, dict) else None
    if not isinstance(digest, str) or not is_digest(digest):
        raise SignatureFormatError("payload names no valid docker-manifest-digest")
    if not isinstance(reference, str):
        raise SignatureFormatError("payload names no docker-reference")
    return Payload(reference, digest)


@dataclass(frozen=True)
class SignatureManifest:
    """A signature manifest to store: its bytes and digest, its config and payload blobs."""

    body: bytes
    digest: str
    config: bytes
    config_digest: str
    payload: bytes
    payload_digest: str


def signature_descriptor(digest: str, size: int) -> dict[str, Any]:
    """A signature manifest as an entry of a referrers index."""
    return {
        "mediaType": OCI_MANIFEST,
        "digest": digest,
        "size": size,
        "artifactType": SIGNATURE_ARTIFACT_TYPE,
    }


def signature_manifest(
    payload: bytes, signature: bytes, subject: Mapping[str, Any]
) -> SignatureManifest:
    """The manifest holding one payload and its DER `signature`, about `subject`
    (the signed manifest's descriptor: mediaType, digest, size)."""
    annotations = {SIGNATURE_ANNOTATION: base64.b64encode(signature).decode()}
    return attached_manifest(SIMPLE_SIGNING, payload, annotations, SIGNATURE_ARTIFACT_TYPE, subject)


def attached_manifest(
    layer_type: str,
    payload: bytes,
    annotations: Mapping[str, str],
    artifact_type: str,
    subject: Mapping[str, Any],
) -> SignatureManifest:
    """A manifest in cosign's layout, as its `static` layers make it: cosign's minimal
    config and one layer (`payload`, of `layer_type`, with `annotations`), plus the
    `artifactType` and `subject` that make the same manifest a referrer of `subject`.
    Signatures and attestations are both such manifests."""
    payload_digest = sha256_of(payload)
    config = json.dumps(
        {
            "architecture": "",
            "config": {},
            "created": "0001-01-01T00:00:00Z",
            "history": [{"created": "0001-01-01T00:00:00Z"}],
            "os": "",
            "rootfs": {"type": "layers", "diff_ids": [payload_digest]},
        },
        separators=(",", ":"),
    ).encode()
    config_digest = sha256_of(config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": OCI_CONFIG, "size": len(config), "digest": config_digest},
        "layers": [
            {
                "mediaType": layer_type,
                "size": len(payload),
                "digest": payload_digest,
                "annotations": dict(annotations),
            }
        ],
        "subject": {key: subject[key] for key in ("mediaType", "digest", "size")},
    }
    body = json.dumps(manifest, separators=(",", ":")).encode()
    return SignatureManifest(body, sha256_of(body), config, config_digest, payload, payload_digest)


@dataclass(frozen=True)
class SignedLayer:
    """One payload of a signature manifest: where to fetch it and the signature of it."""

    digest: str
    size: int
    signature: bytes


def signed_layers(document: Any) -> list[SignedLayer]:
    """The simple-signing layers of a signature manifest that carry a signature.

    Other layers, and annotations that are no base64, are skipped (cosign does the
    same); a document that is no image manifest at all is a format error.
    """
    layers = document.get("layers") if isinstance(document, dict) else None
    if not isinstance(layers, list):
        raise SignatureFormatError("signature is no image manifest with layers")
    found = []
    for layer in layers:
        if not isinstance(layer, dict) or layer.get("mediaType") != SIMPLE_SIGNING:
            continue
        digest, size = layer.get("digest"), layer.get("size")
        annotations = layer.get("annotations")
        text = annotations.get(SIGNATURE_ANNOTATION) if isinstance(annotations, dict) else None
        if (
            not isinstance(digest, str)
            or not is_digest(digest)
            or type(size) is not int
            or not 0 < size <= MAX_PAYLOAD_BYTES
            or not isinstance(text, str)
            or len(text) > MAX_SIGNATURE_CHARS
        ):
            continue
        try:
            signature = base64.b64decode(text, validate=True)
        except binascii.Error:
            continue
        found.append(SignedLayer(digest, size, signature))
    return found
