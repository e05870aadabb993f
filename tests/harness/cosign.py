"""A cosign-format signer and verifier of the tests' own, written from cosign's published format.

Debian's skopeo and podman are built with sigstore disabled, so nothing on these machines
can sign or check a cosign signature; and a verifier that shared code with the registry
under test would agree with its bugs. This module shares none (it imports no project code):
it follows cosign's `specs/SIGNATURE_SPEC.md` and what `cosign sign --key` pushes.

* The signature of manifest `sha256:<hex>` in repository R is the tag `sha256-<hex>.sig` in R.
* That tag is an OCI image manifest: a minimal image config (`rootfs.diff_ids` = the layer
  digests) and one layer per signature, of media type `SIMPLESIGNING`, whose annotation
  `SIGNATURE_ANNOTATION` is the base64 of an ASN.1 DER ECDSA P-256/SHA-256 signature over
  the layer's exact bytes: a "simple signing" JSON payload naming the image's digest.
* Keys are PEM: PKCS#8 private (unencrypted, unlike cosign's own `cosign.key` file) and
  SubjectPublicKeyInfo public (the same as cosign's `cosign.pub`).

`verify` checks a signature the way a client does: only through the registry's HTTP API.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from harness.clients import run_tool
from harness.images import Pushed
from harness.procs import HarnessError
from harness.registry import DockerRegistry

SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
SIGNATURE_TYPE = "cosign container image signature"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MAX_DOCUMENT = 1024 * 1024  # a signature manifest or payload is a few hundred bytes
ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time: what cosign's config carries
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")

# How `push_signature` spoils a signature: change the payload's digest or reference AFTER
# signing, or sign bytes other than the payload pushed.
Tamper = Literal["digest", "reference", "other-bytes"]


class SignatureError(Exception):
    """Verification failed; the message says which check and what was found."""


def _json(value: Any) -> bytes:
    """Compact JSON in insertion order: the shape Go's encoding/json gives cosign's structs."""
    return json.dumps(value, separators=(",", ":")).encode()


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def generate_key() -> tuple[bytes, bytes]:
    """A fresh P-256 key pair (what `cosign generate-key-pair` makes): (PKCS#8 PEM, public PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


def signature_tag(digest: str) -> str:
    """`sha256:<hex>` -> `sha256-<hex>.sig`, the tag cosign looks the signature up by."""
    if not _DIGEST.match(digest):
        raise ValueError(f"not a sha256 digest: {digest!r}")
    return digest.replace(":", "-") + ".sig"


def make_payload(
    docker_reference: str, digest: str, optional: dict[str, str] | None = None
) -> bytes:
    """The simple-signing payload cosign signs, byte for byte in cosign's field order."""
    critical = {
        "identity": {"docker-reference": docker_reference},
        "image": {"docker-manifest-digest": digest},
        "type": SIGNATURE_TYPE,
    }
    return _json({"critical": critical, "optional": optional})


def sign_payload(payload: bytes, private_pem: bytes) -> str:
    """Base64 of the DER ECDSA (SHA-256) signature over exactly `payload`."""
    key = serialization.load_pem_private_key(private_pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("cosign keys are ECDSA keys")
    return base64.b64encode(key.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()


def signature_manifest(signatures: Sequence[tuple[bytes, str]]) -> tuple[bytes, dict[str, bytes]]:
    """The `.sig` manifest for (payload, base64 signature) pairs and every blob it names."""
    blobs = {_sha256(payload): payload for payload, _ in signatures}
    config = _json(
        {
            "architecture": "",
            "created": ZERO_TIME,
            "history": [{"created": ZERO_TIME} for _ in signatures],
            "os": "",
            "rootfs": {"type": "layers", "diff_ids": [_sha256(p) for p, _ in signatures]},
            "config": {},
        }
    )
    blobs[_sha256(config)] = config
    layers = [
        {
            "mediaType": SIMPLESIGNING,
            "size": len(payload),
            "digest": _sha256(payload),
            "annotations": {SIGNATURE_ANNOTATION: signature},
        }
        for payload, signature in signatures
    ]
    config_desc = {"mediaType": OCI_CONFIG, "size": len(config), "digest": _sha256(config)}
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_desc}
    return _json({**manifest, "layers": layers}), blobs


def signature_layout(directory: Path, signatures: Sequence[tuple[bytes, str]]) -> Path:
    """An OCI image layout whose ref `sig` is the signature manifest, ready for skopeo."""
    manifest, blobs = signature_manifest(signatures)
    blob_dir = Path(directory) / "blobs" / "sha256"
    blob_dir.mkdir(parents=True, exist_ok=True)
    for digest, data in {**blobs, _sha256(manifest): manifest}.items():
        (blob_dir / digest.removeprefix("sha256:")).write_bytes(data)
    (Path(directory) / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    entry = {"mediaType": OCI_MANIFEST, "digest": _sha256(manifest), "size": len(manifest)}
    entry["annotations"] = {"org.opencontainers.image.ref.name": "sig"}
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]}
    (Path(directory) / "index.json").write_bytes(_json(index))
    return Path(directory)


def push_signatures(
    registry: str,
    repository: str,
    digest: str,
    signatures: Sequence[tuple[bytes, str]],
    workdir: Path,
) -> str:
    """Push (payload, signature) pairs as the `.sig` tag of `digest`; returns its manifest digest.

    `--preserve-digests` makes skopeo refuse to alter the manifest (without it, it would be
    free to recompress the payload layers); the pushed digest is checked against ours anyway.
    """
    layout = signature_layout(Path(workdir) / "layout", signatures)
    digest_file = Path(workdir) / "pushed-digest"
    dest = f"docker://{registry}/{repository}:{signature_tag(digest)}"
    argv = ["skopeo", "copy", "--quiet", "--preserve-digests", "--dest-tls-verify=false"]
    run_tool([*argv, "--digestfile", digest_file, f"oci:{layout}:sig", dest], timeout=60)
    expected = _sha256(signature_manifest(signatures)[0])
    if (pushed := digest_file.read_text().strip()) != expected:
        raise HarnessError(f"skopeo rewrote the signature manifest: {expected} -> {pushed}")
    return expected


def push_signature(
    registry: str,
    repository: str,
    digest: str,
    private_pem: bytes,
    docker_reference: str,
    workdir: Path,
    *,
    claimed_digest: str | None = None,
    tamper: Tamper | None = None,
) -> str:
    """Sign `digest` as `cosign sign --key` would and push it; returns the `.sig` manifest digest.

    For refusal tests: `claimed_digest` signs (validly) a payload naming another image, as
    if a genuine signature were copied onto this one; `tamper` spoils it (see `Tamper`).
    """
    payload = make_payload(docker_reference, claimed_digest or digest)
    signature = sign_payload(b"other bytes" if tamper == "other-bytes" else payload, private_pem)
    if tamper == "digest":
        payload = make_payload(docker_reference, "sha256:" + "0" * 64)
    elif tamper == "reference":
        payload = make_payload(docker_reference + "-forged", claimed_digest or digest)
    return push_signatures(registry, repository, digest, [(payload, signature)], workdir)


def _read(response: requests.Response, what: str) -> bytes:
    """The body of `response`, refusing more than `MAX_DOCUMENT` bytes whatever it claims."""
    with response:
        if int(response.headers.get("Content-Length") or 0) > MAX_DOCUMENT:
            raise SignatureError(f"{what} is larger than {MAX_DOCUMENT} bytes")
        body = b""
        for chunk in response.iter_content(64 * 1024):
            body += chunk
            if len(body) > MAX_DOCUMENT:
                raise SignatureError(f"{what} is larger than {MAX_DOCUMENT} bytes")
        return body


def _check_layer(
    layer: dict[str, Any],
    fetch: Callable[[str], requests.Response],
    key: ec.EllipticCurvePublicKey,
    digest: str,
    reference: str,
) -> dict[str, Any]:
    """Check one simple-signing layer: blob integrity, signature, then the payload's claims."""
    blob_digest, size = layer.get("digest"), layer.get("size")
    if not isinstance(blob_digest, str) or not _DIGEST.match(blob_digest):
        raise SignatureError(f"layer digest {blob_digest!r} is not a sha256 digest")
    if not isinstance(size, int) or not 0 <= size <= MAX_DOCUMENT:
        raise SignatureError(f"layer {blob_digest} has size {size!r}")
    reply = fetch(f"blobs/{blob_digest}")
    if reply.status_code != 200:
        reply.close()
        raise SignatureError(f"payload blob {blob_digest}: HTTP {reply.status_code}")
    payload = _read(reply, f"payload blob {blob_digest}")
    if len(payload) != size or _sha256(payload) != blob_digest:
        raise SignatureError(
            f"tampered blob: {blob_digest} served {len(payload)} bytes hashing to "
            f"{_sha256(payload)}, the descriptor says {size} bytes"
        )
    encoded = (layer.get("annotations") or {}).get(SIGNATURE_ANNOTATION)
    if not isinstance(encoded, str):
        raise SignatureError(f"layer {blob_digest} has no {SIGNATURE_ANNOTATION} annotation")
    try:
        key.verify(base64.b64decode(encoded, validate=True), payload, ec.ECDSA(hashes.SHA256()))
    except (binascii.Error, InvalidSignature):
        raise SignatureError(f"bad signature on payload {blob_digest} for this key") from None
    # Claims are read only once the signature says the payload is the signer's.
    try:
        document = json.loads(payload)
        critical = document["critical"]
        found = (
            critical["type"],
            critical["image"]["docker-manifest-digest"],
            critical["identity"]["docker-reference"],
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise SignatureError(f"payload {blob_digest} is not a simple-signing payload") from exc
    if found[0] != SIGNATURE_TYPE:
        raise SignatureError(f"payload type is {found[0]!r}, not {SIGNATURE_TYPE!r}")
    if found[1] != digest:
        raise SignatureError(f"digest mismatch: the payload signs {found[1]}, not {digest}")
    if found[2] != reference:
        raise SignatureError(
            f"reference mismatch: the payload names {found[2]!r}, not {reference!r}"
        )
    return document


def verify(
    base_url: str,
    name: str,
    digest: str,
    public_pem: bytes,
    expected_reference: str,
    *,
    auth: Any = None,
    session: requests.Session | None = None,
) -> dict[str, Any]:
    """Check that `name@digest` carries a valid cosign signature by `public_pem`, over HTTP.

    Like cosign, one good simple-signing layer suffices; returns its payload. Raises
    `SignatureError` naming each failed check otherwise. Blob GETs follow redirects
    (requests drops `Authorization` when a redirect leaves the host, as real clients do).
    """
    key = serialization.load_pem_public_key(public_pem)
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("cosign public keys are ECDSA keys")
    http = session or requests.Session()
    accept = {"Accept": f"{OCI_MANIFEST}, {DOCKER_MANIFEST}"}

    def fetch(path: str) -> requests.Response:
        url = f"{base_url.rstrip('/')}/v2/{name}/{path}"
        return http.get(url, headers=accept, auth=auth, stream=True, timeout=30)

    tag = signature_tag(digest)
    reply = fetch(f"manifests/{tag}")
    if reply.status_code != 200:
        reply.close()
        if reply.status_code == 404:
            raise SignatureError(f"no signature tag {tag} in {name}")
        raise SignatureError(f"signature manifest {name}:{tag}: HTTP {reply.status_code}")
    try:
        manifest = json.loads(_read(reply, f"signature manifest {name}:{tag}"))
        media_type = manifest.get("mediaType") or reply.headers.get("Content-Type", "")
        layers = [layer for layer in manifest["layers"] if isinstance(layer, dict)]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SignatureError(f"{name}:{tag} is not a JSON image manifest") from exc
    if manifest.get("schemaVersion") != 2 or media_type not in (OCI_MANIFEST, DOCKER_MANIFEST):
        raise SignatureError(f"{name}:{tag} is not an image manifest ({media_type!r})")
    signing = [layer for layer in layers if layer.get("mediaType") == SIMPLESIGNING]
    if not signing:
        raise SignatureError(f"{name}:{tag} has no {SIMPLESIGNING} layer")
    failures = []
    for layer in signing:
        try:
            return _check_layer(layer, fetch, key, digest, expected_reference)
        except SignatureError as exc:
            failures.append(str(exc))
    raise SignatureError("; ".join(failures))


class PushedSignatures:
    """Pushes `.sig` tags for a test and deletes them afterwards (registry 2.8 untags a
    deleted manifest), so no other test meets a signature it did not push."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.pushed: list[tuple[DockerRegistry, str, str]] = []

    def _scratch(self, registry: DockerRegistry, image: Pushed) -> Path:
        self.pushed.append((registry, image.repo, signature_tag(image.digest)))
        return self.workdir / f"sig-{len(self.pushed)}"

    def push(
        self, registry: DockerRegistry, image: Pushed, private_pem: bytes, **options: Any
    ) -> str:
        """`cosign.push_signature` for `image`, naming `HOST/REPO` unless told otherwise."""
        reference = options.pop("docker_reference", f"{registry.host}/{image.repo}")
        workdir = self._scratch(registry, image)
        return push_signature(
            registry.host, image.repo, image.digest, private_pem, reference, workdir, **options
        )

    def push_pairs(
        self, registry: DockerRegistry, image: Pushed, pairs: list[tuple[bytes, str]]
    ) -> str:
        workdir = self._scratch(registry, image)
        return push_signatures(registry.host, image.repo, image.digest, pairs, workdir)

    def delete_all(self) -> None:
        for registry, repository, tag in self.pushed:
            url = f"{registry.url}/v2/{repository}/manifests"
            accept = {"Accept": OCI_MANIFEST}
            head = requests.head(f"{url}/{tag}", headers=accept, timeout=10)
            if head.status_code == 200:
                digest = head.headers["Docker-Content-Digest"]
                assert requests.delete(f"{url}/{digest}", timeout=10).status_code == 202
            assert requests.head(f"{url}/{tag}", headers=accept, timeout=10).status_code == 404
