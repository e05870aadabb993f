"""Container tokens with real clients: create a token over HTTP, pull and run what it names.

Every request to `/v1alpha` and its answer are checked against the OpenAPI document the
registry serves (with openapi-core), so the document says what the API really does.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

from harness.clients import skopeo_copy
from harness.images import AMD64, WRAPPER_LABEL, Image, Layer, file, push, write_oci_layout

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
API = OpenAPI.from_file_path(str(ROOT / "functions" / "registry" / "openapi.json"))
SECOND_SCRIPT = '#!/bin/sh\necho second-wrapper-says-hello\nexec "$@"\n'


def checked(response: requests.Response) -> requests.Response:
    """The answer, after its request and itself were validated against the OpenAPI document."""
    request = RequestsOpenAPIRequest(response.request)
    API.validate_request(request)
    API.validate_response(request, RequestsOpenAPIResponse(response))
    return response


def create(gw, body: object) -> requests.Response:
    return checked(requests.post(f"{gw.url}/v1alpha/tokens", json=body, timeout=60))


@pytest.fixture(scope="module")
def second_wrapper(tmp_path_factory, upstream) -> str:
    """A second wrapper on the plain upstream, whose script says who it is."""
    layer = Layer.from_entries([file("second/run.sh", SECOND_SCRIPT, 0o755)], "second wrapper")
    image = Image([layer], {"Labels": {WRAPPER_LABEL: "/second/run.sh"}}, dict(AMD64))
    layout = write_oci_layout(tmp_path_factory.mktemp("second") / "layout", {"second": image})
    push(layout, "second", f"{upstream.host}/tools/second:1")
    return "local/tools/second:1"


@pytest.fixture
def gw(gateway) -> Iterator:
    yield gateway()


def test_two_wrappers_a_pinned_base_and_overrides(
    gw, pushed_images, second_wrapper, podman, tmp_path
):
    base = pushed_images["base"]
    created = create(
        gw,
        {
            "image": f"local/{base.repo}@{base.digest}",
            "wrappers": [f"local/{pushed_images['wrapper'].ref}", second_wrapper],
            "env": {"TOKEN_VAR": "from-the-token"},
            "cmd": ["sh", "-c", "echo token-var=$TOKEN_VAR"],
        },
    )
    assert created.status_code == 201, created.text
    answer = created.json()
    target = answer["targetImage"]
    assert target == f"{gw.host}/wt/{answer['token']}/local/{base.repo}:latest"
    layout = skopeo_copy(target, tmp_path / "layout")
    manifest_digest = json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]
    assert manifest_digest.startswith("sha256:")
    assert podman.run(target).splitlines() == [
        "wrapper-says-hello",
        "second-wrapper-says-hello",
        "token-var=from-the-token",
    ]
    read = checked(requests.get(f"{gw.url}/v1alpha/tokens/{answer['token']}", timeout=30))
    assert read.json()["request"]["env"] == {"TOKEN_VAR": "from-the-token"}


def test_a_multi_platform_base_through_a_token_pulls_with_ctr(gw, pushed_images, containerd):
    created = create(
        gw,
        {
            "image": f"local/{pushed_images['base-multi'].ref}",
            "wrappers": [f"local/{pushed_images['wrapper-multi'].ref}"],
            "platforms": ["linux/amd64", "linux/arm64"],
        },
    ).json()
    target = created["targetImage"]
    assert target.endswith(f"/local/{pushed_images['base-multi'].repo}:multi")
    containerd.pull(target)
    index = requests.get(
        f"{gw.url}/v2/{target.split('/', 1)[1].rsplit(':', 1)[0]}/manifests/multi",
        headers={"Accept": "application/vnd.oci.image.index.v1+json"},
        timeout=60,
    )
    assert index.status_code == 200
    platforms = [m["platform"]["architecture"] for m in index.json()["manifests"]]
    assert platforms == ["amd64", "arm64"]


def test_a_platform_subset_leaves_the_others_out(gw, pushed_images):
    target = create(
        gw,
        {
            "image": f"local/{pushed_images['base-multi'].ref}",
            "wrappers": [f"local/{pushed_images['wrapper'].ref}"],
            "platforms": ["linux/arm64/v8"],
        },
    ).json()["targetImage"]
    name = target.split("/", 1)[1].rsplit(":", 1)[0]
    index = requests.get(f"{gw.url}/v2/{name}/manifests/multi", timeout=60).json()
    assert [m["platform"]["architecture"] for m in index["manifests"]] == ["arm64"]


def test_expiry_and_revocation_are_enforced(gw, pushed_images):
    body = {
        "image": f"local/{pushed_images['base'].ref}",
        "wrappers": [f"local/{pushed_images['wrapper'].ref}"],
    }
    short = create(gw, {**body, "ttlSeconds": 2}).json()
    kept = create(gw, body).json()
    for token in (short, kept):
        name = token["targetImage"].split("/", 1)[1].rsplit(":", 1)[0]
        assert requests.get(f"{gw.url}/v2/{name}/manifests/1", timeout=60).status_code == 200
    revoked = checked(requests.delete(f"{gw.url}/v1alpha/tokens/{kept['token']}", timeout=30))
    assert revoked.status_code == 204
    time.sleep(2.5)
    for token, why in ((short, "expired"), (kept, "revoked")):
        name = token["targetImage"].split("/", 1)[1].rsplit(":", 1)[0]
        deadline = time.monotonic() + 6  # other warm instances drop their copy within 5 s
        while True:
            answer = requests.get(f"{gw.url}/v2/{name}/manifests/1", timeout=60)
            if answer.status_code == 404 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert answer.status_code == 404
        error = answer.json()["errors"][0]
        assert error["code"] == "NAME_UNKNOWN" and why in error["message"]
    gone = checked(requests.get(f"{gw.url}/v1alpha/tokens/{kept['token']}", timeout=30))
    assert gone.status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"wrappers": ["local/tools/wrapper:1"]}, "image"),
        ({"image": "local/library/busybox:1"}, "wrappers"),
        ({"image": "local/library/busybox:1", "wrappers": ["Bad Ref"]}, "wrappers[0]"),
        ({"image": "local/library/busybox:1", "wrappers": ["a"], "env": {"A": 1}}, "env.A"),
        ({"image": "local/library/busybox:1", "wrappers": ["a"], "ttlSeconds": -1}, "ttlSeconds"),
    ],
)
def test_malformed_requests_are_400s_naming_the_field(gw, body, field):
    response = requests.post(f"{gw.url}/v1alpha/tokens", json=body, timeout=30)
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["code"] == "INVALID_REQUEST" and error["detail"]["field"] == field


def test_the_served_document_is_the_one_checked_against(gw):
    served = checked(requests.get(f"{gw.url}/v1alpha/openapi.json", timeout=30))
    assert served.json() == json.loads((ROOT / "functions/registry/openapi.json").read_text())
