"""Benchmark: full pulls side by side, request latencies, upstream requests, bytes, memory.

What it answers: what does a pull through ociwrap cost over pulling the base image
directly? It builds a base image of incompressible layers (random bytes, so every byte
travels), pushes it and a small wrapper to two real upstreams, and times full pulls with
`skopeo copy` into a fresh OCI layout, five ways, interleaved in every repetition:

* direct        straight from the upstream;
* proxied cold  `<gateway>/<alias>/bench/big:1` on a new gateway with an empty bucket
                (its workers' service built first, as SnapStart restores an instance);
* proxied warm  the same name again on that gateway;
* wrapped cold  `<gateway>/wrap/<alias>/bench/big/1/with/<alias>/bench/wrapper/1:latest`
                on another new gateway with an empty bucket (a new composition);
* wrapped warm  the same wrapped name again.

Two upstreams (`docker-registry` 2.8): `redirecting` keeps blobs in S3 (its own moto
server) and answers blob GETs with 307 to presigned URLs, as Docker Hub and ghcr.io do;
`plain` serves blob bytes from its filesystem. Besides the pulls it keeps the figures of
earlier versions: request latencies, upstream requests per pull, peak memory of the
gateway's workers, the handler's import time; and it sums the bytes of every blob answer
ociwrap sent (its gateway's access log), which must be 0: layers never pass through it.

Everything runs on this machine on 127.0.0.1 (the gateway serving the Lambda handler,
its S3 and both upstreams), so the figures are for comparing ways and runs, not
absolute. `make bench` (`ARGS="--size-mib 64 --repetitions 9 --json out.json"`) prints
a Markdown report; `--json PATH` writes the same data as JSON.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from harness.gateway import LocalGateway
from harness.images import (
    MIB,
    Image,
    incompressible_image,
    push,
    push_catalog,
    standard_images,
    wrapper_image,
    write_oci_layout,
)
from harness.moto_s3 import MotoS3, dummy_aws_env
from harness.procs import clean_env
from harness.registry import DockerRegistry

ROOT = Path(__file__).resolve().parents[1]
ACCEPT = {
    "Accept": "application/vnd.oci.image.index.v1+json,"
    "application/vnd.oci.image.manifest.v1+json,"
    "application/vnd.docker.distribution.manifest.v2+json"
}
KINDS = {
    "redirecting": "upstream redirects blobs (307 to presigned S3 URLs, as Docker Hub and "
    "ghcr.io do)",
    "plain": "upstream serves blob bytes itself (filesystem storage)",
}
WAYS = {
    "direct": "direct",
    "proxied_cold": "proxied, cold",
    "proxied_warm": "proxied, warm",
    "wrapped_cold": "wrapped, cold",
    "wrapped_warm": "wrapped, warm",
}
BASE_REPO, BASE_TAG = "bench/big", "1"
WRAPPER_REPO, WRAPPER_TAG = "bench/wrapper", "1"
UPSTREAM_BUCKET = "upstream-blobs"

# `<client> "<METHOD> <target> HTTP/1.1" <status> <body bytes sent> <handler ms>ms|-`
_GATEWAY_ACCESS = re.compile(
    r'^\S+ "(?P<method>[A-Z]+) (?P<target>\S+) HTTP/[\d.]+" (?P<status>\d{3}) (?P<sent>\d+) '
    r"(?:(?P<ms>[\d.]+)ms|-)$"
)
_MANIFEST_PATH = re.compile(r"^/v2/.+/manifests/[^/?]+")
_BLOB_PATH = re.compile(r"^/v2/.+/blobs/[^/?]+")


# -- small helpers ------------------------------------------------------------------------------


def timed(call: Callable[[], object], rounds: int) -> list[float]:
    """Milliseconds per call, `rounds` times."""
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def latency_row(what: str, samples: list[float], note: str = "") -> dict[str, Any]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return {
        "what": what,
        "n": len(samples),
        "median_ms": round(statistics.median(samples), 2),
        "p95_ms": round(p95, 2),
        "note": note,
    }


def summary(samples: Sequence[float]) -> dict[str, float]:
    return {
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
    }


def get(url: str) -> requests.Response:
    response = requests.get(url, headers=ACCEPT, timeout=60, allow_redirects=False)
    if response.status_code not in (200, 307):
        raise SystemExit(f"{url}: {response.status_code} {response.text}")
    return response


def request_kind(method: str, path: str) -> str:
    """`manifest GET`, `blob HEAD`, ... for an upstream access-log line."""
    if _MANIFEST_PATH.match(path):
        return f"manifest {method}"
    if _BLOB_PATH.match(path):
        return f"blob {method}"
    if path.split("?", 1)[0] in ("/v2", "/v2/"):
        return "ping"
    return "other"


def settle(log: Path, quiet: float = 0.1) -> None:
    """Wait until `log` has not grown for `quiet` seconds (at most 20 times that): a server
    writes its access line just after the answer, so a count taken at once may be short."""
    deadline = time.monotonic() + 20 * quiet
    size = -1
    while time.monotonic() < deadline:
        current = log.stat().st_size if log.exists() else 0
        if current == size:
            return
        size = current
        time.sleep(quiet)


@dataclass(frozen=True)
class GatewayAccess:
    method: str
    target: str
    status: int
    sent: int
    handler_ms: float


def gateway_accesses(gw: LocalGateway) -> list[GatewayAccess]:
    """The access lines of the gateway's log (one per request it answered)."""
    found = []
    for line in gw.log().splitlines():
        match = _GATEWAY_ACCESS.match(line)
        if match:
            found.append(
                GatewayAccess(
                    match["method"],
                    match["target"],
                    int(match["status"]),
                    int(match["sent"]),
                    float(match["ms"] or 0),
                )
            )
    return found


