"""cosign's signature format and the two signers (a PEM key file; KMS through moto).

Expected values are spelled as cosign writes them, never taken from the module.
"""

from __future__ import annotations

import base64
import hashlib
import json

import boto3
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from moto import mock_aws

from ociwrap.runtime.errors import RegistryError
from ociwrap.signing import cosign
from ociwrap.signing.signers import FileSigner, KmsSigner, pem_of_der

DIGEST = "sha256:" + "ab" * 32
SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
ANNOTATION = "dev.cosignproject.cosign/signature"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def verify(public_pem: bytes, signature: bytes, payload: bytes) -> None:
    key = serialization.load_pem_public_key(public_pem)
    key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))


@pytest.fixture
def key_file(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "signing.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


# -- tags ----------------------------------------------------------------------------------


def test_signature_tag_is_cosigns():
    assert cosign.signature_tag(DIGEST) == "sha256-" + "ab" * 32 + ".sig"


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("sha256-" + "ab" * 32 + ".sig", DIGEST),
        ("sha256-" + "ab" * 32, None),  # the referrers tag schema, no signature
        ("sha256-" + "ab" * 31 + ".sig", None),
        ("sha256-" + "AB" * 32 + ".sig", None),
        ("sha512-" + "ab" * 32 + ".sig", None),
        ("latest", None),
        ("sha256-.sig", None),
    ],
)
def test_signed_digest_of_tags(tag, expected):
    assert cosign.signed_digest(tag) == expected


# -- payloads ------------------------------------------------------------------------------


def test_payload_is_simple_signing():
    payload = cosign.make_payload("registry.example.com/wrap/a/1/with/b/2", DIGEST)
    assert json.loads(payload) == {
        "critical": {
            "identity": {"docker-reference": "registry.example.com/wrap/a/1/with/b/2"},
            "image": {"docker-manifest-digest": DIGEST},
            "type": "cosign container image signature",
        },
        "optional": None,
    }
    said = cosign.read_payload(payload)
    assert (said.docker_reference, said.digest) == (
        "registry.example.com/wrap/a/1/with/b/2",
        DIGEST,
    )


def critical(**changes):
    body = {
        "identity": {"docker-reference": "r.example/x"},
        "image": {"docker-manifest-digest": DIGEST},
        "type": "cosign container image signature",
    }
    body.update(changes)
    return json.dumps({"critical": body, "optional": {"a": "b"}}).encode()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not json", "payload is not valid JSON"),
        (b"[]", "no 'cosign container image signature'"),
        (b'{"critical": []}', "no 'cosign container image signature'"),
        (critical(type="something else"), "no 'cosign container image signature'"),
        (critical(image={}), "no valid docker-manifest-digest"),
        (critical(image=[]), "no valid docker-manifest-digest"),
        (critical(image={"docker-manifest-digest": "sha256:12"}), "no valid docker-manifest"),
        (critical(identity={}), "names no docker-reference"),
        (critical(identity={"docker-reference": 7}), "names no docker-reference"),
        (critical(identity="r.example/x"), "names no docker-reference"),
        (b" " * (64 * 1024 + 1), "larger than 65536 bytes"),
    ],
)
def test_malformed_payloads_are_refused(data, message):
    with pytest.raises(cosign.SignatureFormatError, match=message):
        cosign.read_payload(data)


def test_a_payload_of_exactly_the_limit_is_read():
    data = critical()
    padded = data + b" " * (64 * 1024 - len(data))
    assert cosign.read_payload(padded).digest == DIGEST


# -- signature manifests -------------------------------------------------------------------


