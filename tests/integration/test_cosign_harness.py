"""Self-test of `harness.cosign` against real `docker-registry` upstreams, without ociwrap.

The signer and verifier are the tests' own (Debian's skopeo cannot sign or verify sigstore
signatures), so before they judge the registry under development they must be shown to
accept a good signature and to refuse every kind of bad one, on a registry nobody wrote here.
Each test deletes the `.sig` tags it pushed, so the shared upstream stays unsigned for others.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
import requests
from requests.adapters import HTTPAdapter

from harness import cosign
from harness.clients import skopeo_inspect_bytes
from harness.images import Pushed
from harness.registry import DockerRegistry

pytestmark = pytest.mark.integration

Keys = tuple[bytes, bytes]


@pytest.fixture(scope="module")
def keys() -> Keys:
    return cosign.generate_key()


@pytest.fixture(scope="module")
def other_keys() -> Keys:
    return cosign.generate_key()


def check(
    registry: DockerRegistry, image: Pushed, public_pem: bytes, **options: Any
) -> dict[str, Any]:
    """`cosign.verify` of `image` expecting the reference `HOST/REPO`."""
    reference = f"{registry.host}/{image.repo}"
    return cosign.verify(registry.url, image.repo, image.digest, public_pem, reference, **options)


def test_a_pushed_signature_verifies_and_skopeo_kept_it_byte_for_byte(
    upstream: DockerRegistry,
    pushed_images: dict[str, Pushed],
    keys: Keys,
    sigs: cosign.PushedSignatures,
) -> None:
    wrapper = pushed_images["wrapper"]
    sig_digest = sigs.push(upstream, wrapper, keys[0])
    payload = check(upstream, wrapper, keys[1])
    assert payload["critical"]["image"]["docker-manifest-digest"] == wrapper.digest
    assert payload["critical"]["identity"]["docker-reference"] == f"{upstream.host}/tools/wrapper"

    sig_ref = f"{upstream.host}/{wrapper.repo}:{cosign.signature_tag(wrapper.digest)}"
    raw = skopeo_inspect_bytes(sig_ref, raw=True)
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == sig_digest
    layer = json.loads(raw)["layers"][0]
    assert layer["mediaType"] == cosign.SIMPLESIGNING
    assert cosign.SIGNATURE_ANNOTATION in layer["annotations"]


def test_a_signature_by_another_key_is_refused(
    upstream: DockerRegistry,
    pushed_images: dict[str, Pushed],
    keys: Keys,
    other_keys: Keys,
    sigs: cosign.PushedSignatures,
) -> None:
    wrapper = pushed_images["wrapper"]
    sigs.push(upstream, wrapper, other_keys[0])
    with pytest.raises(cosign.SignatureError, match="bad signature"):
        check(upstream, wrapper, keys[1])


def test_an_image_without_a_signature_tag_is_refused(
    upstream: DockerRegistry, pushed_images: dict[str, Pushed], keys: Keys
) -> None:
    wrapper = pushed_images["wrapper"]
    with pytest.raises(cosign.SignatureError, match=r"no signature tag sha256-[0-9a-f]{64}\.sig"):
        check(upstream, wrapper, keys[1])


@pytest.mark.parametrize("tamper", ["digest", "reference", "other-bytes"])
def test_a_payload_changed_after_signing_is_refused(
    upstream: DockerRegistry,
    pushed_images: dict[str, Pushed],
    keys: Keys,
    sigs: cosign.PushedSignatures,
    tamper: str,
) -> None:
    wrapper = pushed_images["wrapper"]
    sigs.push(upstream, wrapper, keys[0], tamper=tamper)
    with pytest.raises(cosign.SignatureError, match="bad signature"):
        check(upstream, wrapper, keys[1])


def test_a_genuine_signature_of_another_image_is_refused(
    upstream: DockerRegistry,
    pushed_images: dict[str, Pushed],
    keys: Keys,
    sigs: cosign.PushedSignatures,
) -> None:
    wrapper, base = pushed_images["wrapper"], pushed_images["base"]
    sigs.push(upstream, wrapper, keys[0], claimed_digest=base.digest)
    with pytest.raises(
        cosign.SignatureError, match=f"digest mismatch: the payload signs {base.digest}"
    ):
        check(upstream, wrapper, keys[1])


def test_a_genuine_signature_naming_another_repository_is_refused(
    upstream: DockerRegistry,
    pushed_images: dict[str, Pushed],
    keys: Keys,
    sigs: cosign.PushedSignatures,
) -> None:
    wrapper = pushed_images["wrapper"]
    sigs.push(upstream, wrapper, keys[0], docker_reference="docker.io/evil/wrapper")
    with pytest.raises(cosign.SignatureError, match=r"reference mismatch.*docker\.io/evil/wrapper"):
        check(upstream, wrapper, keys[1])


class FlipBlobBytes(HTTPAdapter):
    """Hands back every blob with its last byte changed: a registry or proxy that lies."""

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        response = super().send(request, **kwargs)
        if "/blobs/" in (request.url or "") and response.status_code == 200:
            body = response.content
            response._content = body[:-1] + bytes([body[-1] ^ 1])
        return response


def test_a_blob_altered_in_transit_is_refused(
    upstream: DockerRegistry,
    pushed_images: dict[str, Pushed],
    keys: Keys,
    sigs: cosign.PushedSignatures,
) -> None:
    wrapper = pushed_images["wrapper"]
    sigs.push(upstream, wrapper, keys[0])
    session = requests.Session()
    session.mount("http://", FlipBlobBytes())
    with pytest.raises(cosign.SignatureError, match="tampered blob"):
        check(upstream, wrapper, keys[1], session=session)


def test_one_good_signature_among_several_is_enough(
    upstream: DockerRegistry,
    pushed_images: dict[str, Pushed],
    keys: Keys,
    other_keys: Keys,
    sigs: cosign.PushedSignatures,
) -> None:
    wrapper = pushed_images["wrapper"]
    reference = f"{upstream.host}/{wrapper.repo}"
    payload = cosign.make_payload(reference, wrapper.digest)
    by_other = (payload, cosign.sign_payload(payload, other_keys[0]))
    by_ours = (payload, cosign.sign_payload(payload, keys[0]))
    sigs.push_pairs(upstream, wrapper, [by_other, by_ours])
    assert check(upstream, wrapper, keys[1])["critical"]["image"] == {
        "docker-manifest-digest": wrapper.digest
    }
    sigs.push_pairs(upstream, wrapper, [by_other, by_other])
    with pytest.raises(cosign.SignatureError, match=r"bad signature.*; bad signature"):
        check(upstream, wrapper, keys[1])


def test_payloads_behind_a_redirect_verify(
    redirecting_upstream: DockerRegistry,
    redirecting_images: dict[str, Pushed],
    keys: Keys,
    sigs: cosign.PushedSignatures,
) -> None:
    wrapper = redirecting_images["wrapper"]
    sigs.push(redirecting_upstream, wrapper, keys[0])
    since = redirecting_upstream.mark()
    check(redirecting_upstream, wrapper, keys[1])
    redirecting_upstream.settle()
    blob_gets = [
        access
        for access in redirecting_upstream.requests()[since:]
        if access.method == "GET" and "/blobs/" in access.path
    ]
    assert [access.status for access in blob_gets] == [307]
