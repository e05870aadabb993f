"""Composition of very long configs: the same merge rules at 50 000 entries a side.

How long it takes is measured by the benchmark (`compose_image, 50 000 …`); these tests
show what comes out: every variable and label in its place, overrides applied once, the
history whole, and the configs read through the same bounded JSON parser as upstream ones.
"""

from __future__ import annotations

import json

from harness.big_configs import BASE_PATH, WRAPPER_ENTRYPOINT, big_image
from ociwrap.image import compose
from ociwrap.image.documents import Image, parse_image
from ociwrap.image.jsondoc import parse_json
from ociwrap.image.recipes import Overrides
from ociwrap.image.wrapped_config import apply_overrides, merge_env

ENTRIES, SHARED = 50_000, 1_000


def parsed(side: str) -> Image:
    """The side's image read as an upstream's bytes are (4 MiB config limit, bounded JSON)."""
    manifest, config = big_image(side, ENTRIES, SHARED)
    assert len(config) < 4 * 1024 * 1024
    return parse_image(parse_json(manifest), parse_json(config), side)


def test_fifty_thousand_entries_a_side_merge_in_order():
    composed = compose.compose_image(parsed("base"), parsed("wrapper"), {})
    config = json.loads(composed.config_bytes)
    inner = config["config"]

    expected_env = [f"B{n}={n}" for n in range(ENTRIES)]
    expected_env += [f"S{n}=wrapper" for n in range(SHARED)]  # overridden in place
    expected_env.append(f"PATH={BASE_PATH}")  # the base's PATH is kept
    expected_env += [f"W{n}={n}" for n in range(ENTRIES)]  # new ones follow, wrapper order
    assert inner["Env"] == expected_env

    labels = inner["Labels"]
    assert len(labels) == 2 * ENTRIES + SHARED + 1
    assert list(labels)[:ENTRIES] == [f"base.{n}" for n in range(ENTRIES)]
    assert all(labels[f"shared.{n}"] == "wrapper" for n in range(SHARED))
    assert labels["wrapper.49999"] == "v"
    assert inner["Entrypoint"] == [WRAPPER_ENTRYPOINT]
    assert inner["Cmd"] == ["sh"]

    history = config["history"]
    assert len(history) == 2 * (ENTRIES + 1) + 1
    assert history[0] == {"created_by": "B0", "empty_layer": True}
    assert history[ENTRIES] == {"created_by": "base layer"}
    assert history[ENTRIES + 1] == {"created_by": "W0", "empty_layer": True}
    assert history[-2] == {"created_by": "wrapper layer"}
    assert history[-1]["created_by"] == f"ociwrap: entrypoint {WRAPPER_ENTRYPOINT}"
    assert len(config["rootfs"]["diff_ids"]) == 2


def test_overrides_on_fifty_thousand_entries_replace_in_place_and_append_once():
    env = tuple(sorted({"S7": "token", "B0": "token", "NEW": "token"}.items()))
    overrides = Overrides(env=env, labels=(("shared.3", "token"),))
    composed = compose.compose_image(parsed("base"), parsed("wrapper"), {}, overrides)
    inner = json.loads(composed.config_bytes)["config"]
    assert inner["Env"][0] == "B0=token"
    assert inner["Env"][ENTRIES + 7] == "S7=token"
    assert inner["Env"][-1] == "NEW=token"
    assert len(inner["Env"]) == 2 * ENTRIES + SHARED + 2
    assert inner["Labels"]["shared.3"] == "token"


def test_many_entries_of_one_name_take_the_last_value():
    base = ["A=base"] * 20_000 + ["PATH=/base", "B=1"]
    wrapper = ["C=1"] + [f"A={n}" for n in range(20_000)] + ["C=2", "PATH=/wrapper"]
    merged = merge_env(base, wrapper)
    assert merged == ["A=19999"] * 20_000 + ["PATH=/base", "B=1", "C=2"]


def test_a_lone_string_env_is_one_variable_when_a_token_sets_others():
    inner = {"Env": "A=1"}  # as some builders write a single variable
    apply_overrides(inner, Overrides(env=(("B", "2"),)))
    assert inner["Env"] == ["A=1", "B=2"]
    inner = {"Env": "A=1"}
    apply_overrides(inner, Overrides(env=(("A", "2"),)))
    assert inner["Env"] == ["A=2"]
