"""A verifier of the tests' own for SLSA provenance attestations in cosign's layout.

cosign is not in Debian, and a verifier that shared code with the registry under test would
agree with its bugs: this module imports no project code. It follows what `cosign attest`
stores and `cosign verify-attestation --key … --type slsaprovenance1` checks:

* the attestations of manifest `sha256:<hex>` in repository R are the tag `sha256-<hex>.att`
  of R: an OCI image manifest with cosign's minimal config and one layer per attestation, of
  media type `DSSE`, annotated `predicateType` (and an empty cosign signature annotation:
  the signature is inside the envelope);
* the layer is a DSSE envelope (`payloadType` in-toto, `payload` base64, `signatures`), whose
  signature is an ASN.1 DER ECDSA P-256/SHA-256 signature over DSSE's pre-authentication
  encoding `DSSEv1 <len> <type> <len> <payload>`;
* the payload is an in-toto Statement v1 with predicate type SLSA provenance v1, whose
  subject names the image and its digest.

On top of what cosign checks, `check_dependencies` holds the statement's resolved
dependencies against the base and wrapper digests the composed manifest's own annotations
name, and `check_manifest` the attestation manifest's digest against the one the registry
said (its `Docker-Content-Digest`, and its referrers entry).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DSSE = "application/vnd.dsse.envelope.v1+json"
IN_TOTO = "application/vnd.in-toto+json"
STATEMENT = "https://in-toto.io/Statement/v1"
SLSA_V1 = "https://slsa.dev/provenance/v1"
COSIGN_SIGNATURE = "dev.cosignproject.cosign/signature"
BASE_DIGEST = "org.opencontainers.image.base.digest"
WRAPPER_DIGEST = "org.goci.wrapper.digest"
MAX_DOCUMENT = 1024 * 1024


class AttestationError(Exception):
    """Verification failed; the message says which check and what was found."""


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def attestation_tag(digest: str) -> str:
    return digest.replace(":", "-") + ".att"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1's pre-authentication encoding, from the DSSE protocol document."""
    kind = payload_type.encode()
    return b"DSSEv1 " + b" ".join(
        [str(len(kind)).encode(), kind, str(len(payload)).encode(), payload]
    )


def _json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise AttestationError(f"{what} is not JSON") from exc


def check_manifest(body: bytes, manifest_digest: str, digest: str) -> dict[str, Any]:
    """The `.att` manifest `body`, served as `manifest_digest`, about `digest`: its layout
    checked; returns its one DSSE layer's descriptor."""
    if _sha256(body) != manifest_digest:
        raise AttestationError(f"manifest bytes hash to {_sha256(body)}, not {manifest_digest}")
    document = _json(body, "attestation manifest")
    if not isinstance(document, dict):
        raise AttestationError("attestation manifest is no JSON object")
    if (document.get("schemaVersion"), document.get("mediaType")) != (2, OCI_MANIFEST):
        raise AttestationError("attestation manifest is no OCI image manifest")
    config = document.get("config")
    if not isinstance(config, dict) or config.get("mediaType") != OCI_CONFIG:
        raise AttestationError(f"attestation config is not {OCI_CONFIG}")
    layers = document.get("layers")
    if not isinstance(layers, list) or len(layers) != 1 or not isinstance(layers[0], dict):
        raise AttestationError("attestation manifest has not exactly one layer")
    [layer] = layers
    annotations = layer.get("annotations")
    if layer.get("mediaType") != DSSE or not isinstance(annotations, dict):
        raise AttestationError(f"attestation layer is no annotated {DSSE}")
    if annotations.get("predicateType") != SLSA_V1 or annotations.get(COSIGN_SIGNATURE) != "":
        raise AttestationError(f"attestation layer is annotated {annotations!r}")
    if document.get("artifactType") != IN_TOTO:
        raise AttestationError(f"artifactType is {document.get('artifactType')!r}")
    subject = document.get("subject")
    if not isinstance(subject, dict) or subject.get("digest") != digest:
        raise AttestationError(f"the manifest's subject is {subject!r}, not {digest}")
    return layer


