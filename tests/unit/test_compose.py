"""Composition of wrapped images: layers, config, annotations, determinism, errors, platforms."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ociwrap.image import compose
from ociwrap.image.compose import (
    ANNOTATION_BASE_DIGEST,
    ANNOTATION_BASE_NAME,
    ANNOTATION_WRAPPER_DIGEST,
    ANNOTATION_WRAPPER_NAME,
    Composed,
    canonical_json,
)
from ociwrap.image.documents import (
    ImageIndex,
    parse_descriptor,
    parse_document,
    parse_image,
    parse_manifest,
)
from ociwrap.image.platforms import plan_platforms as plan_entries
from ociwrap.image.recipes import Overrides
from ociwrap.image.wrapped_config import apply_overrides, merge_env, wrapper_entrypoint
from ociwrap.image.wrapped_config import compose_config as compose_config_of
from ociwrap.runtime.errors import RegistryError

# Composition works on parsed documents; these take the JSON the upstreams send, so every
# case below reads as "these documents in, these documents out".


def compose_image(base_manifest, base_config, wrapper_manifest, wrapper_config, annotations):
    return compose.compose_image(
        parse_image(base_manifest, base_config, "base"),
        parse_image(wrapper_manifest, wrapper_config, "wrapper"),
        annotations,
    )


def compose_config(base_manifest, base_config, wrapper_manifest, wrapper_config):
    return compose_config_of(
        parse_image(base_manifest, base_config, "base"),
        parse_image(wrapper_manifest, wrapper_config, "wrapper"),
    )


def compose_manifest(base_manifest, wrapper_manifest, config_bytes, annotations):
    return compose.compose_manifest(
        parse_manifest(base_manifest, "base"),
        parse_manifest(wrapper_manifest, "wrapper"),
        config_bytes,
        annotations,
    )


def plan_platforms(base_index, wrapper):
    """(base entry, wrapper entry or None) as JSON, for each platform of the plan."""
    base = parse_document(base_index, "base")
    wrapper_document = parse_document(wrapper, "wrapper")
    wrapper_entries = (
        wrapper_document.images() if isinstance(wrapper_document, ImageIndex) else None
    )
    return [
        (entry.raw, chosen.raw if chosen is not None else None)
        for entry, chosen in plan_entries(base.images(), wrapper_entries)
    ]


def compose_index(entries, annotations):
    return compose.compose_index(
        [(parse_descriptor(entry, "base", "entry"), image) for entry, image in entries],
        annotations,
    )


def digest_of(seed: str) -> str:
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


# Docker Hub's library/busybox:1.36 for linux/amd64: Docker schema 2, one layer,
# a config written by the classic builder (container_config, null fields).
BUSYBOX_MANIFEST = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
    "config": {
        "mediaType": "application/vnd.docker.container.image.v1+json",
        "size": 1457,
        "digest": digest_of("busybox-config"),
    },
    "layers": [
        {
            "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "size": 2220094,
            "digest": digest_of("busybox-layer"),
        }
    ],
}
BUSYBOX_CONFIG = {
    "architecture": "amd64",
    "config": {
        "Hostname": "",
        "Domainname": "",
        "User": "",
        "AttachStdin": False,
        "AttachStdout": False,
        "AttachStderr": False,
        "Tty": False,
        "OpenStdin": False,
        "StdinOnce": False,
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        "Cmd": ["sh"],
        "Image": digest_of("busybox-parent"),
        "Volumes": None,
        "WorkingDir": "",
        "Entrypoint": None,
        "OnBuild": None,
        "Labels": None,
    },
    "container": "6d94a1a3c9e4a8f0b5e1e0a5b7c3c8f58e2d9b0a4b8c6a1f3e9d2c7b5a4f3e2d",
    "created": "2023-07-18T23:19:33.655005962Z",
    "docker_version": "20.10.23",
    "history": [
        {
            "created": "2023-07-18T23:19:33.538571854Z",
            "created_by": "/bin/sh -c #(nop) ADD file:7e9002edaafd4e4579b65c8f0aaabde1aeb7fd3f8d "
            "in / ",
        },
        {
            "created": "2023-07-18T23:19:33.655005962Z",
            "created_by": '/bin/sh -c #(nop)  CMD ["sh"]',
            "empty_layer": True,
        },
    ],
    "os": "linux",
    "rootfs": {"type": "layers", "diff_ids": [digest_of("busybox-diff")]},
}

# An nginx-like OCI image built by BuildKit: entrypoint script, Cmd, three layers.
NGINX_MANIFEST = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {
        "mediaType": "application/vnd.oci.image.config.v1+json",
        "digest": digest_of("nginx-config"),
        "size": 8584,
    },
    "layers": [
        {
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": digest_of(f"nginx-layer-{n}"),
            "size": 1000 + n,
        }
        for n in range(3)
    ],
    "annotations": {"org.opencontainers.image.created": "2024-01-02T03:04:05Z"},
}
NGINX_CONFIG = {
    "architecture": "arm64",
    "variant": "v8",
    "author": "NGINX Docker Maintainers",
    "config": {
        "ExposedPorts": {"80/tcp": {}},
        "Env": [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "NGINX_VERSION=1.25.3",
            "LANG=C",
        ],
        "Entrypoint": ["/docker-entrypoint.sh"],
        "Cmd": ["nginx", "-g", "daemon off;"],
        "WorkingDir": "/srv",
        "User": "nginx",
        "Labels": {"maintainer": "NGINX Docker Maintainers", "org.example.tier": "base"},
        "StopSignal": "SIGQUIT",
    },
    "created": "2024-01-02T03:04:05Z",
    "history": [
        {"created": "2024-01-01T00:00:00Z", "created_by": "ADD rootfs.tar.xz / # buildkit"},
        {
            "created": "2024-01-01T00:00:00Z",
            "created_by": "LABEL maintainer=...",
            "empty_layer": True,
        },
        {"created": "2024-01-02T03:04:05Z", "created_by": "RUN /bin/sh -c set -x && ..."},
        {"created": "2024-01-02T03:04:05Z", "created_by": "COPY docker-entrypoint.sh / # buildkit"},
        {"created": "2024-01-02T03:04:05Z", "created_by": 'CMD ["nginx"]', "empty_layer": True},
    ],
    "os": "linux",
    "rootfs": {"type": "layers", "diff_ids": [digest_of(f"nginx-diff-{n}") for n in range(3)]},
}

# The wrapper: two layers, the label naming its script, its own env and labels.
WRAPPER_MANIFEST = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {
        "mediaType": "application/vnd.oci.image.config.v1+json",
        "digest": digest_of("wrapper-config"),
        "size": 912,
    },
    "layers": [
        {
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": digest_of("wrapper-layer-0"),
            "size": 734,
            "annotations": {"org.example.layer": "tools"},
        },
        {
            "mediaType": "application/vnd.oci.image.layer.v1.tar+zstd",
            "digest": digest_of("wrapper-layer-1"),
            "size": 211,
        },
    ],
}
WRAPPER_CONFIG = {
    "architecture": "amd64",
    "os": "linux",
    "created": "2024-03-04T05:06:07Z",
    "config": {
        "Env": ["PATH=/goci/bin:/usr/bin:/bin", "LANG=C.UTF-8", "GOCI_HOME=/goci"],
        "Entrypoint": ["/should/not/be/used"],
        "Labels": {
            "org.goci.wrapper": "/goci/wrap",
            "org.example.tier": "wrapper",
            "org.opencontainers.image.title": "wrapper",
        },
        "User": "root",
        "WorkingDir": "/goci",
    },
    "history": [
        {"created": "2024-03-04T05:06:07Z", "created_by": "COPY bin /goci/bin # buildkit"},
        {
            "created": "2024-03-04T05:06:07Z",
            "created_by": "LABEL org.goci.wrapper=/goci/wrap",
            "empty_layer": True,
        },
        {"created": "2024-03-04T05:06:07Z", "created_by": "COPY wrap /goci/wrap # buildkit"},
    ],
    "rootfs": {"type": "layers", "diff_ids": [digest_of(f"wrapper-diff-{n}") for n in range(2)]},
}

ANNOTATIONS = {
    ANNOTATION_BASE_NAME: "docker.io/library/nginx:1.25",
    ANNOTATION_BASE_DIGEST: digest_of("nginx-index"),
    ANNOTATION_WRAPPER_NAME: "ghcr.io/acme/wrapper:v1",
    ANNOTATION_WRAPPER_DIGEST: digest_of("wrapper-manifest"),
}


def nginx() -> Composed:
    return compose_image(
        NGINX_MANIFEST, NGINX_CONFIG, WRAPPER_MANIFEST, WRAPPER_CONFIG, ANNOTATIONS
    )


def busybox() -> Composed:
    return compose_image(
        BUSYBOX_MANIFEST, BUSYBOX_CONFIG, WRAPPER_MANIFEST, WRAPPER_CONFIG, ANNOTATIONS
    )


def non_empty(history: list[dict]) -> int:
    return sum(1 for entry in history if entry.get("empty_layer") is not True)


def error_of(call, *args) -> RegistryError:
    with pytest.raises(RegistryError) as caught:
        call(*args)
    return caught.value


# --------------------------------------------------------------------------- manifest


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


# --------------------------------------------------------------------------- config


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


def test_inputs_are_not_modified():
    before = copy.deepcopy((NGINX_MANIFEST, NGINX_CONFIG, WRAPPER_MANIFEST, WRAPPER_CONFIG))
    nginx()
    assert before == (NGINX_MANIFEST, NGINX_CONFIG, WRAPPER_MANIFEST, WRAPPER_CONFIG)


# --------------------------------------------------------------------------- determinism


def test_composing_twice_gives_identical_bytes():
    first, second = nginx(), nginx()
    assert first == second
    assert first.manifest_bytes == second.manifest_bytes
    assert first.config_bytes == second.config_bytes


def test_canonical_json_form():
    assert canonical_json({"b": [1, "é"], "a": None}) == '{"b":[1,"é"],"a":null}'.encode()
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})


DIGESTS_SCRIPT = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("fixtures", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps(module.all_digests()))
"""


