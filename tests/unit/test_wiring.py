"""The deployment's service, built from its settings: each setting reaches what it governs,
and a misconfiguration is a 503 naming the setting. Built over the in-memory bucket and
upstream, or over AWS endpoints scripted on loopback (S3, Secrets Manager, KMS, ECR)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import bcrypt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from doubles.aws_endpoint import AwsEndpoint, Request
from doubles.bucket import MemoryBucket
from doubles.handler import STUB_URL, stub_images
from doubles.upstream import MemoryUpstream
from ociwrap.names.reference import Registry
from ociwrap.registry import wiring
from ociwrap.registry.service import RegistryService
from ociwrap.registry.settings import Settings
from ociwrap.runtime import deadline
from ociwrap.runtime.errors import RegistryError
from scripted_upstream import one_layer_image, serve_paths

WRAP = "wrap/stub/team/base/1/with/stub/team/wrapper/1"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
BASE = "stub/team/base"
ECR_HOST = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
TOKEN_BODY = {"image": "stub/team/base:1", "wrappers": ["stub/team/wrapper:1"]}


def settings(**env: str) -> Settings:
    return Settings.from_env(
        {"ARTIFACT_BUCKET": "unit-bucket", "REGISTRY_ALIASES": f"stub={STUB_URL}", **env}
    )


def refused(call: Callable[[], object]) -> RegistryError:
    with pytest.raises(RegistryError) as caught:
        call()
    return caught.value


@pytest.fixture
def upstream() -> MemoryUpstream:
    return stub_images(MemoryUpstream())


@pytest.fixture
def served(upstream: MemoryUpstream) -> Callable[..., tuple[RegistryService, MemoryBucket]]:
    """`served(private=..., **env)`: the service of these settings over the doubles."""

    def serve(private: Callable[[Registry], bool] | None = None, **env: str):
        bucket = MemoryBucket()
        chosen = settings(**env)
        signer = wiring.make_signer(chosen)
        if private is None:
            return wiring.assemble(chosen, bucket, upstream, signer=signer), bucket
        return wiring.assemble(chosen, bucket, upstream, private, signer), bucket

    return serve


def wrapped_manifest(service: RegistryService) -> dict:
    return json.loads(service.manifest(WRAP, "latest", [OCI_MANIFEST]).body)


def expiry_of(location: str) -> int:
    return int(parse_qs(urlsplit(location).query)["X-Amz-Expires"][0])


# -- the settings ---------------------------------------------------------------------------


def test_a_misconfigured_environment_is_a_503_naming_the_setting(monkeypatch):
    monkeypatch.setenv("ARTIFACT_BUCKET", "unit-bucket")
    monkeypatch.setenv("TAG_TTL_SECONDS", "soon")
    error = refused(wiring.build_service)
    assert (error.status, error.code) == (503, "UNAVAILABLE")
    assert error.message == (
        "registry misconfigured: TAG_TTL_SECONDS must be a whole number of seconds, got 'soon'"
    )


def test_the_settings_of_the_environment_are_read(monkeypatch):
    monkeypatch.setenv("ARTIFACT_BUCKET", "from-the-environment")
    monkeypatch.setenv("TAG_TTL_SECONDS", "45")
    read = wiring.settings_from_env()
    assert (read.bucket, read.tag_ttl_seconds) == ("from-the-environment", 45)


# -- pulls over the doubles -----------------------------------------------------------------


def test_a_wrap_is_composed_and_its_layers_handed_out_for_presign_ttl_seconds(served):
    service, _ = served(PRESIGN_TTL_SECONDS="777")
    manifest = wrapped_manifest(service)
    assert len(manifest["layers"]) == 2
    for layer in manifest["layers"]:
        location = service.blob(WRAP, layer["digest"]).location
        assert location.startswith("https://bucket.invalid/unit-bucket/blobs/sha256/")
        assert expiry_of(location) == 777


def test_tag_records_last_tag_ttl_seconds(served):
    service, bucket = served(TAG_TTL_SECONDS="55")
    before = time.time()
    wrapped_manifest(service)
    after = time.time()
    record = bucket.get_json("tags/upstream/stub.invalid/team/base/1.json")
    assert before + 55 <= record["expires"] <= after + 55


def test_links_of_private_registries_last_tag_ttl_seconds(served):
    service, bucket = served(private=lambda registry: True, TAG_TTL_SECONDS="66")
    before = time.time()
    wrapped_manifest(service)
    after = time.time()
    links = bucket.listing("tags/links/stub.invalid/team/base/")
    assert links
    for key in links:
        assert before + 66 <= bucket.get_json(key)["expires"] <= after + 66
    public, bucket = served(TAG_TTL_SECONDS="66")
    wrapped_manifest(public)
    for key in bucket.listing("tags/links/"):
        assert bucket.get_json(key)["expires"] is None


@pytest.mark.parametrize(("window", "served_stale"), [("99", False), ("101", True)])
def test_a_tag_is_served_stale_within_stale_if_error_seconds(
    served, upstream, window, served_stale
):
    service, bucket = served(STALE_IF_ERROR_SECONDS=window)
    digest = upstream.push("team/base", upstream.manifests["team/base", "1"][0])
    bucket.put_json(
        "tags/upstream/stub.invalid/team/base/1.json",
        {"digest": digest, "expires": time.time() - 100, "mediaType": OCI_MANIFEST},
    )
    upstream.fail(503, "head_manifest")
    if served_stale:
        assert service.manifest(BASE, "1", [OCI_MANIFEST]).digest == digest
    else:
        assert refused(lambda: service.manifest(BASE, "1", [OCI_MANIFEST])).status == 502


def test_a_blob_larger_than_mirror_max_bytes_is_not_copied(served):
    service, _ = served(MIRROR_MAX_BYTES="10")
    layer = wrapped_manifest(service)["layers"][0]["digest"]
    error = refused(lambda: service.blob(BASE, layer))
    assert "larger than MIRROR_MAX_BYTES (10 bytes)" in error.message


def test_a_copy_is_handed_out_no_longer_than_the_bucket_keeps_it(served):
    # written at midnight UTC a day ago: a one-day lifecycle may remove it from today's
    # midnight on, a thirty-day one only weeks later
    yesterday = (time.time() // 86400 - 1) * 86400
    short = {"CACHE_RETENTION_DAYS": "1", "STALE_IF_ERROR_SECONDS": "0"}
    kept_short, bucket = served(**short, PRESIGN_TTL_SECONDS="3600")
    bucket.clock = lambda: yesterday
    layer = wrapped_manifest(kept_short)["layers"][0]["digest"]
    assert expiry_of(kept_short.blob(BASE, layer).location) == 60  # the shortest URL made
    kept_long, bucket = served(CACHE_RETENTION_DAYS="30", PRESIGN_TTL_SECONDS="3600")
    bucket.clock = lambda: yesterday
    layer = wrapped_manifest(kept_long)["layers"][0]["digest"]
    assert expiry_of(kept_long.blob(BASE, layer).location) == 3600


def test_container_tokens_last_at_most_token_max_ttl_seconds(served):
    service, bucket = served(TOKEN_MAX_TTL_SECONDS="120")
    before = time.time()
    token = service.tokens.create(json.dumps(TOKEN_BODY).encode())
    after = time.time()
    assert before + 120 <= token.expires <= after + 120
    assert bucket.get_json(f"tokens/{token.token}.json")["expires"] == token.expires
    too_long = {"image": "stub/team/base:1", "wrappers": ["stub/team/wrapper:1"], "ttlSeconds": 121}
    assert (
        "ttlSeconds"
        in refused(lambda: service.tokens.create(json.dumps(too_long).encode())).message
    )


def test_upstream_allow_governs_paths_and_tokens(served):
    service, _ = served(UPSTREAM_ALLOW="stub/team/base")
    assert refused(lambda: service.manifest(WRAP, "latest", [OCI_MANIFEST])).status == 403
    body = {"image": "stub/team/base:1", "wrappers": ["stub/team/wrapper:1"]}
    assert refused(lambda: service.tokens.create(json.dumps(body).encode())).status == 403
    assert service.manifest(BASE, "1", [OCI_MANIFEST]).media_type == OCI_MANIFEST


# -- logins, policies and signing keys -----------------------------------------------------


def test_basic_logins_are_checked_against_the_users_file(served, tmp_path):
    path = tmp_path / "htpasswd"
    path.write_bytes(b"ci:" + bcrypt.hashpw(b"secret", bcrypt.gensalt(rounds=4)) + b"\n")
    service, _ = served(REGISTRY_AUTH="basic", REGISTRY_AUTH_FILE=str(path))
    login = "Basic " + base64.b64encode(b"ci:secret").decode()
    assert service.users.check(login) == "ci"
    assert service.users.check(None) is None
    unread, _ = served(REGISTRY_AUTH="basic")
    error = refused(lambda: unread.users.check(login))
    assert error.message == "REGISTRY_AUTH=basic needs REGISTRY_AUTH_SECRET or REGISTRY_AUTH_FILE"
    anyone, _ = served(REGISTRY_AUTH_FILE=str(path))
    assert anyone.users is None


def test_a_wrapper_policy_file_decides_which_wrappers_compose(served, tmp_path):
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"wrappers": [{"images": "stub/other/**", "unsigned": True}]}))
    service, _ = served(WRAPPER_POLICY_FILE=str(path))
    assert refused(lambda: wrapped_manifest(service)).code == "DENIED"
    path.write_text(json.dumps({"wrappers": [{"images": "stub/team/**", "unsigned": True}]}))
    allowed, _ = served(WRAPPER_POLICY_FILE=str(path))
    assert len(wrapped_manifest(allowed)["layers"]) == 2
    missing, _ = served(WRAPPER_POLICY_FILE=str(tmp_path / "none.json"))
    assert refused(lambda: wrapped_manifest(missing)).message == (
        "WRAPPER_POLICY_FILE cannot be read: FileNotFoundError"
    )


def test_a_key_file_signs_compositions_for_the_public_hostname(served, tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "signing.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    service, bucket = served(SIGNING_KEY_FILE=str(path), PUBLIC_HOSTNAME="registry.example.com")
    assert service.signing_key() == key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    digest = service.manifest(WRAP, "latest", [OCI_MANIFEST]).digest
    # signed as it was composed: the bucket holds the signature before anyone asks for it
    [record] = bucket.listing("tags/signatures/")
    assert record.endswith(f"/{digest[7:]}.json")
    signature_type = "application/vnd.dev.cosign.artifact.sig.v1+json"
    [listed] = service.referrers(WRAP, digest, signature_type).descriptors
    # and attested: its provenance is in the bucket too, a referrer of the same manifest
    [attestation] = bucket.listing("tags/attestations/")
    assert attestation.endswith(f"/{digest[7:]}.json")
    [attested] = service.referrers(WRAP, digest, "application/vnd.in-toto+json").descriptors
    assert attested["digest"] == service.manifest(WRAP, f"sha256-{digest[7:]}.att", []).digest
    signature = json.loads(
        service.manifest(WRAP, f"sha256-{digest.split(':')[1]}.sig", [OCI_MANIFEST]).body
    )
    assert listed["digest"] == service.manifest(WRAP, f"sha256-{digest[7:]}.sig", []).digest
    [layer] = signature["layers"]
    payload = json.loads(service.readable_config(WRAP, layer["digest"], 4096))
    assert payload["critical"]["identity"]["docker-reference"] == f"registry.example.com/{WRAP}"
    attestation = json.loads(service.manifest(WRAP, f"sha256-{digest[7:]}.att", []).body)
    [layer] = attestation["layers"]
    envelope = json.loads(service.readable_config(WRAP, layer["digest"], 65536))
    statement = json.loads(base64.b64decode(envelope["payload"]))
    assert statement["subject"][0]["name"] == f"registry.example.com/{WRAP}"
    assert statement["predicate"]["runDetails"]["builder"]["id"] == "https://registry.example.com"


def test_without_a_key_nothing_is_signed(served):
    service, _ = served()
    error = refused(service.signing_key)
    assert (error.status, error.code) == (404, "NAME_UNKNOWN")


# -- over AWS endpoints on loopback ---------------------------------------------------------


@pytest.fixture
def aws(monkeypatch, tmp_path) -> Iterator[AwsEndpoint]:
    """One endpoint for S3 (SigV4, path-style), Secrets Manager, KMS and ECR."""
    for name in ("AWS_REGION", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    endpoint = AwsEndpoint().start()
    for name, value in {
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": endpoint.url,
        "AWS_ENDPOINT_URL_KMS": endpoint.url,
        "AWS_ENDPOINT_URL_ECR": endpoint.url,
    }.items():
        monkeypatch.setenv(name, value)
    yield endpoint
    endpoint.stop()


def test_the_deployments_bucket_is_the_one_named_at_the_s3_endpoint(aws):
    aws.answer = lambda request: (200, b"")
    service = wiring.build_service(
        settings(ARTIFACT_BUCKET="ociwrap-artifacts", S3_ENDPOINT_URL=aws.url)
    )
    body = {"image": "stub/team/base:1", "wrappers": ["stub/team/wrapper:1"]}
    token = service.tokens.create(json.dumps(body).encode())
    [request] = aws.requests
    assert (request.method, request.path) == (
        "PUT",
        f"/ociwrap-artifacts/tokens/{token.token}.json",
    )


def secret_unknown(request: Request) -> tuple[int, bytes]:
    answer = {"__type": "ResourceNotFoundException", "message": "no such secret"}
    return 400, json.dumps(answer).encode()


def test_each_secret_is_read_by_its_own_setting(aws, served, upstream):
    aws.answer = secret_unknown
    chosen = settings(
        UPSTREAM_CREDENTIALS_SECRET="ociwrap/upstreams",
        REGISTRY_AUTH="basic",
        REGISTRY_AUTH_SECRET="ociwrap/users",
        WRAPPER_POLICY_SECRET="ociwrap/policy",
    )
    logins = wiring.upstream_logins(chosen)
    assert refused(lambda: logins.private(Registry("ghcr.io", "https://ghcr.io"))).message == (
        "UPSTREAM_CREDENTIALS_SECRET cannot be read: ResourceNotFoundException"
    )
    service = wiring.assemble(chosen, MemoryBucket(), upstream)
    assert refused(lambda: service.users.check("Basic Y2k6c2VjcmV0")).message == (
        "REGISTRY_AUTH_SECRET cannot be read: ResourceNotFoundException"
    )
    assert refused(lambda: wrapped_manifest(service)).message == (
        "WRAPPER_POLICY_SECRET cannot be read: ResourceNotFoundException"
    )
    asked = [(request.operation, request.json()["SecretId"]) for request in aws.requests]
    assert list(dict.fromkeys(asked)) == [
        ("GetSecretValue", "ociwrap/upstreams"),
        ("GetSecretValue", "ociwrap/users"),
        ("GetSecretValue", "ociwrap/policy"),
    ]


def test_upstream_logins_come_from_the_credentials_file(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"auths": {"ghcr.io": {"username": "octo", "password": "p"}}}))
    logins = wiring.upstream_logins(settings(UPSTREAM_CREDENTIALS_FILE=str(path)))
    assert logins.private(Registry("ghcr.io", "https://ghcr.io"))
    assert not logins.private(Registry("quay.io", "https://quay.io"))
    missing = wiring.upstream_logins(settings(UPSTREAM_CREDENTIALS_FILE=str(tmp_path / "none")))
    assert refused(lambda: missing.private(Registry("ghcr.io", "https://ghcr.io"))).message == (
        "UPSTREAM_CREDENTIALS_FILE cannot be read: FileNotFoundError"
    )


def test_ecr_logins_are_asked_of_the_registrys_region_when_turned_on(aws):
    expires = datetime(2030, 1, 1, tzinfo=UTC).timestamp()
    token = base64.b64encode(b"AWS:ecr-password").decode()
    aws.answer_json(
        200,
        {"authorizationData": [{"authorizationToken": token, "expiresAt": expires}]},
    )
    ecr = Registry(ECR_HOST, f"https://{ECR_HOST}")
    logins = wiring.upstream_logins(settings(ECR_LOGINS="on"))
    assert logins.private(ecr)
    login = logins.for_registry(ecr)
    assert (login.username, login.password) == ("AWS", "ecr-password")
    [request] = aws.requests
    assert request.operation == "GetAuthorizationToken"
    assert request.json() == {"registryIds": ["123456789012"]}
    assert "/eu-west-1/ecr/aws4_request" in request.headers["authorization"]
    off = wiring.upstream_logins(settings())
    assert not off.private(ecr) and off.for_registry(ecr) is None


def test_an_ecr_login_after_the_deadline_is_a_504_naming_amazon_ecr(aws):
    clock = [50.0]
    passed = deadline.Deadline(9, lambda: clock[0])
    clock[0] += 9
    logins = wiring.upstream_logins(settings(ECR_LOGINS="on"))
    with deadline.within(passed):
        error = refused(lambda: logins.for_registry(Registry(ECR_HOST, f"https://{ECR_HOST}")))
    assert error.message == "the request's deadline (9 s) ran out while waiting for Amazon ECR"
    assert aws.requests == []


def kms_key(aws: AwsEndpoint) -> ec.EllipticCurvePrivateKey:
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    aws.answer_json(
        200,
        {
            "KeyId": "alias/ociwrap",
            "PublicKey": base64.b64encode(der).decode(),
            "KeySpec": "ECC_NIST_P256",
        },
    )
    return key


def test_a_kms_key_signs_when_its_id_is_set(aws):
    key = kms_key(aws)
    signer = wiring.make_signer(
        settings(SIGNING_KMS_KEY_ID="alias/ociwrap", PUBLIC_HOSTNAME="registry.example.com")
    )
    assert signer.public_key_pem() == key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    [request] = aws.requests
    assert (request.operation, request.json()) == ("GetPublicKey", {"KeyId": "alias/ociwrap"})


def test_a_kms_key_asked_after_the_deadline_is_a_504_naming_aws_kms(aws):
    clock = [50.0]
    passed = deadline.Deadline(7, lambda: clock[0])
    clock[0] += 7
    signer = wiring.make_signer(
        settings(SIGNING_KMS_KEY_ID="alias/ociwrap", PUBLIC_HOSTNAME="registry.example.com")
    )
    with deadline.within(passed):
        error = refused(signer.public_key_pem)
    assert error.message == "the request's deadline (7 s) ran out while waiting for AWS KMS"


# -- what else the parts are given ----------------------------------------------------------


def test_tags_of_a_proxied_repository_are_the_upstreams(served, upstream):
    upstream.tag_lists["team/base"] = ["2", "1"]
    service, _ = served()
    assert service.tags(BASE, None, None).tags == ("1", "2")


def test_a_composed_manifest_is_served_again_by_its_digest(served):
    service, _ = served()
    composed = service.manifest(WRAP, "latest", [OCI_MANIFEST])
    again = service.manifest(WRAP, composed.digest, [OCI_MANIFEST])
    assert (again.body, again.digest) == (composed.body, composed.digest)


def test_a_name_on_the_public_hostname_is_a_request_loop(served):
    service, _ = served(PUBLIC_HOSTNAME="registry.example.com")
    error = refused(lambda: service.manifest("registry.example.com/team/base", "1", []))
    assert (error.status, error.code) == (403, "DENIED")
    assert error.message == (
        "request loop: upstream repository registry.example.com/team/base is on this "
        "registry's own host (registry.example.com, PUBLIC_HOSTNAME); name the image where "
        "it lives"
    )


def test_a_policy_with_keys_looks_for_the_wrappers_signature_upstream(served, upstream, tmp_path):
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"wrappers": [{"images": "stub/team/**", "keys": [pem]}]}))
    service, _ = served(WRAPPER_POLICY_FILE=str(path))
    wrapper = upstream.push("team/wrapper", upstream.manifests["team/wrapper", "1"][0])[7:]
    error = refused(lambda: wrapped_manifest(service))
    assert (error.status, error.code) == (403, "DENIED")
    assert error.message == (
        f"wrapper image stub/team/wrapper:1 (sha256:{wrapper}) is refused by WRAPPER_POLICY "
        f"rule 'stub/team/**': it has no signature (no tag sha256-{wrapper}.sig)"
    )
    assert upstream.count("get_manifest", f"sha256-{wrapper}.sig") >= 1


def test_every_part_shares_one_cache_of_1024_entries_and_48_mib(served, tmp_path):
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"wrappers": [{"images": "stub/**", "unsigned": True}]}))
    key = tmp_path / "signing.pem"
    key.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    service, _ = served(
        WRAPPER_POLICY_FILE=str(path),
        SIGNING_KEY_FILE=str(key),
        PUBLIC_HOSTNAME="registry.example.com",
    )
    proxy, wrapped = service.proxy, service.wrapped
    composer = wrapped.composer
    namespaces = [
        proxy.images.tags,
        proxy.blobs.locations,
        wrapped.images.manifests,
        wrapped.blobs.redirects,
        wrapped.sources.hot,
        wrapped.signatures.hot,
        composer.hot,
    ]
    [cache] = {id(namespace.cache): namespace.cache for namespace in namespaces}.values()
    assert (cache.max_entries, cache.max_bytes) == (1024, 48 * 1024 * 1024)


def s3_without_objects(request: Request) -> tuple[int, bytes]:
    """An empty bucket that takes every write."""
    if request.method == "PUT":
        return 200, b""
    return 404, b"<Error><Code>NoSuchKey</Code><Message>no such key</Message></Error>"


def test_the_deployment_pulls_over_http_with_its_logins_signer_and_name(aws, scripted, tmp_path):
    manifest = one_layer_image("team/base", None)
    serve_paths(scripted, manifest)
    for (method, path), route in list(scripted.routes.items()):

        def login_first(handler, route=route):
            if "Authorization" not in handler.headers:
                return 401, {"WWW-Authenticate": 'Basic realm="scripted"'}, b""
            return route(handler)

        scripted.routes[method, path] = login_first
    logins = tmp_path / "config.json"
    logins.write_text(json.dumps({"auths": {"stub": {"username": "ci", "password": "pw"}}}))
    key = tmp_path / "signing.pem"
    private = ec.generate_private_key(ec.SECP256R1())
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    aws.answer = s3_without_objects
    service = wiring.build_service(
        Settings.from_env(
            {
                "ARTIFACT_BUCKET": "ociwrap-artifacts",
                "S3_ENDPOINT_URL": aws.url,
                "REGISTRY_ALIASES": f"stub={scripted.url}",
                "UPSTREAM_CREDENTIALS_FILE": str(logins),
                "SIGNING_KEY_FILE": str(key),
                "PUBLIC_HOSTNAME": "registry.example.com",
            }
        )
    )
    pulled = service.manifest(BASE, "1", [OCI_MANIFEST])
    assert pulled.body == manifest["/v2/team/base/manifests/1"]
    answered = [seen for seen in scripted.seen if "Authorization" in seen[2]]
    assert answered and all(
        seen[2]["Authorization"] == "Basic " + base64.b64encode(b"ci:pw").decode()
        and seen[2]["Via"] == "1.1 registry.example.com (ociwrap)"
        for seen in answered
    )
    host = urlsplit(scripted.url).netloc.replace(":", "%3A")
    written = {request.path: request for request in aws.requests if request.method == "PUT"}
    link = written[f"/ociwrap-artifacts/tags/links/{host}/team/base/{pulled.digest[7:]}.json"]
    assert isinstance(link.json()["expires"], float)  # fetched with a login: it expires
    assert service.signing_key() == private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