def check_envelope(public_pem: bytes, envelope: bytes, digest: str, name: str) -> dict[str, Any]:
    """The DSSE `envelope`: signed by the key, a SLSA v1 statement about `name@digest`;
    returns the statement."""
    key = serialization.load_pem_public_key(public_pem)
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("the signing key is an ECDSA key")
    document = _json(envelope, "envelope")
    try:
        payload_type = document["payloadType"]
        payload = base64.b64decode(document["payload"], validate=True)
        signatures = [
            base64.b64decode(entry["sig"], validate=True) for entry in document["signatures"]
        ]
    except (KeyError, TypeError, binascii.Error) as exc:
        raise AttestationError("envelope is no DSSE envelope") from exc
    if payload_type != IN_TOTO:
        raise AttestationError(f"envelope payloadType is {payload_type!r}, not {IN_TOTO}")
    signed = pae(payload_type, payload)
    for signature in signatures:
        try:
            key.verify(signature, signed, ec.ECDSA(hashes.SHA256()))
            break
        except InvalidSignature:
            continue
    else:
        raise AttestationError("no signature of the envelope verifies with this key")
    statement = _json(payload, "statement")  # read only once the signature says it is ours
    if not isinstance(statement, dict):
        raise AttestationError("statement is no JSON object")
    if (statement.get("_type"), statement.get("predicateType")) != (STATEMENT, SLSA_V1):
        raise AttestationError("statement is no SLSA provenance v1 in-toto statement")
    expected = [{"name": name, "digest": {"sha256": digest.removeprefix("sha256:")}}]
    if statement.get("subject") != expected:
        raise AttestationError(f"statement subject is {statement.get('subject')!r}")
    return statement


def check_dependencies(statement: dict[str, Any], composed: dict[str, Any]) -> None:
    """The statement's resolved dependencies name the base and wrapper digests that the
    composed manifest's (or index's) annotations name, in their roles."""
    annotations = composed.get("annotations") or {}
    wrappers = annotations[WRAPPER_DIGEST].split(",")
    roles = (
        ["wrapper"] if len(wrappers) == 1 else [f"wrapper {n + 1}" for n in range(len(wrappers))]
    )
    wanted = {("base", annotations[BASE_DIGEST]), *zip(roles, wrappers, strict=True)}
    found = {
        (entry["annotations"]["role"], "sha256:" + entry["digest"]["sha256"])
        for entry in statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    }
    missing = wanted - found
    if missing:
        raise AttestationError(f"resolvedDependencies lack {sorted(missing)}")


def _get(session: requests.Session, url: str, what: str, **options: Any) -> requests.Response:
    answer = session.get(url, timeout=30, **options)
    if answer.status_code != 200:
        raise AttestationError(f"{what}: HTTP {answer.status_code} {answer.text[:200]}")
    if len(answer.content) > MAX_DOCUMENT:
        raise AttestationError(f"{what} is larger than {MAX_DOCUMENT} bytes")
    return answer


def verify(
    base_url: str,
    name: str,
    digest: str,
    public_pem: bytes,
    expected_name: str,
    *,
    session: requests.Session | None = None,
) -> dict[str, Any]:
    """Check, through the registry's HTTP API only, that `name@digest` has a SLSA provenance
    attestation by `public_pem` in cosign's layout, listed as its referrer too, about
    `expected_name`, naming what the composed manifest says it was made of; returns the
    statement. Raises AttestationError naming the failed check."""
    http = session or requests.Session()
    root = f"{base_url.rstrip('/')}/v2/{name}"
    accept = {"Accept": f"{OCI_MANIFEST}, {OCI_INDEX}"}
    tag = attestation_tag(digest)
    answer = _get(http, f"{root}/manifests/{tag}", f"{name}:{tag}", headers=accept)
    served = answer.headers.get("Docker-Content-Digest", "")
    layer = check_manifest(answer.content, served, digest)
    listed = _get(
        http, f"{root}/referrers/{digest}", "referrers", params={"artifactType": IN_TOTO}
    ).json()["manifests"]
    if [entry.get("digest") for entry in listed] != [served]:
        raise AttestationError(f"referrers of {digest} list {listed!r}, not {served}")
    envelope = _get(http, f"{root}/blobs/{layer['digest']}", "envelope blob").content
    if _sha256(envelope) != layer["digest"] or len(envelope) != layer["size"]:
        raise AttestationError(f"envelope blob does not match its descriptor {layer!r}")
    statement = check_envelope(public_pem, envelope, digest, expected_name)
    composed = _get(http, f"{root}/manifests/{digest}", "composed manifest", headers=accept)
    check_dependencies(statement, _json(composed.content, "composed manifest"))
    return statement


def canonical(document: Any) -> bytes:
    """JSON with sorted keys, compact, UTF-8: the form a statement is signed in."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
