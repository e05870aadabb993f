"""Provenance of compositions as `cosign verify-attestation --type slsaprovenance1` finds it:
made when composed for every manifest of it, signed by the registry's key as a DSSE
envelope, served under `sha256-<hex>.att` and as a referrer, kept by records that outlive
the bucket's lifecycle, and never made anew. The handler over the in-memory bucket and
upstream, checked by the tests' own verifier (`harness.attestation`)."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from test_signatures import Hooked, key_file, recipe

import app
from doubles.at_once import AtOnce
from doubles.bucket import MemoryBucket
from doubles.pulls import HOSTNAME, MULTI, OCI_MANIFEST, WRAP, error_of, manifest, push_index
from doubles.pulls import signing_with_a_key_file as signing
from doubles.upstream import MemoryUpstream, digest_of
from harness import attestation
from harness.attestation import AttestationError
from ociwrap.bucket.links import Links
from ociwrap.bucket.sources import SourceRecords
from ociwrap.bucket.store import blob_key, manifest_key
from ociwrap.registry.attestations import Attestations
from ociwrap.registry.imagesource import ImageSource
from ociwrap.runtime.memcache import BoundedCache
from ociwrap.signing import cosign, provenance
from ociwrap.signing.provenance import Facts

IN_TOTO = "application/vnd.in-toto+json"
#: The type in a query string (`+` would be a space there), as clients send it.
IN_TOTO_QUERY = "application/vnd.in-toto%2Bjson"


def att_tag(digest: str) -> str:
    return f"sha256-{digest[7:]}.att"


def public(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def attested(call, bucket, key, name: str, digest: str) -> tuple[dict, bytes, str, bytes]:
    """What a verifier checks of the `.att` tag of `digest`: (statement, manifest bytes, its
    digest, envelope bytes)."""
    served, body = manifest(call, name, att_tag(digest))
    layer = attestation.check_manifest(body, served, digest)
    status, _, _ = call("GET", f"/v2/{name}/blobs/{layer['digest']}")
    assert status == 307
    envelope = bucket.held(blob_key(layer["digest"]))
    assert envelope is not None and attestation._sha256(envelope) == layer["digest"]
    statement = attestation.check_envelope(public(key), envelope, digest, f"{HOSTNAME}/{name}")
    _, composed = manifest(call, name, digest)
    attestation.check_dependencies(statement, json.loads(composed))
    return statement, body, served, envelope


def dependencies(statement: dict) -> list[dict]:
    return statement["predicate"]["buildDefinition"]["resolvedDependencies"]


def test_a_composition_is_attested_for_its_public_name(call, monkeypatch, tmp_path, bucket):
    key = signing(monkeypatch, tmp_path)
    digest, body = manifest(call, WRAP, "latest")
    statement, *_ = attested(call, bucket, key, WRAP, digest)
    annotations = json.loads(body)["annotations"]
    assert [
        (d["name"], d["uri"], "sha256:" + d["digest"]["sha256"]) for d in dependencies(statement)
    ] == [
        ("base", "docker://stub/team/base:1", annotations["org.opencontainers.image.base.digest"]),
        ("wrapper", "docker://stub/team/wrapper:1", annotations["org.goci.wrapper.digest"]),
    ]
    build = statement["predicate"]["buildDefinition"]
    assert build["externalParameters"] == {
        "base": "stub/team/base:1",
        "wrappers": ["stub/team/wrapper:1"],
        "platform": "linux/amd64",
    }
    run = statement["predicate"]["runDetails"]
    assert run["builder"] == {"id": f"https://{HOSTNAME}", "version": {"ociwrap": "0.1.0"}}
    assert run["metadata"]["startedOn"] <= run["metadata"]["finishedOn"]


def test_every_manifest_of_a_multi_platform_composition_is_attested(
    call, monkeypatch, tmp_path, upstream, bucket
):
    key = signing(monkeypatch, tmp_path)
    base_index = push_index(upstream, "team/multi", ["amd64", "arm64"])
    tools_index = push_index(upstream, "team/tools", ["amd64", "arm64"], label="/w/run")
    digest, body = manifest(call, MULTI, "latest")
    assert len(bucket.listing("tags/provenance/")) == 3
    assert len(bucket.listing("tags/attestations/")) == 3
    index, *_ = attested(call, bucket, key, MULTI, digest)
    assert [d["name"] for d in dependencies(index)] == ["base", "wrapper"]
    assert "platform" not in index["predicate"]["buildDefinition"]["externalParameters"]
    for entry in json.loads(body)["manifests"]:
        statement, *_ = attested(call, bucket, key, MULTI, entry["digest"])
        arch = entry["platform"]["architecture"]
        build = statement["predicate"]["buildDefinition"]
        assert build["externalParameters"]["platform"] == f"linux/{arch}"
        found = {d["name"]: d for d in build["resolvedDependencies"]}
        assert sorted(found) == ["base", f"base linux/{arch}", "wrapper", f"wrapper linux/{arch}"]
        assert found["base"]["digest"]["sha256"] == base_index[7:]
        assert found["wrapper"]["digest"]["sha256"] == tools_index[7:]
        assert found[f"base linux/{arch}"]["annotations"]["index"] == base_index
        assert found[f"wrapper linux/{arch}"]["uri"].startswith("docker://stub/team/tools@sha256:")
    assert len(bucket.listing("tags/attestations/")) == 3  # found, none made anew


def test_an_attestation_is_made_once_and_found_again_by_a_new_instance(
    call, monkeypatch, tmp_path, bucket
):
    signing(monkeypatch, tmp_path)
    digest, _ = manifest(call, WRAP, "latest")
    first = manifest(call, WRAP, att_tag(digest))
    app.reset_service()
    assert manifest(call, WRAP, "latest")[0] == digest
    assert manifest(call, WRAP, att_tag(digest)) == first
    [record] = bucket.listing("tags/attestations/")
    held = json.loads(bucket.held(record))
    assert (held["digest"], held["manifest"]) == (first[0], first[1].decode())


def test_documents_the_lifecycle_removed_are_stored_again_as_they_were(
    call, monkeypatch, tmp_path, bucket
):
    key = signing(monkeypatch, tmp_path)
    digest, _ = manifest(call, WRAP, "latest")
    _, body, served, envelope = attested(call, bucket, key, WRAP, digest)
    bucket.expire("manifests/", "blobs/")
    app.reset_service()
    assert manifest(call, WRAP, att_tag(digest)) == (served, body)
    assert attested(call, bucket, key, WRAP, digest)[3] == envelope
    bucket.expire("manifests/", "blobs/")
    app.reset_service()  # the envelope alone, as the page reads it
    layer = json.loads(body)["layers"][0]["digest"]
    status, _, read = call("GET", f"/v2/{WRAP}/manifests/{served}")
    assert status == 200 and read == body
    bucket.expire("blobs/")
    app.reset_service()
    assert app.service().readable_config(WRAP, layer, len(envelope)) == envelope


def test_a_new_key_signs_the_same_statement(call, monkeypatch, tmp_path, bucket):
    signing(monkeypatch, tmp_path)
    digest, _ = manifest(call, WRAP, "latest")
    old = manifest(call, WRAP, att_tag(digest))
    (tmp_path / "new").mkdir()
    key = signing(monkeypatch, tmp_path / "new")
    statement, _, served, _ = attested(call, bucket, key, WRAP, digest)
    assert served != old[0]
    [made] = bucket.listing("tags/provenance/")
    assert json.loads(bucket.held(made))["statement"].encode() == attestation.canonical(statement)


def test_a_composition_made_before_signing_has_no_provenance(call, monkeypatch, tmp_path):
    digest, _ = manifest(call, WRAP, "latest")
    signing(monkeypatch, tmp_path)
    status, _, body = call("GET", f"/v2/{WRAP}/manifests/{att_tag(digest)}")
    assert (status, error_of(body)["message"]) == (
        404,
        f"{WRAP} has no provenance of {digest}: it was not composed here, "
        "or before signing was configured",
    )
    _, _, listed = call("GET", f"/v2/{WRAP}/referrers/{digest}?artifactType={IN_TOTO_QUERY}")
    assert json.loads(listed)["manifests"] == []


def test_a_composition_made_again_once_signing_is_on_gets_provenance_then(
    call, monkeypatch, tmp_path, bucket
):
    digest, _ = manifest(call, WRAP, "latest")
    key = signing(monkeypatch, tmp_path)
    bucket.expire("manifests/", "blobs/")  # the lifecycle removed the composed documents
    app.reset_service()
    assert manifest(call, WRAP, digest)[0] == digest  # made again, and now attested
    statement, _, _, _ = attested(call, bucket, key, WRAP, digest)
    times = statement["predicate"]["runDetails"]["metadata"]
    assert times["startedOn"] <= times["finishedOn"]
    assert times["startedOn"].endswith("Z") and times["startedOn"][:2] == "20"


def test_without_signing_nothing_is_attested(call, bucket):
    digest, _ = manifest(call, WRAP, "latest")
    status, _, body = call("GET", f"/v2/{WRAP}/manifests/{att_tag(digest)}")
    assert (status, error_of(body)["code"]) == (404, "MANIFEST_UNKNOWN")
    assert error_of(body)["message"].endswith(": signing is not configured")
    _, _, listed = call("GET", f"/v2/{WRAP}/referrers/{digest}")
    assert json.loads(listed)["manifests"] == []
    assert bucket.listing("tags/provenance/") == bucket.listing("tags/attestations/") == []


def test_an_attestation_is_neither_signed_nor_attested_itself(call, monkeypatch, tmp_path):
    signing(monkeypatch, tmp_path)
    digest, _ = manifest(call, WRAP, "latest")
    served, _ = manifest(call, WRAP, att_tag(digest))
    for tag in (f"sha256-{served[7:]}.sig", att_tag(served)):
        status, _, body = call("GET", f"/v2/{WRAP}/manifests/{tag}")
        assert (status, error_of(body)["code"]) == (404, "MANIFEST_UNKNOWN")


def test_referrers_filtered_by_the_in_toto_type_list_the_attestation_alone(
    call, monkeypatch, tmp_path
):
    signing(monkeypatch, tmp_path)
    digest, _ = manifest(call, WRAP, "latest")
    served, body = manifest(call, WRAP, att_tag(digest))
    status, headers, listed = call(
        "GET", f"/v2/{WRAP}/referrers/{digest}?artifactType={IN_TOTO_QUERY}"
    )
    assert status == 200 and headers["oci-filters-applied"] == "artifactType"
    assert json.loads(listed)["manifests"] == [
        {
            "mediaType": OCI_MANIFEST,
            "digest": served,
            "size": len(body),
            "artifactType": IN_TOTO,
            "annotations": {"predicateType": "https://slsa.dev/provenance/v1"},
        }
    ]


def test_each_attestation_made_is_counted(call, monkeypatch, tmp_path, upstream, caplog):
    signing(monkeypatch, tmp_path)
    push_index(upstream, "team/multi", ["amd64", "arm64"])
    push_index(upstream, "team/tools", ["amd64", "arm64"], label="/w/run")
    manifest(call, MULTI, "latest")
    logged = [r.__dict__ for r in caplog.records if r.getMessage() == "request"]
    assert logged[-1]["attestations"] == 3


# -- the verifier refuses any change ----------------------------------------------------------


def flipped(data: bytes, at: int) -> bytes:
    """`data` with the byte at `at` (of its length, from 0 to 1) changed."""
    n = min(int(len(data) * at), len(data) - 1)
    return data[:n] + bytes([data[n] ^ 0x01]) + data[n + 1 :]


@pytest.mark.parametrize("at", [0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 0.999])
def test_one_byte_changed_in_the_manifest_fails_the_check(call, monkeypatch, tmp_path, bucket, at):
    key = signing(monkeypatch, tmp_path)
    digest, _ = manifest(call, WRAP, "latest")
    _, body, served, _ = attested(call, bucket, key, WRAP, digest)
    with pytest.raises(AttestationError):
        attestation.check_manifest(flipped(body, at), served, digest)


@pytest.mark.parametrize("at", [0.0, 0.05, 0.2, 0.4, 0.6, 0.8, 0.9, 0.95, 0.999])
def test_one_byte_changed_in_the_envelope_fails_the_check(call, monkeypatch, tmp_path, bucket, at):
    key = signing(monkeypatch, tmp_path)
    digest, _ = manifest(call, WRAP, "latest")
    _, _, _, envelope = attested(call, bucket, key, WRAP, digest)
    with pytest.raises(AttestationError):
        attestation.check_envelope(public(key), flipped(envelope, at), digest, f"{HOSTNAME}/{WRAP}")


@pytest.mark.parametrize("part", ["subject digest", "subject name", "dependency", "signature"])
def test_a_statement_changed_and_encoded_again_fails_the_signature(
    call, monkeypatch, tmp_path, bucket, part
):
    key = signing(monkeypatch, tmp_path)
    digest, _ = manifest(call, WRAP, "latest")
    statement, _, _, envelope = attested(call, bucket, key, WRAP, digest)
    document = json.loads(envelope)
    if part == "subject digest":
        statement["subject"][0]["digest"]["sha256"] = "0" + digest[8:]
    elif part == "subject name":
        statement["subject"][0]["name"] = f"evil.example/{WRAP}"
    elif part == "dependency":
        dependencies(statement)[1]["digest"]["sha256"] = "f" * 64
    else:
        signature = base64.b64decode(document["signatures"][0]["sig"])
        document["signatures"][0]["sig"] = base64.b64encode(flipped(signature, 0.5)).decode()
    if part != "signature":
        document["payload"] = base64.b64encode(attestation.canonical(statement)).decode()
    changed = json.dumps(document).encode()
    with pytest.raises(AttestationError, match="no signature of the envelope verifies"):
        attestation.check_envelope(public(key), changed, digest, f"{HOSTNAME}/{WRAP}")


def test_another_key_or_name_fails_the_check(call, monkeypatch, tmp_path, bucket):
    key = signing(monkeypatch, tmp_path)
    digest, _ = manifest(call, WRAP, "latest")
    _, _, _, envelope = attested(call, bucket, key, WRAP, digest)
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(AttestationError, match="no signature"):
        attestation.check_envelope(public(other), envelope, digest, f"{HOSTNAME}/{WRAP}")
    with pytest.raises(AttestationError, match="subject"):
        attestation.check_envelope(public(key), envelope, digest, f"evil.example/{WRAP}")


# -- what WRAPPER_POLICY verified --------------------------------------------------------------


def test_what_the_wrapper_policy_verified_is_recorded_for_each_input(
    call, monkeypatch, tmp_path, upstream, bucket
):
    key = signing(monkeypatch, tmp_path)
    wrapper_key = ec.generate_private_key(ec.SECP256R1())
    wrapper = digest_of(upstream.manifests["team/wrapper", "1"][0])
    payload = cosign.make_payload("stub/team/wrapper", wrapper)
    upstream.blobs["team/wrapper", digest_of(payload)] = payload
    sig = wrapper_key.sign(payload, ec.ECDSA(hashes.SHA256()))
    layer = {
        "mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
        "digest": digest_of(payload),
        "size": len(payload),
        "annotations": {"dev.cosignproject.cosign/signature": base64.b64encode(sig).decode()},
    }
    document = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": [layer]}
    signature = upstream.push(
        "team/wrapper", json.dumps(document).encode(), cosign.signature_tag(wrapper)
    )
    policy = tmp_path / "policy.json"
    rules = {"wrappers": [{"images": "stub/team/**", "keys": [public(wrapper_key).decode()]}]}
    policy.write_text(json.dumps(rules))
    monkeypatch.setenv("WRAPPER_POLICY_FILE", str(policy))
    app.reset_service()
    digest, _ = manifest(call, WRAP, "latest")
    statement, *_ = attested(call, bucket, key, WRAP, digest)
    der = wrapper_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert [d["annotations"] for d in dependencies(statement)] == [
        {"role": "base", "wrapperPolicy": {"rule": None}},
        {
            "role": "wrapper",
            "wrapperPolicy": {
                "rule": "stub/team/**",
                "key": "sha256:" + hashlib.sha256(der).hexdigest(),
                "signature": signature,
            },
        },
    ]


def test_an_unsigned_rule_is_recorded_as_such(call, monkeypatch, tmp_path, bucket):
    key = signing(monkeypatch, tmp_path)
    policy = tmp_path / "policy.json"
    rules = {
        "wrappers": [{"images": "stub/team/wrapper", "unsigned": True}],
        "bases": [{"images": "stub/**", "unsigned": True}],
    }
    policy.write_text(json.dumps(rules))
    monkeypatch.setenv("WRAPPER_POLICY_FILE", str(policy))
    app.reset_service()
    digest, _ = manifest(call, WRAP, "latest")
    statement, *_ = attested(call, bucket, key, WRAP, digest)
    assert [d["annotations"]["wrapperPolicy"] for d in dependencies(statement)] == [
        {"rule": "stub/**", "unsigned": True},
        {"rule": "stub/team/wrapper", "unsigned": True},
    ]


def test_without_a_policy_no_input_says_anything_of_one(call, monkeypatch, tmp_path, bucket):
    key = signing(monkeypatch, tmp_path)
    digest, _ = manifest(call, WRAP, "latest")
    statement, *_ = attested(call, bucket, key, WRAP, digest)
    assert [d["annotations"] for d in dependencies(statement)] == [
        {"role": "base"},
        {"role": "wrapper"},
    ]


# -- what it costs ----------------------------------------------------------------------------


def test_a_first_pull_attests_with_two_reads_and_eight_writes_a_repeat_with_none(
    call, monkeypatch, tmp_path, bucket
):
    signing(monkeypatch, tmp_path)
    digest, _ = manifest(call, WRAP, "latest")
    first = list(bucket.calls)
    served, body = manifest(call, WRAP, att_tag(digest))
    document = json.loads(body)
    envelope, config = document["layers"][0]["digest"], document["config"]["digest"]
    [record] = bucket.listing("tags/attestations/")
    [statement] = bucket.listing("tags/provenance/")
    sources = {key for key in bucket.listing("tags/sources/") if key.endswith(".json")}
    documents = {served, envelope, config}
    attesting = {record, statement, manifest_key(served), blob_key(envelope), blob_key(config)}
    attesting |= {key for key in sources if any(key.endswith(f"/{d[7:]}.json") for d in documents)}
    touched = [(method, key) for method, key in first if key in attesting]
    assert sorted(touched) == sorted(
        [
            ("get_json", record),
            ("get_json", statement),
            ("put_json", statement),
            ("put_blob", blob_key(envelope)),
            ("put_blob", blob_key(config)),
            ("put_manifest", manifest_key(served)),
            *(("put_json", key) for key in attesting if key.startswith("tags/sources/")),
            ("put_json", record),
        ]
    )
    assert len(touched) == 10
    bucket.calls.clear()
    app.reset_service()
    assert manifest(call, WRAP, "latest")[0] == digest
    assert [key for _, key in bucket.calls if key in attesting] == []


# -- the service over the in-memory bucket ----------------------------------------------------

DIGESTS = [f"sha256:{n:064x}" for n in range(1, 6)]


def attestations_over(bucket, tmp_path, hook=lambda: None) -> Attestations:
    cache = BoundedCache()
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
    return Attestations(signer, HOSTNAME, bucket, images, SourceRecords(bucket, cache), cache)


def facts(digest: str, started: float = 1.0, name: str = WRAP) -> Facts:
    subject = {"mediaType": OCI_MANIFEST, "digest": digest, "size": 100}
    return Facts(subject, replace(recipe(), name=name), (), started, started + 1)


def statement_of(attestations: Attestations, name: str, digest: str) -> dict:
    found = attestations.find(replace(recipe(), name=name), digest)
    assert found is not None
    layer = json.loads(found[1].body)["layers"][0]["digest"]
    return json.loads(provenance.read_envelope(attestations.store.get_blob(layer))[0])


def test_four_manifests_are_attested_at_once_and_never_a_fifth(tmp_path):
    bucket = MemoryBucket()
    at_once = AtOnce(4, "attestations")
    attestations_over(bucket, tmp_path, hook=at_once).attest(recipe(), [facts(d) for d in DIGESTS])
    assert at_once.most == 4
    assert len(bucket.listing("tags/attestations/")) == 5


def test_another_name_of_the_same_digest_gets_the_same_statement_under_its_name(tmp_path):
    bucket = MemoryBucket()
    attestations = attestations_over(bucket, tmp_path)
    attestations.attest(recipe(), [facts(DIGESTS[0])])
    other = "wrap/stub/team/base/1/with/stub/team/wrapper/1-other"
    attestations.sources.record("scope", {DIGESTS[0]: {"kind": "manifest"}})
    attestations.images.keep(DIGESTS[0], b"{}", OCI_MANIFEST)
    first = statement_of(attestations, WRAP, DIGESTS[0])
    renamed = statement_of(attestations, other, DIGESTS[0])
    assert renamed["subject"][0]["name"] == f"{HOSTNAME}/{other}"
    renamed["subject"][0]["name"] = first["subject"][0]["name"]
    assert renamed == first
    assert len(bucket.listing("tags/attestations/")) == 2
    assert len(bucket.listing("tags/provenance/")) == 1


def test_a_new_key_composing_again_keeps_the_first_statement_and_its_times(tmp_path):
    bucket = MemoryBucket()
    attestations_over(bucket, tmp_path).attest(recipe(), [facts(DIGESTS[0], started=1.0)])
    (tmp_path / "new").mkdir()
    rotated = attestations_over(bucket, tmp_path / "new")
    rotated.attest(recipe(), [facts(DIGESTS[0], started=500.0)])
    metadata = statement_of(rotated, WRAP, DIGESTS[0])["predicate"]["runDetails"]["metadata"]
    assert metadata == {
        "startedOn": "1970-01-01T00:00:01.000Z",
        "finishedOn": "1970-01-01T00:00:02.000Z",
    }
    assert len(bucket.listing("tags/attestations/")) == 2


def test_an_attestation_just_made_is_found_in_memory_without_a_read(tmp_path):
    bucket = MemoryBucket()
    attestations = attestations_over(bucket, tmp_path)
    attestations.attest(recipe(), [facts(DIGESTS[0])])
    bucket.calls.clear()
    assert attestations.find(recipe(), DIGESTS[0]) is not None
    assert bucket.calls == []


def test_attestation_documents_have_their_sizes_under_the_wrapped_name(call, monkeypatch, tmp_path):
    signing(monkeypatch, tmp_path)
    digest, _ = manifest(call, WRAP, "latest")
    _, body = manifest(call, WRAP, att_tag(digest))
    document = json.loads(body)
    for blob in (document["config"], *document["layers"]):
        status, headers, _ = call("HEAD", f"/v2/{WRAP}/blobs/{blob['digest']}")
        assert status == 200 and headers["content-length"] == str(blob["size"])
        status, headers, _ = call("GET", f"/v2/{WRAP}/blobs/{blob['digest']}")
        assert status == 307 and headers["location"].startswith("https://bucket.invalid/")


def test_an_attestation_manifest_the_lifecycle_removed_is_stored_again_not_made_anew(
    call, monkeypatch, tmp_path, bucket
):
    signing(monkeypatch, tmp_path)
    digest, _ = manifest(call, WRAP, "latest")
    served, body = manifest(call, WRAP, att_tag(digest))
    bucket.expire(manifest_key(served))
    app.reset_service()
    assert manifest(call, WRAP, att_tag(digest)) == (served, body)
    assert bucket.held(manifest_key(served)) == body


def test_the_provenance_of_what_was_not_composed_here_is_unknown(call, monkeypatch, tmp_path):
    signing(monkeypatch, tmp_path)
    manifest(call, WRAP, "latest")
    other = "sha256:" + "ab" * 32
    status, _, body = call("GET", f"/v2/{WRAP}/manifests/{att_tag(other)}")
    assert (status, error_of(body)["code"]) == (404, "MANIFEST_UNKNOWN")
    assert error_of(body)["detail"] == {"tag": att_tag(other)}
