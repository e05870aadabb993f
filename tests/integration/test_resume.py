"""A blob too big to copy within one request from a slow upstream is copied over several.

The upstream is the plain `docker-registry` (it serves blob bytes itself and honours
`Range`) behind `harness.throttle` on 127.0.0.1, which passes its answers on at
THROTTLE_BYTES_PER_SECOND; the gateway's requests get REQUEST_TIMEOUT_SECONDS, far too
little to copy the layer in one go. A client that retries gets the blob all the same.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from harness.clients import skopeo_copy
from harness.images import MIB, incompressible_image, push, write_oci_layout
from harness.registry import DockerRegistry
from harness.throttle import Throttle

pytestmark = pytest.mark.integration

#: The layer: two whole 8 MiB parts and a half (stored uncompressed, so every byte travels).
LAYER_BYTES = 20 * MIB
THROTTLE_BYTES_PER_SECOND = 3 * MIB
REQUEST_TIMEOUT_SECONDS = 4
#: Retries a client would make before giving up; the copy needs about three requests.
MAX_ATTEMPTS = 8


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def slow_upstream(upstream: DockerRegistry) -> Iterator[Throttle]:
    with Throttle(upstream.port, THROTTLE_BYTES_PER_SECOND) as throttle:
        yield throttle


def test_a_slow_copy_goes_on_over_retries_until_the_blob_is_served(
    gateway, upstream, slow_upstream, moto_s3, tmp_path: Path
):
    image = incompressible_image(LAYER_BYTES, layers=1, seed="resume", compresslevel=0)
    layer = image.layers[0]
    layout = write_oci_layout(tmp_path / "layout", {"big": image})
    push(layout, "big", f"{upstream.host}/big/resume:1")  # straight in, not throttled
    gw = gateway(
        aliases={"slow": slow_upstream.url},
        env={"REQUEST_TIMEOUT_SECONDS": str(REQUEST_TIMEOUT_SECONDS)},
    )
    url = f"{gw.url}/v2/slow/big/resume/blobs/{layer.digest}"

    first = requests.get(url, allow_redirects=False, timeout=30)
    assert first.status_code == 504, first.text
    [error] = first.json()["errors"]
    assert error["code"] == "UNAVAILABLE"
    assert "upstream registry" in error["message"] and "to send a blob" in error["message"]
    assert moto_s3.keys(gw.bucket, "uploads/"), "no whole part survived the first request"
    assert moto_s3.keys(gw.bucket, "blobs/") == []

    answers = [first.status_code]
    while answers[-1] != 307 and len(answers) < MAX_ATTEMPTS:  # the client retries
        answers.append(requests.get(url, allow_redirects=False, timeout=30).status_code)
    assert answers[-1] == 307, answers
    assert set(answers[:-1]) == {504}
    location = requests.get(url, allow_redirects=False, timeout=30).headers["Location"]
    assert location.startswith(f"{moto_s3.endpoint_url}/{gw.bucket}/blobs/sha256/")
    assert sha256(requests.get(location, timeout=30).content) == layer.digest
    assert moto_s3.keys(gw.bucket, "uploads/") == []  # the parts went once the blob was in

    out = skopeo_copy(f"{gw.host}/slow/big/resume:1", tmp_path / "out")
    index = json.loads((out / "index.json").read_text())
    assert index["manifests"][0]["digest"] == image.digest
    assert (out / "blobs" / "sha256" / layer.digest[7:]).stat().st_size == layer.size
