"""WRAPPER_POLICY: the document, its patterns, and signature checks against an upstream.

The checks read signatures from a scripted upstream on 127.0.0.1 that also misbehaves
(signatures of other digests, oversized or malformed payloads, wrong keys).
"""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ociwrap.names.reference import ImageRef, Registry, Repository
from ociwrap.registry.imagesource import Resolved
from ociwrap.registry.verification import SignatureCheck
from ociwrap.runtime.errors import RegistryError
from ociwrap.runtime.memcache import BoundedCache
from ociwrap.runtime.secrets import SecretDocument
from ociwrap.signing.policy import PolicyError, parse_policy
from ociwrap.signing.policy_source import PolicySource
from ociwrap.upstream.fetch import Fetcher
from ociwrap.upstream.transport import Transport

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
ANNOTATION = "dev.cosignproject.cosign/signature"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def new_key() -> tuple[ec.EllipticCurvePrivateKey, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return key, pem.decode()


KEY, PUBLIC = new_key()
OTHER_KEY, OTHER_PUBLIC = new_key()


# -- the document --------------------------------------------------------------------------


def matched(pattern: str, name: str) -> bool:
    """Whether a policy whose one rule has `pattern` as its images has a rule for `name`."""
    policy = parse_policy({"bases": [{"images": pattern, "unsigned": True}]})
    return policy.rule_for("base", name) is not None


@pytest.mark.parametrize(
    ("pattern", "name", "matches"),
    [
        ("ghcr.io/acme/**", "ghcr.io/acme/tools/wrapper", True),
        ("ghcr.io/acme/*", "ghcr.io/acme/wrapper", True),
        ("ghcr.io/acme/*", "ghcr.io/acme/tools/wrapper", False),
        ("ghcr.io/acme/wrapper?", "ghcr.io/acme/wrapper2", True),
        ("ghcr.io/acme/wrapper?", "ghcr.io/acme/wrapper/", False),
        ("ghcr.io/acme/wrapper", "ghcr.io/acme/wrapper", True),
        ("ghcr.io/acme/wrapper", "ghcr.io/acme/wrapper-evil", False),
        ("ghcr.io/acme/wrapper", "ghcr.io/acme/wrapperx", False),
        ("ghcr.io/acme.x/**", "ghcr.io/acmeXx/y", False),  # `.` is a dot, not any character
        ("**", "docker.io/library/busybox", True),
        ("*", "docker.io/library/busybox", False),
    ],
)
def test_patterns(pattern, name, matches):
    assert matched(pattern, name) is matches


def test_first_matching_rule_decides_and_unmatched_wrappers_are_refused():
    policy = parse_policy(
        {
            "wrappers": [
                {"images": "local/tools/wrapper", "keys": [PUBLIC]},
                {"images": "local/tools/**", "unsigned": True},
            ],
            "bases": [{"images": "local/library/**", "keys": [OTHER_PUBLIC, PUBLIC]}],
        }
    )
    assert policy.rule_for("wrapper", "local/tools/wrapper").keys == (PUBLIC.encode(),)
    assert policy.rule_for("wrapper", "local/tools/other").unsigned is True
    assert policy.rule_for("wrapper", "local/library/busybox") is None
    assert policy.rule_for("base", "local/library/busybox").keys == (
        OTHER_PUBLIC.encode(),
        PUBLIC.encode(),
    )
    assert policy.rule_for("base", "local/tools/wrapper") is None
    assert policy.admits_unmatched("base") is True
    assert policy.admits_unmatched("wrapper") is False


def test_a_policy_of_bases_only_leaves_wrappers_free():
    policy = parse_policy({"bases": [{"images": "**", "keys": [PUBLIC]}]})
    assert policy.admits_unmatched("wrapper") is True
    assert parse_policy({"wrappers": []}).admits_unmatched("wrapper") is False


def test_rule_fingerprints_differ_by_pattern_and_key():
    one = parse_policy({"wrappers": [{"images": "a/**", "keys": [PUBLIC]}]}).wrappers[0]
    other_key = parse_policy({"wrappers": [{"images": "a/**", "keys": [OTHER_PUBLIC]}]})
    other_pattern = parse_policy({"wrappers": [{"images": "b/**", "keys": [PUBLIC]}]})
    assert one.fingerprint != other_key.wrappers[0].fingerprint
    assert one.fingerprint != other_pattern.wrappers[0].fingerprint
    assert (
        one.fingerprint
        == parse_policy({"wrappers": [{"images": "a/**", "keys": [PUBLIC]}]})
        .wrappers[0]
        .fingerprint
    )


RSA_PUBLIC = (
    rsa.generate_private_key(public_exponent=65537, key_size=2048)
    .public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "must be a JSON object"),
        ({"wrapper": []}, "unknown fields \\['wrapper'\\]"),
        ({"wrappers": {}}, "wrappers must be a list of at most 256 rules"),
        ({"bases": [{"images": "x"}] * 257}, "bases must be a list of at most 256 rules"),
        ({"wrappers": ["x"]}, "wrappers\\[0\\] must be an object"),
        ({"wrappers": [{"images": "x", "key": [PUBLIC]}]}, "wrappers\\[0\\] has unknown fields"),
        ({"wrappers": [{"keys": [PUBLIC]}]}, "wrappers\\[0\\].images must be a repository"),
        ({"wrappers": [{"images": "", "keys": [PUBLIC]}]}, "images must be a repository"),
        ({"wrappers": [{"images": "x" * 513, "keys": [PUBLIC]}]}, "images must be a repository"),
        ({"wrappers": [{"images": "x", "unsigned": "yes"}]}, "unsigned must be true or false"),
        ({"wrappers": [{"images": "x", "keys": PUBLIC}]}, "keys must be a list of at most 16"),
        ({"wrappers": [{"images": "x", "keys": [PUBLIC] * 17}]}, "keys must be a list of at mo"),
        ({"wrappers": [{"images": "x"}]}, 'needs either keys or "unsigned": true'),
        ({"wrappers": [{"images": "x", "keys": []}]}, 'needs either keys or "unsigned": true'),
        (
            {"wrappers": [{"images": "x", "keys": [PUBLIC], "unsigned": True}]},
            'needs either keys or "unsigned": true',
        ),
        ({"wrappers": [{"images": "x", "keys": ["abc"]}]}, "keys\\[0\\] is no PEM public key"),
        ({"wrappers": [{"images": "x", "keys": [7]}]}, "keys\\[0\\] is no PEM public key"),
        (
            {"bases": [{"images": "x", "keys": [PUBLIC, "-----BEGIN PUBLIC KEY-----\nAA==\n"]}]},
            "bases\\[0\\].keys\\[1\\] is no readable PEM public key",
        ),
        ({"wrappers": [{"images": "x", "keys": [RSA_PUBLIC]}]}, "must be an ECDSA public key"),
    ],
)
def test_bad_policies_name_the_field(document, message):
    with pytest.raises(PolicyError, match=message):
        parse_policy(document)