def blob_answers(accesses: Sequence[GatewayAccess]) -> dict[str, Any]:
    """What ociwrap sent for blob GETs: how many, their statuses, and the body bytes."""
    blobs = [a for a in accesses if a.method == "GET" and _BLOB_PATH.match(a.target)]
    return {
        "blob_gets": len(blobs),
        "statuses": dict(sorted(Counter(str(a.status) for a in blobs).items())),
        "bytes": sum(a.sent for a in blobs),
    }


def prime_workers(gw: LocalGateway) -> int:
    """Build the service in every worker of a new gateway, as SnapStart's snapshot holds it
    (imports, clients; no connection, no cache entry), so a cold pull measures what is cold
    about the pull, not instance start-up (the "cold start" figures show that).

    `GET /v2/` builds the service and touches neither S3 nor an upstream. One connection
    per worker is opened first and left idle for a moment: the gateway hands each new
    connection to another idle worker, so the requests then sent on them reach them all.
    """
    connections = [
        http.client.HTTPConnection("127.0.0.1", gw.port, timeout=30) for _ in gw.worker_pids()
    ]
    for connection in connections:
        connection.connect()
    time.sleep(0.2)
    failures: list[str] = []

    def ping(connection: http.client.HTTPConnection) -> None:
        try:
            connection.request("GET", "/v2/")
            answer = connection.getresponse()
            answer.read()
            if answer.status != 200:
                failures.append(f"GET /v2/: {answer.status}")
        except OSError as exc:
            failures.append(f"GET /v2/: {exc!r}")
        finally:
            connection.close()

    threads = [threading.Thread(target=ping, args=(c,)) for c in connections]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(f"priming the gateway at {gw.url} failed: {failures}")
    return len(connections)


def drop_bucket(s3: MotoS3, bucket: str) -> None:
    """Empty and delete a bucket, so the next repetition starts from the same state."""
    client = s3.client()
    for key in s3.keys(bucket):
        client.delete_object(Bucket=bucket, Key=key)
    uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    for upload in uploads:
        client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    client.delete_bucket(Bucket=bucket)


def tool_version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
    except OSError:
        return "missing"
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else "?"


def git_revision() -> str:
    def git(*args: str) -> str:
        out = subprocess.run(
            ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=False
        )
        return out.stdout.strip()

    revision = git("rev-parse", "--short", "HEAD") or "unknown"
    return revision + (" with uncommitted changes" if git("status", "--porcelain") else "")


def directory_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# -- the stack ----------------------------------------------------------------------------------


