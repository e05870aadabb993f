"""Wrapped names as a client pulls them: their one tag, the digests composed for them, the
blobs they are made of (and no other), their tag list and referrers, and what a private
upstream must still confirm. The handler over the in-memory bucket and upstream."""

from __future__ import annotations

import base64
import json

import pytest

import app
from doubles.pulls import (
    OCI_INDEX,
    OCI_MANIFEST,
    WRAP,
    error_of,
    manifest,
    signing_with_a_key_file,
)
from doubles.upstream import MemoryUpstream
from ociwrap.bucket.store import blob_key, manifest_key
from ociwrap_local.events import LocalContext, build_event

COSIGN_ARTIFACT = "application/vnd.dev.cosign.artifact.sig.v1+json"


def composed(call) -> tuple[str, dict]:
    digest, body = manifest(call, WRAP, "latest")
    return digest, json.loads(body)


def layers_of(upstream: MemoryUpstream, path: str) -> list[str]:
    body, _ = upstream.manifests[path, "1"]
    return [layer["digest"] for layer in json.loads(body)["layers"]]


# -- manifests -----------------------------------------------------------------------------


def test_a_wrap_has_the_one_tag_latest(call):
    status, _, body = call("GET", f"/v2/{WRAP}/manifests/1", [("Accept", OCI_MANIFEST)])
    error = error_of(body)
    assert (status, error["code"]) == (404, "MANIFEST_UNKNOWN")
    assert error["message"].startswith(f"{WRAP} has the one tag 'latest', not '1': put the base")
    assert error["detail"] == {"tag": "1"}


def test_its_tag_list_is_that_tag(call):
    status, _, body = call("GET", f"/v2/{WRAP}/tags/list")
    assert (status, json.loads(body)) == (200, {"name": WRAP, "tags": ["latest"]})


def test_a_composed_digest_is_served_by_digest(call):
    digest, document = composed(call)
    status, headers, body = call("GET", f"/v2/{WRAP}/manifests/{digest}")
    assert status == 200 and json.loads(body) == document
    assert headers["docker-content-digest"] == digest
    assert headers["content-type"] == OCI_MANIFEST


def test_a_digest_not_composed_for_the_name_is_manifest_unknown(call, upstream):
    composed(call)
    base = upstream.push("team/base", b'{"schemaVersion":2}')
    status, _, body = call("GET", f"/v2/{WRAP}/manifests/{base}")
    error = error_of(body)
    assert (status, error["code"]) == (404, "MANIFEST_UNKNOWN")
    assert error["message"] == f"manifest {base} was not composed for {WRAP}"
    assert error["detail"] == {"digest": base}


def test_a_blob_of_the_composition_is_no_manifest_of_it(call):
    _, document = composed(call)
    config = document["config"]["digest"]
    status, _, body = call("GET", f"/v2/{WRAP}/manifests/{config}")
    assert (status, error_of(body)["code"]) == (404, "MANIFEST_UNKNOWN")


def test_a_composed_manifest_the_bucket_lost_is_made_again_by_digest(call, bucket):
    digest, document = composed(call)
    bucket.expire("manifests/", "tags/compositions/")
    app.reset_service()
    status, _, body = call("GET", f"/v2/{WRAP}/manifests/{digest}")
    assert status == 200 and json.loads(body) == document


# -- blobs ---------------------------------------------------------------------------------


def test_each_layer_is_fetched_from_the_repository_it_came_from(call, upstream):
    _, document = composed(call)
    base_layer, wrapper_layer = (layer["digest"] for layer in document["layers"])
    assert [base_layer] == layers_of(upstream, "team/base")
    assert [wrapper_layer] == layers_of(upstream, "team/wrapper")
    for layer, path in ((base_layer, "team/base"), (wrapper_layer, "team/wrapper")):
        status, headers, _ = call("GET", f"/v2/{WRAP}/blobs/{layer}")
        assert status == 307 and f"/blobs/sha256/{layer[7:]}" in headers["location"]
        assert [c.path for c in upstream.calls if c.operation == "blob" and c.ref == layer] == [
            path
        ]


