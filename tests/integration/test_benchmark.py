"""`make bench` on a tiny image: every figure is there, and no layer byte passed through.

The benchmark runs as `make bench` runs it (a subprocess with the same `PYTHONPATH`), with
a 1 MiB base image, one repetition and a few latency rounds, so it stays well under a
minute; the figures themselves are not judged here, only that each was measured.

The cost of a million pulls is checked for shape, not for amounts: a table per upstream,
every dollar figure finite and non-negative, and the measured inputs it is computed from
non-zero where a pull cannot do without them (requests, log lines, a cold pull's S3 reads
and writes, the presigned GETs of layers mirrored from the plain upstream).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.procs import clean_env
from harness.tools import require

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
KINDS = ("redirecting", "plain")
WAYS = ("direct", "proxied_cold", "proxied_warm", "wrapped_cold", "wrapped_warm")
COST_ITEMS = (
    "api",
    "lambda_requests",
    "lambda_compute",
    "snapstart_restore",
    "s3_requests",
    "logs",
    "total",
    "transfer_out",
)
LATENCIES = (
    "GET /v2/",
    "proxy manifest GET by tag",
    "proxy manifest HEAD by tag",
    "proxy manifest GET by digest",
    "proxy blob GET -> 307 (S3 copy)",
    "wrap manifest, first pull (composes)",
    "wrap manifest, warm (memory)",
    "wrap config blob -> 307 (presign)",
    "wrap layer blob -> 307",
    "wrap manifest, new process (S3 hit)",
    "compose_image (pure, in process)",
    "compose_image, 50,000 Env, labels and history entries a side (pure)",
)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    for tool in ("skopeo", "docker-registry", "busybox"):
        require(tool)
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    pythonpath = os.pathsep.join(
        str(ROOT / part) for part in ("layers/ociwrap", "functions/registry", "dev", "tests")
    )
    argv = [sys.executable, str(ROOT / "tests" / "benchmark.py")]
    argv += ["--size-mib", "1", "--repetitions", "1", "--rounds", "3", "--import-rounds", "1"]
    argv += ["--json", str(out)]
    result = subprocess.run(
        argv,
        env=clean_env({"PYTHONPATH": pythonpath}),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return json.loads(out.read_text()), result.stdout


def test_every_full_pull_figure(report: tuple[dict[str, Any], str]) -> None:
    data, _ = report
    assert data["environment"]["image"]["size_mib"] == 1
    assert data["environment"]["image"]["layer_bytes"] >= 1024 * 1024
    assert data["environment"]["repetitions"] == 1
    assert set(data["pulls"]) == set(KINDS)
    for kind in KINDS:
        ways = data["pulls"][kind]["ways"]
        assert tuple(ways) == WAYS
        for way, entry in ways.items():
            assert len(entry["seconds"]) == 1
            assert 0 < entry["min_s"] <= entry["median_s"] <= entry["max_s"]
            assert entry["ratio_to_direct"] > 0
            assert entry["fetched_bytes"] >= data["environment"]["image"]["layer_bytes"]
            assert entry["upstream_requests_total_per_pull"] >= 0
            if way == "direct":
                assert entry["ratio_to_direct"] == 1
                assert entry["upstream_requests_per_pull"]["manifest GET"] == 1
                assert "ociwrap" not in entry
            else:
                ociwrap = entry["ociwrap"]
                assert ociwrap["requests_per_pull"] > 0
                assert ociwrap["manifest_bytes_per_pull"] > 0
                assert ociwrap["blob_gets"] > 0
                assert set(ociwrap["blob_statuses"]) == {"307"}
        assert set(data["pulls"][kind]["peak_rss_mb"]) == {"proxied", "wrapped"}
        assert all(peak > 0 for peak in data["pulls"][kind]["peak_rss_mb"].values())
    # Only a cold pull of an upstream that serves bytes itself reads its blobs: to copy them.
    plain = data["pulls"]["plain"]["ways"]
    assert plain["proxied_cold"]["upstream_requests_per_pull"]["blob GET"] >= 5
    assert plain["proxied_warm"]["upstream_requests_total_per_pull"] == 0


def test_no_layer_byte_through_ociwrap(report: tuple[dict[str, Any], str]) -> None:
    data, _ = report
    for kind in KINDS:
        for way in WAYS[1:]:
            assert data["pulls"][kind]["ways"][way]["ociwrap"]["blob_bytes"] == 0, (kind, way)
    total = data["ociwrap_blob_answers"]
    assert total["blob_gets"] > 0
    assert total["bytes"] == 0
    assert data["misdeeds"] == []


def test_the_other_figures(report: tuple[dict[str, Any], str]) -> None:
    data, _ = report
    rows = {row["what"]: row for row in data["latency"]["rows"]}
    assert tuple(rows) == LATENCIES
    assert all(row["n"] > 0 and row["median_ms"] > 0 for row in rows.values())
    assert data["latency"]["upstream_requests"]["first_wrap_pull"] > 0
    assert data["latency"]["upstream_requests"]["later_pull_new_process"] >= 0
    assert all(peak > 0 for peak in data["latency"]["peak_rss_mb"].values())
    for key in ("bare_interpreter_ms", "import_app_ms", "import_and_build_service_ms"):
        assert data["import"][key]["median"] > 0
    assert data["run_seconds"] > 0


def test_login_costs(report: tuple[dict[str, Any], str]) -> None:
    data, markdown = report
    logins = data["logins"]
    assert logins["cost"] == 12
    rows = {row["what"]: row for row in logins["rows"]}
    assert tuple(rows) == ("wrong password of a known user", "unknown user")
    assert all(row["n"] >= 3 and row["median_ms"] > 0 for row in rows.values())
    assert logins["unknown_to_wrong_ratio"] > 0
    assert "## Logins" in markdown
    assert "Unknown user to wrong password: **" in markdown


def test_markdown_report(report: tuple[dict[str, Any], str]) -> None:
    _, markdown = report
    for heading in (
        "# ociwrap benchmark",
        "## Full pulls",
        "### redirecting:",
        "### plain:",
        "## Layer bytes in ociwrap's responses",
        "## Request latencies",
        "## Upstream requests for wrapped names",
        "## Memory",
        "## Logins",
        "## Cold start",
    ):
        assert heading in markdown
    assert "127.0.0.1" in markdown
    assert "**0 bytes**" in markdown


def _figure(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value >= 0


def test_cost_of_a_million_pulls(report: tuple[dict[str, Any], str]) -> None:
    data, _ = report
    priced = data["costs"]
    assert priced["region"] == "us-east-1"
    assert priced["function"]["memory_mb"] >= 128
    assert priced["function"]["architecture"] in ("arm64", "x86_64")
    assert {p["key"] for p in priced["prices"]} >= {"api_request", "s3_get", "s3_put"}
    assert all(_figure(p["usd"]) and p["usd"] > 0 for p in priced["prices"])
    assert _figure(priced["snapstart_cache_per_month"])
    assert set(priced["per_million_pulls"]) == set(KINDS)
    for kind in KINDS:
        ways = priced["per_million_pulls"][kind]
        assert tuple(ways) == WAYS[1:]
        for way, dollars in ways.items():
            assert tuple(dollars) == COST_ITEMS, (kind, way)
            assert all(_figure(v) for v in dollars.values()), (kind, way, dollars)
            # Every pull has requests, compute and logs; the total sums the items.
            for item in ("api", "lambda_requests", "lambda_compute", "logs"):
                assert dollars[item] > 0, (kind, way, item)
            if way.endswith("_cold") or kind == "plain":
                assert dollars["s3_requests"] > 0, (kind, way)
            items = sum(v for k, v in dollars.items() if k not in ("total", "transfer_out"))
            assert abs(dollars["total"] - items) < 1e-4
            assert (dollars["snapstart_restore"] > 0) == way.endswith("_cold")
    # Layers of an upstream that serves bytes itself are downloaded from our bucket.
    for way in WAYS[1:]:
        assert priced["per_million_pulls"]["plain"][way]["transfer_out"] > 0


def test_measured_inputs_of_the_cost(report: tuple[dict[str, Any], str]) -> None:
    data, _ = report
    for kind in KINDS:
        for way in WAYS[1:]:
            used = data["pulls"][kind]["ways"][way]["ociwrap"]["cost_inputs"]
            assert all(_figure(v) for v in used.values()), (kind, way, used)
            assert used["requests"] > 0
            assert used["billed_ms"] >= used["requests"]  # at least 1 ms each
            # One `request` line per request, and the EMF documents beside them.
            assert used["request_lines"] == used["requests"], (kind, way)
            assert used["log_lines"] > used["request_lines"]
            assert used["log_bytes"] > 100 * used["log_lines"]
            # moto saw at least the S3 calls the function logged (retries would add more).
            seen = used["s3_get"] + used["s3_put"] + used["s3_free"] - used["s3_client_get"]
            assert seen >= used["s3_calls_logged"], (kind, way)
            cold = way.endswith("_cold")
            assert used["restores"] == (1 if cold else 0)
            if cold:  # an empty bucket: looked up, then written with what was fetched or made
                assert used["s3_calls_logged"] > 0, (kind, way)
                assert used["s3_get"] > 0 and used["s3_put"] > 0, (kind, way)
    # Clients fetch the plain upstream's mirrored layers from our bucket with presigned GETs.
    image_bytes = data["environment"]["image"]["layer_bytes"]
    for way in WAYS[1:]:
        used = data["pulls"]["plain"]["ways"][way]["ociwrap"]["cost_inputs"]
        assert used["s3_client_get"] >= 4, way
        assert used["s3_get"] >= used["s3_client_get"]
        assert used["bucket_bytes_out"] >= image_bytes, way


def test_markdown_cost_table(report: tuple[dict[str, Any], str]) -> None:
    _, markdown = report
    section = markdown.split("## Cost of a million pulls", 1)[1].split("## Request latencies")[0]
    head = (
        "| way | API Gateway | Lambda requests | Lambda compute | SnapStart restore | "
        "S3 requests | CloudWatch Logs | total | transfer out (not in total) |"
    )
    assert section.count(head) == len(KINDS)
    for kind in KINDS:
        assert f"### {kind}" in section
    rows = [line for line in section.splitlines() if line.startswith("| proxied, ")]
    rows += [line for line in section.splitlines() if line.startswith("| wrapped, ")]
    assert len(rows) == 4 * len(KINDS)
    for row in rows:
        cells = [cell.strip().strip("*") for cell in row.strip("|").split("|")[1:]]
        assert len(cells) == 8, row
        for cell in cells:
            assert cell.startswith("$"), row
            assert math.isfinite(float(cell[1:].replace(",", ""))), row
    assert "| upstream | way | requests | Lambda ms billed |" in section
    assert "Prices (us-east-1, checked" in section
    assert "| S3 Standard PUT, COPY, POST, LIST | 0.005 | 1,000 requests |" in section
    assert "Not included:" in section
