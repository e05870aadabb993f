"""The local gateway's pure parts (`dev/ociwrap_local`): the payload-2.0 events it builds, the
results it decodes, the Lambda clock, one event at a time per instance, its access log.

The gateway as a process (workers, request bodies, signals, the embedded S3) is tested
in `tests/integration/test_local_gateway.py`.
"""

from __future__ import annotations

import ast
import base64
import re
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from ociwrap_local import events as events_module
from ociwrap_local.events import LocalContext, build_event, decode_result
from ociwrap_local.instance import Instance
from ociwrap_local.server import access_log_lines

REPO_ROOT = Path(__file__).resolve().parents[2]
ACCESS_LINE = re.compile(r'"(GET|HEAD) (/v2/\S+) HTTP/1.1" (\d+) (\d+)')

# -- events, results, the Lambda clock (in-process) -------------------------------------


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


def test_a_result_without_status_code_is_its_own_json_body():
    assert decode_result({"ok": True}) == (
        200,
        [("Content-Type", "application/json")],
        b'{"ok": true}',
    )


def test_remaining_time_counts_down_from_the_29_s_timeout(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(events_module.time, "monotonic", lambda: clock[0])
    context = LocalContext()
    assert context.get_remaining_time_in_millis() == 29_000
    clock[0] += 12.5
    assert context.get_remaining_time_in_millis() == 16_500
    clock[0] += 20
    assert context.get_remaining_time_in_millis() == 0


def test_an_instance_hands_its_handler_one_event_at_a_time():
    inside: list[int] = []
    overlaps: list[int] = []

    def handler(event: dict, context: object) -> dict:
        inside.append(1)
        overlaps.append(len(inside))
        time.sleep(0.05)
        inside.pop()
        return {"statusCode": 200, "body": ""}

    instance = Instance(handler)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: instance.invoke(build_event("GET", "/", [], b"")), range(8)))
    assert overlaps == [1] * 8


def test_the_access_log_line_carries_the_handlers_time():
    (line,) = access_log_lines("127.0.0.1", "GET /v2/x HTTP/1.1", 307, 0, 0.0123, 0.02)
    assert line == '127.0.0.1 "GET /v2/x HTTP/1.1" 307 0 12.3ms'
    assert ACCESS_LINE.search(line)


def test_requests_beyond_api_gateways_30_s_are_logged_as_deadline_exceeded():
    late = access_log_lines("127.0.0.1", "GET /v2/x HTTP/1.1", 200, 2, 10.0, 30.5)
    assert len(late) == 2 and "DEADLINE EXCEEDED" in late[1] and "GET /v2/x" in late[1]
    killed = access_log_lines("127.0.0.1", "HEAD /v2/y HTTP/1.1", 200, 0, 29.2, 29.3, True)
    assert "DEADLINE EXCEEDED" in killed[1] and "HEAD /v2/y" in killed[1]
    assert len(access_log_lines("127.0.0.1", "GET /v2/ HTTP/1.1", 200, 2, 29.0, 29.9)) == 1


# -- the layer ships no development tool ------------------------------------------------


def test_the_layer_has_no_gateway_and_imports_neither_the_function_nor_the_dev_package():
    layer = REPO_ROOT / "layers" / "ociwrap"
    assert not (layer / "ociwrap" / "gateway.py").exists()
    assert not (layer / "ociwrap" / "gateway").exists()
    forbidden = {"app", "routes", "ociwrap_local"}
    found = []
    for path in sorted(layer.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            found += [f"{path}: {n}" for n in names if n.split(".")[0] in forbidden]
    assert found == []


# -- a real gateway process --------------------------------------------------------------