def test_the_generated_config_comes_from_the_bucket(call, upstream, bucket):
    _, document = composed(call)
    config = document["config"]["digest"]
    status, headers, _ = call("GET", f"/v2/{WRAP}/blobs/{config}")
    assert status == 307 and f"/blobs/sha256/{config[7:]}" in headers["location"]
    assert upstream.count("blob", config) == 0
    assert bucket.held(blob_key(config)) is not None


def test_a_head_of_a_blob_says_the_size_its_record_holds(call, upstream):
    _, document = composed(call)
    for descriptor in (document["config"], *document["layers"]):
        status, headers, body = call("HEAD", f"/v2/{WRAP}/blobs/{descriptor['digest']}")
        assert (status, body) == (200, b"")
        assert headers["content-length"] == str(descriptor["size"])
        assert headers["docker-content-digest"] == descriptor["digest"]
    assert upstream.count("blob") == upstream.count("blob_size") == 0


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_blob_that_is_no_part_of_the_name_is_blob_unknown(call, upstream, method):
    digest, _ = composed(call)
    other = "sha256:" + "ab" * 32
    for unknown in (other, digest):  # nothing, and a manifest of it
        status, _, body = call(method, f"/v2/{WRAP}/blobs/{unknown}")
        assert status == 404
        if method == "GET":
            error = error_of(body)
            assert error["code"] == "BLOB_UNKNOWN"
            assert error["message"] == f"blob {unknown} is not part of {WRAP}"
            assert error["detail"] == {"digest": unknown}


def test_a_source_record_naming_a_wrapper_it_has_not_is_blob_unknown(call, bucket):
    _, document = composed(call)
    layer = document["layers"][1]["digest"]
    [key] = [key for key in bucket.listing("tags/sources/") if key.endswith(f"/{layer[7:]}.json")]
    for number in (1, -1, "0"):
        bucket.put_json(key, {**json.loads(bucket.held(key)), "wrapper": number})
        app.reset_service()
        status, _, body = call("GET", f"/v2/{WRAP}/blobs/{layer}")
        assert (status, error_of(body)["code"]) == (404, "BLOB_UNKNOWN"), number
        assert error_of(body)["message"] == f"blob {layer} is not part of {WRAP}"
    bucket.put_json(key, {**json.loads(bucket.held(key)), "wrapper": 0})
    app.reset_service()
    assert call("GET", f"/v2/{WRAP}/blobs/{layer}")[0] == 307


def test_the_page_reads_the_generated_config_and_is_sent_to_a_layer(call, bucket):
    _, document = composed(call)
    config, layer = document["config"]["digest"], document["layers"][0]["digest"]
    same_origin = [("Sec-Fetch-Site", "same-origin")]
    status, _, body = call("GET", f"/v2/{WRAP}/blobs/{config}", same_origin)
    assert status == 200 and body == bucket.held(blob_key(config))
    status, headers, _ = call("GET", f"/v2/{WRAP}/blobs/{layer}", same_origin)
    assert status == 307 and f"/blobs/sha256/{layer[7:]}" in headers["location"]


# -- signatures and referrers ----------------------------------------------------------------


def sig_tag(digest: str) -> str:
    return f"sha256-{digest[7:]}.sig"


def test_without_signing_there_is_no_signature_and_no_referrer(call):
    digest, _ = composed(call)
    status, _, body = call("GET", f"/v2/{WRAP}/manifests/{sig_tag(digest)}")
    error = error_of(body)
    assert (status, error["code"]) == (404, "MANIFEST_UNKNOWN")
    assert error["message"] == f"{WRAP} has no signature of {digest}: signing is not configured"
    assert error["detail"] == {"tag": sig_tag(digest)}
    status, _, body = call("GET", f"/v2/{WRAP}/referrers/{digest}")
    assert status == 200 and json.loads(body)["manifests"] == []


def test_with_signing_the_signature_and_the_provenance_are_the_referrers(
    call, monkeypatch, tmp_path
):
    signing_with_a_key_file(monkeypatch, tmp_path)
    digest, _ = composed(call)
    signature, body = manifest(call, WRAP, sig_tag(digest))
    attestation, attested = manifest(call, WRAP, f"sha256-{digest[7:]}.att")
    status, headers, listed = call("GET", f"/v2/{WRAP}/referrers/{digest}")
    index = json.loads(listed)
    assert status == 200 and headers["content-type"] == OCI_INDEX
    assert index["manifests"] == [
        {
            "mediaType": OCI_MANIFEST,
            "digest": signature,
            "size": len(body),
            "artifactType": COSIGN_ARTIFACT,
        },
        {
            "mediaType": OCI_MANIFEST,
            "digest": attestation,
            "size": len(attested),
            "artifactType": "application/vnd.in-toto+json",
            "annotations": {"predicateType": "https://slsa.dev/provenance/v1"},
        },
    ]
    _, _, listed = call("GET", f"/v2/{WRAP}/referrers/{digest}?artifactType=application/x")
    assert json.loads(listed)["manifests"] == []


