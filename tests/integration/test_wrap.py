"""Wrapped images pulled through the gateway: composition seen by real clients.

`wrap/<base>/with/<wrapper>` paths name images on the harness's upstreams through the
aliases local / redir (see tests/conftest.py for the catalog).
"""

from __future__ import annotations

import hashlib
import re
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from harness.clients import bundle_config, skopeo_copy, umoci_unpack

pytestmark = pytest.mark.integration

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
ACCEPT = {
    "Accept": ",".join(
        [
            OCI_INDEX,
            OCI_MANIFEST,
            "application/vnd.docker.distribution.manifest.list.v2+json",
            "application/vnd.docker.distribution.manifest.v2+json",
        ]
    )
}
BASE_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def wrap_name(images, base: str, wrapper: str, alias: str = "local") -> str:
    return f"wrap/{alias}/{images[base].path}/with/{alias}/{images[wrapper].path}"


def get_manifest(gw, name: str, ref: str = "latest") -> requests.Response:
    return requests.get(f"{gw.url}/v2/{name}/manifests/{ref}", headers=ACCEPT, timeout=60)


def error_of(response: requests.Response) -> dict:
    return response.json()["errors"][0]


def test_skopeo_copy_and_umoci_unpack_show_the_composition(gateway, pushed_images, tmp_path):
    gw = gateway()
    name = wrap_name(pushed_images, "base", "wrapper")
    layout = skopeo_copy(f"{gw.host}/{name}:latest", tmp_path / "layout")
    rootfs = umoci_unpack(layout, "x", tmp_path / "bundle")
    assert (rootfs / "bin" / "busybox").is_file()
    assert (rootfs / "wrapper" / "run.sh").is_file()

    manifest = get_manifest(gw, name).json()
    base = pushed_images["base"].artifact
    wrapper = pushed_images["wrapper"].artifact
    assert [layer["digest"] for layer in manifest["layers"]] == [
        layer.digest for layer in base.layers + wrapper.layers
    ]
    annotations = manifest["annotations"]
    assert annotations["org.opencontainers.image.base.digest"] == pushed_images["base"].digest
    assert annotations["org.opencontainers.image.base.name"].endswith("library/busybox:1")

    config_blob = requests.get(
        f"{gw.url}/v2/{name}/blobs/{manifest['config']['digest']}", timeout=30
    )
    assert sha256(config_blob.content) == manifest["config"]["digest"]
    config = config_blob.json()
    assert config["config"]["Entrypoint"] == ["/wrapper/run.sh"]
    assert config["config"]["Cmd"] == ["sh", "-c", "echo base-cmd"]
    env = config["config"]["Env"]
    assert BASE_PATH in env and "WRAPPER_VAR=1" in env and "BASE_VAR=base" in env
    assert config["rootfs"]["diff_ids"] == [layer.diff_id for layer in base.layers + wrapper.layers]
    built = [entry for entry in config["history"] if not entry.get("empty_layer")]
    assert len(built) == len(manifest["layers"])
    assert bundle_config(tmp_path / "bundle")["process"]["args"][0] == "/wrapper/run.sh"


@pytest.mark.parametrize("alias", ["local", "tok", "redir"])
def test_podman_runs_wrapper_then_base_command(
    alias, gateway, podman, pushed_images, token_images, redirecting_images
):
    """Through each kind of upstream: bytes served, token-protected, redirected."""
    gw = gateway()
    images = {"local": pushed_images, "tok": token_images, "redir": redirecting_images}[alias]
    ref = f"{gw.host}/{wrap_name(images, 'base', 'wrapper', alias=alias)}:latest"
    assert podman.run(ref).splitlines() == ["wrapper-says-hello", "base-cmd"]
    assert podman.run(ref, "echo", "other-cmd").splitlines() == [
        "wrapper-says-hello",
        "other-cmd",
    ]


def test_podman_goes_through_wrapper_and_base_entrypoint(gateway, podman, pushed_images):
    gw = gateway()
    ref = f"{gw.host}/{wrap_name(pushed_images, 'base-entrypoint', 'wrapper')}:latest"
    assert podman.run(ref, "some-arg").splitlines() == [
        "wrapper-says-hello",
        "base-entrypoint some-arg",
    ]


def test_docker_schema2_base_and_multi_layer_wrapper(gateway, podman, pushed_images):
    gw = gateway()
    name = wrap_name(pushed_images, "base-v2s2", "wrapper-2layers")
    response = get_manifest(gw, name)
    assert response.status_code == 200
    manifest = response.json()
    assert manifest["mediaType"] == OCI_MANIFEST
    assert response.headers["Content-Type"] == OCI_MANIFEST
    assert len(manifest["layers"]) == 1 + 2
    assert {layer["mediaType"] for layer in manifest["layers"]} == {
        "application/vnd.oci.image.layer.v1.tar+gzip"
    }
    assert podman.run(f"{gw.host}/{name}:latest").splitlines() == [
        "wrapper-says-hello",
        "base-cmd",
    ]


