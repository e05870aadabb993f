"""The container token API through the handler: create, read, revoke, expire, limits.

The in-memory bucket; pulls of token images are integration tests.
"""

from __future__ import annotations

import base64
import json
import re

import pytest

import app
from doubles.bucket import MemoryBucket
from ociwrap.registry.admission import Admission
from ociwrap.registry.container_tokens import ContainerTokens
from ociwrap.runtime.errors import RegistryError
from ociwrap_local.events import LocalContext, build_event

TOKEN = re.compile(r"[a-z2-7]{26}")


@pytest.fixture
def aws(monkeypatch, on_doubles):
    """The handler's service over the in-memory bucket (no upstream is ever asked)."""
    monkeypatch.setenv("ARTIFACT_BUCKET", "unit-bucket")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("REGISTRY_ALIASES", "local=http://127.0.0.1:9")
    monkeypatch.delenv("S3_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("PUBLIC_HOSTNAME", raising=False)
    on_doubles()


@pytest.fixture
def call(aws, no_network):
    def call(method: str, path: str, body: object = None, headers=()) -> dict:
        data = (
            json.dumps(body).encode() if body is not None and not isinstance(body, bytes) else body
        )
        headers = [("Host", "registry.example.com"), ("Content-Type", "application/json"), *headers]
        event = build_event(method, path, headers, data or b"")
        return app.lambda_handler(event, LocalContext(aws_request_id="unit"))

    return call


def body_of(result: dict):
    return json.loads(result["body"])


REQUEST = {"image": "local/library/busybox:1", "wrappers": ["local/tools/wrapper:1"]}


def test_a_token_is_created_read_and_revoked(call):
    created = call("POST", "/v1alpha/tokens", {**REQUEST, "env": {"A": "1"}})
    assert created["statusCode"] == 201
    answer = body_of(created)
    token = answer["token"]
    assert TOKEN.fullmatch(token)
    assert answer["targetImage"] == f"registry.example.com/wt/{token}/local/library/busybox:1"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", answer["expiresAt"])
    read = call("GET", f"/v1alpha/tokens/{token}")
    assert read["statusCode"] == 200
    assert body_of(read)["request"] == {**REQUEST, "env": {"A": "1"}, "ttlSeconds": 86400}
    assert call("DELETE", f"/v1alpha/tokens/{token}")["statusCode"] == 204
    gone = call("GET", f"/v1alpha/tokens/{token}")
    assert gone["statusCode"] == 404
    assert "revoked" in body_of(gone)["errors"][0]["message"]
    pulled = call("GET", f"/v2/wt/{token}/local/library/busybox/manifests/1")
    assert pulled["statusCode"] == 404
    assert body_of(pulled)["errors"][0]["code"] == "NAME_UNKNOWN"


def test_tokens_are_unique_and_random():
    from ociwrap.registry.container_tokens import new_token

    tokens = {new_token() for _ in range(1000)}
    assert len(tokens) == 1000 and all(TOKEN.fullmatch(t) for t in tokens)


def test_public_hostname_names_the_target(call, monkeypatch):
    monkeypatch.setenv("PUBLIC_HOSTNAME", "pull.example.org")
    app.reset_service()
    try:
        answer = body_of(call("POST", "/v1alpha/tokens", REQUEST))
        assert answer["targetImage"].startswith("pull.example.org/wt/")
    finally:
        monkeypatch.delenv("PUBLIC_HOSTNAME")
        app.reset_service()


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/v2/wt/notatoken/local/library/busybox/manifests/1", "unknown container token"),
        (f"/v2/wt/{'a' * 26}/local/library/busybox/manifests/1", "unknown container token"),
    ],
)
def test_unknown_tokens_are_name_unknown(call, path, message):
    result = call("GET", path)
    assert result["statusCode"] == 404
    error = body_of(result)["errors"][0]
    assert error["code"] == "NAME_UNKNOWN" and message in error["message"]


def test_another_name_under_a_token_is_404(call):
    token = body_of(call("POST", "/v1alpha/tokens", REQUEST))["token"]
    result = call("GET", f"/v2/wt/{token}/local/library/other/manifests/1")
    assert result["statusCode"] == 404
    assert "is for local/library/busybox" in body_of(result)["errors"][0]["message"]