def test_a_signature_of_what_was_not_composed_here_is_unknown(call, monkeypatch, tmp_path):
    signing_with_a_key_file(monkeypatch, tmp_path)
    composed(call)
    other = "sha256:" + "ab" * 32
    status, _, body = call("GET", f"/v2/{WRAP}/manifests/{sig_tag(other)}")
    assert status == 404
    assert error_of(body)["message"] == (
        f"{WRAP} has no signature of {other}: it was not composed here"
    )


def test_a_signature_whose_manifest_the_bucket_lost_is_signed_when_made_again(
    call, monkeypatch, tmp_path, bucket
):
    digest, _ = composed(call)  # composed before signing was on
    signing_with_a_key_file(monkeypatch, tmp_path)
    bucket.expire(manifest_key(digest))
    app.reset_service()
    signature, body = manifest(call, WRAP, sig_tag(digest))
    assert json.loads(body)["subject"]["digest"] == digest
    assert bucket.held(manifest_key(digest)) is not None
    assert manifest(call, WRAP, sig_tag(digest)) == (signature, body)


def test_a_signature_document_lost_while_signing_is_off_cannot_be_made(
    call, monkeypatch, tmp_path, bucket
):
    signing_with_a_key_file(monkeypatch, tmp_path)
    digest, _ = composed(call)
    signature, _ = manifest(call, WRAP, sig_tag(digest))
    monkeypatch.delenv("SIGNING_KEY_FILE")
    bucket.expire("manifests/")
    app.reset_service()
    status, _, body = call("GET", f"/v2/{WRAP}/manifests/{signature}")
    error = error_of(body)
    assert (status, error["code"]) == (404, "MANIFEST_UNKNOWN")
    assert error["message"].endswith("cannot be made again: signing is not configured")


# -- private upstreams -----------------------------------------------------------------------


@pytest.fixture
def private(monkeypatch, tmp_path) -> None:
    """The stub's registry is asked with a login."""
    path = tmp_path / "config.json"
    auth = base64.b64encode(b"puller:secret").decode()
    path.write_text(json.dumps({"auths": {"stub.invalid": {"auth": auth}}}))
    monkeypatch.setenv("UPSTREAM_CREDENTIALS_FILE", str(path))
    app.reset_service()


@pytest.mark.usefixtures("private")
def test_a_private_upstream_that_withdrew_access_withdraws_the_composition(call, upstream, bucket):
    digest, document = composed(call)
    config, layer = document["config"]["digest"], document["layers"][1]["digest"]
    upstream.fail(401, "*", "team/wrapper")
    bucket.expire("tags/upstream/")  # past the tags' TTL: they are resolved again
    app.reset_service()
    for path in (
        f"/v2/{WRAP}/manifests/{digest}",
        f"/v2/{WRAP}/blobs/{config}",
        f"/v2/{WRAP}/blobs/{layer}",
        f"/v2/{WRAP}/referrers/{digest}",
    ):
        status, _, body = call("GET", path)
        assert (status, error_of(body)["code"]) == (401, "UNAUTHORIZED"), path
        assert error_of(body)["message"].startswith("wrapper image stub/team/wrapper:1: ")


@pytest.mark.usefixtures("private")
def test_a_private_base_that_withdrew_access_withdraws_the_composition(call, upstream, bucket):
    digest, _ = composed(call)
    upstream.fail(401, "*", "team/base")
    bucket.expire("tags/upstream/")
    app.reset_service()
    status, _, body = call("GET", f"/v2/{WRAP}/manifests/{digest}")
    assert (status, error_of(body)["code"]) == (401, "UNAUTHORIZED")
    assert error_of(body)["message"].startswith("base image stub/team/base:1: ")