def test_signature_manifest_is_cosigns_with_subject():
    payload = cosign.make_payload("r.example/x", DIGEST)
    subject = {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": DIGEST, "size": 9}
    signed = cosign.signature_manifest(payload, b"\x30\x06sig", {**subject, "extra": 1})
    manifest = json.loads(signed.body)
    assert manifest == {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.dev.cosign.artifact.sig.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "size": len(signed.config),
            "digest": sha256(signed.config),
        },
        "layers": [
            {
                "mediaType": SIMPLE_SIGNING,
                "size": len(payload),
                "digest": sha256(payload),
                "annotations": {ANNOTATION: base64.b64encode(b"\x30\x06sig").decode()},
            }
        ],
        "subject": subject,
    }
    assert signed.digest == sha256(signed.body)
    assert (signed.payload, signed.payload_digest) == (payload, sha256(payload))
    assert json.loads(signed.config)["rootfs"] == {"type": "layers", "diff_ids": [sha256(payload)]}
    assert signed.config_digest == sha256(signed.config)
    assert cosign.signature_descriptor(signed.digest, len(signed.body)) == {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": signed.digest,
        "size": len(signed.body),
        "artifactType": "application/vnd.dev.cosign.artifact.sig.v1+json",
    }


def layer(**changes):
    entry = {
        "mediaType": SIMPLE_SIGNING,
        "digest": DIGEST,
        "size": 100,
        "annotations": {ANNOTATION: base64.b64encode(b"sig").decode()},
    }
    entry.update(changes)
    return entry


def test_signed_layers_reads_every_signed_payload():
    document = {"layers": [layer(), layer(size=200, digest="sha256:" + "cd" * 32)]}
    found = cosign.signed_layers(document)
    assert [(x.digest, x.size, x.signature) for x in found] == [
        (DIGEST, 100, b"sig"),
        ("sha256:" + "cd" * 32, 200, b"sig"),
    ]


@pytest.mark.parametrize(
    "entry",
    [
        "not an object",
        layer(mediaType="application/vnd.oci.image.layer.v1.tar+gzip"),
        layer(digest="sha256:short"),
        layer(digest=7),
        layer(size="100"),
        layer(size=True),
        layer(size=0),
        layer(size=64 * 1024 + 1),
        layer(annotations=None),
        layer(annotations={"other": "x"}),
        layer(annotations={ANNOTATION: 5}),
        layer(annotations={ANNOTATION: "not base64!"}),
        layer(annotations={ANNOTATION: "QUFB" * 257}),
    ],
)
def test_layers_that_carry_no_usable_signature_are_skipped(entry):
    assert cosign.signed_layers({"layers": [entry, layer()]}) == [
        cosign.SignedLayer(DIGEST, 100, b"sig")
    ]


def test_the_largest_payload_size_is_read():
    assert cosign.signed_layers({"layers": [layer(size=64 * 1024)]})[0].size == 64 * 1024


@pytest.mark.parametrize("document", [[], {"layers": {}}, {"config": {}}, "x"])
def test_a_document_without_layers_is_no_signature(document):
    with pytest.raises(cosign.SignatureFormatError, match="no image manifest with layers"):
        cosign.signed_layers(document)


# -- signers -------------------------------------------------------------------------------


def test_file_signer_signs_what_its_public_key_verifies(key_file):
    signer = FileSigner(str(key_file))
    payload = cosign.make_payload("r.example/x", DIGEST)
    signature = signer.sign(payload)
    assert signer.public_key_pem().startswith(b"-----BEGIN PUBLIC KEY-----\n")
    verify(signer.public_key_pem(), signature, payload)
    with pytest.raises(InvalidSignature):
        verify(signer.public_key_pem(), signature, payload + b" ")


