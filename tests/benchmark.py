"""Benchmark: request latency, upstream requests per pull, and memory, printed as a table.

Runs the real stack on 127.0.0.1 (docker-registry upstream, moto S3, the local gateway
serving the Lambda handler) and times requests as clients make them. Run with
`make bench`. Figures are for this machine; compare runs, not absolute numbers.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import requests

from harness.gateway import LocalGateway
from harness.images import push_catalog, standard_images, write_oci_layout
from harness.moto_s3 import MotoS3
from harness.registry import DockerRegistry

ACCEPT = {
    "Accept": "application/vnd.oci.image.index.v1+json,"
    "application/vnd.oci.image.manifest.v1+json,"
    "application/vnd.docker.distribution.manifest.v2+json"
}
ROUNDS = 50


def timed(call: Callable[[], object], rounds: int = ROUNDS) -> list[float]:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def row(name: str, samples: list[float], note: str = "") -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"| {name} | {len(samples)} | {statistics.median(samples):.1f} | {p95:.1f} | {note} |"


def get(url: str, **kwargs: object) -> requests.Response:
    response = requests.get(url, headers=ACCEPT, timeout=60, allow_redirects=False, **kwargs)
    if response.status_code not in (200, 307):
        raise SystemExit(f"{url}: {response.status_code} {response.text}")
    return response


def compose_micro() -> list[str]:
    """Pure composition cost: manifests and configs in, bytes out, no I/O."""
    from ociwrap import compose
    from ociwrap.documents import parse_image

    artifacts = standard_images()
    base, wrapper = artifacts["base"], artifacts["wrapper-2layers"]
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
        row("compose_image (pure, in process)", samples, f"peak alloc {peak / 1024:.0f} KiB"),
    ]


def cold_import() -> list[str]:
    """Importing the handler in a fresh interpreter: the part of a cold start that is ours."""
    root = Path(__file__).resolve().parents[1]
    env = {
        **os.environ,
        "PYTHONPATH": f"{root / 'layers' / 'ociwrap'}:{root / 'functions' / 'registry'}",
    }
    command = [sys.executable, "-c", "import app"]
    baseline = [sys.executable, "-c", "pass"]
    runs = timed(lambda: subprocess.run(command, env=env, check=True), rounds=5)
    empty = timed(lambda: subprocess.run(baseline, env=env, check=True), rounds=5)
    return [row("import app (fresh interpreter)", runs, f"bare interpreter {min(empty):.0f} ms")]


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="ociwrap-bench-"))
    moto = MotoS3(work / "moto").start()
    registry = DockerRegistry(work / "upstream", "plain").start()
    gateways: list[LocalGateway] = []
    try:
        layout = write_oci_layout(work / "layout", standard_images())
        images = push_catalog(layout, registry.host, standard_images())
        moto.create_bucket("bench")

        def gateway() -> LocalGateway:
            gw = LocalGateway(
                work / f"gw{len(gateways)}",
                s3_endpoint_url=moto.endpoint_url,
                bucket="bench",
                aliases={"local": registry.url},
            )
            (work / f"gw{len(gateways)}").mkdir()
            gateways.append(gw)
            return gw.start()

        gw = gateway()
        base = images["base"]
        proxied = f"{gw.url}/v2/local/{base.repo}"
        layer = base.artifact.layers[0].digest
        rows = [
            row("GET /v2/", timed(lambda: get(f"{gw.url}/v2/"))),
            row("proxy manifest GET by tag", timed(lambda: get(f"{proxied}/manifests/1"))),
            row(
                "proxy manifest HEAD by tag",
                timed(lambda: requests.head(f"{proxied}/manifests/1", headers=ACCEPT, timeout=60)),
            ),
            row(
                "proxy manifest GET by digest",
                timed(lambda: get(f"{proxied}/manifests/{base.digest}")),
            ),
            row("proxy blob GET -> 307 (S3 copy)", timed(lambda: get(f"{proxied}/blobs/{layer}"))),
        ]

        combos = [
            (b, w)
            for b in ("base", "base-v2s2", "base-entrypoint", "base-multi")
            for w in ("wrapper", "wrapper-v2s2", "wrapper-2layers", "wrapper-multi")
        ]
        names = [f"wrap/local/{images[b].path}/with/local/{images[w].path}" for b, w in combos]
        marks = registry.mark()
        cold = [timed(lambda n=n: get(f"{gw.url}/v2/{n}/manifests/latest"), 1)[0] for n in names]
        first_pull_requests = len(registry.requests()[marks:]) / len(names)
        rows.append(row("wrap manifest, first pull (composes)", cold, f"{len(names)} wraps"))
        wrap = f"{gw.url}/v2/{names[2]}"
        rows.append(
            row("wrap manifest, warm (memory)", timed(lambda: get(f"{wrap}/manifests/latest")))
        )
        config_digest = get(f"{wrap}/manifests/latest").json()["config"]["digest"]
        rows.append(
            row(
                "wrap config blob -> 307 (presign)",
                timed(lambda: get(f"{wrap}/blobs/{config_digest}")),
            )
        )
        rows.append(row("wrap layer blob -> 307", timed(lambda: get(f"{wrap}/blobs/{layer}"))))

        fresh = gateway()
        marks = registry.mark()
        from_s3 = [
            timed(lambda n=n: get(f"{fresh.url}/v2/{n}/manifests/latest"), 1)[0] for n in names
        ]
        second_pull_requests = len(registry.requests()[marks:]) / len(names)
        rows.append(row("wrap manifest, new process (S3 hit)", from_s3, f"{len(names)} wraps"))
        rows += compose_micro()
        rows += cold_import()

        print("| what | n | median ms | p95 ms | note |")
        print("| --- | --- | --- | --- | --- |")
        print("\n".join(rows))
        print()
        print("| figure | value |")
        print("| --- | --- |")
        label = "upstream requests per first wrap pull (each tag resolved once)"
        print(f"| {label} | {first_pull_requests:.1f} |")
        print(f"| upstream requests per later pull, new process | {second_pull_requests:.1f} |")
        print(f"| gateway peak RSS after the run (MiB) | {gw.peak_rss_mb():.0f} |")
        print(f"| fresh gateway peak RSS (MiB) | {fresh.peak_rss_mb():.0f} |")
    finally:
        for gw in gateways:
            gw.stop()
        registry.stop()
        moto.stop()
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
