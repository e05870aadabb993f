"""Self-test of the integration harness: each piece works on its own, without ociwrap.

Images are pushed to and pulled back from the upstream registries DIRECTLY, so a failure
here points at the harness or the machine, never at the registry under development.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import sys
import tarfile
from pathlib import Path

import pytest
import requests

from harness import images
from harness.clients import (
    Containerd,
    Podman,
    bundle_config,
    skopeo_copy,
    skopeo_inspect,
    skopeo_inspect_bytes,
    umoci_unpack,
)
from harness.gateway import GatewayFactory
from harness.images import Pushed
from harness.moto_s3 import MotoS3
from harness.procs import HarnessError, Process, free_port, wait_http
from harness.registry import DockerRegistry
from harness.tokens import TokenIssuer, parse_scope
from harness.tools import require

pytestmark = pytest.mark.integration

OCI_ACCEPT = ", ".join(
    [
        images.OCI_MANIFEST,
        images.OCI_INDEX,
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# -- procs and tools ------------------------------------------------------------------------


def test_process_serves_and_stops(tmp_path: Path) -> None:
    port = free_port()
    server = Process(
        "http-server",
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        tmp_path,
        cwd=tmp_path,
    ).start()
    try:
        server.wait_http(f"http://127.0.0.1:{port}/", 200, timeout=10)
        assert server.alive
    finally:
        server.stop()
    assert not server.alive
    assert "GET / HTTP/1.1" in server.log()


def test_dead_process_fails_fast_with_log_tail(tmp_path: Path) -> None:
    port = free_port()
    crasher = Process("crasher", ["sh", "-c", "echo boom-reason >&2; exit 3"], tmp_path).start()
    with pytest.raises(HarnessError, match="boom-reason"):
        wait_http(f"http://127.0.0.1:{port}/", timeout=10, process=crasher)
    assert crasher.returncode == 3


def test_require_skips_locally_and_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    assert require("sh").endswith("/sh")
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="apt-get install"):
        require("no-such-tool-for-harness")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="no-such-tool-for-harness"):
        require("no-such-tool-for-harness")


# -- images ---------------------------------------------------------------------------------


def test_images_are_reproducible_and_well_formed() -> None:
    first, second = images.standard_images(), images.standard_images()
    assert {k: v.digest for k, v in first.items()} == {k: v.digest for k, v in second.items()}

    layer = images.busybox_layer()
    assert layer.blob[4:8] == b"\0\0\0\0"  # gzip header mtime
    raw = gzip.decompress(layer.blob)
    assert layer.diff_id == sha256(raw)
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names)
    assert all(m.mtime == 0 and m.uid == 0 and m.gid == 0 for m in members)
    by_name = {m.name: m for m in members}
    assert by_name["tmp"].mode == 0o1777
    assert by_name["bin/sh"].issym() and by_name["bin/sh"].linkname == "busybox"
    assert by_name["bin/busybox"].mode == 0o755

    wrapper = first["wrapper-2layers"]
    assert isinstance(wrapper, images.Image)
    assert len(wrapper.layers) == 2
    assert wrapper.config["Labels"][images.WRAPPER_LABEL] == "/wrapper/run.sh"
    assert "WRAPPER_VAR=1" in wrapper.config["Env"]
    assert first["wrapper-nolayers"].manifest_json()["layers"] == []  # type: ignore[union-attr]
    assert images.WRAPPER_LABEL not in first["wrapper-nolabel"].config["Labels"]  # type: ignore[union-attr]


# -- upstreams, pushed and read back directly -----------------------------------------------


def test_plain_upstream_serves_pushed_catalog(
    upstream: DockerRegistry, pushed_images: dict[str, Pushed]
) -> None:
    for key, pushed in pushed_images.items():
        raw = skopeo_inspect_bytes(pushed.at(upstream.host), raw=True)
        assert sha256(raw) == pushed.digest, key
        if pushed.format is None:  # OCI pushes keep the bytes written to the layout
            assert pushed.digest == pushed.artifact.digest, key

    docker = skopeo_inspect(pushed_images["base-v2s2"].at(upstream.host), raw=True)
    assert docker["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    config = skopeo_inspect(pushed_images["base-entrypoint"].at(upstream.host), config=True)
    assert config["config"]["Entrypoint"] == ["/bin/echo", "base-entrypoint"]

    index = skopeo_inspect(pushed_images["base-multi"].at(upstream.host), raw=True)
    platforms = [
        f"{m['platform']['os']}/{m['platform']['architecture']}" for m in index["manifests"]
    ]
    assert platforms == ["linux/amd64", "linux/arm64", "unknown/unknown"]
    arm = skopeo_inspect(
        pushed_images["base-multi"].at(upstream.host), config=True, platform=("linux", "arm64")
    )
    assert arm["architecture"] == "arm64"


def test_upstream_counts_manifest_requests(
    upstream: DockerRegistry, pushed_images: dict[str, Pushed]
) -> None:
    base = pushed_images["base"]
    since = upstream.mark()
    skopeo_inspect_bytes(base.at(upstream.host), raw=True)
    reply = requests.head(
        f"{upstream.url}/v2/{base.repo}/manifests/{base.tag}", headers={"Accept": OCI_ACCEPT}
    )
    assert reply.status_code == 200
    assert upstream.manifest_requests("GET", base.repo, since=since) == 1
    assert upstream.manifest_requests("HEAD", since=since) == 1


def test_skopeo_copy_and_umoci_unpack(
    tmp_path: Path, upstream: DockerRegistry, pushed_images: dict[str, Pushed]
) -> None:
    layout = skopeo_copy(pushed_images["wrapper-2layers"].at(upstream.host), tmp_path / "oci")
    rootfs = umoci_unpack(layout, "x", tmp_path / "bundle")
    script = rootfs / "wrapper" / "run.sh"
    assert script.read_text() == images.WRAPPER_SCRIPT
    assert stat.S_IMODE(script.stat().st_mode) == 0o755
    assert (rootfs / "wrapper" / "extra.txt").exists()
    assert "WRAPPER_VAR=1" in bundle_config(tmp_path / "bundle")["process"]["env"]

    layout = skopeo_copy(pushed_images["base"].at(upstream.host), tmp_path / "base-oci")
    rootfs = umoci_unpack(layout, "x", tmp_path / "base-bundle")
    assert os.readlink(rootfs / "bin" / "sh") == "busybox"
    assert stat.S_IMODE((rootfs / "tmp").stat().st_mode) == 0o1777


def test_parse_scope_keeps_colons_in_names() -> None:
    assert parse_scope("repository:127.0.0.1:5000/a/b:pull,push") == {
        "type": "repository",
        "name": "127.0.0.1:5000/a/b",
        "actions": ["pull", "push"],
    }
    assert parse_scope("nonsense") is None


def test_token_upstream_requires_and_accepts_tokens(
    token_upstream: DockerRegistry,
    token_issuer: TokenIssuer,
    token_images: dict[str, Pushed],
) -> None:
    base = token_images["base"]
    manifest_url = f"{token_upstream.url}/v2/{base.repo}/manifests/{base.tag}"
    challenge = requests.get(manifest_url, headers={"Accept": OCI_ACCEPT})
    assert challenge.status_code == 401
    assert challenge.headers["WWW-Authenticate"].startswith(f'Bearer realm="{token_issuer.realm}"')

    before = token_issuer.count()
    assert sha256(skopeo_inspect_bytes(base.at(token_upstream.host), raw=True)) == base.digest
    assert token_issuer.count() > before

    answer = requests.get(
        token_issuer.realm,
        params={"service": token_issuer.service, "scope": f"repository:{base.repo}:pull"},
    ).json()
    assert answer["token"] == answer["access_token"] and answer["expires_in"] == 300
    good = requests.get(
        manifest_url, headers={"Accept": OCI_ACCEPT, "Authorization": f"Bearer {answer['token']}"}
    )
    assert good.status_code == 200 and sha256(good.content) == base.digest
    pull = [{"type": "repository", "name": base.repo, "actions": ["pull"]}]
    refused = {
        "other repository": token_issuer.make_token([{**pull[0], "name": "x/y"}]),
        "expired": token_issuer.make_token(pull, lifetime=-120),
        "other audience": token_issuer.make_token(pull, audience="elsewhere"),
        "other issuer": token_issuer.make_token(pull, issuer="elsewhere"),
    }
    for why, token in refused.items():
        denied = requests.get(
            manifest_url, headers={"Accept": OCI_ACCEPT, "Authorization": f"Bearer {token}"}
        )
        assert denied.status_code == 401, why


def test_redirecting_upstream_redirects_blobs_to_s3(
    tmp_path: Path,
    moto_s3: MotoS3,
    redirecting_upstream: DockerRegistry,
    redirecting_images: dict[str, Pushed],
) -> None:
    base = redirecting_images["base"]
    assert isinstance(base.artifact, images.Image)
    layer = base.artifact.layers[0]
    reply = requests.get(
        f"{redirecting_upstream.url}/v2/{base.repo}/blobs/{layer.digest}", allow_redirects=False
    )
    assert reply.status_code == 307
    location = reply.headers["Location"]
    assert location.startswith(f"{moto_s3.endpoint_url}/upstream-redirect-blobs/")
    assert "X-Amz-Signature=" in location
    assert sha256(requests.get(location).content) == layer.digest
    skopeo_copy(base.at(redirecting_upstream.host), tmp_path / "oci")


# -- clients pulling directly from the plain upstream ---------------------------------------


def test_podman_pulls_and_runs_base(
    podman: Podman, upstream: DockerRegistry, pushed_images: dict[str, Pushed]
) -> None:
    ref = pushed_images["base"].at(upstream.host)
    podman.pull(ref)
    assert podman.run(ref) == "base-cmd\n"
    assert podman.run(ref, "sh", "-c", 'echo "$BASE_VAR"') == "base\n"


def test_ctr_pulls_from_plain_upstream(
    containerd: Containerd, upstream: DockerRegistry, pushed_images: dict[str, Pushed]
) -> None:
    base = pushed_images["base"]
    since = upstream.mark()
    containerd.pull(base.at(upstream.host))
    assert containerd.images()[base.at(upstream.host)] == base.digest
    assert upstream.manifest_requests("HEAD", base.repo, since=since) >= 1

    multi = pushed_images["base-multi"]
    containerd.pull(multi.at(upstream.host))
    assert containerd.images()[multi.at(upstream.host)] == multi.digest


# -- the gateway fixture (only its start-up contract: GET /v2/ answers 200) ------------------


def test_gateway_fixture_starts_and_stops(gateway: GatewayFactory) -> None:
    gw = gateway()
    assert requests.get(f"{gw.url}/v2/").status_code == 200
    assert gw.host == f"127.0.0.1:{gw.port}"
    assert gw.process.alive
    gw.stop()
    assert not gw.process.alive
