"""Pull-through proxy against real upstream registries, with real clients.

Upstreams are Debian's docker-registry on 127.0.0.1 (plain, token-auth and S3-redirecting
flavours, aliased local / tok / redir); the gateway is `python -m ociwrap_local`, the
same handler the Lambda runs; S3 is moto's server over HTTP.
"""

from __future__ import annotations

import hashlib
import json
import re
from urllib.parse import urlparse

import pytest
import requests

from harness.clients import skopeo_copy, skopeo_inspect_bytes
from harness.procs import free_port

pytestmark = pytest.mark.integration

ALL_TYPES = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
]
ACCEPT = {"Accept": ",".join(ALL_TYPES)}


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def blob_log_lines(log: str) -> list[tuple[str, int, int]]:
    """(method, status, body bytes) of every blob request the gateway answered."""
    found = []
    for match in re.finditer(r'"(GET|HEAD) (/v2/\S+/blobs/\S+) HTTP/1.1" (\d+) (\d+)', log):
        found.append((match[1], int(match[3]), int(match[4])))
    return found


@pytest.mark.parametrize("alias", ["local", "tok", "redir"])
def test_skopeo_copy_gives_upstream_digests(
    alias, gateway, pushed_images, token_images, redirecting_images, upstream_aliases, tmp_path
):
    """skopeo copies through the proxy; manifests are byte-identical to the upstream's."""
    gw = gateway()
    image = {"local": pushed_images, "tok": token_images, "redir": redirecting_images}[alias]
    base = image["base"]
    upstream_host = upstream_aliases[alias].removeprefix("http://")
    layout = skopeo_copy(f"{gw.host}/{alias}/{base.ref}", tmp_path / "out")
    index = json.loads((layout / "index.json").read_text())
    assert index["manifests"][0]["digest"] == base.digest
    proxied = skopeo_inspect_bytes(f"{gw.host}/{alias}/{base.ref}", raw=True)
    if alias != "tok":  # skopeo inspect would need the token dance; the bytes are what counts
        assert proxied == skopeo_inspect_bytes(f"{upstream_host}/{base.ref}", raw=True)
    assert sha256(proxied) == base.digest
    log = gw.log()
    blob_gets = [line for line in blob_log_lines(log) if line[0] == "GET"]
    assert blob_gets, "skopeo fetched no blob through the proxy"
    assert all(status == 307 and sent == 0 for _m, status, sent in blob_gets)


def test_manifest_get_and_head_carry_real_headers(gateway, pushed_images):
    gw = gateway()
    base = pushed_images["base"]
    url = f"{gw.url}/v2/local/{base.repo}/manifests/{base.tag}"
    get = requests.get(url, headers=ACCEPT, timeout=30)
    assert get.status_code == 200
    assert sha256(get.content) == base.digest
    assert get.headers["Docker-Content-Digest"] == base.digest
    assert get.headers["Content-Type"] == "application/vnd.oci.image.manifest.v1+json"
    assert int(get.headers["Content-Length"]) == len(get.content)
    assert get.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    head = requests.head(url, headers=ACCEPT, timeout=30)
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["Content-Length"] == str(len(get.content))
    assert head.headers["Docker-Content-Digest"] == base.digest
    assert head.headers["Content-Type"] == get.headers["Content-Type"]
    by_digest = requests.head(
        f"{gw.url}/v2/local/{base.repo}/manifests/{base.digest}", headers=ACCEPT, timeout=30
    )
    assert by_digest.headers["Content-Length"] == str(len(get.content))


