"""Signatures of compositions as `cosign verify --key` finds them: made when composed, for
every manifest of it and the name it is pulled as, verified by the registry's public key,
kept by a record per key, name and digest, and never made anew for what was signed. The
handler over the in-memory bucket and upstream, with signing by a key file."""

from __future__ import annotations

import base64
import json

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

import app
from doubles.pulls import HOSTNAME, MULTI, OCI_MANIFEST, WRAP, error_of, manifest, push_index
from doubles.pulls import signing_with_a_key_file as signing
from doubles.upstream import digest_of
from ociwrap.bucket.store import blob_key, manifest_key

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


def test_signature_documents_are_served_under_the_wrapped_name(call, monkeypatch, tmp_path):
    signing(monkeypatch, tmp_path)
    digest, _ = manifest(call, WRAP, "latest")
    signed, body = manifest(call, WRAP, sig_tag(digest))
    document = json.loads(body)
    for blob in (document["config"], *document["layers"]):
        status, headers, _ = call("HEAD", f"/v2/{WRAP}/blobs/{blob['digest']}")
        assert status == 200 and headers["content-length"] == str(blob["size"])
    status, headers, _ = call("GET", f"/v2/{WRAP}/manifests/{signed}")
    assert status == 200 and headers["content-type"] == OCI_MANIFEST
