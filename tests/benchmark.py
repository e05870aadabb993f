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

It also prices every ociwrap way at AWS list prices (`harness.costs`), per million pulls,
from what each pull was measured to use: its requests (API Gateway and Lambda), the Lambda
milliseconds billed (each request's handler time rounded up, at the template's memory size
and architecture), the S3 requests on the gateway's bucket by price tier (the gateway's own
moto server logs every request line, the clients' presigned GETs included), the bytes the
function logged (its JSON lines in the gateway's log, EMF included) and the bytes clients
downloaded from the bucket (data transfer out, shown apart).

Everything runs on this machine on 127.0.0.1 (the gateway serving the Lambda handler,
its S3 and both upstreams), so the figures are for comparing ways and runs, not
absolute. `make bench` (`ARGS="--size-mib 64 --repetitions 9 --json out.json"`) prints
a Markdown report; `--json PATH` writes the same data as JSON.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
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
from urllib.parse import unquote, urlsplit

import requests

from harness import costs
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
TEMPLATE = ROOT / "template.yaml"
#: SnapStart restores counted per pull: a cold pull lands on a new instance, restored from
#: the snapshot once (its parallel blob requests may start more; a warm pull, none).
RESTORES = {"proxied_cold": 1, "wrapped_cold": 1}

# `<client> "<METHOD> <target> HTTP/1.1" <status> <body bytes sent> <handler ms>ms|-`
_GATEWAY_ACCESS = re.compile(
    r'^\S+ "(?P<method>[A-Z]+) (?P<target>\S+) HTTP/[\d.]+" (?P<status>\d{3}) (?P<sent>\d+) '
    r"(?:(?P<ms>[\d.]+)ms|-)$"
)
# moto's (werkzeug's) request line, colour codes and all:
# `127.0.0.1 - - [date] "<ESC>[33mHEAD /<bucket>/<key> HTTP/1.1<ESC>[0m" 404 -`
_MOTO_ACCESS = re.compile(
    r'"(?:\x1b\[[\d;]*m)*(?P<method>[A-Z]+) (?P<target>\S+) HTTP/[\d.]+(?:\x1b\[[\d;]*m)*" '
    r"(?P<status>\d{3}) "
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
    #: False when the gateway answered itself (a malformed request): no Lambda invocation.
    invoked: bool = True


def gateway_accesses(gw: LocalGateway) -> list[GatewayAccess]:
    """The access lines of the gateway's log (one per request it answered)."""
    return parse_accesses(gw.log().splitlines())


def parse_accesses(lines: Sequence[str]) -> list[GatewayAccess]:
    """The gateway's access lines among `lines` (its log holds the function's lines too)."""
    found = []
    for line in lines:
        match = _GATEWAY_ACCESS.match(line)
        if match:
            found.append(
                GatewayAccess(
                    match["method"],
                    match["target"],
                    int(match["status"]),
                    int(match["sent"]),
                    float(match["ms"] or 0),
                    match["ms"] is not None,
                )
            )
    return found


def log_offset(log: Path) -> int:
    """Where `log` ends once settled: what a pull adds is read from here on."""
    settle(log)
    return log.stat().st_size if log.exists() else 0


def log_since(log: Path, offset: int) -> list[str]:
    """The lines `log` gained since `offset`, once settled."""
    settle(log)
    with log.open("rb") as handle:
        handle.seek(offset)
        return handle.read().decode("utf-8", errors="replace").splitlines()


def function_log(lines: Sequence[str]) -> dict[str, int]:
    """What the function wrote to its log among the gateway's lines: the JSON objects
    (Powertools' `request` lines and the EMF metric documents), which is what CloudWatch
    Logs ingests and bills; the access lines are the local gateway's own."""
    figures = Counter(log_bytes=0, log_lines=0, request_lines=0, s3_calls_logged=0)
    for line in lines:
        record = _json_object(line)
        if record is None:
            continue
        figures["log_bytes"] += len(line.encode())
        figures["log_lines"] += 1
        if record.get("message") == "request":
            figures["request_lines"] += 1
            figures["s3_calls_logged"] += int(record.get("s3_calls") or 0)
    return dict(figures)


def _json_object(line: str) -> dict[str, Any] | None:
    if not line.startswith("{"):
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


@dataclass(frozen=True)
class S3Request:
    method: str
    target: str
    status: int

    @property
    def key(self) -> str:
        """The object key of a path-style target (`/<bucket>/<key>?…`), "" for the bucket."""
        parts = urlsplit(self.target).path.split("/", 2)
        return unquote(parts[2]) if len(parts) > 2 else ""

    @property
    def presigned(self) -> bool:
        """A client following a presigned URL (the function signs with headers instead)."""
        return "X-Amz-Signature=" in self.target


def s3_requests(lines: Sequence[str], bucket: str) -> list[S3Request]:
    """The requests on `bucket` among a moto server's log lines (one line per request)."""
    found = []
    for line in lines:
        match = _MOTO_ACCESS.search(line)
        if match and urlsplit(match["target"]).path.split("/")[1:2] == [bucket]:
            found.append(S3Request(match["method"], match["target"], int(match["status"])))
    return found


def s3_tally(found: Sequence[S3Request]) -> dict[str, int]:
    """S3 requests by price tier (`get`, `put`, `free`), and how many were clients' GETs."""
    tiers = Counter(costs.s3_tier(r.method, r.target) for r in found)
    return {
        "get": tiers["get"],
        "put": tiers["put"],
        "free": tiers["free"],
        "client_get": sum(1 for r in found if r.presigned),
    }


def bucket_bytes_out(s3: MotoS3, bucket: str, found: Sequence[S3Request]) -> int:
    """Bytes clients downloaded from the bucket: the size of each object they fetched with
    a presigned GET (what S3 bills as data transfer out), read with HEAD afterwards."""
    client, total = s3.client(), 0
    sizes: dict[str, int] = {}
    for request in found:
        if not (request.presigned and request.method == "GET" and request.status == 200):
            continue
        if request.key not in sizes:
            head = client.head_object(Bucket=bucket, Key=request.key)
            sizes[request.key] = int(head["ContentLength"])
        total += sizes[request.key]
    return total


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
    """Times `skopeo copy` of one image into a fresh OCI layout and counts what it caused:
    upstream requests, and through a gateway its requests, log lines and S3 requests
    (`s3` is the gateway's S3, whose log shows every request on the gateway's bucket)."""

    def __init__(self, work: Path, image_bytes: int, s3: MotoS3) -> None:
        self.work = work
        self.image_bytes = image_bytes
        self.s3 = s3

    @property
    def s3_log(self) -> Path:
        assert self.s3.process is not None, "the benchmark's S3 runs as its own process"
        return self.s3.process.log_path

    def pull(self, ref: str, upstream: DockerRegistry, gw: LocalGateway | None) -> Pull:
        upstream.settle(0.1)
        upstream_mark = upstream.mark()
        marks = (log_offset(gw.process.log_path), log_offset(self.s3_log)) if gw else (0, 0)
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
        gateway = self.measure(gw, *marks) if gw is not None else None
        return Pull(seconds, fetched, dict(kinds), gateway)

    def measure(self, gw: LocalGateway, gateway_offset: int, s3_offset: int) -> dict[str, Any]:
        """What one pull through `gw` caused, from the lines its log and its S3's log
        gained since the offsets taken before it."""
        lines = log_since(gw.process.log_path, gateway_offset)
        accesses = parse_accesses(lines)
        # The function's `request` line and the gateway's access line of one request are
        # written by different code: on a busy machine the last one may come a moment
        # after the log seemed settled. Wait (boundedly) until each invocation has its line.
        waited_until = time.monotonic() + 10
        while (
            function_log(lines)["request_lines"] < sum(a.invoked for a in accesses)
            and time.monotonic() < waited_until
        ):
            time.sleep(0.1)
            lines = log_since(gw.process.log_path, gateway_offset)
            accesses = parse_accesses(lines)
        manifests = [a for a in accesses if _MANIFEST_PATH.match(a.target)]
        on_bucket = s3_requests(log_since(self.s3_log, s3_offset), gw.bucket)
        return {
            "requests": len(accesses),
            "handler_ms": round(sum(a.handler_ms for a in accesses), 1),
            "billed_ms": costs.billed_ms([a.handler_ms for a in accesses if a.invoked]),
            "manifest_bytes": sum(a.sent for a in manifests),
            **blob_answers(accesses),
            **function_log(lines),
            "s3": s3_tally(on_bucket),
            "bucket_bytes_out": bucket_bytes_out(self.s3, gw.bucket, on_bucket),
        }


def full_pulls(
    stack: Stack, args: argparse.Namespace, base: Image, wrapper: Image
) -> dict[str, Any]:
    """The five ways for each upstream kind, interleaved within every repetition."""
    layout = write_oci_layout(stack.work / "layout", {"big": base, "wrapper": wrapper})
    for registry in stack.upstreams.values():
        push(layout, "big", f"{registry.host}/{BASE_REPO}:{BASE_TAG}", timeout=900)
        push(layout, "wrapper", f"{registry.host}/{WRAPPER_REPO}:{WRAPPER_TAG}", timeout=120)
    assert stack.gateway_s3 is not None
    puller = Puller(stack.work, sum(layer.size for layer in base.layers), stack.gateway_s3)
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
                    "cost_inputs": cost_inputs(gateways, way),
                }
            result[kind]["ways"][way] = entry
        result[kind]["peak_rss_mb"] = {
            role: round(max(values), 1) for role, values in peaks[kind].items()
        }
    return result


def cost_inputs(gateways: Sequence[dict[str, Any]], way: str) -> dict[str, float]:
    """What a pull of `way` used, median of the repetitions: the inputs of its price."""

    def median(figure: Callable[[dict[str, Any]], float]) -> float:
        return statistics.median(figure(g) for g in gateways)

    return {
        "requests": median(lambda g: g["requests"]),
        "billed_ms": median(lambda g: g["billed_ms"]),
        "s3_get": median(lambda g: g["s3"]["get"]),
        "s3_put": median(lambda g: g["s3"]["put"]),
        "s3_free": median(lambda g: g["s3"]["free"]),
        "s3_client_get": median(lambda g: g["s3"]["client_get"]),
        "s3_calls_logged": median(lambda g: g["s3_calls_logged"]),
        "log_bytes": median(lambda g: g["log_bytes"]),
        "log_lines": median(lambda g: g["log_lines"]),
        "request_lines": median(lambda g: g["request_lines"]),
        "bucket_bytes_out": median(lambda g: g["bucket_bytes_out"]),
        "restores": RESTORES.get(way, 0),
    }


def usage_of(inputs: dict[str, float]) -> costs.PullUsage:
    return costs.PullUsage(
        requests=inputs["requests"],
        billed_ms=inputs["billed_ms"],
        s3_get=inputs["s3_get"],
        s3_put=inputs["s3_put"],
        log_bytes=inputs["log_bytes"],
        restores=inputs["restores"],
        bucket_bytes_out=inputs["bucket_bytes_out"],
    )


def price_pulls(pulls: dict[str, Any], function: costs.Function) -> dict[str, Any]:
    """Dollars per million pulls of every ociwrap way, with the prices and the function's
    memory and architecture they were computed with."""
    priced: dict[str, dict[str, Any]] = {}
    for kind, entry in pulls.items():
        priced[kind] = {}
        for way, figures in entry["ways"].items():
            if "ociwrap" in figures:
                usage = usage_of(figures["ociwrap"]["cost_inputs"])
                dollars = costs.per_million_pulls(usage, function)
                priced[kind][way] = {k: round(v, 6) for k, v in dollars.items()}
    return {
        "region": costs.REGION,
        "prices_checked": costs.PRICES_CHECKED,
        "function": {
            "memory_mb": function.memory_mb,
            "architecture": function.architecture,
            "from": f"{TEMPLATE.name}: RegistryFunction's own settings, else Globals.Function",
        },
        "prices": [
            {"key": p.key, "usd": p.usd, "per": p.per, "unit": p.unit, "what": p.what}
            for p in costs.PRICES
        ],
        "snapstart_cache_per_month": round(costs.snapstart_cache_per_month(function), 4),
        "per_million_pulls": priced,
    }


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
    rows.append(compose_big(rounds))
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
    from ociwrap.image import compose
    from ociwrap.image.documents import parse_image

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


#: Entries of each long list (`Env`, labels, history) on each side of `compose_big`.
BIG_ENTRIES = 50_000


def compose_big(rounds: int) -> dict[str, Any]:
    """Composing configs with 50 000 `Env` entries, labels and history entries on base and
    wrapper alike (and 1 000 shared names), read as an upstream's bytes are: pure, no I/O."""
    from harness.big_configs import big_image
    from ociwrap.image import compose
    from ociwrap.image.documents import parse_image
    from ociwrap.image.jsondoc import parse_json

    sides = {side: big_image(side, BIG_ENTRIES) for side in ("base", "wrapper")}
    base, wrapper = (
        parse_image(parse_json(manifest), parse_json(config), side)
        for side, (manifest, config) in sides.items()
    )
    samples = timed(lambda: compose.compose_image(base, wrapper, {}), min(rounds, 10))
    sizes = " + ".join(f"{len(config) / MIB:.1f}" for _manifest, config in sides.values())
    return latency_row(
        f"compose_image, {BIG_ENTRIES:,} Env, labels and history entries a side (pure)",
        samples,
        f"configs of {sizes} MiB",
    )


#: The bcrypt cost of the users in `login_costs`, as `htpasswd -B -C 12` writes them.
LOGIN_COST = 12


def login_costs(rounds: int) -> dict[str, Any]:
    """What a refused login costs with `REGISTRY_AUTH=basic`: a wrong password of a user
    stored at cost 12 and a user that does not exist, timed alternately in this process
    (`Users.check`, as the handler calls it). A ratio near 1 means timing does not tell
    which users exist."""
    import base64

    import bcrypt

    from ociwrap.registry.access import Users
    from ociwrap.runtime.secrets import SecretDocument

    def basic(user: str, password: str) -> str:
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    with tempfile.TemporaryDirectory(prefix="ociwrap-bench-logins-") as work:
        users_file = Path(work) / "htpasswd"
        lines = []
        for user in ("ci", "ops"):
            hashed = bcrypt.hashpw(b"secret", bcrypt.gensalt(LOGIN_COST)).decode()
            lines.append(f"{user}:{hashed.replace('$2b$', '$2y$', 1)}")
        users_file.write_text("\n".join(lines) + "\n")
        users = Users(
            SecretDocument("REGISTRY_AUTH_SECRET", None, "REGISTRY_AUTH_FILE", str(users_file))
        )
        refusals = logging.getLogger("ociwrap.registry.access")
        refusals.disabled = True  # one "login refused" line per try is not the report
        try:
            users.check(basic("ci", "warm-up"))  # reads the file
            wrong: list[float] = []
            unknown: list[float] = []
            for n in range(max(rounds, 3)):
                wrong += timed(lambda n=n: users.check(basic("ci", f"wrong-{n}")), 1)
                unknown += timed(lambda n=n: users.check(basic(f"nobody-{n}", "wrong")), 1)
        finally:
            refusals.disabled = False
    ratio = statistics.median(unknown) / statistics.median(wrong)
    return {
        "cost": LOGIN_COST,
        "rows": [
            latency_row("wrong password of a known user", wrong),
            latency_row("unknown user", unknown),
        ],
        "unknown_to_wrong_ratio": round(ratio, 3),
    }


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
    lines += render_costs(data)
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
    add("## Logins")
    add("")
    logins = data["logins"]
    add(
        f"`REGISTRY_AUTH=basic` refusing a login, users stored at bcrypt cost {logins['cost']} "
        f"(as `htpasswd -B -C {logins['cost']}` writes them), in this process, alternately."
    )
    add("")
    add("| what | n | median ms | p95 ms |")
    add("| --- | --- | --- | --- |")
    for row in logins["rows"]:
        add(f"| {row['what']} | {row['n']} | {row['median_ms']:.1f} | {row['p95_ms']:.1f} |")
    add("")
    add(
        f"Unknown user to wrong password: **{logins['unknown_to_wrong_ratio']:.2f}** "
        "(1 means timing does not tell which users exist)."
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


def _usd(value: float) -> str:
    return f"${value:,.2f}"


def _decimal(value: float) -> str:
    """A price as AWS writes it: no exponent, at least two decimals (0.0000133334, 1.00)."""
    text = f"{value:.10f}".rstrip("0")
    whole, _, fraction = text.partition(".")
    return f"{whole}.{fraction.ljust(2, '0')}"


def render_costs(data: dict[str, Any]) -> list[str]:
    """The cost tables: dollars per million pulls by upstream, what a pull used, the prices."""
    priced, function = data["costs"], data["costs"]["function"]
    reps = data["environment"]["repetitions"]
    lines = ["", "## Cost of a million pulls", ""]
    lines.append(
        f"AWS list prices ({priced['region']}, below) applied to what one pull used in this run "
        f"(median of {reps} repetitions, table after): API Gateway HTTP API and Lambda "
        "requests per ociwrap request; Lambda compute for each request's handler time rounded "
        f"up to the millisecond at {function['memory_mb']} MB {function['architecture']} (read "
        f"from {function['from']}); S3 requests on the gateway's bucket by price tier, the "
        "clients' presigned GETs included; CloudWatch Logs for the bytes the function logged. "
        "A cold pull counts one SnapStart restore of the function's memory (a new instance), "
        "a warm one none. Data transfer out of the bucket (layers mirrored from an upstream "
        "that serves bytes itself, generated configs) depends on the image, so it is shown "
        "apart, not in the total. The handler times are this machine's, against moto: "
        "compare ways and runs."
    )
    head = [label for _key, label in costs.ITEMS] + ["total", "transfer out (not in total)"]
    for kind, ways in priced["per_million_pulls"].items():
        lines += ["", f"### {kind}", ""]
        lines.append("| way | " + " | ".join(head) + " |")
        lines.append("| --- " * (len(head) + 1) + "|")
        for way, dollars in ways.items():
            cells = [_usd(dollars[key]) for key, _label in costs.ITEMS]
            cells += [f"**{_usd(dollars['total'])}**", _usd(dollars["transfer_out"])]
            lines.append(f"| {WAYS[way]} | " + " | ".join(cells) + " |")
    lines += ["", "What one pull used (median):", ""]
    lines.append(
        "| upstream | way | requests | Lambda ms billed | S3 GET/HEAD (clients') "
        "| S3 PUT/COPY/POST/LIST | S3 DELETE (free) | S3 calls in the function's log "
        "| log lines | log bytes | bytes out of the bucket |"
    )
    lines.append("| --- " * 11 + "|")
    for kind, entry in data["pulls"].items():
        for way, figures in entry["ways"].items():
            if "ociwrap" not in figures:
                continue
            i = figures["ociwrap"]["cost_inputs"]
            lines.append(
                f"| {kind} | {WAYS[way]} | {i['requests']:g} | {i['billed_ms']:g} | "
                f"{i['s3_get']:g} ({i['s3_client_get']:g}) | {i['s3_put']:g} | "
                f"{i['s3_free']:g} | {i['s3_calls_logged']:g} | {i['log_lines']:g} | "
                f"{i['log_bytes']:,.0f} | {i['bucket_bytes_out']:,.0f} |"
            )
    lines += [
        "",
        "S3 requests are counted in the gateway's S3 (moto) log, one line per request on the "
        "pull's bucket, by price tier; the clients' are the presigned GETs. The function's "
        "own log counts its S3 calls (`s3_calls`) but not their kind: they should equal the "
        "moto count less the clients' GETs. Log bytes are the function's JSON lines (its "
        "`request` line and EMF metric documents), without line ends.",
    ]
    lines += render_prices(priced)
    return lines


def render_prices(priced: dict[str, Any]) -> list[str]:
    """The price table the figures were computed with, and what they leave out."""
    lines = [
        "",
        f"Prices ({priced['region']}, checked {priced['prices_checked']}; "
        "`tests/harness/costs.py`, `PRICES`):",
        "",
        "| item | USD | per |",
        "| --- | --- | --- |",
    ]
    for price in priced["prices"]:
        per = f"{price['per']:,} " if price["per"] != 1 else ""
        lines.append(f"| {price['what']} | {_decimal(price['usd'])} | {per}{price['unit']} |")
    function = priced["function"]
    lines += [
        "",
        "SnapStart also bills the cached snapshot while a version is published: "
        f"{_usd(priced['snapstart_cache_per_month'])} a month per version at "
        f"{function['memory_mb']} MB, whatever the pulls. Not included: S3 storage of "
        "mirrored layers and composed documents, API Gateway's own access log and Lambda's "
        "START/END/REPORT lines in CloudWatch Logs, restore time billed as duration, X-Ray, "
        "upstream registries' charges, free tiers and volume tiers.",
    ]
    return lines


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
    function = costs.function_from_template(TEMPLATE)  # before minutes of pulls, not after
    data: dict[str, Any] = {"import": cold_import(args.import_rounds)}
    data["logins"] = login_costs(min(args.rounds, 10))
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
        data["costs"] = price_pulls(data["pulls"], function)
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