@dataclass
class Stack:
    """The servers of one run, all on 127.0.0.1, stopped by `close`."""

    work: Path
    exits: ExitStack = field(default_factory=ExitStack)
    gateways_started: int = 0
    gateway_s3: MotoS3 | None = None
    upstreams: dict[str, DockerRegistry] = field(default_factory=dict)
    misdeeds: list[str] = field(default_factory=list)
    blob_answers: list[dict[str, Any]] = field(default_factory=list)

    def start(self) -> Stack:
        self.gateway_s3 = self._keep(MotoS3(self.work / "s3-gateway").start())
        upstream_s3 = self._keep(MotoS3(self.work / "s3-upstream").start())
        upstream_s3.create_bucket(UPSTREAM_BUCKET)
        self.upstreams["redirecting"] = self._keep(
            DockerRegistry(
                self.work / "upstream-redirecting",
                "redirecting",
                s3_endpoint_url=upstream_s3.endpoint_url,
                s3_bucket=UPSTREAM_BUCKET,
            ).start()
        )
        self.upstreams["plain"] = self._keep(
            DockerRegistry(self.work / "upstream-plain", "plain").start()
        )
        return self

    def _keep(self, server: Any) -> Any:
        self.exits.callback(server.stop)
        return server

    @property
    def aliases(self) -> dict[str, str]:
        return {kind: registry.url for kind, registry in self.upstreams.items()}

    @contextmanager
    def gateway(self, label: str, *, prime: bool = False) -> Iterator[LocalGateway]:
        """A new gateway with a new, empty bucket (`prime`: every worker's service built);
        afterwards its blob answers are tallied, anything no gateway may do is recorded,
        and the bucket is deleted."""
        assert self.gateway_s3 is not None
        self.gateways_started += 1
        bucket = self.gateway_s3.create_bucket(f"bench-{self.gateways_started:03d}")
        workdir = self.work / f"gateway-{self.gateways_started:03d}-{label}"
        workdir.mkdir()
        gw = LocalGateway(
            workdir,
            s3_endpoint_url=self.gateway_s3.endpoint_url,
            bucket=bucket,
            aliases=self.aliases,
        )
        try:
            gw.start()
            if prime:
                prime_workers(gw)
            yield gw
        finally:
            gw.stop()
            self.misdeeds += [f"{label}: {line}" for line in gw.misdeeds()]
            self.blob_answers.append(blob_answers(gateway_accesses(gw)))
            drop_bucket(self.gateway_s3, bucket)

    def close(self) -> None:
        self.exits.close()


# -- full pulls ---------------------------------------------------------------------------------


@dataclass
class Pull:
    seconds: float
    fetched_bytes: int
    upstream: dict[str, int]
    gateway: dict[str, Any] | None


class Puller:
    """Times `skopeo copy` of one image into a fresh OCI layout and counts what it caused."""

    def __init__(self, work: Path, image_bytes: int) -> None:
        self.work = work
        self.image_bytes = image_bytes

    def pull(self, ref: str, upstream: DockerRegistry, gw: LocalGateway | None) -> Pull:
        upstream.settle(0.1)
        upstream_mark = upstream.mark()
        if gw is not None:
            settle(gw.process.log_path)
        gateway_mark = len(gateway_accesses(gw)) if gw is not None else 0
        dest = self.work / "pulled"
        shutil.rmtree(dest, ignore_errors=True)
        argv = ["skopeo", "copy", "--quiet", "--src-tls-verify=false"]
        argv += [f"docker://{ref}", f"oci:{dest}:x"]
        started = time.perf_counter()
        result = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
        seconds = time.perf_counter() - started
        if result.returncode != 0:
            raise SystemExit(f"skopeo copy {ref} failed:\n{result.stderr[-3000:]}")
        fetched = directory_bytes(dest / "blobs")
        shutil.rmtree(dest, ignore_errors=True)
        if fetched < self.image_bytes:
            raise SystemExit(f"{ref}: only {fetched} bytes arrived, the image has more")
        upstream.settle(0.1)
        kinds = Counter(request_kind(a.method, a.path) for a in upstream.requests()[upstream_mark:])
        gateway = None
        if gw is not None:
            settle(gw.process.log_path)
            accesses = gateway_accesses(gw)[gateway_mark:]
            manifests = [a for a in accesses if _MANIFEST_PATH.match(a.target)]
            gateway = {
                "requests": len(accesses),
                "handler_ms": round(sum(a.handler_ms for a in accesses), 1),
                "manifest_bytes": sum(a.sent for a in manifests),
                **blob_answers(accesses),
            }
        return Pull(seconds, fetched, dict(kinds), gateway)


