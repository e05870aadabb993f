"""Signatures of compositions as `cosign verify --key` finds them: made when composed, for
every manifest of it and the name it is pulled as, verified by the registry's public key,
kept by a record per key, name and digest, and never made anew for what was signed. The
handler over the in-memory bucket and upstream, with signing by a key file."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

import app
from doubles.at_once import AtOnce
from doubles.bucket import MemoryBucket
from doubles.pulls import (
    HOSTNAME,
    MULTI,
    OCI_INDEX,
    OCI_MANIFEST,
    WRAP,
    error_of,
    manifest,
    push_index,
)
from doubles.pulls import signing_with_a_key_file as signing
from doubles.upstream import MemoryUpstream, digest_of
from ociwrap.bucket.links import Links
from ociwrap.bucket.sources import SourceRecords
from ociwrap.bucket.store import blob_key, manifest_key
from ociwrap.image.recipes import Recipe
from ociwrap.names.reference import ImageRef, Registry, Repository
from ociwrap.registry.imagesource import ImageSource
from ociwrap.registry.signatures import Signatures
from ociwrap.runtime.memcache import BoundedCache
from ociwrap.signing.signers import FileSigner

ANNOTATION = "dev.cosignproject.cosign/signature"


def sig_tag(digest: str) -> str:
    return f"sha256-{digest[7:]}.sig"


def verify(call, bucket, key: ec.EllipticCurvePrivateKey, name: str, digest: str):
    """What `cosign verify --key` checks of the signature of `digest`: its payload names
    `digest` and the public name, and the key signed the payload."""
    signed, body = manifest(call, name, sig_tag(digest))
    document = json.loads(body)
    [layer] = document["layers"]
    status, _, payload = call("GET", f"/v2/{name}/blobs/{layer['digest']}")
    assert status == 307
    payload = bucket.held(blob_key(layer["digest"]))
    assert payload is not None and digest_of(payload) == layer["digest"]
    critical = json.loads(payload)["critical"]
    assert critical["image"]["docker-manifest-digest"] == digest
    assert critical["identity"]["docker-reference"] == f"{HOSTNAME}/{name}"
    signature = base64.b64decode(layer["annotations"][ANNOTATION])
    key.public_key().verify(signature, payload, ec.ECDSA(hashes.SHA256()))
    assert document["subject"]["digest"] == digest
    return signed, body


def test_a_composition_is_signed_for_its_public_name(call, monkeypatch, tmp_path, bucket):
    key = signing(monkeypatch, tmp_path)
    digest, _ = manifest(call, WRAP, "latest")
    verify(call, bucket, key, WRAP, digest)


def test_every_manifest_of_a_multi_platform_composition_is_signed(
    call, monkeypatch, tmp_path, upstream, bucket
):
    key = signing(monkeypatch, tmp_path)
    push_index(upstream, "team/multi", ["amd64", "arm64"])
    push_index(upstream, "team/tools", ["amd64", "arm64"], label="/w/run")
    digest, body = manifest(call, MULTI, "latest")
    signed = [digest] + [entry["digest"] for entry in json.loads(body)["manifests"]]
    made = len(bucket.listing("tags/signatures/"))
    assert made == 3
    for each in signed:
        verify(call, bucket, key, MULTI, each)
    assert len(bucket.listing("tags/signatures/")) == made  # found, none made anew


def test_a_signature_is_found_again_by_a_new_instance(call, monkeypatch, tmp_path, bucket):
    signing(monkeypatch, tmp_path)
    digest, _ = manifest(call, WRAP, "latest")
    first = manifest(call, WRAP, sig_tag(digest))
    app.reset_service()
    assert manifest(call, WRAP, sig_tag(digest)) == first
    [record] = bucket.listing("tags/signatures/")
    assert json.loads(bucket.held(record)) == {
        "digest": first[0],
        "size": len(first[1]),
        "manifest": first[1].decode(),
    }


def test_a_signature_is_not_itself_signed(call, monkeypatch, tmp_path):
    signing(monkeypatch, tmp_path)
    digest, _ = manifest(call, WRAP, "latest")
    signed, _ = manifest(call, WRAP, sig_tag(digest))
    status, _, body = call("GET", f"/v2/{WRAP}/manifests/{sig_tag(signed)}")
    assert (status, error_of(body)["code"]) == (404, "MANIFEST_UNKNOWN")


def test_a_rotated_key_signs_again_on_first_ask(call, monkeypatch, tmp_path, bucket):
    signing(monkeypatch, tmp_path)
    digest, _ = manifest(call, WRAP, "latest")
    old, _ = manifest(call, WRAP, sig_tag(digest))
    (tmp_path / "new").mkdir()
    key = signing(monkeypatch, tmp_path / "new")
    new, body = verify(call, bucket, key, WRAP, digest)
    assert new != old
    assert manifest(call, WRAP, sig_tag(digest)) == (new, body)


def test_a_record_that_no_longer_matches_its_manifest_is_signed_again(
    call, monkeypatch, tmp_path, bucket
):
    key = signing(monkeypatch, tmp_path)
    digest, _ = manifest(call, WRAP, "latest")
    old, _ = manifest(call, WRAP, sig_tag(digest))
    [record_key] = bucket.listing("tags/signatures/")
    record = json.loads(bucket.held(record_key))
    for broken in (
        {**record, "digest": "sha256:" + "00" * 32},
        {**record, "manifest": "{}"},
        {**record, "manifest": 7},
        {**record, "digest": 7},
    ):
        bucket.put_json(record_key, broken)
        bucket.expire(manifest_key(old))
        app.reset_service()
        new, _ = verify(call, bucket, key, WRAP, digest)
        assert new != old
        old = new


def test_the_signature_of_a_digest_that_is_gone_for_good_is_unknown(
    call, monkeypatch, tmp_path, bucket, upstream
):
    signing(monkeypatch, tmp_path)
    digest, _ = manifest(call, WRAP, "latest")
    for key in bucket.listing("tags/sources/"):
        bucket.put_json(key, {"kind": "manifest"})
    bucket.expire("manifests/", "tags/signatures/")
    app.reset_service()
    status, _, body = call("GET", f"/v2/{WRAP}/manifests/{sig_tag(digest)}")
    assert (status, error_of(body)["code"]) == (404, "MANIFEST_UNKNOWN")


def test_signature_documents_are_served_under_the_wrapped_name(
    call, monkeypatch, tmp_path, upstream
):
    signing(monkeypatch, tmp_path)
    digest, _ = manifest(call, WRAP, "latest")
    signed, body = manifest(call, WRAP, sig_tag(digest))
    document = json.loads(body)
    for blob in (document["config"], *document["layers"]):
        status, headers, _ = call("HEAD", f"/v2/{WRAP}/blobs/{blob['digest']}")
        assert status == 200 and headers["content-length"] == str(blob["size"])
        status, headers, _ = call("GET", f"/v2/{WRAP}/blobs/{blob['digest']}")
        assert status == 307 and headers["location"].startswith("https://bucket.invalid/")
    assert upstream.count("blob") == 0  # the registry made them: none is an upstream's
    status, headers, _ = call("GET", f"/v2/{WRAP}/manifests/{signed}")
    assert status == 200 and headers["content-type"] == OCI_MANIFEST


def test_a_manifest_signed_on_first_ask_is_the_signatures_subject(call, monkeypatch, tmp_path):
    digest, body = manifest(call, WRAP, "latest")  # composed before signing was on
    signing(monkeypatch, tmp_path)
    _, signature = manifest(call, WRAP, sig_tag(digest))
    assert json.loads(signature)["subject"] == {
        "mediaType": OCI_MANIFEST,
        "digest": digest,
        "size": len(body),
    }


def logged(caplog) -> dict:
    """The request log line of the last request."""
    return [r.__dict__ for r in caplog.records if r.getMessage() == "request"][-1]


def test_each_signature_made_is_counted(call, monkeypatch, tmp_path, upstream, caplog):
    signing(monkeypatch, tmp_path)
    push_index(upstream, "team/multi", ["amd64", "arm64"])
    push_index(upstream, "team/tools", ["amd64", "arm64"], label="/w/run")
    digest, _ = manifest(call, MULTI, "latest")
    assert logged(caplog)["signatures"] == 3  # two platforms and the index
    manifest(call, MULTI, sig_tag(digest))
    assert logged(caplog)["signatures"] == 0


# -- signing, over the in-memory bucket and upstream ------------------------------------------

DIGESTS = [f"sha256:{n:064x}" for n in range(1, 6)]


class Hooked(FileSigner):
    """The key file's signer, calling `hook` as each signature is made."""

    def __init__(self, path: str, hook) -> None:
        super().__init__(path)
        self.hook = hook

    def sign(self, payload: bytes) -> bytes:
        self.hook()
        return super().sign(payload)