def test_docker_schema2_wrapper(gateway, pushed_images):
    gw = gateway()
    response = get_manifest(gw, wrap_name(pushed_images, "base", "wrapper-v2s2"))
    assert response.status_code == 200
    assert response.json()["layers"][-1]["digest"] == (
        pushed_images["wrapper"].artifact.layers[-1].digest
    )


def test_ctr_pulls_a_wrapped_image_and_a_wrapped_index(gateway, containerd, pushed_images):
    gw = gateway()
    single = f"{gw.host}/{wrap_name(pushed_images, 'base', 'wrapper')}:latest"
    multi = f"{gw.host}/{wrap_name(pushed_images, 'base-multi', 'wrapper-multi')}:latest"
    containerd.pull(single)
    containerd.pull(multi)
    held = containerd.images()
    assert (
        held[single]
        == get_manifest(gw, wrap_name(pushed_images, "base", "wrapper")).headers[
            "Docker-Content-Digest"
        ]
    )
    index = get_manifest(gw, wrap_name(pushed_images, "base-multi", "wrapper-multi"))
    assert held[multi] == index.headers["Docker-Content-Digest"]
    assert re.search(r'"HEAD /v2/wrap/\S+/manifests/latest HTTP/1.1" 200 0', gw.log())


def test_multi_platform_index(gateway, pushed_images):
    gw = gateway()
    name = wrap_name(pushed_images, "base-multi", "wrapper-multi")
    response = get_manifest(gw, name)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == OCI_INDEX
    index = response.json()
    platforms = [(m["platform"]["os"], m["platform"]["architecture"]) for m in index["manifests"]]
    assert platforms == [("linux", "amd64"), ("linux", "arm64")]  # attestation dropped
    wrapper_index = pushed_images["wrapper-multi"].artifact
    for entry, wrapper_image in zip(index["manifests"], wrapper_index.images, strict=True):
        platform_manifest = get_manifest(gw, name, entry["digest"])
        assert platform_manifest.status_code == 200
        assert sha256(platform_manifest.content) == entry["digest"]
        assert int(platform_manifest.headers["Content-Length"]) == entry["size"]
        layers = [layer["digest"] for layer in platform_manifest.json()["layers"]]
        assert layers[-2:] == [layer.digest for layer in wrapper_image.layers]


def test_single_platform_wrapper_serves_every_base_platform(gateway, pushed_images, tmp_path):
    gw = gateway()
    name = wrap_name(pushed_images, "base-multi", "wrapper")
    index = get_manifest(gw, name).json()
    assert len(index["manifests"]) == 2
    wrapper_layer = pushed_images["wrapper"].artifact.layers[-1].digest
    for entry in index["manifests"]:
        manifest = get_manifest(gw, name, entry["digest"]).json()
        assert manifest["layers"][-1]["digest"] == wrapper_layer
    skopeo_copy(f"{gw.host}/{name}:latest", tmp_path / "all", all=True)


@pytest.mark.parametrize(
    ("wrapper", "message"),
    [
        ("wrapper-nolabel", "wrapper image missing 'org.goci.wrapper' label"),
        ("wrapper-nolayers", "wrapper image has no layers"),
        ("helm-chart", "invalid upstream image format"),
    ],
)
def test_goci_error_cases(shared_gateway, pushed_images, wrapper, message):
    response = get_manifest(shared_gateway, wrap_name(pushed_images, "base", wrapper))
    assert response.status_code == 400
    assert error_of(response)["code"] == "MANIFEST_INVALID"
    assert error_of(response)["message"] == message


@pytest.mark.parametrize(
    ("name", "which"),
    [
        ("wrap/local/library/nothing/1/with/local/tools/wrapper/1", "base image"),
        ("wrap/local/library/busybox/1/with/local/tools/nothing/1", "wrapper image"),
        ("wrap/local/library/busybox/404/with/local/tools/wrapper/1", "base image"),
    ],
)
def test_missing_upstream_image_is_named(shared_gateway, pushed_images, name, which):
    response = get_manifest(shared_gateway, name)
    assert response.status_code == 404
    error = error_of(response)
    assert error["code"] == "MANIFEST_UNKNOWN"
    assert error["message"].startswith(which)


