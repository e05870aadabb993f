"""The local gateway builds the events API Gateway builds and writes back what it would."""

from __future__ import annotations

import base64
import http.client
import threading
from datetime import UTC, datetime

import pytest

from ociwrap.gateway import build_event, decode_result, make_server


def test_event_shape_matches_payload_2():
    event = build_event(
        "get",
        "/v2/a/b/manifests/latest?n=1&n=2&last=x",
        [
            ("Accept", "application/vnd.oci.image.index.v1+json"),
            ("Accept", "application/vnd.docker.distribution.manifest.v2+json"),
            ("Host", "registry.example.com"),
            ("Cookie", "a=1; b=2"),
        ],
        b"",
        now=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    assert event["version"] == "2.0"
    assert event["routeKey"] == "$default"
    assert event["rawPath"] == "/v2/a/b/manifests/latest"
    assert event["rawQueryString"] == "n=1&n=2&last=x"
    assert event["queryStringParameters"] == {"n": "1,2", "last": "x"}
    assert event["headers"]["accept"] == (
        "application/vnd.oci.image.index.v1+json,"
        "application/vnd.docker.distribution.manifest.v2+json"
    )
    assert "cookie" not in event["headers"]
    assert event["cookies"] == ["a=1", "b=2"]
    context = event["requestContext"]
    assert context["http"]["method"] == "GET"
    assert context["stage"] == "$default"
    assert context["domainName"] == "registry.example.com"
    assert context["time"] == "02/Jan/2026:03:04:05 +0000"
    assert context["timeEpoch"] == 1767323045000
    assert event["isBase64Encoded"] is False
    assert "body" not in event


def test_binary_bodies_are_base64():
    event = build_event("PUT", "/v2/x", [("Content-Type", "application/octet-stream")], b"\x00\xff")
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\x00\xff"
    text = build_event("POST", "/v2/x", [("Content-Type", "application/json")], b'{"a":1}')
    assert text["body"] == '{"a":1}' and text["isBase64Encoded"] is False


def test_decode_result_handles_base64_and_cookies():
    status, headers, body = decode_result(
        {
            "statusCode": 201,
            "headers": {"X-A": "1"},
            "cookies": ["c=1"],
            "body": base64.b64encode(b"\x01\x02").decode(),
            "isBase64Encoded": True,
        }
    )
    assert (status, body) == (201, b"\x01\x02")
    assert ("X-A", "1") in headers and ("Set-Cookie", "c=1") in headers


@pytest.fixture
def served():
    seen: list[dict] = []

    def handler(event, context):
        seen.append(event)
        return {
            "statusCode": 200,
            "headers": {"Content-Type": "application/json", "Content-Length": "1234"},
            "body": "" if event["requestContext"]["http"]["method"] == "HEAD" else '{"ok":true}',
        }

    server = make_server("127.0.0.1", 0, handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], seen
    server.shutdown()
    server.server_close()


def test_head_keeps_the_handlers_length_get_gets_the_real_one(served):
    port, seen = served
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("HEAD", "/v2/x/manifests/1")
    head = conn.getresponse()
    head.read()
    assert head.getheader("Content-Length") == "1234"
    conn.request("GET", "/v2/x/manifests/1", headers={"Accept": "a/b"})
    get = conn.getresponse()
    assert get.read() == b'{"ok":true}'
    assert get.getheader("Content-Length") == "11"
    assert seen[1]["headers"]["accept"] == "a/b"
    conn.close()
