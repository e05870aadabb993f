"""`make bench` on a tiny image: every figure is there, and no layer byte passed through.

The benchmark runs as `make bench` runs it (a subprocess with the same `PYTHONPATH`), with
a 1 MiB base image, one repetition and a few latency rounds, so it stays well under a
minute; the figures themselves are not judged here, only that each was measured.
"""

from __future__ import annotations

import json
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
        "## Cold start",
    ):
        assert heading in markdown
    assert "127.0.0.1" in markdown
    assert "**0 bytes**" in markdown