def full_pulls(
    stack: Stack, args: argparse.Namespace, base: Image, wrapper: Image
) -> dict[str, Any]:
    """The five ways for each upstream kind, interleaved within every repetition."""
    layout = write_oci_layout(stack.work / "layout", {"big": base, "wrapper": wrapper})
    for registry in stack.upstreams.values():
        push(layout, "big", f"{registry.host}/{BASE_REPO}:{BASE_TAG}", timeout=900)
        push(layout, "wrapper", f"{registry.host}/{WRAPPER_REPO}:{WRAPPER_TAG}", timeout=120)
    puller = Puller(stack.work, sum(layer.size for layer in base.layers))
    for registry in stack.upstreams.values():  # warm-up, not counted: page cache etc.
        puller.pull(f"{registry.host}/{BASE_REPO}:{BASE_TAG}", registry, None)

    pulls: dict[str, dict[str, list[Pull]]] = {k: {w: [] for w in WAYS} for k in KINDS}
    peaks: dict[str, dict[str, list[float]]] = {k: {"proxied": [], "wrapped": []} for k in KINDS}
    for repetition in range(args.repetitions):
        for kind in KINDS:
            registry = stack.upstreams[kind]
            direct = f"{registry.host}/{BASE_REPO}:{BASE_TAG}"
            wrap = (
                f"wrap/{kind}/{BASE_REPO}/{BASE_TAG}/with/{kind}/{WRAPPER_REPO}/{WRAPPER_TAG}"
                ":latest"
            )
            with (
                stack.gateway(f"{kind}-{repetition}-proxied", prime=True) as proxy_gw,
                stack.gateway(f"{kind}-{repetition}-wrapped", prime=True) as wrap_gw,
            ):
                # Both gateways are up (and idle) for every way, the direct pull too.
                ways = pulls[kind]
                ways["direct"].append(puller.pull(direct, registry, None))
                proxied = f"{proxy_gw.host}/{kind}/{BASE_REPO}:{BASE_TAG}"
                ways["proxied_cold"].append(puller.pull(proxied, registry, proxy_gw))
                ways["proxied_warm"].append(puller.pull(proxied, registry, proxy_gw))
                wrapped = f"{wrap_gw.host}/{wrap}"
                ways["wrapped_cold"].append(puller.pull(wrapped, registry, wrap_gw))
                ways["wrapped_warm"].append(puller.pull(wrapped, registry, wrap_gw))
                peaks[kind]["proxied"].append(proxy_gw.peak_rss_mb())
                peaks[kind]["wrapped"].append(wrap_gw.peak_rss_mb())
            print(
                f"repetition {repetition + 1}/{args.repetitions} {kind}: "
                + ", ".join(f"{w} {pulls[kind][w][-1].seconds:.2f} s" for w in WAYS),
                file=sys.stderr,
            )

    result: dict[str, Any] = {}
    for kind, ways in pulls.items():
        direct_median = statistics.median(p.seconds for p in ways["direct"])
        result[kind] = {"description": KINDS[kind], "ways": {}}
        for way, samples in ways.items():
            seconds = [p.seconds for p in samples]
            figures = summary(seconds)
            upstream_kinds = sorted({k for p in samples for k in p.upstream})
            entry: dict[str, Any] = {
                "label": WAYS[way],
                "seconds": [round(s, 3) for s in seconds],
                "median_s": round(figures["median"], 3),
                "min_s": round(figures["min"], 3),
                "max_s": round(figures["max"], 3),
                "ratio_to_direct": round(figures["median"] / direct_median, 3),
                "mib_per_s": round(samples[0].fetched_bytes / MIB / figures["median"], 1),
                "fetched_bytes": samples[0].fetched_bytes,
                "upstream_requests_per_pull": {
                    k: statistics.median(p.upstream.get(k, 0) for p in samples)
                    for k in upstream_kinds
                },
                "upstream_requests_total_per_pull": statistics.median(
                    sum(p.upstream.values()) for p in samples
                ),
            }
            if samples[0].gateway is not None:
                gateways = [p.gateway for p in samples if p.gateway is not None]
                entry["ociwrap"] = {
                    "requests_per_pull": statistics.median(g["requests"] for g in gateways),
                    "handler_ms_per_pull": round(
                        statistics.median(g["handler_ms"] for g in gateways), 1
                    ),
                    "manifest_bytes_per_pull": statistics.median(
                        g["manifest_bytes"] for g in gateways
                    ),
                    "blob_gets": sum(g["blob_gets"] for g in gateways),
                    "blob_statuses": dict(
                        sum((Counter(g["statuses"]) for g in gateways), Counter())
                    ),
                    "blob_bytes": sum(g["bytes"] for g in gateways),
                }
            result[kind]["ways"][way] = entry
        result[kind]["peak_rss_mb"] = {
            role: round(max(values), 1) for role, values in peaks[kind].items()
        }
    return result


