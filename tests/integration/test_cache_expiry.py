"""The bucket is a cache: each kind of object its lifecycle removes is made again on pull.

A signing gateway composes and signs a multi-platform wrap (base and wrapper on the
plain `local` upstream, which serves blob bytes itself, so layers and configs are copied
into the bucket) and proxies its base and wrapper. Then one kind of cached object is
deleted from the bucket, as the lifecycle rules do after CACHE_RETENTION_DAYS, and a new
gateway on the same bucket (what meets the bucket days later: no instance lives that long)
is pulled with skopeo, the wrap by digest and by tag, its base and wrapper as proxied
names: every digest, signatures and provenance included, is what it was, and what was
deleted is in the bucket again (each was needed by one of these pulls).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import requests

from harness import cosign
from harness.clients import skopeo_copy
from harness.moto_s3 import MotoS3

pytestmark = pytest.mark.integration

PUBLIC_HOSTNAME = "registry.example.test"
WRAP = "wrap/local/library/busybox/multi/with/local/tools/wrapper/multi"
#: The wrap's base and wrapper, pulled through the gateway as proxied names.
PROXIED = ("local/library/busybox:multi", "local/tools/wrapper:multi")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
ACCEPT = {"Accept": f"{OCI_INDEX}, {OCI_MANIFEST}"}
#: What the template's lifecycle rules expire after CacheRetentionDays.
CACHE = ("manifests/", "blobs/", "tags/upstream/", "tags/links/", "tags/compositions/")


def manifest_key(digest: str) -> str:
    return f"manifests/sha256/{digest.split(':')[1]}"


def blob_key(digest: str) -> str:
    return f"blobs/sha256/{digest.split(':')[1]}"


def fetch(gw, ref: str) -> tuple[str, dict]:
    answer = requests.get(f"{gw.url}/v2/{WRAP}/manifests/{ref}", headers=ACCEPT, timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.headers["Docker-Content-Digest"], answer.json()


@dataclass
class Composition:
    """The digests of the wrap as a gateway serves it: index, platforms, their configs and
    layers, and the signature and provenance of each manifest with their blobs."""

    manifests: list[str] = field(default_factory=list)
    configs: set[str] = field(default_factory=set)
    layers: set[str] = field(default_factory=set)
    signatures: list[str] = field(default_factory=list)
    signature_blobs: set[str] = field(default_factory=set)
    attestations: list[str] = field(default_factory=list)
    attestation_blobs: set[str] = field(default_factory=set)


def composition(gw) -> Composition:
    found = Composition()
    index_digest, index = fetch(gw, "latest")
    found.manifests = [index_digest, *(entry["digest"] for entry in index["manifests"])]
    for digest in found.manifests[1:]:
        _, manifest = fetch(gw, digest)
        found.configs.add(manifest["config"]["digest"])
        found.layers |= {layer["digest"] for layer in manifest["layers"]}
    for digest in found.manifests:
        signed, signature = fetch(gw, cosign.signature_tag(digest))
        found.signatures.append(signed)
        found.signature_blobs |= {signature["config"]["digest"]}
        found.signature_blobs |= {layer["digest"] for layer in signature["layers"]}
        attested, attestation = fetch(gw, f"sha256-{digest.removeprefix('sha256:')}.att")
        found.attestations.append(attested)
        found.attestation_blobs |= {attestation["config"]["digest"]}
        found.attestation_blobs |= {layer["digest"] for layer in attestation["layers"]}
    return found


def cached(moto_s3: MotoS3, bucket: str, made: Composition) -> dict[str, set[str]]:
    """The bucket's keys by the kind of cached object they hold."""
    every = set(moto_s3.keys(bucket))
    ours = {
        blob_key(d)
        for d in made.configs | made.layers | made.signature_blobs | made.attestation_blobs
    }
    return {
        "mirrored layers": {blob_key(d) for d in made.layers},
        "composed manifests": {manifest_key(d) for d in made.manifests}
        | {key for key in every if key.startswith("tags/compositions/")},
        "composed configs": {blob_key(d) for d in made.configs},
        "upstream config copies": {k for k in every if k.startswith("blobs/")} - ours,
        "tag records": {key for key in every if key.startswith("tags/upstream/")},
        "signatures": {manifest_key(d) for d in made.signatures}
        | {blob_key(d) for d in made.signature_blobs},
        "attestations": {manifest_key(d) for d in made.attestations}
        | {blob_key(d) for d in made.attestation_blobs},
        "everything the lifecycle expires": {k for k in every if k.startswith(CACHE)},
    }


@pytest.mark.parametrize(
    "kind",
    [
        "mirrored layers",
        "composed manifests",
        "composed configs",
        "upstream config copies",
        "tag records",
        "signatures",
        "attestations",
        "everything the lifecycle expires",
    ],
)
def test_what_the_lifecycle_removes_is_made_again_by_the_next_pull(
    kind, gateway, signing_key, pushed_images, moto_s3, tmp_path
):
    env = {"SIGNING_KEY_FILE": str(signing_key[0]), "PUBLIC_HOSTNAME": PUBLIC_HOSTNAME}
    first = gateway(env=env)
    skopeo_copy(f"{first.host}/{WRAP}:latest", tmp_path / "first", all=True)
    for number, name in enumerate(PROXIED):
        skopeo_copy(f"{first.host}/{name}", tmp_path / f"first-proxied-{number}", all=True)
    made = composition(first)
    deleted = cached(moto_s3, first.bucket, made)[kind]
    assert deleted, f"no {kind} in the bucket"
    s3 = moto_s3.client()
    for key in deleted:
        s3.delete_object(Bucket=first.bucket, Key=key)
    assert not deleted & set(moto_s3.keys(first.bucket))

    later = gateway(bucket=first.bucket, env=env)
    index = made.manifests[0]
    skopeo_copy(f"{later.host}/{WRAP}@{index}", tmp_path / "by-digest", all=True)
    skopeo_copy(f"{later.host}/{WRAP}:latest", tmp_path / "by-tag", all=True)
    for number, name in enumerate(PROXIED):
        skopeo_copy(f"{later.host}/{name}", tmp_path / f"proxied-{number}", all=True)
    assert composition(later) == made  # the same digests, the signatures' and provenance's too
    for digest in made.manifests:
        cosign.verify(later.url, WRAP, digest, signing_key[1], f"{PUBLIC_HOSTNAME}/{WRAP}")
    assert deleted <= set(moto_s3.keys(first.bucket)), "what was deleted is there again"
