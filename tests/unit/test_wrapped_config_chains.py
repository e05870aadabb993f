"""The wrapped config of several wrappers, with overrides, within the layer limit
(`ociwrap.image.wrapped_config`).
"""

from __future__ import annotations

import copy
import json

import pytest
from compose_fixtures import (
    compose_image,
    compose_manifest,
    error_of,
)
from image_documents import (
    BUSYBOX_CONFIG,
    BUSYBOX_MANIFEST,
    NGINX_CONFIG,
    NGINX_MANIFEST,
    WRAPPER_CONFIG,
    WRAPPER_MANIFEST,
    digest_of,
    many_layers,
)

from ociwrap.image import compose
from ociwrap.image.documents import parse_image
from ociwrap.image.recipes import Overrides
from ociwrap.image.wrapped_config import apply_overrides
from ociwrap.image.wrapped_config import compose_config as compose_config_of
from ociwrap.runtime.errors import RegistryError


def test_wrapper_without_layers():
    manifest = copy.deepcopy(WRAPPER_MANIFEST)
    manifest["layers"] = []
    config = copy.deepcopy(WRAPPER_CONFIG)
    config["rootfs"]["diff_ids"] = []
    err = error_of(compose_image, NGINX_MANIFEST, NGINX_CONFIG, manifest, config, {})
    assert (err.code, err.message) == ("MANIFEST_INVALID", "wrapper image has no layers")
    err = error_of(compose_manifest, NGINX_MANIFEST, manifest, b"{}", {})
    assert err.message == "wrapper image has no layers"


def test_at_most_127_layers():
    base, base_config = many_layers(125, "base")
    composed = compose_image(base, base_config, WRAPPER_MANIFEST, WRAPPER_CONFIG, {})
    assert len(json.loads(composed.manifest_bytes)["layers"]) == 127
    base, base_config = many_layers(126, "base")
    err = error_of(compose_image, base, base_config, WRAPPER_MANIFEST, WRAPPER_CONFIG, {})
    assert (err.code, err.status) == ("MANIFEST_INVALID", 400)
    assert "128 layers" in err.message and "127" in err.message


def test_too_many_layers_names_the_counts():
    base, base_config = many_layers(126, "base")
    err = error_of(compose_image, base, base_config, WRAPPER_MANIFEST, WRAPPER_CONFIG, {})
    assert err.message == "the wrapped image would have 128 layers; at most 127 are allowed"
    assert err.detail == {"base": 126, "wrapper": 2}
    base, base_config = many_layers(123, "base")
    wrappers = [parse_image(WRAPPER_MANIFEST, WRAPPER_CONFIG, "wrapper")] * 3
    with pytest.raises(RegistryError) as caught:
        compose.compose_image(parse_image(base, base_config, "base"), wrappers, {})
    assert caught.value.detail == {"base": 123, "wrapper": 6}
    base, base_config = many_layers(121, "base")
    composed = compose.compose_image(parse_image(base, base_config, "base"), wrappers, {})
    assert len(json.loads(composed.manifest_bytes)["layers"]) == 127


def second_wrapper(labels: dict | None = None, env: list | None = None) -> tuple[dict, dict]:
    manifest = copy.deepcopy(WRAPPER_MANIFEST)
    manifest["layers"] = [manifest["layers"][0]]
    config = copy.deepcopy(WRAPPER_CONFIG)
    config["config"]["Labels"] = labels or {"org.goci.wrapper": "/second/wrap"}
    config["config"]["Env"] = env
    config["rootfs"]["diff_ids"] = [digest_of("second-diff")]
    config["history"] = [{"created_by": "COPY wrap /second/wrap"}]
    return manifest, config


def test_a_later_wrapper_wins_labels_and_env():
    manifest, config = second_wrapper(
        {"org.goci.wrapper": "/second/wrap", "org.example.tier": "second"},
        ["LANG=C.UTF-8", "SECOND=2", "PATH=/second/bin"],
    )
    wrappers = [
        parse_image(WRAPPER_MANIFEST, WRAPPER_CONFIG, "wrapper"),
        parse_image(manifest, config, "wrapper"),
    ]
    composed = compose_config_of(parse_image(NGINX_MANIFEST, NGINX_CONFIG, "base"), wrappers)
    inner = composed["config"]
    assert inner["Entrypoint"] == ["/goci/wrap", "/second/wrap", "/docker-entrypoint.sh"]
    assert inner["Labels"] == {
        "maintainer": "NGINX Docker Maintainers",
        "org.example.tier": "second",
        "org.goci.wrapper": "/second/wrap",
        "org.opencontainers.image.title": "wrapper",
    }
    assert inner["Env"] == [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "NGINX_VERSION=1.25.3",
        "LANG=C.UTF-8",
        "GOCI_HOME=/goci",
        "SECOND=2",
    ]
    assert composed["history"][-1]["created_by"] == "ociwrap: entrypoint /goci/wrap /second/wrap"


def test_a_later_wrapper_without_env_keeps_the_env_so_far():
    manifest, config = second_wrapper()
    wrappers = [
        parse_image(WRAPPER_MANIFEST, WRAPPER_CONFIG, "wrapper"),
        parse_image(manifest, config, "wrapper"),
    ]
    base = copy.deepcopy(BUSYBOX_CONFIG)
    base["config"]["Labels"] = None
    composed = compose_config_of(parse_image(BUSYBOX_MANIFEST, base, "base"), wrappers)
    assert composed["config"]["Env"] == [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG=C.UTF-8",
        "GOCI_HOME=/goci",
    ]
    assert composed["config"]["Labels"]["org.example.tier"] == "wrapper"


def test_overrides_are_recorded_with_the_base_timestamp():
    base = parse_image(NGINX_MANIFEST, NGINX_CONFIG, "base")
    wrapper = parse_image(WRAPPER_MANIFEST, WRAPPER_CONFIG, "wrapper")
    config = compose_config_of(base, wrapper, Overrides(labels=(("org.example.tier", "token"),)))
    assert config["history"][-1] == {
        "created": "2024-01-02T03:04:05Z",
        "created_by": "ociwrap: overrides labels",
        "empty_layer": True,
    }
    assert config["config"]["Labels"] == {
        "maintainer": "NGINX Docker Maintainers",
        "org.example.tier": "token",
        "org.goci.wrapper": "/goci/wrap",
        "org.opencontainers.image.title": "wrapper",
    }


def test_platform_only_overrides_change_nothing_but_are_recorded():
    base = parse_image(NGINX_MANIFEST, NGINX_CONFIG, "base")
    wrapper = parse_image(WRAPPER_MANIFEST, WRAPPER_CONFIG, "wrapper")
    plain = compose_config_of(base, wrapper)
    config = compose_config_of(base, wrapper, Overrides(platforms=("linux/arm64",)))
    assert config["config"] == plain["config"]
    assert config["history"][:-1] == plain["history"]
    assert config["history"][-1]["created_by"] == "ociwrap: overrides platforms"
    assert compose_config_of(base, wrapper, Overrides()) == plain


def test_overrides_on_an_empty_container_config():
    inner: dict = {}
    apply_overrides(inner, Overrides(env=(("A", "1=2"),), labels=(("k", "v"),)))
    assert inner == {"Env": ["A=1=2"], "Labels": {"k": "v"}}
    inner = {"Env": ["A=0", "B=1", "A=2"], "Labels": None}
    apply_overrides(inner, Overrides(env=(("A", "3"),), labels=(("k", "v"),), user=""))
    assert inner == {"Env": ["A=3", "B=1", "A=3"], "Labels": {"k": "v"}, "User": ""}