def test_an_expired_token_is_404(call):
    import time

    import wiring

    token = body_of(call("POST", "/v1alpha/tokens", {**REQUEST, "ttlSeconds": 1}))["token"]
    later = time.time() + 1.1  # past its second
    wiring.service().tokens.clock = lambda: later
    result = call("GET", f"/v1alpha/tokens/{token}")
    assert result["statusCode"] == 404
    assert "expired" in body_of(result)["errors"][0]["message"]


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b"{not json", 400, "(body)"),
        ({"image": "busybox"}, 400, "wrappers"),
        ({**REQUEST, "platforms": ["linux"]}, 400, "platforms[0]"),
        (b'{"image": "' + b"a" * 70_000 + b'"}', 413, None),
    ],
)
def test_malformed_requests_name_the_field(call, body, status, field):
    result = call("POST", "/v1alpha/tokens", body)
    assert result["statusCode"] == status
    error = body_of(result)["errors"][0]
    if field:
        assert error["detail"]["field"] == field and error["message"].startswith(field)


NUL = "\u0000"


@pytest.mark.parametrize(
    ("fields", "field", "why"),
    [
        ({"image": f"local/library/busybox:1{NUL}"}, "image", "must not contain NUL"),
        ({"wrappers": [f"local/tools/wrapper:1{NUL}"]}, "wrappers[0]", "must not contain NUL"),
        ({"entrypoint": [f"/bin/sh{NUL}-c"]}, "entrypoint[0]", "must not contain NUL"),
        ({"cmd": ["-c", f"echo{NUL}"]}, "cmd[1]", "must not contain NUL"),
        ({"env": {"A": "1", f"B{NUL}C": "2"}}, "env.B\\x00C", "the name must not contain NUL"),
        ({"env": {"A": f"1{NUL}2"}}, "env.A", "must not contain NUL"),
        ({"env": {"A": NUL}}, "env.A", "must not contain NUL"),
        (
            {"labels": {f"org.example{NUL}": "x"}},
            "labels.org.example\\x00",
            "the name must not contain NUL",
        ),
        ({"labels": {"org.example": f"x{NUL}"}}, "labels.org.example", "must not contain NUL"),
        ({"workingDir": f"/work{NUL}"}, "workingDir", "must not contain NUL"),
        ({"user": f"1000{NUL}"}, "user", "must not contain NUL"),
        ({"platforms": [f"linux/amd64{NUL}"]}, "platforms[0]", "must not contain NUL"),
    ],
)
def test_nul_is_refused_in_every_string_field(call, fields, field, why):
    result = call("POST", "/v1alpha/tokens", {**REQUEST, **fields})
    assert result["statusCode"] == 400
    error = body_of(result)["errors"][0]
    assert error["code"] == "INVALID_REQUEST"
    assert error["detail"] == {"field": field}
    assert error["message"] == f"{field}: {why}"


def test_a_base64_body_is_read(call):
    event = build_event(
        "POST",
        "/v1alpha/tokens",
        [("Host", "h"), ("Content-Type", "application/octet-stream")],
        json.dumps(REQUEST).encode(),
    )
    assert event["isBase64Encoded"]
    result = app.lambda_handler(event, LocalContext(aws_request_id="unit"))
    assert result["statusCode"] == 201
    assert base64  # the event carried the body base64-encoded, as API Gateway does


def test_the_openapi_document_is_served(call):
    result = call("GET", "/v1alpha/openapi.json")
    assert result["statusCode"] == 200
    document = body_of(result)
    assert document["openapi"].startswith("3.1")
    assert set(document["paths"]) == {
        "/v1alpha/tokens",
        "/v1alpha/tokens/{token}",
        "/v1alpha/signing-key",
        "/v1alpha/openapi.json",
    }


# -- the tokens themselves, over an in-memory bucket and a clock ---------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


ALIASES = {"local": "http://127.0.0.1:9"}
FULL = {
    **REQUEST,
    "entrypoint": ["/bin/sh"],
    "cmd": ["-c", "echo hi"],
    "env": {"A": "1"},
    "labels": {"org.example": "yes"},
    "workingDir": "/work",
    "user": "1000",
    "platforms": ["linux/amd64", "linux/arm64/v8"],
    "ttlSeconds": 600,
}


