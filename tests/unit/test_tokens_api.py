"""The container token API through the handler: create, read, revoke, expire, limits.

The in-memory bucket; pulls of token images are integration tests.
"""

from __future__ import annotations

import base64
import json
import re

import pytest

import app
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