def test_file_signer_refuses_what_is_no_p256_key(tmp_path):
    missing = tmp_path / "missing.pem"
    with pytest.raises(RegistryError, match=r"SIGNING_KEY_FILE .* no readable unencrypted PEM"):
        FileSigner(str(missing))
    other = tmp_path / "p384.pem"
    other.write_bytes(
        ec.generate_private_key(ec.SECP384R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(RegistryError, match="must hold an EC P-256 key") as caught:
        FileSigner(str(other))
    assert caught.value.status == 503


def test_pem_of_der_wraps_at_64_columns():
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pem = pem_of_der(der)
    assert pem == key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert max(len(line) for line in pem.splitlines()) == 64


@mock_aws
def test_kms_signer_signs_with_an_ecc_p256_key():
    kms = boto3.client("kms", region_name="us-east-1")
    key_id = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    signer = KmsSigner(kms, key_id)
    payload = cosign.make_payload("r.example/x", DIGEST)
    signature = signer.sign(payload)
    verify(signer.public_key_pem(), signature, payload)
    assert kms.verify(
        KeyId=key_id,
        Message=payload,
        MessageType="RAW",
        Signature=signature,
        SigningAlgorithm="ECDSA_SHA_256",
    )["SignatureValid"]


@mock_aws
def test_kms_signer_refuses_other_key_specs():
    kms = boto3.client("kms", region_name="us-east-1")
    key_id = kms.create_key(KeySpec="ECC_NIST_P384", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    with pytest.raises(RegistryError, match="must be an ECC_NIST_P256 key, not ECC_NIST_P384"):
        KmsSigner(kms, key_id).public_key_pem()


# -- exact bytes and boundaries ------------------------------------------------------------


def test_the_payload_bytes_are_compact_json_in_cosigns_field_order():
    assert cosign.make_payload("r.example/x", DIGEST) == (
        b'{"critical":{"identity":{"docker-reference":"r.example/x"},'
        b'"image":{"docker-manifest-digest":"' + DIGEST.encode() + b'"},'
        b'"type":"cosign container image signature"},"optional":null}'
    )


def nested(levels: int) -> bytes:
    """A valid payload whose `optional` holds `levels` lists one in another."""
    document = json.loads(critical())
    document["optional"] = json.loads("[" * levels + "]" * levels)
    return json.dumps(document).encode()


def test_payloads_are_read_eight_levels_deep_and_no_deeper():
    assert cosign.read_payload(nested(7)).digest == DIGEST  # 8 levels with the document
    with pytest.raises(cosign.SignatureFormatError, match=r"^payload is nested deeper than 8"):
        cosign.read_payload(nested(8))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (critical(image={}), "payload names no valid docker-manifest-digest"),
        (critical(identity={}), "payload names no docker-reference"),
    ],
)
def test_payload_errors_say_exactly_what_is_missing(data, message):
    with pytest.raises(cosign.SignatureFormatError) as caught:
        cosign.read_payload(data)
    assert str(caught.value) == message


def test_the_signature_config_and_manifest_are_cosigns_bytes():
    payload = cosign.make_payload("r.example/x", DIGEST)
    subject = {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": DIGEST,
        "size": 9,
    }
    signed = cosign.signature_manifest(payload, b"sig", subject)
    assert signed.config == (
        b'{"architecture":"","config":{},"created":"0001-01-01T00:00:00Z",'
        b'"history":[{"created":"0001-01-01T00:00:00Z"}],"os":"",'
        b'"rootfs":{"type":"layers","diff_ids":["' + sha256(payload).encode() + b'"]}}'
    )
    assert signed.body.startswith(
        b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",'
        b'"artifactType":"application/vnd.dev.cosign.artifact.sig.v1+json","config":{'
    )
    assert b" " not in signed.body


def test_signed_layer_boundaries():
    assert cosign.signed_layers({"layers": [layer(size=1)]})[0].size == 1
    longest = "QUFB" * 256  # 1024 characters
    found = cosign.signed_layers({"layers": [layer(annotations={ANNOTATION: longest})]})
    assert found[0].signature == b"AAA" * 256


def test_a_signature_one_character_over_the_limit_is_skipped_though_base64_reads_it():
    text = "A" * 1024 + "="  # 1025 characters, which the base64 decoder accepts
    assert base64.b64decode(text, validate=True) == b"\0" * 768
    assert cosign.signed_layers({"layers": [layer(annotations={ANNOTATION: text})]}) == []


def test_a_signature_with_characters_outside_base64_is_skipped():
    assert cosign.signed_layers({"layers": [layer(annotations={ANNOTATION: "QUFB*"})]}) == []


def test_signature_manifest_errors_say_exactly_what_is_wrong():
    with pytest.raises(cosign.SignatureFormatError) as caught:
        cosign.signed_layers([])
    assert str(caught.value) == "signature is no image manifest with layers"
