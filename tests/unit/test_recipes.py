"""Container token requests (validated field by field) and composition of several wrappers
with overrides: JSON in, JSON out."""

from __future__ import annotations

import json

import pytest

from ociwrap.image.compose import compose_image
from ociwrap.image.documents import parse_image
from ociwrap.image.recipes import Overrides
from ociwrap.registry.token_requests import parse_token_request, token_recipe
from ociwrap.runtime.errors import RegistryError

ALIASES = {"local": "http://127.0.0.1:5001"}
PIN = "sha256:" + "a" * 64


def request(**fields):
    return parse_token_request(
        {"image": "ubuntu:22.04", "wrappers": ["w:1"], **fields}, ALIASES, 86400
    )


def test_a_full_request_is_parsed_and_kept_as_given():
    parsed = parse_token_request(
        {
            "image": f"ghcr.io/acme/base@{PIN}",
            "wrappers": ["local/tools/first:1", "second"],
            "entrypoint": ["/bin/sh"],
            "cmd": ["-c", "echo hi"],
            "env": {"A": "1", "B": "x=y"},
            "labels": {"org.example": "yes"},
            "workingDir": "/work",
            "user": "1000:1000",
            "platforms": ["linux/amd64", "linux/arm64/v8"],
            "ttlSeconds": 600,
        },
        ALIASES,
        86400,
    )
    assert str(parsed.base) == f"ghcr.io/acme/base@{PIN}"
    assert [str(w) for w in parsed.wrappers] == [
        "local/tools/first:1",
        "docker.io/library/second:latest",
    ]
    assert parsed.overrides == Overrides(
        entrypoint=("/bin/sh",),
        cmd=("-c", "echo hi"),
        env=(("A", "1"), ("B", "x=y")),
        labels=(("org.example", "yes"),),
        working_dir="/work",
        user="1000:1000",
        platforms=("linux/amd64", "linux/arm64/v8"),
    )
    assert parsed.ttl_seconds == 600
    assert parsed.repository == "ghcr.io/acme/base" and parsed.tag == "latest"
    assert parsed.document["env"] == {"A": "1", "B": "x=y"}
    recipe = token_recipe("t" * 26, parsed)
    assert recipe.name == f"wt/{'t' * 26}/ghcr.io/acme/base" and not recipe.simple


def test_defaults():
    parsed = request()
    assert parsed.ttl_seconds == 86400 and parsed.overrides == Overrides()
    assert parsed.tag == "22.04" and parsed.repository == "ubuntu"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "(body)"),
        ({"wrappers": ["w"]}, "image"),
        ({"image": "Ubuntu", "wrappers": ["w"]}, "image"),
        ({"image": "u", "wrappers": []}, "wrappers"),
        ({"image": "u", "wrappers": "w"}, "wrappers"),
        ({"image": "u", "wrappers": ["w"] * 9}, "wrappers"),
        ({"image": "u", "wrappers": ["w", "host:5000/x"]}, "wrappers[1]"),
        ({"image": "u", "wrappers": ["w"], "entrypoint": "sh"}, "entrypoint"),
        ({"image": "u", "wrappers": ["w"], "cmd": [1]}, "cmd[0]"),
        ({"image": "u", "wrappers": ["w"], "env": {"A=B": "1"}}, "env.A=B"),
        ({"image": "u", "wrappers": ["w"], "env": {"A": 1}}, "env.A"),
        ({"image": "u", "wrappers": ["w"], "labels": ["x"]}, "labels"),
        ({"image": "u", "wrappers": ["w"], "workingDir": "relative"}, "workingDir"),
        ({"image": "u", "wrappers": ["w"], "user": ""}, "user"),
        ({"image": "u", "wrappers": ["w"], "platforms": ["linux"]}, "platforms[0]"),
        ({"image": "u", "wrappers": ["w"], "platforms": []}, "platforms"),
        ({"image": "u", "wrappers": ["w"], "ttlSeconds": 0}, "ttlSeconds"),
        ({"image": "u", "wrappers": ["w"], "ttlSeconds": 86401}, "ttlSeconds"),
        ({"image": "u", "wrappers": ["w"], "ttlSeconds": True}, "ttlSeconds"),
        ({"image": "u", "wrappers": ["w"], "colour": "blue"}, "colour"),
    ],
)
def test_every_field_is_checked_and_named(body, field):
    with pytest.raises(RegistryError) as caught:
        parse_token_request(body, ALIASES, 86400)
    error = caught.value
    assert (error.code, error.status) == ("INVALID_REQUEST", 400)
    assert error.detail == {"field": field} and error.message.startswith(f"{field}:")