def all_digests() -> list[str]:
    """Digests of every composition in this file, for the cross-process check."""
    images = [nginx(), busybox()]
    index = compose_index([(multi_base_index()["manifests"][0], images[0])], ANNOTATIONS)
    return [d for i in images for d in (i.manifest_digest, i.config_digest)] + [
        index.manifest_digest
    ]


@pytest.mark.parametrize("seed", ["0", "1", "4242"])
def test_digests_do_not_depend_on_the_hash_seed(seed):
    library = Path(compose.__file__).resolve().parents[2]  # the ociwrap package this test imports
    env = dict(os.environ, PYTHONHASHSEED=seed)
    env["PYTHONPATH"] = os.pathsep.join([str(library), str(Path(__file__).resolve().parents[1])])
    result = subprocess.run(
        [sys.executable, "-c", DIGESTS_SCRIPT, __file__],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(result.stdout) == all_digests()


# --------------------------------------------------------------------------- errors


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


def test_wrapper_without_layers():
    manifest = copy.deepcopy(WRAPPER_MANIFEST)
    manifest["layers"] = []
    config = copy.deepcopy(WRAPPER_CONFIG)
    config["rootfs"]["diff_ids"] = []
    err = error_of(compose_image, NGINX_MANIFEST, NGINX_CONFIG, manifest, config, {})
    assert (err.code, err.message) == ("MANIFEST_INVALID", "wrapper image has no layers")
    err = error_of(compose_manifest, NGINX_MANIFEST, manifest, b"{}", {})
    assert err.message == "wrapper image has no layers"


SCHEMA1 = {
    "schemaVersion": 1,
    "name": "library/busybox",
    "tag": "1.0",
    "architecture": "amd64",
    "fsLayers": [{"blobSum": digest_of("old")}],
    "history": [{"v1Compatibility": "{}"}],
}


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


# --------------------------------------------------------------------------- platforms


def descriptor(seed: str, platform: dict | None, **extra: object) -> dict:
    entry: dict = {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": digest_of(seed),
        "size": 1234,
    }
    if platform is not None:
        entry["platform"] = platform
    entry.update(extra)
    return entry


def multi_base_index() -> dict:
    """A BuildKit-style base index: four platforms, each with an attestation."""
    entries = []
    for arch, variant in (("amd64", None), ("arm64", "v8"), ("arm", "v7"), ("s390x", None)):
        platform = {"architecture": arch, "os": "linux"}
        if variant:
            platform["variant"] = variant
        entries.append(descriptor(f"base-{arch}", platform))
    for arch in ("amd64", "arm64"):
        entries.append(
            descriptor(
                f"attestation-{arch}",
                {"architecture": "unknown", "os": "unknown"},
                annotations={
                    "vnd.docker.reference.digest": digest_of(f"base-{arch}"),
                    "vnd.docker.reference.type": "attestation-manifest",
                },
            )
        )
    return {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": entries,
    }


def wrapper_index(*platforms: tuple[str, str | None]) -> dict:
    entries = []
    for arch, variant in platforms:
        platform = {"architecture": arch, "os": "linux"}
        if variant:
            platform["variant"] = variant
        entries.append(descriptor(f"wrapper-{arch}-{variant}", platform))
    entries.append(
        descriptor(
            "wrapper-attestation",
            {"architecture": "unknown", "os": "unknown"},
            annotations={"vnd.docker.reference.type": "attestation-manifest"},
        )
    )
    return {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
        "manifests": entries,
    }


def test_plan_matches_spellings_and_drops_attestations():
    base = multi_base_index()
    wrapper = wrapper_index(("x86_64", None), ("aarch64", None), ("arm", None))
    plan = plan_platforms(base, wrapper)
    assert [(b["digest"], w["digest"]) for b, w in plan] == [
        (digest_of("base-amd64"), digest_of("wrapper-x86_64-None")),
        (digest_of("base-arm64"), digest_of("wrapper-aarch64-None")),
        (digest_of("base-arm"), digest_of("wrapper-arm-None")),
    ]


def test_plan_arm_fallback_and_missing_variant_left_out():
    plan = plan_platforms(multi_base_index(), wrapper_index(("arm", "v6"), ("arm64", "v8")))
    assert [(b["platform"]["architecture"], w["digest"]) for b, w in plan] == [
        ("arm64", digest_of("wrapper-arm64-v8")),
        ("arm", digest_of("wrapper-arm-v6")),
    ]


def test_single_platform_wrapper_serves_every_base_platform():
    plan = plan_platforms(multi_base_index(), WRAPPER_MANIFEST)
    assert [b["platform"]["architecture"] for b, _ in plan] == ["amd64", "arm64", "arm", "s390x"]
    assert all(w is None for _, w in plan)


def test_no_platform_left_is_manifest_unknown():
    err = error_of(plan_platforms, multi_base_index(), wrapper_index(("riscv64", None)))
    assert (err.code, err.status) == ("MANIFEST_UNKNOWN", 404)
    assert err.message == "no platform of the base image has a matching wrapper variant"
    assert err.detail == {
        "base": ["linux/amd64", "linux/arm64/v8", "linux/arm/v7", "linux/s390x"],
        "wrapper": ["linux/riscv64"],
    }


def test_plan_refuses_a_schema1_wrapper():
    err = error_of(plan_platforms, multi_base_index(), SCHEMA1)
    assert err.message == "invalid upstream image format"


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


def many_layers(count: int, seed: str) -> tuple[dict, dict]:
    manifest = copy.deepcopy(NGINX_MANIFEST)
    manifest["layers"] = [
        {
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": digest_of(f"{seed}-{n}"),
            "size": 1,
        }
        for n in range(count)
    ]
    config = copy.deepcopy(NGINX_CONFIG)
    config["rootfs"]["diff_ids"] = [digest_of(f"{seed}-diff-{n}") for n in range(count)]
    del config["history"]
    return manifest, config


def test_at_most_127_layers():
    base, base_config = many_layers(125, "base")
    composed = compose_image(base, base_config, WRAPPER_MANIFEST, WRAPPER_CONFIG, {})
    assert len(json.loads(composed.manifest_bytes)["layers"]) == 127
    base, base_config = many_layers(126, "base")
    err = error_of(compose_image, base, base_config, WRAPPER_MANIFEST, WRAPPER_CONFIG, {})
    assert (err.code, err.status) == ("MANIFEST_INVALID", 400)
    assert "128 layers" in err.message and "127" in err.message


def test_env_values_may_contain_equals_signs():
    assert merge_env(["A=x=y", "B=1"], ["A=p=q"]) == ["A=p=q", "B=1"]


# ------------------------------------------------------------------ outputs own their data


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


# ------------------------------------------------------------------- errors nobody expects


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


# --------------------------------------------------------------------------- history details


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


# ------------------------------------------------------------- several wrappers, overrides


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


def test_a_lone_string_entrypoint_is_one_element():
    base = copy.deepcopy(NGINX_CONFIG)
    base["config"]["Entrypoint"] = "/docker-entrypoint.sh --flag"
    config = compose_config(NGINX_MANIFEST, base, WRAPPER_MANIFEST, WRAPPER_CONFIG)
    assert config["config"]["Entrypoint"] == ["/goci/wrap", "/docker-entrypoint.sh --flag"]


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
