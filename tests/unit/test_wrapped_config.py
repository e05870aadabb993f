"""The wrapped image's config (`ociwrap.image.wrapped_config`): entrypoint, env and label
merges, what stays the base's, diff_ids and history. Several wrappers, overrides and the
layer limit are in `test_wrapped_config_chains.py`.
"""

from __future__ import annotations

import copy
import json

import pytest
from compose_fixtures import (
    busybox,
    compose_config,
    compose_image,
    error_of,
    nginx,
    non_empty,
)
from image_documents import (
    BUSYBOX_CONFIG,
    BUSYBOX_MANIFEST,
    NGINX_CONFIG,
    NGINX_MANIFEST,
    WRAPPER_CONFIG,
    WRAPPER_MANIFEST,
)

from ociwrap.image.wrapped_config import merge_env, wrapper_entrypoint


def test_entrypoint_is_label_then_base_entrypoint_and_cmd_unchanged():
    config = json.loads(nginx().config_bytes)["config"]
    assert config["Entrypoint"] == ["/goci/wrap", "/docker-entrypoint.sh"]
    assert config["Cmd"] == ["nginx", "-g", "daemon off;"]


def test_null_entrypoint_and_cmd_of_busybox():
    config = json.loads(busybox().config_bytes)["config"]
    assert config["Entrypoint"] == ["/goci/wrap"]
    assert config["Cmd"] == ["sh"]
    base = copy.deepcopy(BUSYBOX_CONFIG)
    base["config"]["Cmd"] = None
    composed = compose_config(BUSYBOX_MANIFEST, base, WRAPPER_MANIFEST, WRAPPER_CONFIG)
    assert "Cmd" in composed["config"]
    assert composed["config"]["Cmd"] is None


def test_a_lone_string_entrypoint_is_one_element():
    base = copy.deepcopy(NGINX_CONFIG)
    base["config"]["Entrypoint"] = "/docker-entrypoint.sh --flag"
    config = compose_config(NGINX_MANIFEST, base, WRAPPER_MANIFEST, WRAPPER_CONFIG)
    assert config["config"]["Entrypoint"] == ["/goci/wrap", "/docker-entrypoint.sh --flag"]


def test_wrapper_without_label():
    wrapper = copy.deepcopy(WRAPPER_CONFIG)
    del wrapper["config"]["Labels"]["org.goci.wrapper"]
    err = error_of(compose_image, NGINX_MANIFEST, NGINX_CONFIG, WRAPPER_MANIFEST, wrapper, {})
    assert (err.code, err.message, err.status) == (
        "MANIFEST_INVALID",
        "wrapper image missing 'org.goci.wrapper' label",
        400,
    )
    for labels in (None, {}, {"org.goci.wrapper": ""}):
        assert error_of(wrapper_entrypoint, labels).message == (
            "wrapper image missing 'org.goci.wrapper' label"
        )
    assert wrapper_entrypoint(WRAPPER_CONFIG["config"]["Labels"]) == "/goci/wrap"


def test_env_merge_wrapper_wins_base_path_kept():
    env = json.loads(nginx().config_bytes)["config"]["Env"]
    assert env == [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "NGINX_VERSION=1.25.3",
        "LANG=C.UTF-8",
        "GOCI_HOME=/goci",
    ]


def test_env_merge_takes_wrapper_path_when_base_has_none():
    assert merge_env(["A=1"], ["PATH=/goci/bin", "A=2", "B=3"]) == ["A=2", "PATH=/goci/bin", "B=3"]
    assert merge_env([], ["B=1", "B=2"]) == ["B=2"]
    base = copy.deepcopy(BUSYBOX_CONFIG)
    del base["config"]["Env"]
    composed = compose_config(BUSYBOX_MANIFEST, base, WRAPPER_MANIFEST, WRAPPER_CONFIG)
    assert composed["config"]["Env"][0] == "PATH=/goci/bin:/usr/bin:/bin"


def test_env_values_may_contain_equals_signs():
    assert merge_env(["A=x=y", "B=1"], ["A=p=q"]) == ["A=p=q", "B=1"]


def test_labels_merged_wrapper_wins():
    labels = json.loads(nginx().config_bytes)["config"]["Labels"]
    assert labels == {
        "maintainer": "NGINX Docker Maintainers",
        "org.example.tier": "wrapper",
        "org.goci.wrapper": "/goci/wrap",
        "org.opencontainers.image.title": "wrapper",
    }
    assert list(labels) == [
        "maintainer",
        "org.example.tier",
        "org.goci.wrapper",
        "org.opencontainers.image.title",
    ]
    # Busybox has `"Labels": null`; the wrapper's labels fill it.
    assert (
        json.loads(busybox().config_bytes)["config"]["Labels"]["org.goci.wrapper"] == "/goci/wrap"
    )