def tokens_on(bucket, clock, allow=None, max_ttl=86400):
    return ContainerTokens(bucket, ALIASES, max_ttl, Admission(allow), clock)


def refused(read, token: str):
    with pytest.raises(RegistryError) as caught:
        read(token)
    assert (caught.value.status, caught.value.code) == (404, "NAME_UNKNOWN")
    return caught.value


@pytest.fixture
def bucket():
    return MemoryBucket()


def test_a_token_is_stored_with_its_request_and_expiry(bucket):
    clock = Clock()
    created = tokens_on(bucket, clock).create(json.dumps(FULL).encode())
    stored = bucket.get_json(f"tokens/{created.token}.json")
    assert stored == {"request": FULL, "expires": clock.now + 600}
    assert created.expires == clock.now + 600


def test_a_new_instance_reads_a_token_with_everything_it_asked_for(bucket):
    clock = Clock()
    created = tokens_on(bucket, clock).create(json.dumps(FULL).encode())
    read = tokens_on(bucket, clock, max_ttl=60).get(created.token)  # the maximum was lowered
    assert read == created
    assert read.request.overrides.platforms == ("linux/amd64", "linux/arm64/v8")
    assert read.request.overrides.env == (("A", "1"),)
    assert read.request.document == FULL


def test_a_revoked_token_is_revoked_for_a_new_instance_too(bucket):
    clock = Clock()
    made = tokens_on(bucket, clock)
    created = made.create(json.dumps(REQUEST).encode())
    made.revoke(created.token)
    assert bucket.get_json(f"tokens/{created.token}.json") == {
        "revoked": True,
        "expires": created.expires,
    }
    for instance in (made, tokens_on(bucket, clock)):
        error = refused(instance.get, created.token)
        assert error.message == f"container token {created.token} was revoked"
        assert error.detail == {"token": created.token}


def test_a_revocation_reaches_a_warm_instance_within_five_seconds(bucket):
    clock = Clock()
    warm, other = tokens_on(bucket, clock), tokens_on(bucket, clock)
    created = other.create(json.dumps(REQUEST).encode())
    assert warm.get(created.token) == created
    other.revoke(created.token)
    clock.now += 4.9
    assert warm.get(created.token) == created  # still the copy it read
    clock.now += 0.1
    assert "was revoked" in refused(warm.get, created.token).message


def test_a_token_expires_at_exactly_its_ttl(bucket):
    clock = Clock()
    tokens = tokens_on(bucket, clock)
    created = tokens.create(json.dumps({**REQUEST, "ttlSeconds": 60}).encode())
    clock.now += 59.5
    assert tokens.get(created.token) == created
    clock.now += 0.5
    error = refused(tokens.get, created.token)
    assert error.message == f"container token {created.token} has expired"
    assert error.detail == {"token": created.token}


def test_only_26_character_tokens_are_looked_up(bucket):
    tokens = tokens_on(bucket, Clock())
    long = "a" * 100
    assert refused(tokens.get, long).message == f"unknown container token {'a' * 40!r}"
    for token in ("a" * 25, "a" * 27, "A" * 26, "a" * 25 + "1"):
        assert refused(tokens.get, token).message.startswith("unknown container token")
    assert bucket.calls == []
    error = refused(tokens.get, "a" * 26)
    assert error.message == f"unknown container token {'a' * 26}"
    assert error.detail == {"token": "a" * 26}
    assert bucket.calls == [("get_json", f"tokens/{'a' * 26}.json")]


@pytest.mark.parametrize(
    "record",
    [
        {"request": {"image": "local/x:1"}, "expires": 2e9},
        {"request": {**REQUEST, "ttlSeconds": 60}},
        {"request": {**REQUEST, "ttlSeconds": 60, "wrappers": []}, "expires": 2e9},
        {"request": {**REQUEST, "ttlSeconds": "60"}, "expires": 2e9},
        {"request": {**REQUEST, "ttlSeconds": 60}, "expires": "soon"},
    ],
)
def test_a_record_that_can_no_longer_be_read_is_unknown(bucket, record):
    token = "b" * 26
    bucket.put_json(f"tokens/{token}.json", record)
    error = refused(tokens_on(bucket, Clock()).get, token)
    assert error.message == f"container token {token} can no longer be read"
    assert error.detail == {"token": token}