def key_file(directory) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    path = directory / "key.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(path)


def recipe() -> Recipe:
    registry = Registry("stub", "http://stub.invalid", trusted=True)
    return Recipe(
        WRAP,
        "scope",
        ImageRef(Repository(registry, "team/base"), tag="1"),
        (ImageRef(Repository(registry, "team/wrapper"), tag="1"),),
    )


def signatures_over(bucket, tmp_path, cache=None, hook=lambda: None) -> Signatures:
    cache = cache if cache is not None else BoundedCache()
    links = Links(bucket, cache, 60, private=lambda registry: False)
    images = ImageSource(
        bucket,
        MemoryUpstream(),
        links,
        tag_ttl_seconds=60,
        stale_if_error_seconds=0,
        private=lambda registry: False,
        cache=cache,
    )
    signer = Hooked(key_file(tmp_path), hook)
    return Signatures(signer, HOSTNAME, bucket, images, SourceRecords(bucket, cache), cache)


def test_four_manifests_are_signed_at_once_and_never_a_fifth(tmp_path):
    bucket = MemoryBucket()
    at_once = AtOnce(4, "signatures")
    signatures_over(bucket, tmp_path, hook=at_once).sign(
        recipe(), [(digest, OCI_MANIFEST, 100) for digest in DIGESTS]
    )
    assert at_once.most == 4
    assert len(bucket.listing("tags/signatures/")) == 5


