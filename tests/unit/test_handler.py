"""The Lambda handler, fed payload-2.0 events: routing, errors, no tracebacks, no escapes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

import app
from doubles.bucket import MemoryBucket
from ociwrap_local.events import LocalContext, build_event

EVENTS = Path(__file__).resolve().parents[2] / "events"
DIGEST = "sha256:" + "ab" * 32


@pytest.fixture
def bucket(monkeypatch, on_doubles) -> MemoryBucket:
    """The registry's bucket in memory; upstreams over HTTP, as deployed."""
    monkeypatch.setenv("ARTIFACT_BUCKET", "unit-bucket")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("REGISTRY_ALIASES", "")
    monkeypatch.delenv("S3_ENDPOINT_URL", raising=False)
    return on_doubles()


@pytest.fixture
def handler(bucket, no_network):
    """The real handler over the in-memory bucket, with the network switched off."""

    def call(method: str, path: str, headers=()) -> dict:
        event = build_event(method, path, list(headers), b"")
        return app.lambda_handler(event, LocalContext(aws_request_id="unit"))

    return call


def errors_of(result: dict) -> list[dict]:
    return json.loads(result["body"])["errors"]


@pytest.mark.parametrize("path", ["/v2/", "/v2"])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_ping(handler, method, path):
    result = handler(method, path)
    assert result["statusCode"] == 200
    assert result["headers"]["Docker-Distribution-API-Version"] == "registry/2.0"


@pytest.mark.parametrize("method", ["PUT", "POST", "PATCH", "DELETE"])
@pytest.mark.parametrize(
    "path", ["/v2/a/b/manifests/1", f"/v2/a/blobs/{DIGEST}", "/v2/a/blobs/uploads/"]
)
def test_writes_are_unsupported(handler, method, path):
    result = handler(method, path)
    assert result["statusCode"] == 405
    assert errors_of(result)[0]["code"] == "UNSUPPORTED"
    assert "pull-only" in errors_of(result)[0]["message"]


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/v2/Upper/manifests/latest", 400, "NAME_INVALID"),
        ("/v2/a/manifests/bad:ref", 400, "DIGEST_INVALID"),
        ("/v2/a/blobs/sha256:nothex", 400, "DIGEST_INVALID"),
        ("/v2/a/manifests/-bad-tag", 404, "MANIFEST_UNKNOWN"),
        ("/v2/a/blobs/uploads/123", 404, "NAME_UNKNOWN"),
        ("/nothing-here", 404, "NAME_UNKNOWN"),
    ],
)
def test_bad_requests_get_spec_errors(handler, path, status, code, no_network):
    result = handler("GET", path)
    assert result["statusCode"] == status
    assert errors_of(result)[0]["code"] == code
    assert no_network == []


@pytest.mark.parametrize(
    "name", ["169.254.169.254/latest", "10.0.0.1/x", "127.0.0.1/x", "localhost/x"]
)
def test_private_upstreams_are_refused_without_a_packet(handler, name, no_network):
    result = handler("GET", f"/v2/{name}/manifests/latest")
    assert result["statusCode"] == 403
    error = errors_of(result)[0]
    assert error["code"] == "DENIED"
    assert "REGISTRY_ALIASES" in error["message"]
    assert not [a for a in no_network if a[0] == "connect"]


def test_unreachable_upstream_is_a_502_naming_it(handler):
    result = handler("GET", "/v2/library/busybox/manifests/latest")
    assert result["statusCode"] == 502
    error = errors_of(result)[0]
    assert error["code"] == "UNAVAILABLE"
    assert "docker.io" in error["message"]
    assert "Traceback" not in result["body"]


def test_storage_failures_are_a_503_without_trace(handler, bucket):
    def no_such_bucket(key: str) -> None:
        error = {"Code": "NoSuchBucket", "Message": "The specified bucket does not exist"}
        raise ClientError({"Error": error}, "GetObject")

    for method in ("get_manifest", "get_json", "get_blob", "blob_size", "blob_written"):
        bucket.before[method] = no_such_bucket
    result = handler("GET", f"/v2/library/busybox/manifests/{DIGEST}")
    assert result["statusCode"] == 503
    assert errors_of(result)[0]["code"] == "UNAVAILABLE"
    assert "S3" in errors_of(result)[0]["message"]
    assert "Traceback" not in result["body"]


def test_head_errors_have_no_body(handler):
    result = handler("HEAD", "/v2/Upper/manifests/latest")
    assert result["statusCode"] == 400
    assert result["body"] == ""


@pytest.mark.parametrize("event_file", sorted(EVENTS.glob("*.json")), ids=lambda p: p.name)
def test_sample_events_are_answered(handler, event_file):
    """Every sample event resolves to a registry answer (upstreams are unreachable here)."""
    event = json.loads(event_file.read_text())
    result = app.lambda_handler(event, LocalContext())
    assert result["statusCode"] in (200, 201, 502)
    if event["requestContext"]["http"]["method"] == "HEAD":
        assert result["body"] == ""
    elif result["statusCode"] == 502:
        assert errors_of(result)[0]["code"] == "UNAVAILABLE"


ODD_PATHS = [
    "/v2/a/manifests/",
    "/v2//manifests/1",
    "/v2/../etc/passwd/manifests/1",
    "/v2/%2e%2e/manifests/1",
    "/v2/a/manifests/" + "x" * 200,
    "/v2/" + "a/" * 200 + "manifests/1",
    "/v2/ünïcode/manifests/1",
    "/v2/a/blobs/sha256:" + "A" * 64,
    "/v2/a/blobs/sha512:" + "a" * 128,
    "/v2/a/tags/list?n=abc",
    "/v2/wrap/with/manifests/1",
    "/v2/wrap/a/1/with/manifests/1",
    "/v2/wrap/a/1/with/b/1/with/c/1/manifests/1",
    "/v2/wrap/a/sha256-zz/with/b/1/manifests/1",
    "/v2/wrap/a/1/with/b/1/blobs/sha256:" + "0" * 64,
    "/v2/_catalog",
    "/v2/a/referrers/sha256:" + "0" * 63,
    "/v3/",
    "/index.html",
]


@pytest.mark.parametrize("path", ODD_PATHS)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_odd_requests_never_crash_or_escape(handler, no_network, method, path):
    result = handler(method, path)
    assert 400 <= result["statusCode"] < 600
    assert result["statusCode"] != 500
    if method == "GET":
        assert errors_of(result)[0]["message"]
    assert not [a for a in no_network if a[0] == "connect"]