def test_a_record_with_a_ttl_over_todays_maximum_is_still_read(bucket):
    token = "c" * 26
    bucket.put_json(
        f"tokens/{token}.json", {"request": {**REQUEST, "ttlSeconds": 1}, "expires": 2e9}
    )
    assert tokens_on(bucket, Clock(), max_ttl=60).get(token).request.ttl_seconds == 1


def test_a_token_is_looked_up_once_while_it_is_warm(bucket):
    clock = Clock()
    token = "d" * 26
    tokens = tokens_on(bucket, clock)
    refused(tokens.get, token)
    refused(tokens.get, token)
    assert len(bucket.calls) == 1
    clock.now += 5
    refused(tokens.get, token)
    assert len(bucket.calls) == 2


def test_a_token_is_for_its_own_image_only(bucket):
    tokens = tokens_on(bucket, Clock())
    created = tokens.create(json.dumps(FULL).encode())
    recipe = tokens.recipe(created.token, "local/library/busybox")
    assert recipe.name == f"wt/{created.token}/local/library/busybox"
    assert recipe.overrides.platforms == ("linux/amd64", "linux/arm64/v8")
    error = refused(lambda t: tokens.recipe(t, "local/library/other"), created.token)
    assert error.message == (
        f"container token {created.token} is for local/library/busybox, not local/library/other"
    )
    assert error.detail == {"token": created.token}


def test_a_token_for_an_image_not_allowed_is_not_made(bucket):
    tokens = tokens_on(bucket, Clock(), allow=("local/library/*",))
    with pytest.raises(RegistryError) as caught:
        tokens.create(json.dumps(REQUEST).encode())
    assert (
        caught.value.status == 403 and "wrapper image local/tools/wrapper" in caught.value.message
    )
    assert bucket.listing() == []


def test_tokens_are_lowercase_base32(bucket):
    tokens = tokens_on(bucket, Clock())
    for token in ("2" * 26, "7" * 26, "z" * 26):
        refused(tokens.get, token)
    for token in ("1" * 26, "8" * 26, "=" * 26):
        refused(tokens.get, token)
    assert [key for _, key in bucket.calls] == [
        f"tokens/{'2' * 26}.json",
        f"tokens/{'7' * 26}.json",
        f"tokens/{'z' * 26}.json",
    ]


def test_a_new_token_is_warm_where_it_was_made_for_five_seconds(bucket):
    clock = Clock()
    made, other = tokens_on(bucket, clock), tokens_on(bucket, clock)
    created = made.create(json.dumps(REQUEST).encode())
    assert made.get(created.token) == created
    assert [call for call, _ in bucket.calls] == ["put_json"]  # not read back
    other.revoke(created.token)
    clock.now += 4.9
    assert made.get(created.token) == created
    clock.now += 0.1
    assert "was revoked" in refused(made.get, created.token).message


def test_a_revocation_is_warm_for_five_seconds(bucket):
    clock = Clock()
    tokens = tokens_on(bucket, clock)
    created = tokens.create(json.dumps(REQUEST).encode())
    tokens.revoke(created.token)
    calls = len(bucket.calls)
    assert "was revoked" in refused(tokens.get, created.token).message
    assert len(bucket.calls) == calls  # not read back
    bucket.expire("tokens/")  # the lifecycle removed the tombstone
    clock.now += 5
    error = refused(tokens.get, created.token)
    assert error.message == f"unknown container token {created.token}"


def test_a_warm_instance_holds_the_last_1024_tokens_it_read(bucket):
    tokens = tokens_on(bucket, Clock())
    made = [tokens.create(json.dumps(REQUEST).encode()).token for _ in range(1024)]
    reads = lambda: [key for call, key in bucket.calls if call == "get_json"]  # noqa: E731
    tokens.get(made[0])
    assert reads() == []
    tokens.create(json.dumps(REQUEST).encode())  # the 1025th: the least recently used goes
    tokens.get(made[0])
    assert reads() == []
    tokens.get(made[1])
    assert reads() == [f"tokens/{made[1]}.json"]
