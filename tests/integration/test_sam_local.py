"""`sam local start-api` serves the built registry: proof that SAM's local gateway works.

One scenario (`harness.sam_local_scenario`) runs per module, in network, mount and pid
namespaces of its own with nothing but loopback (and the bridge podman makes there):
podman's Docker API as the engine, a stand-in Lambda python3.12 base image made from this
machine's files, SAM on `.aws-sam/host` (`make sam-build`), moto's S3 and a real upstream
registry, skopeo as the client. The tests below assert on the JSON report it writes; each
says which part of it failed. The last group pins how SAM's gateway differs from API
Gateway, so that the README's list of differences stays true (see TESTING.md).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from harness.sam_local import run_scenario

pytestmark = pytest.mark.integration

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The scenario's report (it runs once for all the tests of this module)."""
    return run_scenario(tmp_path_factory.mktemp("sam-local"))


def need(report: dict[str, Any], *keys: str) -> Any:
    """`report[keys[0]][keys[1]]...`, or fail with what the scenario recorded instead:
    the steps that failed (with tracebacks) and where the logs are."""
    value: Any = report
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            errors = "\n".join(f"--- {step} ---\n{text}" for step, text in report["errors"].items())
            pytest.fail(
                f"the scenario recorded no {'/'.join(keys)}\n{errors or '(no step failed)'}\n"
                f"scenario log: {report.get('scenario_log')}, SAM log: {report.get('sam_log')}",
                pytrace=False,
            )
        value = value[key]
    return value


def header(answer: dict[str, Any], name: str) -> str | None:
    """The value of header `name` (any case) in a recorded answer; None if absent."""
    values = [value for key, value in answer["headers"] if key.lower() == name.lower()]
    assert len(values) <= 1, f"{name} repeated in {answer['headers']}"
    return values[0] if values else None


def test_every_step_ran_without_error(report: dict[str, Any]) -> None:
    errors = "\n".join(f"--- {step} ---\n{text}" for step, text in report["errors"].items())
    assert not report["errors"], f"{errors}\nSAM log: {report.get('sam_log')}"
    assert report["exit"] == 0, f"scenario exit {report['exit']}; log {report['scenario_log']}"
    print(f"\nsam local scenario: {report['wall_seconds']} s wall, steps {report['timings']}")


def test_the_namespace_reaches_nothing_beyond_itself(report: dict[str, Any]) -> None:
    """Loopback only before anything starts; then only the bridge podman made; no route out."""
    assert need(report, "pid") == 1  # its own pid namespace: what it leaves dies with it
    assert need(report, "interfaces_at_start") == ["lo"]
    with_sam = need(report, "interfaces_with_sam")
    assert "podman0" in with_sam
    assert all(name in ("lo", "podman0") or name.startswith("veth") for name in with_sam)
    for route in need(report, "routes_at_start") + need(report, "routes_with_sam"):
        assert not route.startswith("default"), route
    gateway = need(report, "bridge_gateway")
    assert gateway.startswith("10.88.")  # podman's default bridge: a private address


def test_ping_answers_with_the_api_version(report: dict[str, Any]) -> None:
    ping = need(report, "probes", "ping")
    assert ping["status"] == 200
    assert header(ping, "Docker-Distribution-API-Version") == "registry/2.0"
    assert ping["json"] == {}


def test_a_bad_name_gets_the_spec_error(report: dict[str, Any]) -> None:
    bad = need(report, "probes", "bad_name")
    assert bad["status"] == 400
    assert [error["code"] for error in bad["json"]["errors"]] == ["NAME_INVALID"]
    assert "Library" in bad["json"]["errors"][0]["message"]
    head = need(report, "probes", "bad_name_head")
    assert (head["status"], head["body_length"]) == (400, 0)
    push = need(report, "probes", "push")
    assert push["status"] == 405
    assert push["json"]["errors"][0]["code"] == "UNSUPPORTED"


def test_skopeo_copies_the_proxied_image_as_the_upstream_has_it(report: dict[str, Any]) -> None:
    upstream = need(report, "upstream", "base")
    copied = need(report, "proxied")
    assert copied["digest"] == copied["digest_of_bytes"] == upstream["digest"]
    assert copied["config_digest"] == upstream["config_digest"]
    assert copied["config"] == upstream["config"]
    assert copied["layers"] == upstream["layers"]


def test_skopeo_copies_the_wrapped_image_with_the_wrappers_entrypoint(
    report: dict[str, Any],
) -> None:
    base = need(report, "upstream", "base")
    wrapper = need(report, "upstream", "wrapper")
    wrapped = need(report, "wrapped")
    script = wrapper["config"]["config"]["Labels"]["org.goci.wrapper"]
    entrypoint = wrapped["config"]["config"]["Entrypoint"]
    assert entrypoint[0] == script
    assert entrypoint[1:] == base["config"]["config"].get("Entrypoint", [])
    assert wrapped["config"]["config"]["Cmd"] == base["config"]["config"]["Cmd"]
    assert wrapped["layers"] == base["layers"] + wrapper["layers"]
    assert wrapped["digest"] == wrapped["digest_of_bytes"]
    assert (
        wrapped["manifest"]["annotations"]["org.opencontainers.image.base.digest"]
        == (base["digest"])
    )