def test_every_accept_value_reaches_the_upstream(gateway, pushed_images):
    """Repeated Accept headers are comma-joined by API Gateway; the docker type still counts."""
    gw = gateway()
    docker = pushed_images["base-v2s2"]
    url = f"{gw.url}/v2/local/{docker.repo}/manifests/{docker.tag}"
    accept = "application/vnd.oci.image.manifest.v1+json, " + ALL_TYPES[3] + ";q=0.9"
    response = requests.get(url, headers={"Accept": accept}, timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == ALL_TYPES[3]
    assert sha256(response.content) == docker.digest


def test_digest_requests_are_served_from_s3(gateway, pushed_images, upstream):
    gw = gateway()
    base = pushed_images["base"]
    url = f"{gw.url}/v2/local/{base.repo}/manifests/{base.digest}"
    assert requests.get(url, headers=ACCEPT, timeout=30).status_code == 200
    mark = upstream.mark()
    again = requests.get(url, headers=ACCEPT, timeout=30)
    assert sha256(again.content) == base.digest
    assert upstream.manifest_requests("GET", since=mark) == 0
    assert upstream.manifest_requests("HEAD", since=mark) == 0


def test_blob_from_a_byte_serving_upstream_redirects_to_a_verified_s3_copy(
    gateway, pushed_images, moto_s3
):
    gw = gateway()
    base = pushed_images["base"]
    layer = base.artifact.layers[0]
    url = f"{gw.url}/v2/local/{base.repo}/blobs/{layer.digest}"
    response = requests.get(url, allow_redirects=False, timeout=30)
    assert response.status_code == 307
    assert response.content == b""
    assert response.headers["Content-Length"] == "0"
    location = urlparse(response.headers["Location"])
    assert location.scheme == "http" and location.netloc == moto_s3.endpoint_url[7:]
    assert location.path == f"/{gw.bucket}/blobs/sha256/{layer.digest[7:]}"
    fetched = requests.get(response.headers["Location"], timeout=30)
    assert sha256(fetched.content) == layer.digest
    head = requests.head(url, allow_redirects=False, timeout=30)
    assert head.status_code == 200
    assert head.headers["Content-Length"] == str(layer.size)
    assert head.headers["Docker-Content-Digest"] == layer.digest
    assert "Location" not in head.headers


def test_blob_from_a_redirecting_upstream_hands_out_its_own_location(
    gateway, redirecting_images, moto_s3
):
    gw = gateway()
    base = redirecting_images["base"]
    layer = base.artifact.layers[0]
    url = f"{gw.url}/v2/redir/{base.repo}/blobs/{layer.digest}"
    response = requests.get(url, allow_redirects=False, timeout=30)
    assert response.status_code == 307
    location = urlparse(response.headers["Location"])
    assert location.path.startswith("/upstream-redirect-blobs/")  # the upstream's storage
    assert sha256(requests.get(response.headers["Location"], timeout=30).content) == layer.digest
    keys = moto_s3.keys(gw.bucket, "blobs/")
    assert keys == []  # nothing was copied: the upstream hands the bytes out itself
    head = requests.head(url, allow_redirects=False, timeout=30)
    assert head.status_code == 200
    assert head.headers["Content-Length"] == str(layer.size)


def test_token_upstream_tokens_are_reused(gateway, token_images, token_issuer):
    gw = gateway()
    base = token_images["base"]
    before = token_issuer.count()
    for _ in range(3):
        response = requests.get(
            f"{gw.url}/v2/tok/{base.repo}/manifests/{base.tag}", headers=ACCEPT, timeout=30
        )
        assert response.status_code == 200
    assert token_issuer.count() - before == 1


def test_tags_list_with_pagination(gateway, pushed_images):
    gw = gateway()
    url = f"{gw.url}/v2/local/library/busybox/tags/list"
    full = requests.get(url, timeout=30).json()
    assert full["name"] == "local/library/busybox"
    assert {"1", "1-docker", "multi"} <= set(full["tags"])
    page = requests.get(url, params={"n": "1"}, timeout=30)
    assert page.json()["tags"] == sorted(full["tags"])[:1]
    link = page.headers["Link"]
    assert link.startswith("</v2/local/library/busybox/tags/list?n=1&last=")
    next_url = gw.url + link[1 : link.index(">")]
    assert requests.get(next_url, timeout=30).json()["tags"] == sorted(full["tags"])[1:2]


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/v2/local/library/nothing/manifests/1", 404, "MANIFEST_UNKNOWN"),
        ("/v2/local/library/busybox/manifests/nope", 404, "MANIFEST_UNKNOWN"),
        ("/v2/local/library/busybox/blobs/sha256:" + "0" * 64, 404, "BLOB_UNKNOWN"),
        ("/v2/local/library/busybox/manifests/sha256:" + "0" * 64, 404, "MANIFEST_UNKNOWN"),
        ("/v2/local/Library/busybox/manifests/1", 400, "NAME_INVALID"),
        ("/v2/local/library/busybox/blobs/md5:00", 400, "DIGEST_INVALID"),
    ],
)
def test_errors_are_spec_bodies(shared_gateway, pushed_images, path, status, code):
    response = requests.get(shared_gateway.url + path, headers=ACCEPT, timeout=30)
    assert response.status_code == status
    body = response.json()
    assert body["errors"][0]["code"] == code
    assert body["errors"][0]["message"]


@pytest.mark.parametrize("method", ["PUT", "POST", "PATCH", "DELETE"])
def test_writes_are_refused(shared_gateway, method):
    response = requests.request(
        method, f"{shared_gateway.url}/v2/local/library/busybox/blobs/uploads/", timeout=30
    )
    assert response.status_code == 405
    assert response.json()["errors"][0]["code"] == "UNSUPPORTED"


def test_unreachable_upstream_is_a_502_naming_it(gateway):
    gw = gateway(aliases={"gone": f"http://127.0.0.1:{free_port()}"})
    response = requests.get(f"{gw.url}/v2/gone/x/manifests/1", timeout=30)
    assert response.status_code == 502
    error = response.json()["errors"][0]
    assert error["code"] == "UNAVAILABLE" and "gone" in error["message"]


def test_podman_runs_an_image_pulled_through_the_proxy(gateway, podman, pushed_images):
    gw = gateway()
    ref = f"{gw.host}/local/{pushed_images['base'].ref}"
    assert "base-cmd" in podman.run(ref)
    blob_gets = [line for line in blob_log_lines(gw.log()) if line[0] == "GET"]
    assert blob_gets and all(status == 307 and sent == 0 for _m, status, sent in blob_gets)


def test_ctr_pulls_through_the_proxy_with_heads(gateway, containerd, pushed_images):
    gw = gateway()
    base = pushed_images["base-v2s2"]
    ref = f"{gw.host}/local/{base.ref}"
    containerd.pull(ref)
    assert containerd.images()[ref] == base.digest
    assert re.search(r'"HEAD /v2/local/\S+/manifests/1-docker HTTP/1.1" 200 0', gw.log())
