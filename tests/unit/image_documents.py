"""Image documents the composition tests share, as upstreams send them: a busybox and an
nginx-like base, a wrapper, a schema 1 manifest, multi-platform indexes, many-layer images.
"""

from __future__ import annotations

import copy
import hashlib

from ociwrap.image.compose import (
    ANNOTATION_BASE_DIGEST,
    ANNOTATION_BASE_NAME,
    ANNOTATION_WRAPPER_DIGEST,
    ANNOTATION_WRAPPER_NAME,
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

SCHEMA1 = {
    "schemaVersion": 1,
    "name": "library/busybox",
    "tag": "1.0",
    "architecture": "amd64",
    "fsLayers": [{"blobSum": digest_of("old")}],
    "history": [{"v1Compatibility": "{}"}],
}


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