def test_blobs_reach_the_client_by_307_to_presigned_s3(report: dict[str, Any]) -> None:
    """skopeo followed the redirects: moto saw its presigned GETs, from this namespace's side
    of the bridge (the function's own S3 calls come from the container's address)."""
    gateway = need(report, "bridge_gateway")
    bucket = need(report, "env_vars", "RegistryFunction", "ARTIFACT_BUCKET")
    s3 = urlsplit(need(report, "env_vars", "RegistryFunction", "S3_ENDPOINT_URL"))
    blob = need(report, "probes", "blob_get")
    assert blob["status"] == 307
    location = urlsplit(header(blob, "Location") or "")
    assert (location.scheme, location.netloc) == ("http", s3.netloc)
    assert location.path.startswith(f"/{bucket}/blobs/sha256/")
    assert header(blob, "Content-Length") == "0"
    fetched = need(report, "presigned_requests")
    by_client = {(r["client"], r["path"].rsplit("/", 1)[-1], r["status"]) for r in fetched}
    wanted = (
        need(report, "upstream", "base")["layers"] + need(report, "upstream", "wrapper")["layers"]
    )
    wanted += [need(report, "proxied", "config_digest"), need(report, "wrapped", "config_digest")]
    for digest in wanted:
        assert (gateway, digest.removeprefix("sha256:"), 200) in by_client, digest


def test_heads_carry_the_real_length_and_digest(report: dict[str, Any]) -> None:
    """containerd builds its descriptor from a manifest HEAD: SAM must keep Content-Length."""
    get = need(report, "probes", "manifest_get")
    head = need(report, "probes", "manifest_head")
    assert (get["status"], head["status"]) == (200, 200)
    assert header(head, "Content-Length") == str(get["body_length"]) != "0"
    assert header(head, "Docker-Content-Digest") == header(get, "Docker-Content-Digest")
    assert header(head, "Content-Type") == OCI_MANIFEST
    assert head["body_length"] == 0
    blob = need(report, "probes", "blob_head")
    assert blob["status"] == 200
    assert int(header(blob, "Content-Length") or 0) > 0


def test_repeated_accept_headers_reach_the_handler(report: dict[str, Any]) -> None:
    """Two `Accept` lines (Docker's type, then OCI's) get the OCI manifest, which the first
    line alone does not: SAM joins repeated headers with commas, as API Gateway does."""
    answer = need(report, "probes", "accept_twice")
    assert answer["status"] == 200
    assert header(answer, "Content-Type") == OCI_MANIFEST
    first_only = need(report, "probes", "accept_docker_only")
    assert first_only["status"] == 404
    assert first_only["json"]["errors"][0]["code"] == "MANIFEST_UNKNOWN"


def test_everything_started_was_stopped(report: dict[str, Any]) -> None:
    stops = {step: text for step, text in report["errors"].items() if step.startswith("stop")}
    assert not stops, stops
    assert need(report, "containers_after_cleanup") == []
    assert need(report, "leftover_processes") == []
    assert need(report, "interfaces_at_end") == ["lo"]


# -- how SAM's local gateway differs from API Gateway (the README lists these) -------------


def test_sam_closes_every_connection(report: dict[str, Any]) -> None:
    for name, answer in need(report, "probes").items():
        assert header(answer, "Connection") == "close", name


def test_sam_adds_a_json_content_type_to_bodiless_answers(report: dict[str, Any]) -> None:
    """The handler sets no Content-Type on a redirect; SAM's gateway adds one."""
    blob = need(report, "probes", "blob_get")
    assert (blob["status"], blob["body_length"]) == (307, 0)
    assert header(blob, "Content-Type") == "application/json"


def test_sam_decodes_encoded_slashes_in_the_path(report: dict[str, Any]) -> None:
    """`local%2Flibrary%2Fbusybox` reaches the handler as `local/library/busybox` (SAM puts
    the decoded path in `rawPath`), so the request succeeds; API Gateway passes rawPath as
    sent, where it is no valid repository name."""
    encoded = need(report, "probes", "encoded_slash")
    assert "%2F" in encoded["path"]
    assert encoded["status"] == 200
    assert header(encoded, "Docker-Content-Digest") == need(report, "upstream", "base", "digest")


def test_sam_left_no_warm_container_after_sigterm(report: dict[str, Any]) -> None:
    """Stopped with SIGTERM, SAM deletes its EAGER container itself (the harness still
    sweeps podman's storage afterwards, for a SAM that was killed)."""
    assert len(need(report, "containers_running")) == 1
    assert need(report, "sam_exit") == 0
    assert need(report, "containers_after_sam") == []