def test_blob_routes_of_a_wrap(gateway, pushed_images, redirecting_images):
    gw = gateway()
    name = wrap_name(redirecting_images, "base", "wrapper", alias="redir")
    manifest = get_manifest(gw, name).json()
    layer = manifest["layers"][0]
    redirect = requests.get(
        f"{gw.url}/v2/{name}/blobs/{layer['digest']}", allow_redirects=False, timeout=30
    )
    assert redirect.status_code == 307
    assert "/upstream-redirect-blobs/" in redirect.headers["Location"]
    head = requests.head(f"{gw.url}/v2/{name}/blobs/{layer['digest']}", timeout=30)
    assert head.status_code == 200 and head.headers["Content-Length"] == str(layer["size"])
    config = requests.get(
        f"{gw.url}/v2/{name}/blobs/{manifest['config']['digest']}",
        allow_redirects=False,
        timeout=30,
    )
    assert config.status_code == 307
    assert f"/{gw.bucket}/blobs/sha256/" in config.headers["Location"]
    foreign = sha256(pushed_images["base-entrypoint"].artifact.config_bytes())
    unknown = requests.get(f"{gw.url}/v2/{name}/blobs/{foreign}", timeout=30)
    assert unknown.status_code == 404
    assert error_of(unknown)["code"] == "BLOB_UNKNOWN"
    other = requests.get(f"{gw.url}/v2/{name}/manifests/{foreign}", headers=ACCEPT, timeout=30)
    assert other.status_code == 404


def test_same_digest_from_two_gateway_processes(gateway, pushed_images):
    name = wrap_name(pushed_images, "base-multi", "wrapper-multi")
    first = get_manifest(gateway(), name)
    second = get_manifest(gateway(), name)  # another process, another bucket
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    assert first.headers["Docker-Content-Digest"] == second.headers["Docker-Content-Digest"]


def test_parallel_first_pulls_agree(gateway, pushed_images, upstream):
    gw = gateway()
    name = wrap_name(pushed_images, "base-multi", "wrapper")
    mark = upstream.mark()
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(lambda _: get_manifest(gw, name), range(8)))
    assert [r.status_code for r in responses] == [200] * 8
    assert len({r.headers["Docker-Content-Digest"] for r in responses}) == 1
    # composed once: one tag resolution per image, not one per request
    assert upstream.manifest_requests("HEAD", since=mark) == 2


def test_second_pull_makes_no_upstream_manifest_request(gateway, pushed_images, upstream, tmp_path):
    first_gw = gateway()
    name = wrap_name(pushed_images, "base", "wrapper-2layers")
    skopeo_copy(f"{first_gw.host}/{name}:latest", tmp_path / "first")
    mark = upstream.mark()
    second_gw = gateway(bucket=first_gw.bucket)  # a cold process, the same bucket
    skopeo_copy(f"{second_gw.host}/{name}:latest", tmp_path / "second")
    assert upstream.manifest_requests("GET", since=mark) == 0
    assert upstream.manifest_requests("HEAD", since=mark) == 0


def test_digest_pinned_base(gateway, pushed_images):
    gw = gateway()
    hex_digest = pushed_images["base"].digest.split(":")[1]
    name = f"wrap/local/library/busybox/sha256-{hex_digest}/with/local/tools/wrapper/1"
    response = get_manifest(gw, name)
    assert response.status_code == 200
    assert response.json()["annotations"]["org.opencontainers.image.base.digest"] == (
        pushed_images["base"].digest
    )


def test_tags_list_of_a_wrap(shared_gateway, pushed_images):
    name = wrap_name(pushed_images, "base", "wrapper")
    body = requests.get(f"{shared_gateway.url}/v2/{name}/tags/list", timeout=30).json()
    assert body == {"name": name, "tags": ["latest"]}


def test_wrap_blob_bytes_never_pass_through_the_gateway(gateway, podman, pushed_images):
    gw = gateway()
    podman.pull(f"{gw.host}/{wrap_name(pushed_images, 'base', 'wrapper-2layers')}:latest")
    gets = re.findall(r'"GET /v2/wrap/\S+/blobs/\S+ HTTP/1.1" (\d+) (\d+)', gw.log())
    assert gets and all(status == "307" and sent == "0" for status, sent in gets)


def test_single_platform_base_takes_its_platforms_wrapper_variant(gateway, pushed_images):
    gw = gateway()
    response = get_manifest(gw, wrap_name(pushed_images, "base", "wrapper-multi"))
    assert response.status_code == 200
    assert response.headers["Content-Type"] == OCI_MANIFEST
    amd64_wrapper = pushed_images["wrapper-multi"].artifact.images[0]
    assert amd64_wrapper.platform["architecture"] == "amd64"
    assert response.json()["layers"][-2:] == [layer.descriptor() for layer in amd64_wrapper.layers]