# -- request latencies and upstream requests of small images (as in earlier versions) ----------


def latencies(stack: Stack, rounds: int) -> dict[str, Any]:
    """Single requests against one warm gateway, the plain upstream and the small catalog."""
    registry = stack.upstreams["plain"]
    artifacts = standard_images()
    layout = write_oci_layout(stack.work / "catalog", artifacts)
    images = push_catalog(layout, registry.host, artifacts)
    with stack.gateway("latency") as gw:
        base = images["base"]
        proxied = f"{gw.url}/v2/plain/{base.repo}"
        layer = base.artifact.layers[0].digest  # type: ignore[union-attr]
        rows = [
            latency_row("GET /v2/", timed(lambda: get(f"{gw.url}/v2/"), rounds)),
            latency_row(
                "proxy manifest GET by tag", timed(lambda: get(f"{proxied}/manifests/1"), rounds)
            ),
            latency_row(
                "proxy manifest HEAD by tag",
                timed(
                    lambda: requests.head(f"{proxied}/manifests/1", headers=ACCEPT, timeout=60),
                    rounds,
                ),
            ),
            latency_row(
                "proxy manifest GET by digest",
                timed(lambda: get(f"{proxied}/manifests/{base.digest}"), rounds),
            ),
            latency_row(
                "proxy blob GET -> 307 (S3 copy)",
                timed(lambda: get(f"{proxied}/blobs/{layer}"), rounds),
            ),
        ]
        combos = [
            (b, w)
            for b in ("base", "base-v2s2", "base-entrypoint", "base-multi")
            for w in ("wrapper", "wrapper-v2s2", "wrapper-2layers", "wrapper-multi")
        ]
        names = [f"wrap/plain/{images[b].path}/with/plain/{images[w].path}" for b, w in combos]
        registry.settle(0.1)
        mark = registry.mark()
        cold = [timed(lambda n=n: get(f"{gw.url}/v2/{n}/manifests/latest"), 1)[0] for n in names]
        registry.settle(0.1)
        first_pull_requests = len(registry.requests()[mark:]) / len(names)
        rows.append(
            latency_row("wrap manifest, first pull (composes)", cold, f"{len(names)} wraps")
        )
        wrap = f"{gw.url}/v2/{names[2]}"
        rows.append(
            latency_row(
                "wrap manifest, warm (memory)",
                timed(lambda: get(f"{wrap}/manifests/latest"), rounds),
            )
        )
        config_digest = get(f"{wrap}/manifests/latest").json()["config"]["digest"]
        rows.append(
            latency_row(
                "wrap config blob -> 307 (presign)",
                timed(lambda: get(f"{wrap}/blobs/{config_digest}"), rounds),
            )
        )
        rows.append(
            latency_row(
                "wrap layer blob -> 307", timed(lambda: get(f"{wrap}/blobs/{layer}"), rounds)
            )
        )
        warm_peak = gw.peak_rss_mb()

        # A second gateway on the same bucket: a new instance finds the compositions in S3.
        assert stack.gateway_s3 is not None
        stack.gateways_started += 1
        workdir = stack.work / f"gateway-{stack.gateways_started:03d}-latency-s3"
        workdir.mkdir()
        fresh = LocalGateway(
            workdir,
            s3_endpoint_url=stack.gateway_s3.endpoint_url,
            bucket=gw.bucket,
            aliases=stack.aliases,
        ).start()
        try:
            registry.settle(0.1)
            mark = registry.mark()
            from_s3 = [
                timed(lambda n=n: get(f"{fresh.url}/v2/{n}/manifests/latest"), 1)[0] for n in names
            ]
            registry.settle(0.1)
            second_pull_requests = len(registry.requests()[mark:]) / len(names)
            fresh_peak = fresh.peak_rss_mb()
        finally:
            fresh.stop()
            stack.misdeeds += [f"latency-s3: {line}" for line in fresh.misdeeds()]
            stack.blob_answers.append(blob_answers(gateway_accesses(fresh)))
        rows.append(
            latency_row("wrap manifest, new process (S3 hit)", from_s3, f"{len(names)} wraps")
        )
    rows += compose_micro()
    return {
        "rows": rows,
        "upstream_requests": {
            "first_wrap_pull": round(first_pull_requests, 2),
            "later_pull_new_process": round(second_pull_requests, 2),
            "compositions": len(names),
        },
        "peak_rss_mb": {"after_latency_run": round(warm_peak, 1), "fresh": round(fresh_peak, 1)},
    }