# -- composition with several wrappers and overrides --------------------------------------


def image(seed: str, entrypoint=None, env=None, label: str | None = None, layers: int = 1):
    digest = lambda n: "sha256:" + f"{seed}{n}".encode().hex().ljust(64, "0")[:64]  # noqa: E731
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": digest("c"),
            "size": 1,
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": digest(n),
                "size": 10 + n,
            }
            for n in range(layers)
        ],
    }
    inner = {"Env": env or [], "Cmd": ["base-cmd"]}
    if entrypoint:
        inner["Entrypoint"] = entrypoint
    if label:
        inner["Labels"] = {"org.goci.wrapper": label, f"org.example.{seed}": seed}
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": inner,
        "rootfs": {"type": "layers", "diff_ids": [digest(f"d{n}") for n in range(layers)]},
    }
    return parse_image(manifest, config, seed)


BASE = image("base", entrypoint=["/entry"], env=["PATH=/bin", "KEEP=1"], layers=2)
FIRST = image("one", env=["ONE=1", "SHARED=one"], label="/one/run")
SECOND = image("two", env=["SHARED=two"], label="/two/run")


def config_of(composed) -> dict:
    return json.loads(composed.config_bytes)


def test_wrappers_run_in_order_and_their_layers_follow_in_order():
    composed = compose_image(BASE, [FIRST, SECOND], {})
    config = config_of(composed)
    assert config["config"]["Entrypoint"] == ["/one/run", "/two/run", "/entry"]
    assert config["config"]["Cmd"] == ["base-cmd"]
    assert config["config"]["Env"] == ["PATH=/bin", "KEEP=1", "ONE=1", "SHARED=two"]
    assert config["config"]["Labels"] == {
        "org.goci.wrapper": "/two/run",
        "org.example.one": "one",
        "org.example.two": "two",
    }
    layers = [layer["digest"] for layer in json.loads(composed.manifest_bytes)["layers"]]
    expected = [*BASE.manifest.layers, *FIRST.manifest.layers, *SECOND.manifest.layers]
    assert layers == [layer.digest for layer in expected]
    assert len(config["rootfs"]["diff_ids"]) == 4
    assert config["history"][-1]["created_by"] == "ociwrap: entrypoint /one/run /two/run"


def test_overrides_are_applied_last():
    overrides = Overrides(
        entrypoint=("/custom",),
        cmd=("a", "b"),
        env=(("SHARED", "token"), ("NEW", "x=y")),
        labels=(("org.example.one", "overridden"),),
        working_dir="/srv",
        user="nobody",
    )
    config = config_of(compose_image(BASE, [FIRST, SECOND], {}, overrides))
    inner = config["config"]
    assert inner["Entrypoint"] == ["/custom"] and inner["Cmd"] == ["a", "b"]
    assert inner["Env"] == ["PATH=/bin", "KEEP=1", "ONE=1", "SHARED=token", "NEW=x=y"]
    assert inner["Labels"]["org.example.one"] == "overridden"
    assert (inner["WorkingDir"], inner["User"]) == ("/srv", "nobody")
    assert config["history"][-1]["created_by"] == (
        "ociwrap: overrides entrypoint, cmd, env, labels, workingDir, user"
    )


def test_one_wrapper_in_a_list_is_the_same_as_one_wrapper():
    assert compose_image(BASE, [FIRST], {}) == compose_image(BASE, FIRST, {})


def test_every_wrapper_must_bring_layers_and_the_total_stays_under_127():
    empty = image("empty", label="/x", layers=0)
    with pytest.raises(RegistryError) as caught:
        compose_image(BASE, [FIRST, empty], {})
    assert caught.value.message == "wrapper image has no layers"
    big = image("big", label="/big", layers=100)
    with pytest.raises(RegistryError) as caught:
        compose_image(BASE, [big, image("big2", label="/b", layers=26)], {})
    assert "128 layers" in caught.value.message
