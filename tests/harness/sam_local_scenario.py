"""`sam local start-api` end to end, run inside namespaces of its own; reports JSON.

Launched by `harness.sam_local.run_scenario` as
`unshare --net --mount --pid --fork --kill-child --mount-proc python -m harness.sam_local_scenario`:

* network: only loopback at first (checked before anything starts: if the namespace has
  any other interface, nothing is started), then the bridge podman creates for SAM's
  container; nothing can leave the machine. The upstream registry and moto listen on
  0.0.0.0 *of this namespace*, so that the function (behind the bridge, reaching this
  namespace at the bridge's gateway address) and skopeo (here, on loopback or that same
  address) reach the same servers, and S3's presigned URLs name an address both reach.
* mount: a private /run (podman and runc keep state there), gone with the namespace.
* pid: this process is pid 1; whatever it started and failed to stop dies with it.

Steps: bring `lo` up; build the stand-in Lambda base image (`harness.sam_local`); start
podman's Docker API, moto's S3, a `docker-registry` with the test images; start SAM on
the host build of the template; pull through SAM's gateway with skopeo (a proxied and a
wrapped image, blobs by 307 to S3) and probe it with plain HTTP requests; stop
everything by PID, remove SAM's containers, and list any process still alive here.

Every step records what it saw in the report (`--out`, JSON), which is written even when
a step fails (the failure is recorded with its traceback under `errors`); the pytest
side asserts on it. No step asserts anything itself.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from harness.clients import skopeo_copy
from harness.images import (
    Image,
    Pushed,
    push_catalog,
    sha256,
    standard_images,
    write_oci_layout,
)
from harness.moto_s3 import MotoS3
from harness.procs import free_port
from harness.registry import DockerRegistry
from harness.sam_local import (
    BASE_IMAGE,
    PodmanService,
    SamLocalApi,
    write_base_image_tar,
)

BUCKET = "ociwrap-sam-local"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
FUNCTION = "RegistryFunction"  # the template's logical id: `--env-vars` is keyed by it
PROXIED = "local/library/busybox:1"
WRAPPED = "wrap/local/library/busybox/1/with/local/tools/wrapper/1:latest"
#: Image config the stand-in base image gets (`podman import --change`), as Lambda's has.
IMAGE_CHANGES = (
    "ENV PATH=/var/lang/bin:/usr/local/bin:/usr/bin:/bin",
    "ENV LANG=en_US.UTF-8",
    "ENV TZ=:/etc/localtime",
    "ENV LAMBDA_TASK_ROOT=/var/task",
    "ENV LAMBDA_RUNTIME_DIR=/var/runtime",
    "WORKDIR /var/task",
    'ENTRYPOINT ["/var/runtime/bootstrap"]',
)


class Report:
    """The scenario's findings, written to `path` after every step (a crash keeps them)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = {"errors": {}, "timings": {}}
        self.started = time.monotonic()

    def __setitem__(self, key: str, value: Any) -> None:
        self.data[key] = value
        self.write()

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time the step; on failure record the traceback and re-raise."""
        begun = time.monotonic()
        try:
            yield
        except BaseException:
            self.data["errors"][name] = traceback.format_exc()[-6000:]
            raise
        finally:
            self.data["timings"][name] = round(time.monotonic() - begun, 1)
            self.write()

    def write(self) -> None:
        self.data["timings"]["total"] = round(time.monotonic() - self.started, 1)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, default=str))
        tmp.replace(self.path)


# -- the namespace --------------------------------------------------------------------------


def _tool(name: str) -> str:
    """`name` on PATH or in the sbin directories (`ip` lives in /usr/sbin on Debian)."""
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    found = shutil.which(name, path=path)
    if found is None:
        raise RuntimeError(f"{name} not found")
    return found


def interfaces() -> list[str]:
    """The network interfaces of this process's namespace (not /sys's, which is the host's)."""
    return sorted(name for _index, name in socket.if_nameindex())


