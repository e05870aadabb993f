"""Signed compositions, wrappers admitted by signature, and the referrers API, end to end.

Signatures are checked by the tests' own cosign-format verifier (`harness.cosign`, which
shares no code with the registry): it reads `sha256-<hex>.sig` through the gateway like
any client and checks payload, identity and ECDSA signature against the key served at
`/v1alpha/signing-key`. Signatures of upstream wrappers are made the same way and pushed
with skopeo. KMS signing runs against moto's KMS on the harness's moto server.
"""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
import requests

from harness import cosign
from harness.clients import ToolError, skopeo_copy
from harness.images import Pushed
from harness.moto_s3 import MotoS3, dummy_aws_env
from harness.registry import DockerRegistry

pytestmark = pytest.mark.integration

PUBLIC_HOSTNAME = "registry.example.test"
WRAP = "wrap/local/library/busybox/1/with/local/tools/wrapper/1"
WRAP_MULTI = "wrap/local/library/busybox/multi/with/local/tools/wrapper/multi"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
SIG_ARTIFACT = "application/vnd.dev.cosign.artifact.sig.v1+json"
ACCEPT = {"Accept": f"{OCI_INDEX}, {OCI_MANIFEST}"}


def signing_env(key: tuple[Path, bytes]) -> dict[str, str]:
    return {"SIGNING_KEY_FILE": str(key[0]), "PUBLIC_HOSTNAME": PUBLIC_HOSTNAME}


def manifest_digest(gw, name: str, **headers: str) -> str:
    answer = requests.get(
        f"{gw.url}/v2/{name}/manifests/latest", headers={**ACCEPT, **headers}, timeout=60
    )
    assert answer.status_code == 200, answer.text
    return answer.headers["Docker-Content-Digest"]


def served_key(gw) -> bytes:
    answer = requests.get(f"{gw.url}/v1alpha/signing-key", timeout=10)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/x-pem-file"
    return answer.content


def verify(gw, name: str, digest: str, public: bytes) -> dict:
    return cosign.verify(gw.url, name, digest, public, f"{PUBLIC_HOSTNAME}/{name}")


def test_a_composition_is_signed_for_its_public_name(gateway, signing_key, pushed_images, tmp_path):
    gw = gateway(env=signing_env(signing_key))
    skopeo_copy(f"{gw.host}/{WRAP}:latest", tmp_path / "pulled")
    digest = manifest_digest(gw, WRAP)
    public = served_key(gw)
    assert public == signing_key[1]
    payload = verify(gw, WRAP, digest, public)
    assert payload["critical"]["identity"]["docker-reference"] == f"{PUBLIC_HOSTNAME}/{WRAP}"
    assert payload["critical"]["image"]["docker-manifest-digest"] == digest
    # The signature manifest is served by digest too, and its blobs are part of the name.
    tag = cosign.signature_tag(digest)
    signature = requests.get(f"{gw.url}/v2/{WRAP}/manifests/{tag}", headers=ACCEPT, timeout=10)
    by_digest = requests.get(
        f"{gw.url}/v2/{WRAP}/manifests/{signature.headers['Docker-Content-Digest']}",
        headers=ACCEPT,
        timeout=10,
    )
    assert by_digest.content == signature.content
    document = signature.json()
    assert document["subject"]["digest"] == digest
    for blob in (document["config"], *document["layers"]):
        head = requests.head(f"{gw.url}/v2/{WRAP}/blobs/{blob['digest']}", timeout=10)
        assert (head.status_code, int(head.headers["Content-Length"])) == (200, blob["size"])
    # Another wrapped name does not serve it.
    other = "wrap/local/library/busybox/1/with/local/tools/wrapper/2layers"
    refused = requests.get(f"{gw.url}/v2/{other}/manifests/{tag}", headers=ACCEPT, timeout=60)
    assert refused.status_code == 404
    assert refused.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"


