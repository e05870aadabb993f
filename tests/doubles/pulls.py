"""Pulls through the real handler over the in-memory bucket and upstream (aliased `stub`).

`pulls(monkeypatch, on_doubles, upstream, bucket)` installs the service (the handler's
environment, as `handler_on_memory` sets it) and returns `call(method, path, headers=())`:
(status, headers with lower-case names, body), as a client on `registry.example.com`
sees them. `signing_with_a_key_file` turns signing on for that public hostname; `push_image` and
`push_index` put multi-platform images in the upstream.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

import app
from doubles.bucket import MemoryBucket
from doubles.handler import handler_on_memory
from doubles.upstream import MemoryUpstream, digest_of
from ociwrap_local.events import LocalContext, build_event, decode_result

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
ALL_TYPES = ", ".join((OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST))
#: The wrap of the stub's `team/base:1` with `team/wrapper:1`.
WRAP = "wrap/stub/team/base/1/with/stub/team/wrapper/1"
HOSTNAME = "registry.example.com"
#: The wrap of the multi-platform `team/multi:1` with `team/tools:1` (see `push_index`).
MULTI = "wrap/stub/team/multi/1/with/stub/team/tools/1"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"

Call = Callable[..., tuple[int, dict[str, str], bytes]]


def pulls(
    monkeypatch: Any,
    on_doubles: Callable[..., MemoryBucket],
    upstream: MemoryUpstream,
    bucket: MemoryBucket,
) -> Call:
    """The handler over `bucket` and `upstream` (serving `team/base` and `team/wrapper`)."""
    handler_on_memory(monkeypatch, upstream)
    on_doubles(bucket, upstream)

    def call(method: str, path: str, headers: Any = ()) -> tuple[int, dict[str, str], bytes]:
        event = build_event(method, path, [("Host", HOSTNAME), *headers], b"")
        status, pairs, body = decode_result(app.lambda_handler(event, LocalContext()))
        return status, {name.lower(): value for name, value in pairs}, body

    return call


def signing_with_a_key_file(monkeypatch: Any, directory: Path) -> ec.EllipticCurvePrivateKey:
    """Signing on, with a new P-256 key in a file, for the name `registry.example.com/...`."""
    key = ec.generate_private_key(ec.SECP256R1())
    path = directory / "signing.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    monkeypatch.setenv("SIGNING_KEY_FILE", str(path))
    monkeypatch.setenv("PUBLIC_HOSTNAME", HOSTNAME)
    app.reset_service()
    return key


def error_of(body: bytes) -> dict:
    """The one error of an error answer."""
    [error] = json.loads(body)["errors"]
    return error


def manifest(call: Call, name: str, ref: str, accept: str = ALL_TYPES) -> tuple[str, bytes]:
    """A manifest pulled with success: its digest and bytes."""
    status, headers, body = call("GET", f"/v2/{name}/manifests/{ref}", [("Accept", accept)])
    assert status == 200, body
    return headers["docker-content-digest"], body


def push_image(upstream: MemoryUpstream, path: str, arch: str, label: str | None = None) -> dict:
    """A one-layer linux/`arch` image in `path`; its descriptor, with its platform."""
    layer = f"layer of {path} for {arch}".encode()
    inner: dict = {"Env": [f"FROM={path}"]}
    if label:
        inner["Labels"] = {"org.goci.wrapper": label}
    config = json.dumps(
        {
            "architecture": arch,
            "os": "linux",
            "config": inner,
            "rootfs": {"type": "layers", "diff_ids": [digest_of(layer)]},
        }
    ).encode()
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": digest_of(config), "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": digest_of(layer), "size": len(layer)}],
        }
    ).encode()
    upstream.blobs[path, digest_of(config)] = config
    upstream.blobs[path, digest_of(layer)] = layer
    digest = upstream.push(path, body)
    platform = {"architecture": arch, "os": "linux"}
    return {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(body), "platform": platform}


def push_index(upstream: MemoryUpstream, path: str, archs: list[str], label=None) -> str:
    """An index of one-layer images for these architectures, tagged `1`; its digest."""
    entries = [push_image(upstream, path, arch, label) for arch in archs]
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
    return upstream.push(path, body.encode(), "1", media_type=OCI_INDEX)