def compose_micro() -> list[dict[str, Any]]:
    """Pure composition cost: manifests and configs in, bytes out, no I/O."""
    from ociwrap import compose
    from ociwrap.documents import parse_image

    artifacts = standard_images()
    base, wrapper = artifacts["base"], artifacts["wrapper-2layers"]
    assert isinstance(base, Image) and isinstance(wrapper, Image)
    args = (
        parse_image(base.manifest_json(), base.config_json(), "base"),
        parse_image(wrapper.manifest_json(), wrapper.config_json(), "wrapper"),
        {compose.ANNOTATION_BASE_NAME: "b", compose.ANNOTATION_BASE_DIGEST: base.digest},
    )
    samples = timed(lambda: compose.compose_image(*args), rounds=2000)
    tracemalloc.start()
    compose.compose_image(*args)
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return [
        latency_row(
            "compose_image (pure, in process)", samples, f"peak alloc {peak / 1024:.0f} KiB"
        )
    ]


def cold_import(rounds: int = 5) -> dict[str, Any]:
    """Importing the handler in a fresh interpreter, and building its service there: the
    parts of a cold start that are ours (SnapStart's snapshot holds both)."""
    env = clean_env(
        {
            **dummy_aws_env("http://127.0.0.1:9"),  # nothing listens: building connects nowhere
            "ARTIFACT_BUCKET": "bench",
            "PYTHONPATH": os.pathsep.join(
                str(ROOT / part) for part in ("layers/ociwrap", "functions/registry")
            ),
        }
    )

    def run(code: str) -> list[float]:
        return timed(
            lambda: subprocess.run([sys.executable, "-c", code], env=env, check=True), rounds
        )

    bare = run("pass")
    imported = run("import app")
    built = run("import app, wiring; wiring.service()")
    return {
        "bare_interpreter_ms": summary(bare),
        "import_app_ms": summary(imported),
        "import_and_build_service_ms": summary(built),
        "rounds": rounds,
    }


# -- the report ---------------------------------------------------------------------------------


def environment(args: argparse.Namespace, base: Image, wrapper: Image) -> dict[str, Any]:
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.system()} {platform.release()} {platform.machine()}",
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "skopeo": tool_version(["skopeo", "--version"]),
        "docker_registry": tool_version(["docker-registry", "--version"]),
        "moto": _moto_version(),
        "revision": git_revision(),
        "gateway_workers": int(os.environ.get("GATEWAY_WORKERS", "4")),
        "image": {
            "size_mib": args.size_mib,
            "layers": len(base.layers),
            "layer_bytes": sum(layer.size for layer in base.layers),
            "gzip_level": args.gzip_level,
            "seed": args.seed,
            "digest": base.digest,
            "wrapper_layer_bytes": sum(layer.size for layer in wrapper.layers),
        },
        "repetitions": args.repetitions,
        "rounds": args.rounds,
    }


def _moto_version() -> str:
    try:
        from importlib.metadata import version

        return version("moto")
    except Exception:
        return "?"


def _counts(counts: dict[str, float]) -> str:
    shown = [f"{k} {v:g}" for k, v in counts.items() if v]
    return ", ".join(shown) if shown else "none"