def test_every_platform_and_the_index_are_signed(gateway, signing_key, pushed_images, tmp_path):
    gw = gateway(env=signing_env(signing_key))
    skopeo_copy(f"{gw.host}/{WRAP_MULTI}:latest", tmp_path / "pulled", all=True)
    index_digest = manifest_digest(gw, WRAP_MULTI)
    index = requests.get(f"{gw.url}/v2/{WRAP_MULTI}/manifests/latest", headers=ACCEPT, timeout=10)
    children = [entry["digest"] for entry in index.json()["manifests"]]
    assert len(children) == 2
    for digest in [index_digest, *children]:
        verify(gw, WRAP_MULTI, digest, signing_key[1])


def test_the_verifier_refuses_wrong_keys_tampering_and_unsigned_images(
    gateway, signing_key, pushed_images, moto_s3: MotoS3
):
    gw = gateway(env=signing_env(signing_key))
    digest = manifest_digest(gw, WRAP)
    _, other_public = cosign.generate_key()
    with pytest.raises(cosign.SignatureError, match="bad signature"):
        verify(gw, WRAP, digest, other_public)
    with pytest.raises(cosign.SignatureError, match="reference mismatch"):
        cosign.verify(gw.url, WRAP, digest, signing_key[1], f"evil.example/{WRAP}")
    # A signature whose payload was changed in the bucket no longer matches its digest.
    tag = cosign.signature_tag(digest)
    signature = requests.get(f"{gw.url}/v2/{WRAP}/manifests/{tag}", headers=ACCEPT, timeout=10)
    payload_digest = signature.json()["layers"][0]["digest"]
    s3 = moto_s3.client()
    key = f"blobs/sha256/{payload_digest.split(':')[1]}"
    original = s3.get_object(Bucket=gw.bucket, Key=key)["Body"].read()
    s3.put_object(Bucket=gw.bucket, Key=key, Body=original.replace(b"busybox", b"bizybox"))
    with pytest.raises(cosign.SignatureError, match="tampered"):
        verify(gw, WRAP, digest, signing_key[1])
    s3.put_object(Bucket=gw.bucket, Key=key, Body=original)
    verify(gw, WRAP, digest, signing_key[1])
    # A registry that does not sign has no signature to show.
    unsigned = gateway()
    unsigned_digest = manifest_digest(unsigned, WRAP)
    with pytest.raises(cosign.SignatureError, match="no signature tag"):
        verify(unsigned, WRAP, unsigned_digest, signing_key[1])
    answer = requests.get(f"{unsigned.url}/v1alpha/signing-key", timeout=10)
    assert answer.status_code == 404
    assert "signing is not configured" in answer.json()["errors"][0]["message"]


def test_signatures_are_made_once_and_never_from_the_host_header(
    gateway, signing_key, pushed_images
):
    gw = gateway(env=signing_env(signing_key))
    digest = manifest_digest(gw, WRAP, Host="evil.example")
    tag = cosign.signature_tag(digest)

    def signature_digest(gateway_) -> str:
        answer = requests.get(
            f"{gateway_.url}/v2/{WRAP}/manifests/{tag}",
            headers={**ACCEPT, "Host": "evil.example"},
            timeout=60,
        )
        assert answer.status_code == 200, answer.text
        return answer.headers["Docker-Content-Digest"]

    first = signature_digest(gw)
    verify(gw, WRAP, digest, signing_key[1])  # signed for PUBLIC_HOSTNAME, not the Host
    # ECDSA signatures are randomised: the same digest means it was not signed again.
    assert signature_digest(gw) == first
    later = gateway(bucket=gw.bucket, env=signing_env(signing_key))
    assert manifest_digest(later, WRAP) == digest
    assert signature_digest(later) == first


def test_a_composition_made_before_signing_is_signed_when_asked(
    gateway, signing_key, pushed_images
):
    before = gateway()
    digest = manifest_digest(before, WRAP)
    after = gateway(bucket=before.bucket, env=signing_env(signing_key))
    verify(after, WRAP, digest, signing_key[1])