@pytest.mark.usefixtures("private")
def test_a_private_upstream_is_asked_again_for_every_image_of_the_wrap(call, upstream, bucket):
    digest, _ = composed(call)
    bucket.expire("tags/upstream/")
    app.reset_service()
    heads = upstream.count("head_manifest")
    call("GET", f"/v2/{WRAP}/manifests/{digest}")
    assert upstream.count("head_manifest") == heads + 2  # the base's tag and the wrapper's


def test_a_public_upstream_is_not_asked_again(call, upstream, bucket):
    digest, _ = composed(call)
    bucket.expire("tags/upstream/")
    app.reset_service()
    before = len(upstream.calls)
    call("GET", f"/v2/{WRAP}/manifests/{digest}")
    assert len(upstream.calls) == before


# -- what cannot be made again ----------------------------------------------------------------


def gone(digest: str, why: str) -> str:
    return (
        f"{digest} of {WRAP} is no longer in the registry's bucket (it expired) "
        f"and cannot be made again: {why}"
    )


NOTHING_RECORDED = "nothing records what it was made of (pull the name by its tag)"


def without_inputs(bucket) -> None:
    """Source records as they were written before they named what they were made of, and
    the composed documents gone."""
    for key in bucket.listing("tags/sources/"):
        record = json.loads(bucket.held(key))
        bucket.put_json(key, {k: v for k, v in record.items() if k not in ("base", "wrappers")})
    bucket.expire("manifests/", "blobs/", "tags/compositions/")
    app.reset_service()


def test_a_manifest_that_cannot_be_made_again_says_why(call, bucket):
    digest, _ = composed(call)
    without_inputs(bucket)
    status, _, body = call("GET", f"/v2/{WRAP}/manifests/{digest}")
    error = error_of(body)
    assert (status, error["code"]) == (404, "MANIFEST_UNKNOWN")
    assert error["message"] == gone(digest, NOTHING_RECORDED)
    assert error["detail"] == {"digest": digest}


@pytest.mark.parametrize("headers", [[], [("Sec-Fetch-Site", "same-origin")]])
def test_a_config_that_cannot_be_made_again_says_why(call, bucket, headers):
    _, document = composed(call)
    config = document["config"]["digest"]
    without_inputs(bucket)
    status, _, body = call("GET", f"/v2/{WRAP}/blobs/{config}", headers)
    error = error_of(body)
    assert (status, error["code"]) == (404, "BLOB_UNKNOWN")
    assert error["message"] == gone(config, NOTHING_RECORDED)
    assert error["detail"] == {"digest": config}


def test_the_signature_of_a_manifest_that_cannot_be_made_again_says_why(
    call, monkeypatch, tmp_path, bucket
):
    digest, _ = composed(call)  # composed before signing was on: nothing signed it
    signing_with_a_key_file(monkeypatch, tmp_path)
    without_inputs(bucket)
    status, _, body = call("GET", f"/v2/{WRAP}/manifests/{sig_tag(digest)}")
    error = error_of(body)
    assert (status, error["code"]) == (404, "MANIFEST_UNKNOWN")
    assert error["message"] == gone(digest, NOTHING_RECORDED)
    assert error["detail"] == {"digest": digest}


def test_a_signature_whose_record_is_gone_cannot_be_made_again(call, monkeypatch, tmp_path, bucket):
    signing_with_a_key_file(monkeypatch, tmp_path)
    digest, _ = composed(call)
    signature, _ = manifest(call, WRAP, sig_tag(digest))
    bucket.expire("manifests/", "tags/signatures/")
    app.reset_service()
    status, _, body = call("GET", f"/v2/{WRAP}/manifests/{signature}")
    error = error_of(body)
    assert (status, error["code"]) == (404, "MANIFEST_UNKNOWN")
    assert error["message"] == gone(signature, "its signature is no longer recorded")


def test_provenance_whose_record_is_gone_cannot_be_made_again(call, monkeypatch, tmp_path, bucket):
    signing_with_a_key_file(monkeypatch, tmp_path)
    digest, _ = composed(call)
    attestation, _ = manifest(call, WRAP, f"sha256-{digest[7:]}.att")
    bucket.expire("manifests/", "tags/attestations/")
    app.reset_service()
    status, _, body = call("GET", f"/v2/{WRAP}/manifests/{attestation}")
    error = error_of(body)
    assert (status, error["code"]) == (404, "MANIFEST_UNKNOWN")
    assert error["message"] == gone(attestation, "its provenance is no longer recorded")


