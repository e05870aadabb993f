"""The composed manifest and index (`ociwrap.image.compose`): layers in order with OCI media
types, the config descriptor, annotations, canonical JSON, the same bytes in any process.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from compose_fixtures import (
    all_digests,
    busybox,
    compose_image,
    compose_index,
    compose_manifest,
    error_of,
    nginx,
    plan_platforms,
)
from image_documents import (
    ANNOTATIONS,
    BUSYBOX_MANIFEST,
    NGINX_CONFIG,
    NGINX_MANIFEST,
    WRAPPER_CONFIG,
    WRAPPER_MANIFEST,
    digest_of,
    multi_base_index,
)

from ociwrap.image import compose
from ociwrap.image.compose import ANNOTATION_BASE_DIGEST, canonical_json
from ociwrap.image.documents import parse_image, parse_manifest
from ociwrap.image.wrapped_config import compose_config as compose_config_of


def test_layers_are_base_then_wrapper_with_oci_media_types():
    manifest = json.loads(busybox().manifest_bytes)
    assert manifest["schemaVersion"] == 2
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    digests = [layer["digest"] for layer in manifest["layers"]]
    assert digests == [
        digest_of("busybox-layer"),
        digest_of("wrapper-layer-0"),
        digest_of("wrapper-layer-1"),
    ]
    assert [layer["mediaType"] for layer in manifest["layers"]] == [
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.oci.image.layer.v1.tar+zstd",
    ]
    assert [layer["size"] for layer in manifest["layers"]] == [2220094, 734, 211]
    assert manifest["layers"][1]["annotations"] == {"org.example.layer": "tools"}


def test_nginx_keeps_all_layers_in_order():
    manifest = json.loads(nginx().manifest_bytes)
    expected = [layer["digest"] for layer in NGINX_MANIFEST["layers"] + WRAPPER_MANIFEST["layers"]]
    assert [layer["digest"] for layer in manifest["layers"]] == expected


def test_config_descriptor_matches_config_bytes():
    composed = busybox()
    manifest = json.loads(composed.manifest_bytes)
    assert manifest["config"] == {
        "mediaType": "application/vnd.oci.image.config.v1+json",
        "digest": "sha256:" + hashlib.sha256(composed.config_bytes).hexdigest(),
        "size": len(composed.config_bytes),
    }
    assert composed.config_digest == manifest["config"]["digest"]
    assert composed.manifest_digest == (
        "sha256:" + hashlib.sha256(composed.manifest_bytes).hexdigest()
    )
    assert composed.media_type == "application/vnd.oci.image.manifest.v1+json"


def test_annotations_are_written():
    manifest = json.loads(nginx().manifest_bytes)
    assert manifest["annotations"] == ANNOTATIONS
    assert list(manifest["annotations"]) == [
        "org.opencontainers.image.base.name",
        "org.opencontainers.image.base.digest",
        "org.goci.wrapper.name",
        "org.goci.wrapper.digest",
    ]


def test_foreign_layers_keep_urls_and_become_nondistributable():
    base = copy.deepcopy(BUSYBOX_MANIFEST)
    base["layers"][0] = {
        "mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "size": 1718332879,
        "digest": digest_of("windows-base"),
        "urls": ["https://mcr.microsoft.com/v2/windows/servercore/blobs/sha256:x"],
    }
    manifest = compose_manifest(base, WRAPPER_MANIFEST, b"{}", {})
    assert manifest["layers"][0] == {
        "mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "size": 1718332879,
        "digest": digest_of("windows-base"),
        "urls": ["https://mcr.microsoft.com/v2/windows/servercore/blobs/sha256:x"],
    }
    assert "annotations" not in manifest


def test_compose_index_lists_wrapped_manifests_in_base_order():
    base = multi_base_index()
    plan = plan_platforms(base, WRAPPER_MANIFEST)
    composed = [
        (
            entry,
            compose_image(
                NGINX_MANIFEST,
                NGINX_CONFIG,
                WRAPPER_MANIFEST,
                WRAPPER_CONFIG,
                {ANNOTATION_BASE_DIGEST: entry["digest"]},
            ),
        )
        for entry, _ in plan
    ]
    index = compose_index(composed, ANNOTATIONS)
    document = json.loads(index.manifest_bytes)
    assert index.media_type == "application/vnd.oci.image.index.v1+json" == document["mediaType"]
    assert document["schemaVersion"] == 2
    assert document["annotations"] == ANNOTATIONS
    assert document["manifests"] == [
        {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": image.manifest_digest,
            "size": len(image.manifest_bytes),
            "platform": entry["platform"],
        }
        for entry, image in composed
    ]
    assert index.children == tuple(image for _, image in composed)
    assert index.manifest_digest == "sha256:" + hashlib.sha256(index.manifest_bytes).hexdigest()


@pytest.mark.parametrize("annotations", [["a"], "a=b", {"a": 1}, {1: "a"}, {"a": None}])
def test_annotations_must_map_strings_to_strings(annotations):
    base = parse_manifest(NGINX_MANIFEST, "base")
    wrapper = parse_manifest(WRAPPER_MANIFEST, "wrapper")
    with pytest.raises(TypeError) as caught:
        compose.compose_manifest(base, wrapper, b"{}", annotations)
    assert str(caught.value) == "annotations must map strings to strings"
    with pytest.raises(TypeError) as caught:
        compose_index([(multi_base_index()["manifests"][0], nginx())], annotations)
    assert str(caught.value) == "annotations must map strings to strings"


def test_an_index_needs_a_manifest():
    with pytest.raises(ValueError) as caught:
        compose_index([], {})
    assert str(caught.value) == "an index needs at least one wrapped manifest"


def test_composing_twice_gives_identical_bytes():
    first, second = nginx(), nginx()
    assert first == second
    assert first.manifest_bytes == second.manifest_bytes
    assert first.config_bytes == second.config_bytes


def test_canonical_json_form():
    assert canonical_json({"b": [1, "é"], "a": None}) == '{"b":[1,"é"],"a":null}'.encode()
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})


#: Prints the digests of the shared compositions, made in a fresh interpreter.
DIGESTS_SCRIPT = "import json, compose_fixtures; print(json.dumps(compose_fixtures.all_digests()))"


@pytest.mark.parametrize("seed", ["0", "1", "4242"])
def test_digests_do_not_depend_on_the_hash_seed(seed):
    library = Path(compose.__file__).resolve().parents[2]  # the ociwrap package this test imports
    env = dict(os.environ, PYTHONHASHSEED=seed)
    env["PYTHONPATH"] = os.pathsep.join([str(library), str(Path(__file__).resolve().parent)])
    result = subprocess.run(
        [sys.executable, "-c", DIGESTS_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(result.stdout) == all_digests()


def scribble(value: object) -> None:
    """Change every dict and list inside `value`, in place."""
    if isinstance(value, dict):
        for item in list(value.values()):
            scribble(item)
        value["scribbled"] = True
    elif isinstance(value, list):
        for item in value:
            scribble(item)
        value.append("scribbled")


def test_composed_documents_share_nothing_with_their_inputs():
    base_config = copy.deepcopy(NGINX_CONFIG)
    base_config["container_config"] = {"Cmd": ["/bin/sh"], "Volumes": {"/data": {}}}
    base_config["config"]["Labels"]["org.example.list"] = ["hostile", "but", "JSON"]
    base_config["history"][0]["extra"] = {"nested": ["x"]}
    inputs = (NGINX_MANIFEST, base_config, WRAPPER_MANIFEST, WRAPPER_CONFIG)
    before = copy.deepcopy(inputs)
    base = parse_image(NGINX_MANIFEST, base_config, "base")
    wrapper = parse_image(WRAPPER_MANIFEST, WRAPPER_CONFIG, "wrapper")
    scribble(compose_config_of(base, wrapper))
    scribble(compose.compose_manifest(base.manifest, wrapper.manifest, b"{}", ANNOTATIONS))
    assert inputs == before


def test_a_config_that_cannot_be_serialised_is_invalid_upstream_format():
    base = copy.deepcopy(NGINX_CONFIG)
    base["config"]["Healthcheck"] = {"Interval": float("nan")}
    err = error_of(compose_image, NGINX_MANIFEST, base, WRAPPER_MANIFEST, WRAPPER_CONFIG, {})
    assert (err.code, err.status, err.message) == (
        "MANIFEST_INVALID",
        400,
        "invalid upstream image format",
    )
    assert err.detail == {
        "image": "base or wrapper",
        "reason": "config cannot be serialised: Out of range float values are not JSON compliant",
    }
    wrapper = copy.deepcopy(WRAPPER_CONFIG)
    wrapper["config"]["Labels"]["org.example.bad"] = "\ud800"
    err = error_of(compose_image, NGINX_MANIFEST, NGINX_CONFIG, WRAPPER_MANIFEST, wrapper, {})
    assert err.detail["reason"].startswith("config cannot be serialised: 'utf-8' codec")


def test_a_manifest_that_cannot_be_serialised_is_invalid_upstream_format():
    wrapper = copy.deepcopy(WRAPPER_MANIFEST)
    wrapper["layers"][0]["annotations"] = {"org.example.size": float("inf")}
    err = error_of(compose_image, NGINX_MANIFEST, NGINX_CONFIG, wrapper, WRAPPER_CONFIG, {})
    assert (err.code, err.status, err.message) == (
        "MANIFEST_INVALID",
        400,
        "invalid upstream image format",
    )
    assert err.detail == {
        "image": "base or wrapper",
        "reason": "manifest cannot be serialised: Out of range float values are not JSON compliant",
    }