def test_kms_signing_through_moto(gateway, pushed_images, moto_s3: MotoS3, tmp_path):
    kms = boto3.client("kms", **_moto_client_args(moto_s3))
    key_id = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    gw = gateway(
        env={
            "SIGNING_KMS_KEY_ID": key_id,
            "PUBLIC_HOSTNAME": PUBLIC_HOSTNAME,
            "AWS_ENDPOINT_URL_KMS": moto_s3.endpoint_url,
        }
    )
    skopeo_copy(f"{gw.host}/{WRAP}:latest", tmp_path / "pulled")
    public = served_key(gw)
    der = kms.get_public_key(KeyId=key_id)["PublicKey"]
    from cryptography.hazmat.primitives import serialization

    loaded = serialization.load_pem_public_key(public)
    assert (
        loaded.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        == der
    )
    verify(gw, WRAP, manifest_digest(gw, WRAP), public)


def _moto_client_args(moto_s3: MotoS3) -> dict[str, str]:
    env = dummy_aws_env(moto_s3.endpoint_url)
    return {
        "endpoint_url": moto_s3.endpoint_url,
        "region_name": env["AWS_DEFAULT_REGION"],
        "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
    }


# -- referrers -------------------------------------------------------------------------------


def test_referrers_of_wrapped_and_proxied_names(gateway, signing_key, pushed_images):
    gw = gateway(env=signing_env(signing_key))
    digest = manifest_digest(gw, WRAP)
    url = f"{gw.url}/v2/{WRAP}/referrers/{digest}"
    answer = requests.get(url, timeout=10)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == OCI_INDEX
    index = answer.json()
    assert (index["schemaVersion"], index["mediaType"]) == (2, OCI_INDEX)
    # the signature, then the provenance (tests/integration/test_provenance.py)
    entry, provenance = index["manifests"]
    assert provenance["artifactType"] == "application/vnd.in-toto+json"
    tag = cosign.signature_tag(digest)
    signature = requests.get(f"{gw.url}/v2/{WRAP}/manifests/{tag}", headers=ACCEPT, timeout=10)
    assert entry == {
        "mediaType": OCI_MANIFEST,
        "digest": signature.headers["Docker-Content-Digest"],
        "size": len(signature.content),
        "artifactType": SIG_ARTIFACT,
    }
    kept = requests.get(url, params={"artifactType": SIG_ARTIFACT}, timeout=10)
    assert kept.json()["manifests"] == [entry]
    assert kept.headers["OCI-Filters-Applied"] == "artifactType"
    filtered = requests.get(url, params={"artifactType": "application/x-other"}, timeout=10)
    assert filtered.json()["manifests"] == []
    assert filtered.headers["OCI-Filters-Applied"] == "artifactType"
    head = requests.head(url, timeout=10)
    assert int(head.headers["Content-Length"]) == len(answer.content)
    # A proxied name asks its upstream, which (registry 2.8) has no referrers API: none.
    base = pushed_images["base"]
    proxied = requests.get(f"{gw.url}/v2/local/{base.repo}/referrers/{base.digest}", timeout=30)
    assert proxied.status_code == 200
    assert proxied.json() == {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    bad = requests.get(f"{gw.url}/v2/{WRAP}/referrers/sha256:xyz", timeout=10)
    assert (bad.status_code, bad.json()["errors"][0]["code"]) == (400, "DIGEST_INVALID")


def test_proxied_referrers_from_the_referrers_tag(gateway, upstream, pushed_images, sigs):
    """An upstream without the referrers API keeps them under the `sha256-<hex>` tag."""
    base = pushed_images["base"]
    gw = gateway()
    sig_digest = sigs.push(upstream, base, cosign.generate_key()[0])
    signature = requests.get(
        f"{upstream.url}/v2/{base.repo}/manifests/{sig_digest}", headers=ACCEPT, timeout=10
    )
    entry = {
        "mediaType": OCI_MANIFEST,
        "digest": sig_digest,
        "size": len(signature.content),
        "artifactType": SIG_ARTIFACT,
    }
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]})
    tag = f"sha256-{base.digest.split(':')[1]}"
    put = requests.put(
        f"{upstream.url}/v2/{base.repo}/manifests/{tag}",
        data=index,
        headers={"Content-Type": OCI_INDEX},
        timeout=10,
    )
    assert put.status_code == 201, put.text
    sigs.pushed.append((upstream, base.repo, tag))
    answer = requests.get(f"{gw.url}/v2/local/{base.repo}/referrers/{base.digest}", timeout=30)
    assert answer.json()["manifests"] == [entry]