def routes() -> list[str]:
    """Every IPv4 and IPv6 route of this namespace (all tables): without a default route
    nothing here, nor in a container behind the bridge, can reach another machine."""
    found = []
    for family in ("-4", "-6"):
        result = subprocess.run(
            [_tool("ip"), family, "route", "show", "table", "all"],
            capture_output=True,
            text=True,
            check=True,
        )
        found += [line.strip() for line in result.stdout.splitlines() if line.strip()]
    return found


def isolate(report: Report) -> None:
    """Private /run, `lo` up, and proof that loopback is the only interface."""
    subprocess.run([_tool("mount"), "-t", "tmpfs", "-o", "mode=755", "tmpfs", "/run"], check=True)
    Path("/run/lock").mkdir(mode=0o1777)
    subprocess.run([_tool("ip"), "link", "set", "lo", "up"], check=True)
    report["interfaces_at_start"] = interfaces()
    report["routes_at_start"] = routes()
    report["pid"] = os.getpid()
    if report["interfaces_at_start"] != ["lo"]:
        raise RuntimeError(f"not an empty network namespace: {report['interfaces_at_start']}")


# -- HTTP probes ----------------------------------------------------------------------------


def probe(
    url_host: str,
    port: int,
    method: str,
    path: str,
    headers: list[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    """One request with `http.client`: the path goes out byte for byte, a header given
    twice is sent twice, nothing follows redirects. The answer's status, headers (repeats
    kept) and body."""
    connection = http.client.HTTPConnection(url_host, port, timeout=60)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers or []:
            connection.putheader(name, value)
        connection.endheaders()
        answer = connection.getresponse()
        body = answer.read()
    finally:
        connection.close()
    text = body.decode("utf-8", "replace")
    try:
        parsed: Any = json.loads(text) if text else None
    except ValueError:
        parsed = None
    return {
        "method": method,
        "path": path,
        "status": answer.status,
        "headers": [[name, value] for name, value in answer.getheaders()],
        "body": text[:2000],
        "json": parsed,
        "body_length": len(body),
    }


_ACCESS = re.compile(  # werkzeug's access log, as moto's server writes it
    r'^(?P<client>\S+) \S+ \S+ \[[^\]]*\] "(?P<method>[A-Z]+) (?P<target>\S+) [^"]*" '
    r"(?P<status>\d{3})"
)


def presigned_requests(log: str) -> list[dict[str, Any]]:
    """The requests moto's access log shows with a presigned URL's signature: the blob
    fetches of clients that followed a 307 (the function's own S3 calls sign headers)."""
    found = []
    for line in log.splitlines():
        match = _ACCESS.match(line)
        if match and "X-Amz-Signature=" in match["target"]:
            found.append(
                {
                    "client": match["client"],
                    "method": match["method"],
                    "path": match["target"].split("?", 1)[0],
                    "status": int(match["status"]),
                }
            )
    return found


def oci_layout_image(layout: Path) -> dict[str, Any]:
    """The manifest digest, manifest and config of the one image an OCI layout holds."""
    index = json.loads((layout / "index.json").read_text())
    digest = index["manifests"][0]["digest"]

    def blob(digest: str) -> bytes:
        return (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()

    manifest_bytes = blob(digest)
    manifest = json.loads(manifest_bytes)
    config = json.loads(blob(manifest["config"]["digest"]))
    return {
        "digest": digest,
        "digest_of_bytes": "sha256:" + hashlib.sha256(manifest_bytes).hexdigest(),
        "manifest": manifest,
        "config_digest": manifest["config"]["digest"],
        "config": config,
        "layers": [layer["digest"] for layer in manifest["layers"]],
    }


def describe(pushed: Pushed) -> dict[str, Any]:
    """What the upstream serves for a pushed single-platform image, to compare copies with."""
    image = pushed.artifact
    if not isinstance(image, Image):
        raise TypeError(f"{pushed.key} is an index, not an image")
    return {
        "ref": pushed.ref,
        "digest": pushed.digest,
        "config_digest": sha256(image.config_bytes()),
        "config": image.config_json(),
        "layers": [layer.digest for layer in image.layers],
    }


# -- clean-up -------------------------------------------------------------------------------


def reap() -> None:
    """As pid 1, collect exited orphans (they were reparented here) so none is a zombie."""
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass


def other_processes() -> list[dict[str, Any]]:
    """Every process of this pid namespace except this one: after the clean-up, none."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            continue
        found.append({"pid": int(entry.name), "state": state, "cmdline": cmdline[:300]})
    return found


def stop_all(report: Report, stops: list[tuple[str, Callable[[], Any]]]) -> None:
    """Run the stop actions newest first; each failure is recorded, none stops the rest."""
    for name, stop in reversed(stops):
        try:
            with report.step(f"stop {name}"):
                stop()
        except Exception:
            continue


# -- the scenario ---------------------------------------------------------------------------


def run(args: argparse.Namespace, report: Report) -> None:
    workdir = Path(args.workdir)
    stops: list[tuple[str, Callable[[], Any]]] = []
    podman: PodmanService | None = None
    try:
        with report.step("isolate"):
            isolate(report)

        with report.step("base image tar"):
            tar = write_base_image_tar(
                workdir / "base-image.tar",
                Path(args.python),
                Path(args.runtime),
                [Path(args.host_build)],
            )
            report["base_image_tar_bytes"] = tar.stat().st_size

        with report.step("podman service"):
            podman = PodmanService(workdir / "podman")
            if args.storage_tmpfs:
                # vfs copies the whole root file system for every image layer and container
                # (about half a gigabyte here): in memory that is quick, and it goes away
                # with this mount namespace, however the scenario ends.
                size = f"size={args.storage_tmpfs}"
                storage = str(podman.workdir / "root")
                subprocess.run(
                    [_tool("mount"), "-t", "tmpfs", "-o", size, "tmpfs", storage], check=True
                )
            report["storage_tmpfs"] = args.storage_tmpfs
            stops.append(("podman service", podman.stop))
            podman.start()
            report["base_image_id"] = podman.import_image(tar, BASE_IMAGE, IMAGE_CHANGES)
            gateway = podman.gateway_address()
            report["bridge_gateway"] = gateway

        with report.step("moto"):
            moto = MotoS3(workdir / "moto", bind="0.0.0.0")
            stops.append(("moto", moto.stop))
            moto.start()
            moto.create_bucket(BUCKET)

        with report.step("upstream registry"):
            upstream = DockerRegistry(workdir / "upstream", "plain", bind="0.0.0.0")
            stops.append(("upstream registry", upstream.stop))
            upstream.start()
            artifacts = standard_images()
            layout = write_oci_layout(workdir / "images", artifacts)
            pushed = push_catalog(layout, upstream.host, artifacts, ["base", "wrapper"])
            report["upstream"] = {key: describe(item) for key, item in pushed.items()}

        with report.step("sam build copy"):
            # A copy, so that a `make sam-build` running meanwhile cannot change what SAM
            # mounts into its container (CodeUri/ContentUri are relative to the template).
            build = workdir / "sam-build"
            shutil.copytree(args.host_build, build, symlinks=True)

        with report.step("sam local start-api"):
            env_vars = {
                FUNCTION: {
                    "ARTIFACT_BUCKET": BUCKET,
                    "S3_ENDPOINT_URL": f"http://{gateway}:{moto.port}",
                    "REGISTRY_ALIASES": f"local=http://{gateway}:{upstream.port}",
                    "LOG_LEVEL": "INFO",
                }
            }
            report["env_vars"] = env_vars
            sam = SamLocalApi(
                workdir / "sam",
                build / "template.yaml",
                docker_host=podman.docker_host,
                invoke_image=BASE_IMAGE,
                env_vars=env_vars,
                port=free_port(),
                sts_endpoint_url=moto.endpoint_url,
            )
            report["sam_log"] = str(sam.process.log_path)
            stops.append(("sam", lambda: _stop_sam(sam, podman, report)))
            sam.start(timeout=args.sam_timeout)
            report["sam_port"] = sam.port
            report["interfaces_with_sam"] = interfaces()
            report["routes_with_sam"] = routes()
            report["containers_running"] = podman.container_ids()

        host, port = "127.0.0.1", sam.port
        probes: dict[str, Any] = {}
        report["probes"] = probes
        with report.step("probes"):
            probes["ping"] = probe(host, port, "GET", "/v2/")
            probes["bad_name"] = probe(host, port, "GET", "/v2/local/Library/busybox/manifests/1")
            probes["bad_name_head"] = probe(
                host, port, "HEAD", "/v2/local/Library/busybox/manifests/1"
            )
            probes["push"] = probe(host, port, "PUT", "/v2/local/library/busybox/manifests/1")
            report["probes"] = probes

        with report.step("skopeo proxied"):
            copied = skopeo_copy(f"{host}:{port}/{PROXIED}", workdir / "proxied", timeout=180)
            report["proxied"] = oci_layout_image(copied)

        with report.step("skopeo wrapped"):
            copied = skopeo_copy(f"{host}:{port}/{WRAPPED}", workdir / "wrapped", timeout=180)
            report["wrapped"] = oci_layout_image(copied)
            assert moto.process is not None
            report["presigned_requests"] = presigned_requests(moto.process.log())

        with report.step("gateway probes"):
            base = pushed["base"]
            manifest_path = f"/v2/local/{base.repo}/manifests/{base.tag}"
            accept = [("Accept", OCI_MANIFEST)]
            probes["manifest_head"] = probe(host, port, "HEAD", manifest_path, accept)
            probes["manifest_get"] = probe(host, port, "GET", manifest_path, accept)
            layer = report["upstream"]["base"]["layers"][0]
            probes["blob_get"] = probe(host, port, "GET", f"/v2/local/{base.repo}/blobs/{layer}")
            probes["blob_head"] = probe(host, port, "HEAD", f"/v2/local/{base.repo}/blobs/{layer}")
            encoded = manifest_path.replace("local/library/busybox", "local%2Flibrary%2Fbusybox")
            probes["encoded_slash"] = probe(host, port, "GET", encoded, accept)
            probes["tags"] = probe(host, port, "GET", f"/v2/local/{base.repo}/tags/list")
            # The manifest is OCI; a client that sends its Accept values as separate header
            # lines must still get it (API Gateway joins repeated headers with commas).
            two_lines = [("Accept", DOCKER_MANIFEST), ("Accept", OCI_MANIFEST)]
            probes["accept_twice"] = probe(host, port, "GET", manifest_path, two_lines)
            # ... which counts only because the first line alone does not get it:
            docker_only = [("Accept", DOCKER_MANIFEST)]
            probes["accept_docker_only"] = probe(host, port, "GET", manifest_path, docker_only)
            report["probes"] = probes
    finally:
        stop_all(report, stops)
        with report.step("remove storage"):
            # Half a gigabyte per run (vfs keeps a full copy per image layer), of no use
            # once the run is over; the logs stay.
            if podman is not None:
                shutil.rmtree(podman.workdir / "root", ignore_errors=True)
            for leftover in ("base-image.tar", "sam-build"):
                path = workdir / leftover
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
        with report.step("leftovers"):
            reap()
            left = other_processes() if os.getpid() == 1 else []
            report["leftover_processes"] = left
            for process in left:  # only ours can be here: this pid namespace is ours
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process["pid"], signal.SIGKILL)
            report["interfaces_at_end"] = interfaces()


def _stop_sam(sam: SamLocalApi, podman: PodmanService, report: Report) -> None:
    """Stop SAM, note which containers it left, then remove them through podman."""
    report["sam_exit"] = sam.stop()
    report["containers_after_sam"] = podman.container_ids()
    podman.remove_containers()
    report["containers_after_cleanup"] = podman.container_ids()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--python", required=True, help="the Python 3.12 of the base image")
    parser.add_argument("--runtime", required=True, help=".aws-sam/runtime/python")
    parser.add_argument("--host-build", required=True, help=".aws-sam/host")
    parser.add_argument("--sam-timeout", type=float, default=240.0)
    parser.add_argument("--storage-tmpfs", default="", help="e.g. 2g: podman's storage in memory")
    args = parser.parse_args(argv)
    report = Report(Path(args.out))
    try:
        run(args, report)
    except Exception:  # recorded by the step that failed
        return 1
    finally:
        report.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