def test_policy_source_reads_the_file_again_when_it_changes(tmp_path):
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"wrappers": [{"images": "a/**", "unsigned": True}]}))
    source = PolicySource(
        SecretDocument("WRAPPER_POLICY_SECRET", None, "WRAPPER_POLICY_FILE", str(path))
    )
    assert source.policy().wrappers[0].images == "a/**"
    path.write_text(json.dumps({"wrappers": [{"images": "b/**", "unsigned": True}]}))
    import os

    os.utime(path, (1, 1))
    assert source.policy().wrappers[0].images == "b/**"
    path.write_text("{not json")
    os.utime(path, (2, 2))
    with pytest.raises(RegistryError, match="WRAPPER_POLICY_FILE is not a usable policy") as caught:
        source.policy()
    assert caught.value.status == 503
    assert PolicySource(SecretDocument("A", None, "B", None)).policy() is None


# -- checks against an upstream ------------------------------------------------------------

IMAGE_MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []}).encode()
IMAGE_DIGEST = sha256(IMAGE_MANIFEST)
HEX = IMAGE_DIGEST.split(":")[1]
SIG_PATH = f"/v2/tools/wrapper/manifests/sha256-{HEX}.sig"


def payload_of(digest: str) -> bytes:
    return json.dumps(
        {
            "critical": {
                "identity": {"docker-reference": "stub/tools/wrapper"},
                "image": {"docker-manifest-digest": digest},
                "type": "cosign container image signature",
            },
            "optional": None,
        }
    ).encode()


def publish(scripted, payloads: list[tuple[bytes, bytes]], extra_layers: list | None = None):
    """Serve a `.sig` manifest of (payload, DER signature) pairs and the payload blobs."""
    layers = list(extra_layers or [])
    for payload, signature in payloads:
        layers.append(
            {
                "mediaType": SIMPLE_SIGNING,
                "digest": sha256(payload),
                "size": len(payload),
                "annotations": {ANNOTATION: base64.b64encode(signature).decode()},
            }
        )
        path = f"/v2/tools/wrapper/blobs/{sha256(payload)}"
        scripted.routes["GET", path] = lambda h, p=payload: (
            200,
            {},
            p,
        )
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": layers}).encode()
    scripted.routes["GET", SIG_PATH] = lambda h: (200, {"Content-Type": OCI_MANIFEST}, body)


