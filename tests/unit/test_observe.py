"""Each request leaves one structured log line and EMF metrics, and never a secret.

The real handler's service over the in-memory bucket and upstream (aliased `stub`), which
count their calls into the request's telemetry as the S3 client and the HTTP transport
do; what it prints to stdout is what CloudWatch would read.
"""

from __future__ import annotations

import io
import json

import pytest

import app
import observe
from doubles.bucket import MemoryBucket
from doubles.handler import handler_on_memory
from doubles.upstream import MemoryUpstream, digest_of
from ociwrap_local.events import LocalContext, build_event

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture
def bucket() -> MemoryBucket:
    return MemoryBucket()


@pytest.fixture
def call(monkeypatch, bucket, on_doubles, no_network):
    upstream = handler_on_memory(monkeypatch, MemoryUpstream())
    on_doubles(bucket, upstream)

    def call(method: str, path: str, headers=()) -> dict:
        event = build_event(method, path, list(headers), b"")
        return app.lambda_handler(event, LocalContext(aws_request_id="req-1"))

    return call


@pytest.fixture
def logs(monkeypatch):
    """What the Powertools logger writes (its handler's stream was bound at import)."""
    buffer = io.StringIO()
    handler = observe.logger.registered_handler
    previous = handler.setStream(buffer)
    yield buffer
    handler.setStream(previous)


def printed(capsys, logs) -> list[dict]:
    """Every JSON line of stdout (EMF documents) and of the log, read since the last call."""
    text = capsys.readouterr().out + logs.getvalue()
    logs.seek(0)
    logs.truncate()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def request_lines(lines: list[dict]) -> list[dict]:
    return [line for line in lines if line.get("message") == "request"]


def metric_names(lines: list[dict]) -> set[str]:
    names = set()
    for line in lines:
        for directive in line.get("_aws", {}).get("CloudWatchMetrics", []):
            assert directive["Namespace"] == "ociwrap"
            names.update(metric["Name"] for metric in directive["Metrics"])
    return names


def test_one_log_line_per_request_with_what_it_cost(call, capsys, logs):
    assert call("GET", "/v2/stub/team/base/manifests/1")["statusCode"] == 200
    first = request_lines(printed(capsys, logs))
    assert len(first) == 1
    line = first[0]
    assert (line["kind"], line["repository"], line["status"]) == (
        "manifests",
        "stub/team/base",
        200,
    )
    assert line["cache"] == "miss" and line["upstream_calls"] >= 1 and line["s3_calls"] >= 1
    assert line["function_request_id"] == "req-1"
    assert call("GET", "/v2/stub/team/base/manifests/1")["statusCode"] == 200
    again = request_lines(printed(capsys, logs))
    assert len(again) == 1 and again[0]["cache"] == "hit" and again[0]["upstream_calls"] == 0


def test_metrics_are_emf_documents_with_the_expected_names(call, capsys, logs):
    wrap = "/v2/wrap/stub/team/base/1/with/stub/team/wrapper/1/manifests/latest"
    assert call("GET", wrap)["statusCode"] == 200
    lines = printed(capsys, logs)
    assert len(request_lines(lines)) == 1
    assert request_lines(lines)[0]["compositions"] == 1
    assert {
        "Requests",
        "Latency",
        "Errors",
        "UpstreamRequests",
        "UpstreamErrors",
        "S3Requests",
        "Compositions",
        "CacheMisses",
        "RegistryRequests",
        "RegistryErrors",
        "RegistryLatency",
    } <= metric_names(lines)
    registries = {
        line["Registry"] for line in lines if "RegistryRequests" in line and "Registry" in line
    }
    assert registries == {"stub"}
    layer = digest_of(b"layer of team/base")
    assert call("GET", f"/v2/stub/team/base/blobs/{layer}")["statusCode"] == 307
    lines = printed(capsys, logs)
    assert "Redirects" in metric_names(lines)
    assert {line["Target"] for line in lines if "Redirects" in line} == {"s3"}


def test_nothing_secret_is_logged(call, capsys, logs):
    secret = "Basic c2VjcmV0LXVzZXI6c2VjcmV0LXBhc3N3b3Jk"
    call("GET", "/v2/stub/team/base/manifests/1", [("Authorization", secret)])
    output = capsys.readouterr().out + logs.getvalue()
    assert "request" in output
    assert secret not in output and "c2VjcmV0" not in output


def test_a_new_instance_reads_a_composition_from_its_record_alone(call, capsys, logs):
    wrap = "/v2/wrap/stub/team/base/1/with/stub/team/wrapper/1/manifests/latest"
    first = call("GET", wrap)
    printed(capsys, logs)
    app.reset_service()  # a new instance on the same bucket
    again = call("GET", wrap)
    assert again["body"] == first["body"]
    [line] = request_lines(printed(capsys, logs))
    # the two tag records (read at once) and the composition record, which holds the
    # manifest: no read of the manifest itself, and no upstream
    assert (line["s3_calls"], line["upstream_calls"]) == (3, 0)


def test_a_composition_record_whose_manifest_does_not_match_is_not_believed(
    call, bucket, capsys, logs
):
    wrap = "/v2/wrap/stub/team/base/1/with/stub/team/wrapper/1/manifests/latest"
    first = call("GET", wrap)
    [key] = bucket.listing("tags/compositions/")
    record = bucket.get_json(key)
    tampered = record["manifest"].replace('"schemaVersion":2', '"schemaVersion":2,"evil":1')
    assert tampered != record["manifest"]
    record["manifest"] = tampered
    bucket.put_json(key, record)
    app.reset_service()
    again = call("GET", wrap)
    assert again["body"] == first["body"]  # the stored manifest, by the record's digest
    assert '"evil"' not in again["body"]