# -- WRAPPER_POLICY --------------------------------------------------------------------------


def policy_env(tmp_path: Path, rules: dict, name: str = "wrapper-policy.json") -> dict[str, str]:
    path = tmp_path / name
    path.write_text(json.dumps(rules))
    return {"WRAPPER_POLICY_FILE": str(path)}


def test_signed_wrappers_pass_and_others_are_refused(
    gateway, upstream: DockerRegistry, pushed_images: dict[str, Pushed], sigs, tmp_path
):
    private, public = cosign.generate_key()
    _, other_public = cosign.generate_key()
    wrapper = pushed_images["wrapper"]
    sigs.push(upstream, wrapper, private)
    rules = {"wrappers": [{"images": "local/tools/wrapper", "keys": [public.decode()]}]}
    gw = gateway(env=policy_env(tmp_path, rules))
    skopeo_copy(f"{gw.host}/{WRAP}:latest", tmp_path / "signed")  # admitted: it is signed

    unsigned = "wrap/local/library/busybox/1/with/local/tools/wrapper/2layers"
    answer = requests.get(f"{gw.url}/v2/{unsigned}/manifests/latest", headers=ACCEPT, timeout=60)
    assert answer.status_code == 403
    error = answer.json()["errors"][0]
    assert error["code"] == "DENIED"
    assert "wrapper image local/tools/wrapper:2layers" in error["message"]
    assert "rule 'local/tools/wrapper'" in error["message"]
    assert "has no signature" in error["message"]
    with pytest.raises(ToolError, match="wrapper image local/tools/wrapper:2layers"):
        skopeo_copy(f"{gw.host}/{unsigned}:latest", tmp_path / "unsigned")

    other = "wrap/local/library/busybox/1/with/local/tools/wrapper-nolabel/1"
    answer = requests.get(f"{gw.url}/v2/{other}/manifests/latest", headers=ACCEPT, timeout=60)
    assert answer.status_code == 403
    assert "no rule of WRAPPER_POLICY matches local/tools/wrapper-nolabel" in answer.text

    wrong = {"wrappers": [{"images": "local/**", "keys": [other_public.decode()]}]}
    gw_wrong = gateway(env=policy_env(tmp_path, wrong, "wrong-key-policy.json"))
    answer = requests.get(f"{gw_wrong.url}/v2/{WRAP}/manifests/latest", headers=ACCEPT, timeout=60)
    assert answer.status_code == 403
    assert "the signature is by none of the rule's keys" in answer.json()["errors"][0]["message"]


def test_a_policy_on_bases(gateway, upstream, pushed_images, sigs, tmp_path):
    private, public = cosign.generate_key()
    rules = {
        "wrappers": [{"images": "local/tools/**", "unsigned": True}],
        "bases": [{"images": "local/library/busybox", "keys": [public.decode()]}],
    }
    gw = gateway(env=policy_env(tmp_path, rules))
    answer = requests.get(f"{gw.url}/v2/{WRAP}/manifests/latest", headers=ACCEPT, timeout=60)
    assert answer.status_code == 403
    assert answer.json()["errors"][0]["message"].startswith("base image local/library/busybox:1")
    sigs.push(upstream, pushed_images["base"], private)
    later = gateway(env=policy_env(tmp_path, rules))
    assert requests.get(f"{later.url}/v2/{WRAP}/manifests/latest", headers=ACCEPT, timeout=60).ok


def test_a_new_key_signs_anew(gateway, signing_key, pushed_images, tmp_path):
    """After a key rotation, signatures by the new key are made on first ask."""
    old = gateway(env=signing_env(signing_key))
    digest = manifest_digest(old, WRAP)
    private, public = cosign.generate_key()
    rotated = tmp_path / "rotated.pem"
    rotated.write_bytes(private)
    new = gateway(bucket=old.bucket, env=signing_env((rotated, public)))
    verify(new, WRAP, digest, public)
    verify(old, WRAP, digest, signing_key[1])  # the old key's stays where it is still used