def sign(key: ec.EllipticCurvePrivateKey, payload: bytes) -> bytes:
    return key.sign(payload, ec.ECDSA(hashes.SHA256()))


@pytest.fixture
def resolved(scripted) -> Resolved:
    repo = Repository(Registry("stub", scripted.url, trusted=True), "tools/wrapper")
    return Resolved(ImageRef(repo, tag="1"), IMAGE_DIGEST, OCI_MANIFEST)


def checker(document: dict) -> SignatureCheck:
    policy = parse_policy(document)
    return SignatureCheck(lambda: policy, Fetcher(Transport()), BoundedCache())


SIGNED = {"wrappers": [{"images": "stub/tools/**", "keys": [OTHER_PUBLIC, PUBLIC]}]}


def test_a_signature_by_a_key_of_the_rule_admits_and_is_remembered(scripted, resolved):
    payload = payload_of(IMAGE_DIGEST)
    publish(scripted, [(payload, sign(KEY, payload))])
    check = checker(SIGNED)
    check.check("wrapper", resolved)
    seen = len(scripted.seen)
    check.check("wrapper", resolved)
    assert len(scripted.seen) == seen  # remembered: no upstream request


def test_one_good_payload_among_bad_ones_admits(scripted, resolved):
    good, other = payload_of(IMAGE_DIGEST), payload_of("sha256:" + "00" * 32)
    publish(
        scripted,
        [(other, sign(KEY, other)), (good, sign(OTHER_KEY, good))],
        extra_layers=[{"mediaType": "application/octet-stream", "digest": "x", "size": 1}],
    )
    checker(SIGNED).check("wrapper", resolved)


def refusal(scripted, resolved, document=SIGNED, role="wrapper") -> RegistryError:
    with pytest.raises(RegistryError) as caught:
        checker(document).check(role, resolved)
    assert (caught.value.status, caught.value.code) == (403, "DENIED")
    return caught.value


def test_unsigned_images_are_refused_naming_image_and_rule(scripted, resolved):
    error = refusal(scripted, resolved)
    assert error.message == (
        f"wrapper image stub/tools/wrapper:1 ({IMAGE_DIGEST}) is refused by WRAPPER_POLICY rule "
        f"'stub/tools/**': it has no signature (no tag sha256-{HEX}.sig)"
    )
    assert error.detail == {
        "image": "stub/tools/wrapper:1",
        "role": "wrapper",
        "rule": "stub/tools/**",
    }


def test_a_signature_by_another_key_is_refused(scripted, resolved):
    payload = payload_of(IMAGE_DIGEST)
    publish(scripted, [(payload, sign(KEY, payload))])
    error = refusal(scripted, resolved, {"wrappers": [{"images": "**", "keys": [OTHER_PUBLIC]}]})
    assert error.message.endswith("the signature is by none of the rule's keys")


def test_a_signature_of_another_digest_is_refused(scripted, resolved):
    payload = payload_of("sha256:" + "00" * 32)
    publish(scripted, [(payload, sign(KEY, payload))])
    error = refusal(scripted, resolved)
    assert error.message.endswith(f"the payload signs sha256:{'00' * 32}, not this image")


def test_a_signature_of_other_bytes_is_refused(scripted, resolved):
    payload = payload_of(IMAGE_DIGEST)
    publish(scripted, [(payload, sign(KEY, payload + b" "))])
    assert refusal(scripted, resolved).message.endswith("by none of the rule's keys")


def test_a_garbage_signature_is_refused(scripted, resolved):
    payload = payload_of(IMAGE_DIGEST)
    publish(scripted, [(payload, b"\x30\x02\x00\x00")])
    assert refusal(scripted, resolved).message.endswith("by none of the rule's keys")


def test_a_payload_in_another_format_is_refused(scripted, resolved):
    payload = b'{"critical": {"type": "something"}}'
    publish(scripted, [(payload, sign(KEY, payload))])
    assert "is no 'cosign container image signature'" in refusal(scripted, resolved).message


def test_a_signature_without_payloads_is_refused(scripted, resolved):
    publish(scripted, [])
    assert refusal(scripted, resolved).message.endswith(f"sha256-{HEX}.sig holds no signed payload")