def render(data: dict[str, Any]) -> str:
    env, lines = data["environment"], []
    image = env["image"]
    add = lines.append
    add("# ociwrap benchmark")
    add("")
    add(
        "Everything ran on this one machine, over 127.0.0.1: the gateway (`python -m "
        f"ociwrap_local`, {env['gateway_workers']} workers running the Lambda handler), its S3 "
        "(a moto server), both upstreams (`docker-registry`) and the redirecting upstream's "
        "own S3 (a second moto server). No network, no AWS: compare ways and runs, not "
        "absolute figures."
    )
    add("")
    add(
        f"{env['date']}; {env['machine']}, {env['cpus']} CPUs; Python {env['python']}; "
        f"{env['skopeo']}; {env['docker_registry']}; moto {env['moto']}; "
        f"revision {env['revision']}; run time {data['run_seconds']:.0f} s."
    )
    add("")
    add("## Full pulls")
    add("")
    add(
        "`skopeo copy docker://… oci:<new dir>:x` of a base image of "
        f"{image['layer_bytes'] / MIB:.1f} MiB in {image['layers']} layers of random bytes "
        f"(gzip level {image['gzip_level']}, "
        f"seed `{image['seed']}`, built in this run), median of {env['repetitions']} "
        "repetitions; in each, every way once, in table order. Cold: a new gateway process "
        "and an empty bucket, nothing cached and no connection open; its workers have built "
        "their service, as SnapStart restores them (without SnapStart, add the cold-start "
        "figures below per new instance). Warm: the same name again on that gateway. A "
        f"wrapped pull adds the wrapper ({image['wrapper_layer_bytes']} bytes) and a "
        "generated config. One untimed direct pull per upstream comes first."
    )
    for kind, entry in data["pulls"].items():
        add("")
        add(f"### {kind}: {entry['description']}")
        add("")
        add(
            "| way | median s | min s | max s | ratio to direct | MiB/s "
            "| upstream requests per pull | ociwrap requests | handler ms (sum) |"
        )
        add("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for way in entry["ways"].values():
            ociwrap = way.get("ociwrap")
            add(
                f"| {way['label']} | {way['median_s']:.2f} | {way['min_s']:.2f} | "
                f"{way['max_s']:.2f} | {way['ratio_to_direct']:.2f} | {way['mib_per_s']:.0f} | "
                f"{way['upstream_requests_total_per_pull']:g} "
                f"({_counts(way['upstream_requests_per_pull'])}) | "
                + (
                    f"{ociwrap['requests_per_pull']:g} | {ociwrap['handler_ms_per_pull']:.0f} |"
                    if ociwrap
                    else "- | - |"
                )
            )
    add("")
    add(
        "Upstream requests are counted in the upstream's access log (with the redirecting "
        "upstream, blob bytes then come from its S3, not counted); ociwrap requests and "
        "handler milliseconds (summed over requests, which overlap) in the gateway's."
    )
    add("")
    add("## Layer bytes in ociwrap's responses")
    add("")
    add("| upstream | way | blob GETs | statuses | blob bytes sent | manifest bytes per pull |")
    add("| --- | --- | --- | --- | --- | --- |")
    for kind, entry in data["pulls"].items():
        for way in entry["ways"].values():
            ociwrap = way.get("ociwrap")
            if ociwrap:
                statuses = ", ".join(f"{k}: {v}" for k, v in ociwrap["blob_statuses"].items())
                add(
                    f"| {kind} | {way['label']} | {ociwrap['blob_gets']} | {statuses} | "
                    f"{ociwrap['blob_bytes']} | {ociwrap['manifest_bytes_per_pull']:g} |"
                )
    total = data["ociwrap_blob_answers"]
    add("")
    add(
        f"Over the whole run ({total['gateways']} gateways, every `GET /v2/…/blobs/…` line of "
        f"their access logs): {total['blob_gets']} blob GETs answered, "
        f"**{total['bytes']} bytes** of blob bodies sent"
        + (" (layers never pass through ociwrap)." if total["bytes"] == 0 else ".")
    )
    if data["misdeeds"]:
        add("")
        add("**The gateways did what AWS would not allow:** " + "; ".join(data["misdeeds"]))
    add("")
    add("## Request latencies")
    add("")
    add(
        "One gateway, the plain upstream and small images (busybox base, small wrappers); "
        "`requests` from this process, one request at a time."
    )
    add("")
    add("| what | n | median ms | p95 ms | note |")
    add("| --- | --- | --- | --- | --- |")
    for row in data["latency"]["rows"]:
        add(
            f"| {row['what']} | {row['n']} | {row['median_ms']:.1f} | {row['p95_ms']:.1f} "
            f"| {row['note']} |"
        )
    add("")
    add("## Upstream requests for wrapped names")
    add("")
    requests_ = data["latency"]["upstream_requests"]
    add("| figure | value |")
    add("| --- | --- |")
    add(
        f"| upstream requests per first wrap pull ({requests_['compositions']} compositions, "
        f"each tag resolved once) | {requests_['first_wrap_pull']:.2f} |"
    )
    add(
        "| upstream requests per later pull, new process | "
        f"{requests_['later_pull_new_process']:.2f} |"
    )
    add("")
    add("## Memory")
    add("")
    add("Peak resident memory (`VmHWM`) of the busiest worker of a gateway.")
    add("")
    add("| gateway | peak RSS MiB |")
    add("| --- | --- |")
    memory = data["latency"]["peak_rss_mb"]
    add(f"| after the latency run | {memory['after_latency_run']:.0f} |")
    add(f"| new process, compositions read from S3 | {memory['fresh']:.0f} |")
    for kind, entry in data["pulls"].items():
        for role, peak in entry["peak_rss_mb"].items():
            add(
                f"| {kind}, {role}: cold and warm full pulls (highest of the repetitions) "
                f"| {peak:.0f} |"
            )
    add("")
    add("## Cold start")
    add("")
    cold = data["import"]
    add(f"A fresh interpreter each time, {cold['rounds']} times.")
    add("")
    add("| what | median ms | min ms | max ms |")
    add("| --- | --- | --- | --- |")
    for label, key in (
        ("bare interpreter", "bare_interpreter_ms"),
        ("`import app` (the handler)", "import_app_ms"),
        (
            "`import app` and build the service (what SnapStart's snapshot holds)",
            "import_and_build_service_ms",
        ),
    ):
        figures = cold[key]
        add(f"| {label} | {figures['median']:.0f} | {figures['min']:.0f} | {figures['max']:.0f} |")
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=64, help="base image size (default 64)")
    parser.add_argument("--layers", type=int, default=4, help="base image layers (default 4)")
    parser.add_argument(
        "--repetitions", type=int, default=9, help="full pulls per upstream and way (default 9)"
    )
    parser.add_argument("--rounds", type=int, default=50, help="requests per latency figure")
    parser.add_argument(
        "--import-rounds", type=int, default=5, help="fresh interpreters per import figure"
    )
    parser.add_argument("--seed", default="ociwrap-bench", help="seed of the random layers")
    parser.add_argument("--gzip-level", type=int, default=1, choices=range(10))
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    counts = (args.size_mib, args.layers, args.repetitions, args.rounds, args.import_rounds)
    if min(counts) < 1:
        parser.error("sizes, layers, repetitions and rounds must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    data: dict[str, Any] = {"import": cold_import(args.import_rounds)}
    base = incompressible_image(
        args.size_mib * MIB, args.layers, seed=args.seed, compresslevel=args.gzip_level
    )
    wrapper = wrapper_image()
    work = Path(tempfile.mkdtemp(prefix="ociwrap-bench-"))
    stack = Stack(work)
    try:
        stack.start()
        data["latency"] = latencies(stack, args.rounds)
        data["pulls"] = full_pulls(stack, args, base, wrapper)
    finally:
        stack.close()
        shutil.rmtree(work, ignore_errors=True)
    data["ociwrap_blob_answers"] = {
        "gateways": len(stack.blob_answers),
        "blob_gets": sum(a["blob_gets"] for a in stack.blob_answers),
        "statuses": dict(sum((Counter(a["statuses"]) for a in stack.blob_answers), Counter())),
        "bytes": sum(a["bytes"] for a in stack.blob_answers),
    }
    data["misdeeds"] = stack.misdeeds
    data["run_seconds"] = round(time.monotonic() - started, 1)
    data["environment"] = environment(args, base, wrapper)
    ordered = {"environment": data.pop("environment"), **data}
    print(render(ordered), end="")
    if args.json:
        args.json.write_text(json.dumps(ordered, indent=2) + "\n")
    return 1 if stack.misdeeds else 0


if __name__ == "__main__":
    sys.exit(main())