def test_a_record_whose_inputs_compose_to_other_digests_says_so(call, bucket):
    digest, _ = composed(call)
    [key] = [key for key in bucket.listing("tags/sources/") if key.endswith(f"/{digest[7:]}.json")]
    other = "sha256:" + "ab" * 32
    bucket.put_json(key.replace(digest[7:], other[7:]), json.loads(bucket.held(key)))
    app.reset_service()
    status, _, body = call("GET", f"/v2/{WRAP}/manifests/{other}")
    error = error_of(body)
    assert (status, error["code"]) == (404, "MANIFEST_UNKNOWN")
    assert error["message"] == gone(
        other, "composing its base and wrapper digests again made other digests"
    )


def test_a_signature_of_what_was_not_composed_here_is_looked_up_once(
    call, monkeypatch, tmp_path, bucket
):
    signing_with_a_key_file(monkeypatch, tmp_path)
    composed(call)
    other = "sha256:" + "ab" * 32
    bucket.calls.clear()
    status, _, _ = call("GET", f"/v2/{WRAP}/manifests/{sig_tag(other)}")
    assert status == 404
    assert len([key for key in bucket.called("get_json") if "/signatures/" in key]) == 1


# -- container token images -------------------------------------------------------------------


def test_a_token_image_has_its_base_images_tag(call):
    request = {"image": "stub/team/base:1", "wrappers": ["stub/team/wrapper:1"]}
    event = build_event(
        "POST", "/v1alpha/tokens", [("Host", "registry.example.com")], json.dumps(request).encode()
    )
    created = app.lambda_handler(event, LocalContext())
    assert created["statusCode"] == 201
    name = json.loads(created["body"])["targetImage"].removeprefix("registry.example.com/")
    name = name.removesuffix(":1")
    status, _, body = call("GET", f"/v2/{name}/manifests/latest")
    error = error_of(body)
    assert (status, error["code"]) == (404, "MANIFEST_UNKNOWN")
    assert error["message"] == (
        f"{name} has the one tag '1', not 'latest': "
        "a container token image has its base image's tag"
    )
    assert manifest(call, name, "1")[0].startswith("sha256:")


def token_name(request: dict) -> tuple[str, str]:
    """(name, tag) of a new container token's image for `request`."""
    event = build_event(
        "POST", "/v1alpha/tokens", [("Host", "registry.example.com")], json.dumps(request).encode()
    )
    created = app.lambda_handler(event, LocalContext())
    assert created["statusCode"] == 201
    target = json.loads(created["body"])["targetImage"].removeprefix("registry.example.com/")
    name, _, tag = target.rpartition(":")
    return name, tag


def pulled_whole(call, name: str, tag: str) -> str:
    """Pull `name:tag` as a client does: the manifest, then every blob it names (a layer
    is a redirect, the config too); the manifest's digest."""
    digest, body = manifest(call, name, tag)
    parts = json.loads(body)
    for blob in [parts["config"], *parts["layers"]]:
        status, _, answer = call("GET", f"/v2/{name}/blobs/{blob['digest']}")
        assert status == 307, answer
    return digest


@pytest.mark.parametrize(
    "request_body",
    [
        {"image": "stub/team/base:1", "wrappers": ["stub/team/wrapper:1"]},
        {"image": "stub/team/base:1", "wrappers": ["stub/team/wrapper:1"], "env": {"A": "1"}},
    ],
    ids=["what a wrap path says", "with an override"],
)
def test_tokens_asking_what_was_composed_already_serve_all_of_it(
    call, monkeypatch, tmp_path, request_body
):
    signing_with_a_key_file(monkeypatch, tmp_path)
    composed(call)  # the wrap path first: its composition is recorded
    first, second = token_name(request_body), token_name(request_body)
    digests = {pulled_whole(call, *first), pulled_whole(call, *second)}
    assert len(digests) == 1  # the same composition, each token's name serving all of it
    (digest,) = digests
    for name, _ in (first, second):
        manifest(call, name, sig_tag(digest))
        manifest(call, name, f"sha256-{digest[7:]}.att")
