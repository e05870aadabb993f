"""The sample events in events/ have the exact shape of API Gateway HTTP API payload 2.0.

They are what `sam local invoke -e events/<name>.json` feeds the handler, so they must
look like what API Gateway sends: lower-cased header names, repeated headers joined with
commas, the `$default` route and stage, no payload-1.0 fields.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

EVENTS = Path(__file__).resolve().parents[2] / "events"
EXPECTED = {
    "ping.json": ("GET", "/v2/"),
    "manifest-get.json": ("GET", "/v2/library/busybox/manifests/latest"),
    "manifest-head.json": ("HEAD", "/v2/library/busybox/manifests/latest"),
    "blob-get.json": ("GET", "/v2/library/busybox/blobs/sha256:"),
    "wrap-manifest-get.json": (
        "GET",
        "/v2/wrap/ubuntu/22.04/with/ghcr.io/acme/wrapper/v1/manifests/latest",
    ),
    "token-create.json": ("POST", "/v1alpha/tokens"),
}
MANIFEST_TYPES = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
]
PAYLOAD_1_FIELDS = {
    "resource",
    "path",
    "httpMethod",
    "multiValueHeaders",
    "multiValueQueryStringParameters",
}
REQUEST_CONTEXT_KEYS = {
    "accountId",
    "apiId",
    "domainName",
    "domainPrefix",
    "http",
    "requestId",
    "routeKey",
    "stage",
    "time",
    "timeEpoch",
}
HTTP_KEYS = {"method", "path", "protocol", "sourceIp", "userAgent"}
EVENT_FILES = sorted(EVENTS.glob("*.json"))


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def test_the_sample_events_are_all_there() -> None:
    assert set(EXPECTED) <= {path.name for path in EVENT_FILES}


@pytest.mark.parametrize("path", EVENT_FILES, ids=lambda p: p.name)
def test_event_has_the_payload_2_0_shape(path: Path) -> None:
    event = _load(path)
    assert event["version"] == "2.0"
    assert event["routeKey"] == "$default"
    assert event["rawPath"].startswith(("/v2", "/v1alpha/"))
    assert isinstance(event["rawQueryString"], str)
    assert event["isBase64Encoded"] is False
    assert not PAYLOAD_1_FIELDS & event.keys(), "payload 1.0 fields in a 2.0 event"
    if "queryStringParameters" in event:
        assert event["rawQueryString"], "queryStringParameters without a query string"

    headers = event["headers"]
    assert headers, "API Gateway always passes headers"
    for name, value in headers.items():
        assert name == name.lower(), f"header {name!r} is not lower-cased"
        assert isinstance(value, str), f"header {name!r} is not one comma-joined string"

    context = event["requestContext"]
    assert context.keys() >= REQUEST_CONTEXT_KEYS
    assert context["routeKey"] == "$default"
    assert context["stage"] == "$default"
    assert context["domainName"] == headers["host"]
    assert context["domainPrefix"] == context["domainName"].split(".")[0]
    http = context["http"]
    assert http.keys() >= HTTP_KEYS
    assert http["method"] in {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
    assert http["path"] == event["rawPath"]
    assert http["protocol"] == "HTTP/1.1"
    assert http["userAgent"] == headers["user-agent"]
    assert http["sourceIp"] == headers["x-forwarded-for"].split(",")[-1].strip()


@pytest.mark.parametrize("path", EVENT_FILES, ids=lambda p: p.name)
def test_event_time_and_epoch_agree(path: Path) -> None:
    context = _load(path)["requestContext"]
    when = datetime.strptime(context["time"], "%d/%b/%Y:%H:%M:%S %z")
    epoch = datetime.fromtimestamp(context["timeEpoch"] / 1000, UTC)
    assert abs((epoch - when).total_seconds()) < 1


@pytest.mark.parametrize(("name", "expected"), sorted(EXPECTED.items()))
def test_event_is_the_request_its_name_says(name: str, expected: tuple[str, str]) -> None:
    method, path = expected
    event = _load(EVENTS / name)
    assert event["requestContext"]["http"]["method"] == method
    if path.endswith("sha256:"):
        digest = event["rawPath"].removeprefix(path)
        assert len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)
    else:
        assert event["rawPath"] == path


@pytest.mark.parametrize(
    "name", ["manifest-get.json", "manifest-head.json", "wrap-manifest-get.json"]
)
def test_manifest_events_accept_every_manifest_type_comma_joined(name: str) -> None:
    accept = _load(EVENTS / name)["headers"]["accept"]
    assert [part.strip() for part in accept.split(",")] == MANIFEST_TYPES


def test_events_have_the_keys_the_local_gateway_builds() -> None:
    """The samples and `make run`'s gateway describe the same API Gateway event."""
    from ociwrap_local import events as gateway

    for path in EVENT_FILES:
        event = _load(path)
        body = event.get("body", "").encode()
        headers = [("Host", "localhost:5000"), ("User-Agent", "test")]
        if body:
            headers.append(("Content-Type", event["headers"]["content-type"]))
        built = gateway.build_event(event["requestContext"]["http"]["method"], "/", headers, body)
        assert event.keys() == built.keys(), path.name
        assert event["requestContext"].keys() == built["requestContext"].keys(), path.name
        assert event["requestContext"]["http"].keys() == built["requestContext"]["http"].keys(), (
            path.name
        )
