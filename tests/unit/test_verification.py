"""WRAPPER_POLICY's signature check, over an upstream in memory: what it asks the image's
repository (the `.sig` tag with which Accept, at most so many payloads), what it remembers
and for how long, and what a refusal says."""

from __future__ import annotations

import base64
import hashlib
import json
from collections import Counter

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from doubles.upstream import MemoryUpstream, digest_of
from ociwrap.names.reference import ImageRef, Registry, Repository
from ociwrap.registry.imagesource import Resolved
from ociwrap.registry.verification import SignatureCheck
from ociwrap.runtime import errors, telemetry
from ociwrap.runtime.errors import RegistryError
from ociwrap.runtime.memcache import BoundedCache
from ociwrap.signing import cosign
from ociwrap.signing.policy import parse_policy

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
ANNOTATION = "dev.cosignproject.cosign/signature"
PATH = "tools/wrapper"
IMAGE = digest_of(b'{"schemaVersion":2,"layers":[]}')
OTHER_IMAGE = digest_of(b'{"schemaVersion":2,"layers":[{}]}')


def new_key() -> tuple[ec.EllipticCurvePrivateKey, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return key, pem.decode()


KEY, PUBLIC = new_key()
OTHER_KEY, _ = new_key()
SIGNED = {"wrappers": [{"images": "stub/tools/**", "keys": [PUBLIC]}]}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Recording(MemoryUpstream):
    """Remembers the Accept of every manifest request."""

    def __init__(self) -> None:
        super().__init__()
        self.accepts: list[tuple[str, ...]] = []

    def get_manifest(self, repo, ref, accept):
        self.accepts.append(tuple(accept))
        return super().get_manifest(repo, ref, accept)


@pytest.fixture
def upstream() -> Recording:
    return Recording()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def resolved(digest: str = IMAGE) -> Resolved:
    repo = Repository(Registry("stub", "http://stub.invalid", trusted=True), PATH)
    return Resolved(ImageRef(repo, tag="1"), digest, OCI_MANIFEST)


def checker(upstream, clock=None, document=SIGNED) -> SignatureCheck:
    policy = parse_policy(document)
    cache = BoundedCache(clock=clock) if clock is not None else BoundedCache()
    return SignatureCheck(lambda: policy, upstream, cache)


def signed_by(key: ec.EllipticCurvePrivateKey, digest: str) -> tuple[bytes, bytes]:
    payload = cosign.make_payload(f"stub/{PATH}", digest)
    return payload, key.sign(payload, ec.ECDSA(hashes.SHA256()))


def publish(
    upstream: MemoryUpstream, signed: list[tuple[bytes, bytes]], of: str = IMAGE, size: int = 0
) -> None:
    """The `.sig` tag of `of`, holding these payloads (each a blob of the repository),
    each declared `size` bytes long when given."""
    layers = []
    for payload, signature in signed:
        upstream.blobs[PATH, digest_of(payload)] = payload
        layers.append(
            {
                "mediaType": SIMPLE_SIGNING,
                "digest": digest_of(payload),
                "size": size or len(payload),
                "annotations": {ANNOTATION: base64.b64encode(signature).decode()},
            }
        )
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": layers})
    upstream.push(PATH, body.encode(), cosign.signature_tag(of))


def refused(check: SignatureCheck, role: str = "wrapper", digest: str = IMAGE) -> RegistryError:
    with pytest.raises(RegistryError) as caught:
        check.check(role, resolved(digest))
    assert (caught.value.status, caught.value.code) == (403, "DENIED")
    return caught.value


def test_the_signature_tag_is_asked_for_with_image_manifest_types(upstream):
    publish(upstream, [signed_by(KEY, IMAGE)])
    checker(upstream).check("wrapper", resolved())
    assert upstream.accepts == [(OCI_MANIFEST, DOCKER_MANIFEST)]
    assert [c.ref for c in upstream.calls] == [cosign.signature_tag(IMAGE), upstream.calls[1].ref]


def test_an_admission_is_remembered_for_five_minutes_exactly(upstream, clock):
    publish(upstream, [signed_by(KEY, IMAGE)])
    check = checker(upstream, clock)
    with telemetry.collecting() as stats:
        check.check("wrapper", resolved())
    assert stats.cache == Counter({("signature check", "upstream"): 1})
    clock.now += 299
    with telemetry.collecting() as stats:
        check.check("wrapper", resolved())
    assert stats.cache == Counter({("signature check", "memory"): 1})
    assert upstream.count("get_manifest") == 1
    clock.now += 1
    check.check("wrapper", resolved())
    assert upstream.count("get_manifest") == 2


def test_what_is_remembered_is_the_digest_admitted_not_another(upstream):
    publish(upstream, [signed_by(KEY, IMAGE)])
    check = checker(upstream)
    check.check("wrapper", resolved())
    error = refused(check, digest=OTHER_IMAGE)
    assert error.message.endswith(
        f"it has no signature (no tag {cosign.signature_tag(OTHER_IMAGE)})"
    )


def test_a_wrapper_no_rule_matches_is_refused_naming_image_and_role(upstream):
    check = checker(
        upstream, document={"wrappers": [{"images": "stub/other/**", "unsigned": True}]}
    )
    error = refused(check, role="wrapper 2")
    image = f"stub/{PATH}:1"
    assert error.message == (
        f"wrapper 2 image {image} is not admitted: no rule of WRAPPER_POLICY matches stub/{PATH}"
    )
    assert error.detail == {"image": image, "role": "wrapper 2"}
    assert upstream.calls == []


def test_a_refusal_names_image_digest_rule_and_why(upstream):
    error = refused(checker(upstream))
    assert error.message == (
        f"wrapper image stub/{PATH}:1 ({IMAGE}) is refused by WRAPPER_POLICY rule "
        f"'stub/tools/**': it has no signature (no tag {cosign.signature_tag(IMAGE)})"
    )
    assert error.detail == {"image": f"stub/{PATH}:1", "role": "wrapper", "rule": "stub/tools/**"}


def test_a_repository_the_upstream_does_not_know_has_no_signature(upstream):
    upstream.fail(errors.name_unknown("repository name not known to registry"), "get_manifest")
    assert "it has no signature" in refused(checker(upstream)).message


def test_an_upstream_failing_is_its_error_not_a_refusal(upstream):
    upstream.fail(503, "get_manifest")
    with pytest.raises(RegistryError) as caught:
        checker(upstream).check("wrapper", resolved())
    assert caught.value.code == "UNAVAILABLE"


def test_a_payload_over_the_limit_is_named_as_a_signature_payload(upstream):
    payload = b"x" * (cosign.MAX_PAYLOAD_BYTES + 1)
    publish(upstream, [(payload, b"sig")], size=100)  # its manifest says it is small
    with pytest.raises(RegistryError) as caught:
        checker(upstream).check("wrapper", resolved())
    assert caught.value.message == (
        f"upstream registry stub sent a signature payload larger than the limit of "
        f"{cosign.MAX_PAYLOAD_BYTES} bytes"
    )


def test_every_reason_is_said_once_joined(upstream):
    publish(
        upstream,
        [signed_by(KEY, OTHER_IMAGE), signed_by(OTHER_KEY, IMAGE), signed_by(OTHER_KEY, IMAGE)],
    )
    assert refused(checker(upstream)).message.endswith(
        f"the payload signs {OTHER_IMAGE}, not this image; "
        "the signature is by none of the rule's keys"
    )


def test_a_good_payload_after_one_of_another_digest_admits(upstream):
    publish(upstream, [signed_by(KEY, OTHER_IMAGE), signed_by(KEY, IMAGE)])
    checker(upstream).check("wrapper", resolved())


@pytest.mark.parametrize(("count", "admitted"), [(8, True), (9, False)])
def test_at_most_eight_payloads_are_read(upstream, count, admitted):
    others = [signed_by(KEY, digest_of(str(n).encode())) for n in range(count - 1)]
    publish(upstream, [*others, signed_by(KEY, IMAGE)])
    if admitted:
        checker(upstream).check("wrapper", resolved())
    else:
        refused(checker(upstream))
    assert upstream.count("small_blob") == 8


def test_an_unsigned_rule_admits_without_asking(upstream):
    document = {"wrappers": [{"images": "stub/tools/**", "unsigned": True}]}
    checker(upstream, document=document).check("wrapper", resolved())
    assert upstream.calls == []


def test_a_good_payload_after_one_in_another_format_admits(upstream):
    other_format = b'{"critical": {"type": "something else"}}'
    publish(upstream, [(other_format, b"sig"), signed_by(KEY, IMAGE)])
    checker(upstream).check("wrapper", resolved())


# -- what admitted an image, as provenance records it -----------------------------------------


def test_an_admission_says_the_rule_the_key_and_the_signature_and_is_remembered(upstream):
    publish(upstream, [signed_by(KEY, IMAGE)])  # the second of the rule's keys verifies
    signature = upstream.manifests[PATH, cosign.signature_tag(IMAGE)][0]
    der = KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    admitted = {
        "rule": "stub/tools/**",
        "key": "sha256:" + hashlib.sha256(der).hexdigest(),
        "signature": digest_of(signature),
    }
    document = {"wrappers": [{"images": "stub/tools/**", "keys": [_other_public(), PUBLIC]}]}
    check = checker(upstream, document=document)
    assert check.check("wrapper", resolved()) == admitted
    assert check.check("wrapper", resolved()) == admitted  # from memory
    assert upstream.count("get_manifest") == 1


def _other_public() -> str:
    return (
        OTHER_KEY.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def test_unsigned_rules_unmatched_bases_and_no_policy_say_so(upstream):
    document = {"wrappers": [{"images": "stub/**", "unsigned": True}]}
    assert checker(upstream, document=document).check("wrapper", resolved()) == {
        "rule": "stub/**",
        "unsigned": True,
    }
    assert checker(upstream, document=document).check("base", resolved()) == {"rule": None}
    unset = SignatureCheck(lambda: None, upstream, BoundedCache())
    assert unset.check("wrapper", resolved()) is None
    assert upstream.calls == []