def test_everything_else_comes_from_the_base():
    config = json.loads(nginx().config_bytes)
    for key in ("created", "os", "architecture", "variant", "author"):
        assert config[key] == NGINX_CONFIG[key]
    for key in ("User", "WorkingDir", "ExposedPorts", "StopSignal"):
        assert config["config"][key] == NGINX_CONFIG["config"][key]
    busy = json.loads(busybox().config_bytes)
    assert busy["container"] == BUSYBOX_CONFIG["container"]
    assert busy["config"]["Volumes"] is None
    assert list(busy) == list(BUSYBOX_CONFIG)


def test_diff_ids_are_base_then_wrapper():
    rootfs = json.loads(nginx().config_bytes)["rootfs"]
    assert rootfs == {
        "type": "layers",
        "diff_ids": NGINX_CONFIG["rootfs"]["diff_ids"] + WRAPPER_CONFIG["rootfs"]["diff_ids"],
    }


def test_history_extends_and_counts_layers():
    history = json.loads(nginx().config_bytes)["history"]
    assert history[:5] == NGINX_CONFIG["history"]
    assert history[5:8] == WRAPPER_CONFIG["history"]
    assert history[-1] == {
        "created": "2024-01-02T03:04:05Z",
        "created_by": "ociwrap: entrypoint /goci/wrap",
        "empty_layer": True,
    }
    assert non_empty(history) == 5


@pytest.mark.parametrize("side", ["base", "wrapper"])
@pytest.mark.parametrize(
    "damage",
    [
        lambda config: config.pop("history"),
        lambda config: config["history"].pop(0),
        lambda config: config.__setitem__("history", "not a list"),
    ],
    ids=["missing", "short", "malformed"],
)
def test_history_is_synthesised_when_it_does_not_match(side, damage):
    base, wrapper = copy.deepcopy(NGINX_CONFIG), copy.deepcopy(WRAPPER_CONFIG)
    damage(base if side == "base" else wrapper)
    config = compose_config(NGINX_MANIFEST, base, WRAPPER_MANIFEST, wrapper)
    assert non_empty(config["history"]) == 5 == len(config["rootfs"]["diff_ids"])
    made = [entry for entry in config["history"] if entry["created_by"] == f"ociwrap: {side} layer"]
    assert len(made) == (3 if side == "base" else 2)
    assert all(entry["comment"] for entry in made)


def test_history_missing_without_created_has_no_timestamps():
    base = copy.deepcopy(BUSYBOX_CONFIG)
    del base["history"], base["created"]
    config = compose_config(BUSYBOX_MANIFEST, base, WRAPPER_MANIFEST, WRAPPER_CONFIG)
    assert config["history"][0] == {
        "created_by": "ociwrap: base layer",
        "comment": config["history"][0]["comment"],
    }
    assert config["history"][-1] == {
        "created_by": "ociwrap: entrypoint /goci/wrap",
        "empty_layer": True,
    }
    assert non_empty(config["history"]) == 3


def test_synthetic_history_entries_in_full():
    base = copy.deepcopy(NGINX_CONFIG)
    del base["history"]
    config = compose_config(NGINX_MANIFEST, base, WRAPPER_MANIFEST, WRAPPER_CONFIG)
    assert config["history"][:3] == [
        {
            "created": "2024-01-02T03:04:05Z",
            "created_by": "ociwrap: base layer",
            "comment": f"layer {n} of 3 of the base image, "
            "whose history was missing or did not match its layers",
        }
        for n in (1, 2, 3)
    ]


@pytest.mark.parametrize("created", ["", 1704164645, None])
def test_only_a_textual_created_is_copied_into_history(created):
    base = copy.deepcopy(NGINX_CONFIG)
    del base["history"]
    base["created"] = created
    config = compose_config(NGINX_MANIFEST, base, WRAPPER_MANIFEST, WRAPPER_CONFIG)
    assert all("created" not in entry for entry in config["history"][:3])
    assert config["history"][-1] == {
        "created_by": "ociwrap: entrypoint /goci/wrap",
        "empty_layer": True,
    }


def test_inputs_are_not_modified():
    before = copy.deepcopy((NGINX_MANIFEST, NGINX_CONFIG, WRAPPER_MANIFEST, WRAPPER_CONFIG))
    nginx()
    assert before == (NGINX_MANIFEST, NGINX_CONFIG, WRAPPER_MANIFEST, WRAPPER_CONFIG)