def test_the_signature_record_is_kept_under_the_keys_id(tmp_path):
    bucket = MemoryBucket()
    signatures = signatures_over(bucket, tmp_path)
    signatures.sign(recipe(), [(DIGESTS[0], OCI_MANIFEST, 100)])
    key_id = hashlib.sha256(signatures.signer.public_key_pem()).hexdigest()[:16]
    [record] = bucket.listing("tags/signatures/")
    assert record.startswith(f"tags/signatures/{key_id}/")


def test_the_subject_is_the_manifest_signed_with_its_type_and_size(tmp_path):
    signatures = signatures_over(MemoryBucket(), tmp_path)
    signatures.sign(recipe(), [(DIGESTS[0], OCI_INDEX, 1234)])
    _, stored = signatures.find(recipe(), DIGESTS[0])
    assert json.loads(stored.body)["subject"] == {
        "mediaType": OCI_INDEX,
        "digest": DIGESTS[0],
        "size": 1234,
    }


def test_a_signature_just_made_is_found_in_memory_without_a_write(tmp_path):
    bucket = MemoryBucket()
    signatures = signatures_over(bucket, tmp_path)
    signatures.sign(recipe(), [(DIGESTS[0], OCI_MANIFEST, 100)])
    bucket.calls.clear()
    _, stored = signatures.find(recipe(), DIGESTS[0])
    assert json.loads(stored.body)["subject"]["digest"] == DIGESTS[0]
    assert bucket.calls == []


@pytest.mark.parametrize(("max_bytes", "reads"), [(100, 1), (1024 * 1024, 0)])
def test_a_signature_record_larger_than_memory_holds_is_read_from_the_bucket(
    tmp_path, max_bytes, reads
):
    bucket = MemoryBucket()
    signatures = signatures_over(bucket, tmp_path, BoundedCache(max_bytes=max_bytes))
    signatures.sign(recipe(), [(DIGESTS[0], OCI_MANIFEST, 100)])
    bucket.calls.clear()
    assert signatures.find(recipe(), DIGESTS[0]) is not None
    assert len([key for key in bucket.called("get_json") if "/signatures/" in key]) == reads