def test_a_signature_that_is_no_manifest_is_refused(scripted, resolved):
    scripted.routes["GET", SIG_PATH] = lambda h: (200, {"Content-Type": OCI_MANIFEST}, b"[1, 2]")
    assert "is not in cosign's format" in refusal(scripted, resolved).message


def test_a_payload_blob_that_is_not_what_its_digest_says_is_an_upstream_failure(scripted, resolved):
    payload = payload_of(IMAGE_DIGEST)
    publish(scripted, [(payload, sign(KEY, payload))])
    scripted.routes["GET", f"/v2/tools/wrapper/blobs/{sha256(payload)}"] = lambda h: (
        200,
        {},
        payload.replace(b"stub", b"evil"),
    )
    with pytest.raises(RegistryError) as caught:
        checker(SIGNED).check("wrapper", resolved)
    assert caught.value.code == "UNAVAILABLE"


def test_an_oversized_payload_is_not_read(scripted, resolved):
    payload = payload_of(IMAGE_DIGEST) + b" " * (70 * 1024)
    publish(scripted, [(payload, sign(KEY, payload))])  # its layer says 70 KiB: skipped
    assert refusal(scripted, resolved).message.endswith("holds no signed payload")


def test_unmatched_images(scripted, resolved):
    error = refusal(scripted, resolved, {"wrappers": [{"images": "ghcr.io/**", "unsigned": True}]})
    assert error.message == (
        "wrapper image stub/tools/wrapper:1 is not admitted: no rule of WRAPPER_POLICY matches "
        "stub/tools/wrapper"
    )
    checker({"wrappers": [], "bases": []}).check("base", resolved)  # bases are free unless named
    checker({"wrappers": [{"images": "stub/**", "unsigned": True}]}).check("wrapper 2", resolved)
    assert scripted.seen == []  # neither asked the upstream
    error = refusal(
        scripted, resolved, {"bases": [{"images": "stub/**", "keys": [PUBLIC]}]}, "base"
    )
    assert error.message.startswith("base image stub/tools/wrapper:1")


def test_no_policy_admits_everything_without_asking(scripted, resolved):
    SignatureCheck(lambda: None, Fetcher(Transport()), BoundedCache()).check("wrapper", resolved)
    assert scripted.seen == []


# -- boundaries ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "name", "matches"),
    [
        ("ghcr.io/**/tool", "ghcr.io/a/b/tool", True),
        ("ghcr.io/**/tool", "ghcr.io/a/b/other", False),
        ("ghcr.io/**/tool", "ghcr.io/a/btool", False),
        ("ghcr.io/acme/*-tool", "ghcr.io/acme/x-tool", True),
        ("ghcr.io/acme/*-tool", "ghcr.io/acme/x-other", False),
        ("ghcr.io/acme/*-tool", "ghcr.io/acme/xtool", False),
        ("ghcr.io/acme/tool?x", "ghcr.io/acme/tool2x", True),
        ("ghcr.io/acme/tool?x", "ghcr.io/acme/tool2y", False),
    ],
)
def test_what_follows_a_wildcard_is_matched_too(pattern, name, matches):
    assert matched(pattern, name) is matches


@pytest.mark.parametrize(
    ("pattern", "name"),
    [
        ("ghcr.io/" + "**a" * 12 + "**b", "ghcr.io/" + "a" * 248),
        ("ghcr.io/acme/" + "*-" * 12 + "*b", "ghcr.io/acme/" + "a-" * 121),
        ("ghcr.io/**/" + "*?" * 12 + "b", "ghcr.io/" + "a/" * 60 + "a" * 127),
    ],
)
def test_names_built_to_backtrack_are_matched_in_linear_time(pattern, name, bounded):
    """A matcher that backtracks tries every way of sharing the name among the stars
    (about C(248, 12) for the first) before it can say no."""
    assert bounded(matched, pattern, name) is False
    assert matched(pattern, name[:-1] + "b") is True


def test_the_largest_policy_that_is_read():
    rule = {"images": "x" * 512, "keys": [PUBLIC] * 16}
    policy = parse_policy({"wrappers": [rule] * 256})
    assert len(policy.wrappers) == 256
    assert len(policy.wrappers[0].keys) == 16


def test_a_policy_that_is_no_object_says_what_it_must_be():
    with pytest.raises(PolicyError) as caught:
        parse_policy([])
    assert str(caught.value) == 'the policy must be a JSON object with "wrappers" and/or "bases"'
