"""Keys that sign compositions: a KMS key (here a stand-in that answers as KMS does, with a
real P-256 key behind it) and a PEM key file, both checked with the verification cosign
uses."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ociwrap.runtime.errors import RegistryError
from ociwrap.signing.signers import FileSigner, KmsSigner, ecdsa_valid, key_fingerprint, pem_of_der

KEY_ID = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
PAYLOAD = b'{"critical":{"identity":{"docker-reference":"pull.example.com/wrap/x"}}}'


def public_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


class Kms:
    """KMS's `Sign` and `GetPublicKey` for one key, refusing what KMS refuses."""

    def __init__(self, curve: ec.EllipticCurve | None = None, spec_field: str = "KeySpec"):
        self.key = ec.generate_private_key(curve or ec.SECP256R1())
        self.spec = {"secp256r1": "ECC_NIST_P256", "secp384r1": "ECC_NIST_P384"}[
            self.key.curve.name
        ]
        self.spec_field = spec_field
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def sign(self, **request: Any) -> dict[str, Any]:
        self.calls.append(("Sign", request))
        kind = request.get("MessageType")
        assert request == {
            "KeyId": KEY_ID,
            "Message": request["Message"],
            "MessageType": kind,
            "SigningAlgorithm": "ECDSA_SHA_256",
        }
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

        if kind == "RAW":
            assert len(request["Message"]) <= 4096  # KMS refuses longer RAW messages
            algorithm = ec.ECDSA(hashes.SHA256())
        else:
            assert kind == "DIGEST" and len(request["Message"]) == 32
            algorithm = ec.ECDSA(Prehashed(hashes.SHA256()))
        signature = self.key.sign(request["Message"], algorithm)
        return {"KeyId": KEY_ID, "Signature": bytearray(signature)}

    def get_public_key(self, **request: Any) -> dict[str, Any]:
        self.calls.append(("GetPublicKey", request))
        assert request == {"KeyId": KEY_ID}
        der = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return {"KeyId": KEY_ID, "PublicKey": bytearray(der), self.spec_field: self.spec}


def refused(call, *args) -> RegistryError:
    with pytest.raises(RegistryError) as caught:
        call(*args)
    return caught.value


# -- KMS ------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec_field", ["KeySpec", "CustomerMasterKeySpec"])
def test_a_kms_signature_verifies_with_the_kms_public_key(spec_field):
    kms = Kms(spec_field=spec_field)
    signer = KmsSigner(kms, KEY_ID)
    signature = signer.sign(PAYLOAD)
    assert isinstance(signature, bytes)
    assert signer.public_key_pem() == public_pem(kms.key)
    assert ecdsa_valid(signer.public_key_pem(), signature, PAYLOAD)
    assert [name for name, _ in kms.calls] == ["Sign", "GetPublicKey"]  # asked for once
    assert kms.calls[0][1]["Message"] == PAYLOAD


def test_kms_signs_payloads_up_to_4096_bytes_raw_and_longer_ones_by_their_digest():
    kms = Kms()
    signer = KmsSigner(kms, KEY_ID)
    assert ecdsa_valid(public_pem(kms.key), signer.sign(b"x" * 4096), b"x" * 4096)
    assert ecdsa_valid(public_pem(kms.key), signer.sign(b"x" * 4097), b"x" * 4097)
    assert [call["MessageType"] for _, call in kms.calls] == ["RAW", "DIGEST"]
    assert kms.calls[1][1]["Message"] == hashlib.sha256(b"x" * 4097).digest()


def test_a_kms_key_of_another_kind_is_a_503_naming_the_setting():
    signer = KmsSigner(Kms(ec.SECP384R1()), KEY_ID)
    error = refused(signer.public_key_pem)
    assert (error.status, error.code) == (503, "UNAVAILABLE")
    assert error.message == "SIGNING_KMS_KEY_ID must be an ECC_NIST_P256 key, not ECC_NIST_P384"


def test_a_kms_key_without_a_spec_is_refused_too():
    kms = Kms(spec_field="Unrelated")
    assert refused(KmsSigner(kms, KEY_ID).public_key_pem).message == (
        "SIGNING_KMS_KEY_ID must be an ECC_NIST_P256 key, not None"
    )


# -- PEM files ------------------------------------------------------------------------------


def write_key(path, key, form=serialization.PrivateFormat.PKCS8, password=None) -> str:
    encryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, form, encryption))
    return str(path)


@pytest.mark.parametrize(
    "form", [serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL]
)
def test_a_key_file_signs_what_its_public_key_verifies(tmp_path, form):
    key = ec.generate_private_key(ec.SECP256R1())
    signer = FileSigner(write_key(tmp_path / "cosign.key", key, form))
    assert signer.public_key_pem() == public_pem(key)
    signature = signer.sign(PAYLOAD)
    assert ecdsa_valid(public_pem(key), signature, PAYLOAD) is True
    assert ecdsa_valid(public_pem(key), signature, PAYLOAD + b" ") is False


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (None, "FileNotFoundError"),
        (b"-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n", "ValueError"),
        ("encrypted", "TypeError"),
    ],
)
def test_an_unreadable_key_file_is_a_503_naming_the_setting(tmp_path, content, why):
    path = tmp_path / "cosign.key"
    if content == "encrypted":
        write_key(path, ec.generate_private_key(ec.SECP256R1()), password=b"secret")
    elif content is not None:
        path.write_bytes(content)
    error = refused(FileSigner, str(path))
    assert (error.status, error.code) == (503, "UNAVAILABLE")
    assert error.message == (
        f"SIGNING_KEY_FILE {path} is no readable unencrypted PEM private key ({why})"
    )


@pytest.mark.parametrize(
    "key",
    [
        ec.generate_private_key(ec.SECP384R1()),
        rsa.generate_private_key(public_exponent=65537, key_size=1024),
    ],
    ids=["p384", "rsa"],
)
def test_a_key_file_must_hold_a_p256_key(tmp_path, key):
    path = write_key(tmp_path / "cosign.key", key)
    error = refused(FileSigner, path)
    assert (error.status, error.code) == (503, "UNAVAILABLE")
    assert error.message == f"SIGNING_KEY_FILE {path} must hold an EC P-256 key"


# -- public keys and verification -----------------------------------------------------------


def test_a_der_public_key_is_written_as_pem_in_lines_of_64():
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pem = pem_of_der(der)
    assert pem == public_pem(key)
    lines = pem.decode().splitlines()
    assert lines[0] == "-----BEGIN PUBLIC KEY-----" and lines[-1] == "-----END PUBLIC KEY-----"
    assert [len(line) for line in lines[1:-1]] == [64, 60]
    assert pem.endswith(b"-----\n")


def test_a_signature_by_another_key_does_not_verify():
    mine, other = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    from cryptography.hazmat.primitives import hashes

    signature = other.sign(PAYLOAD, ec.ECDSA(hashes.SHA256()))
    assert ecdsa_valid(public_pem(mine), signature, PAYLOAD) is False
    assert ecdsa_valid(public_pem(other), signature, PAYLOAD) is True
    assert ecdsa_valid(public_pem(other), b"\x30\x00", PAYLOAD) is False


def test_a_keys_fingerprint_is_the_sha256_of_its_der_whatever_its_pem_spelling():
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pem = public_pem(key)
    expected = "sha256:" + hashlib.sha256(der).hexdigest()
    assert key_fingerprint(pem) == expected
    assert key_fingerprint(pem.replace(b"\n", b"\r\n")) == expected
    assert key_fingerprint(public_pem(ec.generate_private_key(ec.SECP256R1()))) != expected
