"""Keys that sign compositions: an AWS KMS key in Lambda, a PEM key file locally.

Both make ECDSA P-256 signatures over SHA-256 of the payload, in ASN.1 DER, which
is what cosign writes and verifies. A KMS key never leaves KMS: the function's
role may call `kms:Sign` (and `kms:GetPublicKey`) on that one key. A payload is
sent as a RAW message (KMS hashes it) up to KMS's 4096-byte limit for those (a
signature's payload is a few hundred bytes); a longer one (a provenance statement
with many overrides) as its SHA-256 DIGEST, which KMS signs to the same signature.
"""

from __future__ import annotations

import base64
import hashlib
import textwrap
import threading
from pathlib import Path
from typing import Any, Protocol

from ociwrap.runtime import errors

#: KMS takes RAW messages up to this size; a cosign payload is far smaller.
KMS_MAX_RAW_BYTES = 4096


class Signer(Protocol):
    """Signs payloads; tells its public key."""

    def sign(self, payload: bytes) -> bytes:
        """The ASN.1 DER ECDSA P-256 / SHA-256 signature of `payload`."""
        ...

    def public_key_pem(self) -> bytes:
        """The public key, PEM (SubjectPublicKeyInfo), as `cosign verify --key` reads it."""
        ...


def pem_of_der(der: bytes) -> bytes:
    """A DER SubjectPublicKeyInfo as a PEM `PUBLIC KEY` block."""
    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode(), 64))
    return f"-----BEGIN PUBLIC KEY-----\n{body}\n-----END PUBLIC KEY-----\n".encode()


class KmsSigner:
    """An asymmetric KMS key (`ECC_NIST_P256`, SIGN_VERIFY)."""

    def __init__(self, kms: Any, key_id: str) -> None:
        self.kms = kms
        self.key_id = key_id
        self._public: bytes | None = None
        self._lock = threading.Lock()

    def sign(self, payload: bytes) -> bytes:
        raw = len(payload) <= KMS_MAX_RAW_BYTES
        answer = self.kms.sign(
            KeyId=self.key_id,
            Message=payload if raw else hashlib.sha256(payload).digest(),
            MessageType="RAW" if raw else "DIGEST",
            SigningAlgorithm="ECDSA_SHA_256",
        )
        return bytes(answer["Signature"])

    def public_key_pem(self) -> bytes:
        with self._lock:
            if self._public is None:
                answer = self.kms.get_public_key(KeyId=self.key_id)
                # KeySpec, or its older name (which moto answers with)
                spec = answer.get("KeySpec") or answer.get("CustomerMasterKeySpec")
                if spec != "ECC_NIST_P256":
                    raise errors.storage_unavailable(
                        f"SIGNING_KMS_KEY_ID must be an ECC_NIST_P256 key, not {spec}"
                    )
                self._public = pem_of_der(bytes(answer["PublicKey"]))
            return self._public


class FileSigner:
    """An EC P-256 private key in a PEM file (PKCS#8 or SEC1, unencrypted)."""

    def __init__(self, path: str) -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        try:
            key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise errors.storage_unavailable(
                f"SIGNING_KEY_FILE {path} is no readable unencrypted PEM private key "
                f"({type(exc).__name__})"
            ) from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise errors.storage_unavailable(f"SIGNING_KEY_FILE {path} must hold an EC P-256 key")
        self._key = key
        self._public = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, payload: bytes) -> bytes:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec

        return self._key.sign(payload, ec.ECDSA(hashes.SHA256()))

    def public_key_pem(self) -> bytes:
        return self._public


def ecdsa_valid(public_pem: bytes, signature: bytes, payload: bytes) -> bool:
    """Whether `signature` is an ECDSA P-256/SHA-256 signature of `payload` by the key."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    key = load_pem_public_key(public_pem)
    assert isinstance(key, ec.EllipticCurvePublicKey)  # checked when the policy was read
    try:
        key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def key_fingerprint(public_pem: bytes) -> str:
    """`sha256:<hex>` of a public key's DER SubjectPublicKeyInfo: which key it is, whatever
    its PEM's line breaks."""
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        PublicFormat,
        load_pem_public_key,
    )

    der = load_pem_public_key(public_pem).public_bytes(
        Encoding.DER, PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256:" + hashlib.sha256(der).hexdigest()
