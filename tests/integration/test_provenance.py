"""Provenance of compositions through the local gateway: SLSA provenance v1 attestations in
cosign's layout (`sha256-<hex>.att` and the referrers API), copied by real skopeo and
checked by the tests' own verifier (`harness.attestation`: cosign is not in Debian) with
the key the registry publishes, over a real registry upstream and moto S3."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from harness import attestation, cosign
from harness.attestation import AttestationError
from harness.clients import skopeo_copy

pytestmark = pytest.mark.integration

PUBLIC_HOSTNAME = "registry.example.test"
WRAP = "wrap/local/library/busybox/1/with/local/tools/wrapper/1"
WRAP_MULTI = "wrap/local/library/busybox/multi/with/local/tools/wrapper/multi"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
IN_TOTO = "application/vnd.in-toto+json"
ACCEPT = {"Accept": f"{OCI_INDEX}, {OCI_MANIFEST}"}


def signing_env(key: tuple[Path, bytes]) -> dict[str, str]:
    return {"SIGNING_KEY_FILE": str(key[0]), "PUBLIC_HOSTNAME": PUBLIC_HOSTNAME}


def pulled(gw, name: str) -> tuple[str, dict]:
    answer = requests.get(f"{gw.url}/v2/{name}/manifests/latest", headers=ACCEPT, timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.headers["Docker-Content-Digest"], answer.json()


def published_key(gw) -> bytes:
    answer = requests.get(f"{gw.url}/v1alpha/signing-key", timeout=10)
    assert answer.status_code == 200
    return answer.content


def oci_blob(layout: Path, digest: str) -> bytes:
    return (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()


def test_a_pulled_composition_has_verifiable_provenance(
    gateway, signing_key, pushed_images, tmp_path
):
    gw = gateway(env=signing_env(signing_key))
    skopeo_copy(f"{gw.host}/{WRAP}:latest", tmp_path / "pulled")
    digest, composed = pulled(gw, WRAP)
    public = published_key(gw)
    statement = attestation.verify(gw.url, WRAP, digest, public, f"{PUBLIC_HOSTNAME}/{WRAP}")
    base, wrapper = pushed_images["base"], pushed_images["wrapper"]
    deps = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    assert [(d["name"], d["uri"], d["digest"]["sha256"]) for d in deps] == [
        ("base", "docker://local/library/busybox:1", base.digest[7:]),
        ("wrapper", "docker://local/tools/wrapper:1", wrapper.digest[7:]),
    ]
    assert statement["predicate"]["runDetails"]["builder"]["id"] == f"https://{PUBLIC_HOSTNAME}"
    # skopeo copies the `.att` tag like any image: its blobs are served and match their digests.
    tag = attestation.attestation_tag(digest)
    layout = tmp_path / "att"
    skopeo_copy(f"{gw.host}/{WRAP}:{tag}", layout, "att")
    index = json.loads((layout / "index.json").read_text())
    copied = oci_blob(layout, index["manifests"][0]["digest"])
    layer = attestation.check_manifest(copied, index["manifests"][0]["digest"], digest)
    envelope = oci_blob(layout, layer["digest"])
    assert attestation.check_envelope(public, envelope, digest, f"{PUBLIC_HOSTNAME}/{WRAP}") == (
        statement
    )
    # The page reads the envelope itself with a same-origin GET; other clients get the 307.
    url = f"{gw.url}/v2/{WRAP}/blobs/{layer['digest']}"
    page = requests.get(url, headers={"Sec-Fetch-Site": "same-origin"}, timeout=10)
    assert (page.status_code, page.content) == (200, envelope)
    other = requests.get(url, allow_redirects=False, timeout=10)
    assert other.status_code == 307
    assert composed["annotations"]["org.goci.wrapper.digest"] == wrapper.digest


def test_every_platform_and_the_index_have_provenance(
    gateway, signing_key, pushed_images, tmp_path
):
    gw = gateway(env=signing_env(signing_key))
    skopeo_copy(f"{gw.host}/{WRAP_MULTI}:latest", tmp_path / "pulled", all=True)
    digest, index = pulled(gw, WRAP_MULTI)
    name = f"{PUBLIC_HOSTNAME}/{WRAP_MULTI}"
    attestation.verify(gw.url, WRAP_MULTI, digest, signing_key[1], name)
    platforms = []
    for entry in index["manifests"]:
        statement = attestation.verify(gw.url, WRAP_MULTI, entry["digest"], signing_key[1], name)
        parameters = statement["predicate"]["buildDefinition"]["externalParameters"]
        platforms.append(parameters["platform"])
    named = [
        "/".join(e["platform"][k] for k in ("os", "architecture", "variant") if k in e["platform"])
        for e in index["manifests"]
    ]
    assert sorted(platforms) == sorted(named)


def flipped(data: bytes, at: float) -> bytes:
    n = min(int(len(data) * at), len(data) - 1)
    return data[:n] + bytes([data[n] ^ 0x01]) + data[n + 1 :]


def test_one_byte_changed_anywhere_fails_the_verifier(gateway, signing_key, pushed_images):
    gw = gateway(env=signing_env(signing_key))
    digest, _ = pulled(gw, WRAP)
    name = f"{PUBLIC_HOSTNAME}/{WRAP}"
    tag = attestation.attestation_tag(digest)
    answer = requests.get(f"{gw.url}/v2/{WRAP}/manifests/{tag}", headers=ACCEPT, timeout=10)
    served = answer.headers["Docker-Content-Digest"]
    layer = attestation.check_manifest(answer.content, served, digest)
    envelope = requests.get(f"{gw.url}/v2/{WRAP}/blobs/{layer['digest']}", timeout=10).content
    attestation.check_envelope(signing_key[1], envelope, digest, name)
    positions = [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.999]
    for at in positions:
        with pytest.raises(AttestationError):
            attestation.check_manifest(flipped(answer.content, at), served, digest)
        with pytest.raises(AttestationError):
            attestation.check_envelope(signing_key[1], flipped(envelope, at), digest, name)
    other = "sha256:" + ("0" + digest[8:])
    with pytest.raises(AttestationError, match="subject"):
        attestation.check_manifest(answer.content, served, other)
    with pytest.raises(AttestationError, match="subject"):
        attestation.check_envelope(signing_key[1], envelope, other, name)
    _, other_public = cosign.generate_key()
    with pytest.raises(AttestationError, match="no signature"):
        attestation.verify(gw.url, WRAP, digest, other_public, name)


def test_without_signing_there_is_no_provenance(gateway, pushed_images):
    gw = gateway()
    digest, _ = pulled(gw, WRAP)
    tag = attestation.attestation_tag(digest)
    answer = requests.get(f"{gw.url}/v2/{WRAP}/manifests/{tag}", headers=ACCEPT, timeout=10)
    assert answer.status_code == 404
    assert answer.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    listed = requests.get(
        f"{gw.url}/v2/{WRAP}/referrers/{digest}", params={"artifactType": IN_TOTO}, timeout=10
    )
    assert listed.json()["manifests"] == []
    assert listed.headers["OCI-Filters-Applied"] == "artifactType"


def test_provenance_is_made_once_and_kept_across_instances(gateway, signing_key, pushed_images):
    gw = gateway(env=signing_env(signing_key))
    digest, _ = pulled(gw, WRAP)
    tag = attestation.attestation_tag(digest)

    def served(gateway_) -> str:
        answer = requests.get(
            f"{gateway_.url}/v2/{WRAP}/manifests/{tag}", headers=ACCEPT, timeout=60
        )
        assert answer.status_code == 200, answer.text
        return answer.headers["Docker-Content-Digest"]

    first = served(gw)
    later = gateway(bucket=gw.bucket, env=signing_env(signing_key))
    assert pulled(later, WRAP)[0] == digest
    assert served(later) == first
    listed = requests.get(
        f"{later.url}/v2/{WRAP}/referrers/{digest}", params={"artifactType": "x/y"}, timeout=10
    )
    assert listed.json()["manifests"] == []
