"""Image documents with very long configs: tens of thousands of `Env` entries, labels and
history entries, as JSON bytes an upstream could send (within the registry's 4 MiB limit
for a config).

Each side has `entries` variables of its own (`B…` for the base, `W…` for the wrapper)
and `shared` variables both set (`S…`), so a merge shows both orders and the overrides;
labels likewise; the history has `entries` empty-layer entries and one per layer.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
WRAPPER_LABEL = "org.goci.wrapper"
WRAPPER_ENTRYPOINT = "/wrapper/run"
BASE_PATH = "/usr/bin:/bin"


def _digest(seed: str) -> str:
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


def big_config(side: str, entries: int, shared: int) -> dict[str, Any]:
    """The config of the `side` image ("base" or "wrapper"): one layer, long lists."""
    mark = side[0].upper()
    env = [f"{mark}{n}={n}" for n in range(entries)]
    env += [f"S{n}={side}" for n in range(shared)]
    env.append(f"PATH={BASE_PATH}" if side == "base" else "PATH=/wrapper/bin")
    labels = {f"{side}.{n}": "v" for n in range(entries)}
    labels.update({f"shared.{n}": side for n in range(shared)})
    if side == "wrapper":
        labels[WRAPPER_LABEL] = WRAPPER_ENTRYPOINT
    history: list[dict[str, Any]] = [
        {"created_by": f"{mark}{n}", "empty_layer": True} for n in range(entries)
    ]
    history.append({"created_by": f"{side} layer"})
    return {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": env, "Labels": labels, "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [_digest(f"{side} diff")]},
        "history": history,
    }


def big_image(side: str, entries: int, shared: int = 1000) -> tuple[bytes, bytes]:
    """(manifest bytes, config bytes) of the `side` image, as an upstream serves them."""
    config = json.dumps(big_config(side, entries, shared), separators=(",", ":")).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": OCI_CONFIG,
            "digest": "sha256:" + hashlib.sha256(config).hexdigest(),
            "size": len(config),
        },
        "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": _digest(f"{side} layer"), "size": 1000}],
    }
    return json.dumps(manifest).encode(), config
