"""Upstream documents that composition refuses (`ociwrap.image.documents`): schema 1, an index
where an image belongs, artifacts, configs that do not describe their layers.
"""

from __future__ import annotations

import copy

import pytest
from compose_fixtures import compose_config, compose_image, error_of
from image_documents import NGINX_CONFIG, NGINX_MANIFEST, SCHEMA1, WRAPPER_CONFIG, WRAPPER_MANIFEST

from ociwrap.image.documents import parse_image


def _without_config(manifest: dict) -> dict:
    manifest = copy.deepcopy(manifest)
    del manifest["config"]
    return manifest


def _without_layers(manifest: dict) -> dict:
    manifest = copy.deepcopy(manifest)
    del manifest["layers"]
    return manifest


def _artifact(manifest: dict) -> dict:
    manifest = copy.deepcopy(manifest)
    manifest["config"]["mediaType"] = "application/vnd.cncf.helm.config.v1+json"
    return manifest


@pytest.mark.parametrize(
    "bad",
    [
        SCHEMA1,
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [],
        },
        _without_config(NGINX_MANIFEST),
        _without_layers(NGINX_MANIFEST),
        _artifact(NGINX_MANIFEST),
    ],
    ids=["schema1", "index", "no-config", "no-layers-list", "artifact"],
)
@pytest.mark.parametrize("side", ["base", "wrapper"])
def test_invalid_upstream_format(bad, side):
    args = (
        (bad, NGINX_CONFIG, WRAPPER_MANIFEST, WRAPPER_CONFIG, {})
        if side == "base"
        else (NGINX_MANIFEST, NGINX_CONFIG, bad, WRAPPER_CONFIG, {})
    )
    err = error_of(compose_image, *args)
    assert (err.code, err.message) == ("MANIFEST_INVALID", "invalid upstream image format")
    assert err.detail["image"] == side


@pytest.mark.parametrize(
    "damage",
    [
        lambda config: config.pop("rootfs"),
        lambda config: config["rootfs"].pop("diff_ids"),
        lambda config: config["rootfs"]["diff_ids"].pop(),
    ],
    ids=["no-rootfs", "no-diff-ids", "count-mismatch"],
)
def test_config_must_describe_the_layers(damage):
    base = copy.deepcopy(NGINX_CONFIG)
    damage(base)
    err = error_of(compose_config, NGINX_MANIFEST, base, WRAPPER_MANIFEST, WRAPPER_CONFIG)
    assert (err.code, err.message) == ("MANIFEST_INVALID", "invalid upstream image format")
    assert err.detail["image"] == "base"


def test_the_parts_composition_reads_are_the_configs_own():
    base = parse_image(NGINX_MANIFEST, NGINX_CONFIG, "base").config
    assert base.entrypoint == ("/docker-entrypoint.sh",)
    assert base.env == tuple(NGINX_CONFIG["config"]["Env"])
    assert base.diff_ids == tuple(NGINX_CONFIG["rootfs"]["diff_ids"])
    assert base.labels == NGINX_CONFIG["config"]["Labels"]
    lone = copy.deepcopy(NGINX_CONFIG)
    lone["config"]["Entrypoint"] = "/docker-entrypoint.sh --flag"
    assert parse_image(NGINX_MANIFEST, lone, "base").config.entrypoint == (
        "/docker-entrypoint.sh --flag",
    )
