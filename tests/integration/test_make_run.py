"""`make run` as a developer uses it: embedded S3 (and KMS), an aliased local upstream,
real skopeo."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
import requests

from harness import cosign
from harness.clients import skopeo_copy
from harness.procs import Process, clean_env, free_port
from harness.tools import require

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_make_run_serves_pulls_with_embedded_s3(tmp_path, upstream, pushed_images):
    require("make")
    port = free_port()
    env = clean_env(
        {
            "PORT": str(port),
            "REGISTRY_ALIASES": f"local={upstream.url}",
            "PYTHONUNBUFFERED": "1",
            "SIGNING_KMS_KEY_ID": "embedded",
        }
    )
    env.pop("S3_ENDPOINT_URL", None)
    env.pop("ARTIFACT_BUCKET", None)
    make = shutil.which("make")
    server = Process(
        "make-run", [make, "--no-print-directory", "run"], tmp_path, env=env, cwd=REPO_ROOT
    )
    server.start()
    try:
        server.wait_http(f"http://127.0.0.1:{port}/v2/", 200, timeout=120)
        base = pushed_images["base"]
        layout = skopeo_copy(f"127.0.0.1:{port}/local/{base.ref}", tmp_path / "out")
        index = json.loads((layout / "index.json").read_text())
        assert index["manifests"][0]["digest"] == base.digest
        layer = base.artifact.layers[0].digest
        redirect = requests.get(
            f"http://127.0.0.1:{port}/v2/local/{base.repo}/blobs/{layer}",
            allow_redirects=False,
            timeout=30,
        )
        location = urlparse(redirect.headers["Location"])
        assert redirect.status_code == 307
        assert location.hostname == "127.0.0.1"  # the embedded S3
        assert location.path.startswith("/ociwrap-local/blobs/")
        # Wrapped images are signed with a key of the embedded KMS, for this address.
        wrap = "wrap/local/library/busybox/1/with/local/tools/wrapper/1"
        url = f"http://127.0.0.1:{port}"
        manifest = requests.get(f"{url}/v2/{wrap}/manifests/latest", timeout=60)
        public = requests.get(f"{url}/v1alpha/signing-key", timeout=10).content
        digest = manifest.headers["Docker-Content-Digest"]
        cosign.verify(url, wrap, digest, public, f"127.0.0.1:{port}/{wrap}")
    finally:
        server.stop()
    deadline = time.monotonic() + 10
    while "stopped after" not in server.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    log = server.log()
    assert f"listening on http://127.0.0.1:{port}" in log
    assert "embedded S3 at http://127.0.0.1:" in log
    assert "signing with the embedded KMS key" in log
    assert "stopped after" in log


def test_smoke_script_passes_against_the_local_gateway(shared_gateway, pushed_images, capsys):
    """The deployment smoke test, run where it can be: the same checks on the local gateway."""
    import smoke

    from ociwrap.runtime import hops

    status = smoke.main(
        [
            shared_gateway.url,
            "--image",
            "local/library/busybox:multi",
            "--wrapper",
            "local/tools/wrapper/1",
            "--hop",
            hops.own_name(None, shared_gateway.bucket),  # no PUBLIC_HOSTNAME: the bucket's
        ]
    )
    table = capsys.readouterr().out
    assert status == 0, table
    assert table.count("| ok |") == 7
