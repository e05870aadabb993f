"""What the hostile registry serves: its good images, per scenario, and the nasty documents.

Everything is built with `harness.images`, deterministically, on first use.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import Any

from harness.images import (
    AMD64,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_MANIFEST,
    WRAPPER_LABEL,
    Image,
    Index,
    Layer,
    canonical,
    file,
    sha256,
    wrapper_image,
)

DEEP_LEVELS = 100_000
INDEX_ENTRIES = 5000
MANY_LAYERS = 200
MANY_TAGS = 100_000
BIG_BLOB_BYTES = 5000
LONG_VARIANT = "v" + "9" * 100_000
BIG_VARIANT = "v99999999999"
CRLF_TAG = "v1\r\nX-Injected: 1"
SCENARIO_LABEL = "org.hostile.scenario"


@dataclass(frozen=True)
class Doc:
    """A manifest or index exactly as served."""

    body: bytes
    media_type: str

    @property
    def digest(self) -> str:
        return sha256(self.body)


def deep_json(prefix: dict[str, Any], key: str) -> bytes:
    """`prefix` with `key` holding objects nested `DEEP_LEVELS` deep (about 600 KB)."""
    head = canonical(prefix)[:-1] + b',"' + key.encode() + b'":'
    return head + b'{"a":' * DEEP_LEVELS + b"{}" + b"}" * DEEP_LEVELS + b"}"


class Content:
    """Everything the server hands out: manifests and blobs by digest, images per scenario.

    Each scenario name (label included) gets its own good images, built on first use: the
    base layer and both configs carry the name, so no two scenarios share a manifest,
    config or base-layer digest, and a registry's content-addressed cache of one test
    can never answer for another. The wrapper's layer and the extra layers of
    `layers-200` are shared.
    """

    def __init__(self) -> None:
        self.manifests: dict[str, Doc] = {}
        self.blobs: dict[str, bytes] = {}
        self.configs: set[str] = set()
        self.lies: dict[str, Doc] = {}  # lie digest -> the doc GET by that digest returns
        self.big_blob = random.Random(BIG_BLOB_BYTES).randbytes(BIG_BLOB_BYTES)
        self.big_digest = sha256(self.big_blob)
        self.blobs[self.big_digest] = self.big_blob
        self.wrapper_layers = wrapper_image().layers
        self.extra_layers = [
            Layer.from_entries([file(f"layer/{i}", f"{i}\n")], f"layer {i}")
            for i in range(1, MANY_LAYERS)
        ]
        self.tag_lists: dict[str, list[Any]] = {
            "tags-nonstring": ["1", 2, None, {"tag": "x"}, ["y"], True, 1.5],
            "tags-crlf": [CRLF_TAG, "v2"],
            "tags-many": [f"t{i:06d}" for i in range(MANY_TAGS)],
        }
        self._images: dict[tuple[str, str], Image] = {}
        self._tops: dict[str, dict[str, Doc]] = {}
        self._lock = threading.RLock()

    @staticmethod
    def lie_of(doc: Doc) -> str:
        """The digest `lying-head` claims for `doc`: that of bytes nobody serves."""
        return sha256(doc.body + b"\n")

    def image(self, scenario: str, repo: str) -> Image:
        """The good `app` (small base) or `wrapper` image of `scenario`."""
        with self._lock:
            key = (scenario, repo)
            if key not in self._images:
                labels = {SCENARIO_LABEL: scenario}
                if repo == "wrapper":
                    labels[WRAPPER_LABEL] = "/wrapper/run.sh"
                    config = {"Env": ["WRAPPER_VAR=1"], "Labels": labels}
                    layers = list(self.wrapper_layers)
                else:
                    config = {
                        "Env": ["PATH=/usr/bin:/bin", "BASE_VAR=base"],
                        "Cmd": ["/bin/sh"],
                        "Labels": labels,
                    }
                    marker = file("etc/hostile-scenario", f"{scenario}\n")
                    layers = [Layer.from_entries([marker], "hostile base layer")]
                image = Image(layers, config, dict(AMD64))
                self.configs.add(sha256(image.config_bytes()))
                self.blobs.update(image.blobs())
                self._images[key] = image
            return self._images[key]

    def top(self, scenario: str, repo: str) -> Doc | None:
        """What a tag of `scenario/repo` points to (None: no such repository)."""
        with self._lock:
            if scenario not in self._tops:
                self._tops[scenario] = self._build(scenario)
            return self._tops[scenario].get(repo)

    def tags(self, scenario: str) -> list[Any]:
        return self.tag_lists.get(scenario.split(".")[0], ["1", "2", "latest"])

    # -- building ------------------------------------------------------------------------

    def add_doc(self, body: bytes, media_type: str) -> Doc:
        doc = Doc(body, media_type)
        self.manifests[doc.digest] = doc
        self.lies[self.lie_of(doc)] = doc
        return doc

    def add_image(self, image: Image) -> Doc:
        self.configs.add(sha256(image.config_bytes()))
        self.blobs.update(image.blobs())
        return self.add_doc(image.manifest_bytes(), OCI_MANIFEST)

    def add_index(self, index: Index) -> Doc:
        for image in index.images:
            self.add_image(image)
        return self.add_doc(index.index_bytes(), OCI_INDEX)

    def with_config(self, image: Image, config: bytes) -> Doc:
        """`image`'s manifest, its config swapped for `config` (served as a config blob)."""
        digest = sha256(config)
        self.configs.add(digest)
        self.blobs[digest] = config
        self.blobs.update({layer.digest: layer.blob for layer in image.layers})
        manifest = image.manifest_json()
        manifest["config"] = {"mediaType": OCI_CONFIG, "digest": digest, "size": len(config)}
        return self.add_doc(canonical(manifest), OCI_MANIFEST)

    def _build(self, scenario: str) -> dict[str, Doc]:
        base, wrapper = self.image(scenario, "app"), self.image(scenario, "wrapper")
        kind = scenario.split(".")[0]
        if kind == "deep-manifest":
            prefix = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, SCENARIO_LABEL: scenario}
            deep = self.add_doc(deep_json(prefix, "annotations"), OCI_MANIFEST)
            return {"app": deep, "wrapper": deep}
        if kind == "deep-config":
            return {
                "app": self.with_config(base, deep_json(base.config_json(), "deep")),
                "wrapper": self.with_config(wrapper, deep_json(wrapper.config_json(), "deep")),
            }
        if kind in ("variant-long", "variant-big"):
            variant = LONG_VARIANT if kind == "variant-long" else BIG_VARIANT
            return {
                "app": self._variant_index(base, variant),
                "wrapper": self._variant_index(wrapper, variant),
            }
        good = {"app": self.add_image(base), "wrapper": self.add_image(wrapper)}
        if kind == "index-5000":
            return {**good, "app": self._wide_index(good["app"])}
        if kind == "layers-200":
            many = Image([*base.layers, *self.extra_layers], base.config, dict(AMD64))
            return {**good, "app": self.add_image(many)}
        if kind == "html-manifest":
            html = dict(base.manifest_json(), mediaType="text/html")
            return {**good, "app": self.add_doc(canonical(html), "text/html")}
        if kind == "nomediatype":
            manifest = base.manifest_json()
            del manifest["mediaType"]
            return {**good, "app": self.add_doc(canonical(manifest), "application/json")}
        return good

    def _wide_index(self, top: Doc) -> Doc:
        entry = {"mediaType": OCI_MANIFEST, "digest": top.digest, "size": len(top.body)}
        manifests = [
            dict(entry, platform={**AMD64, "os.version": f"10.0.{i}"}) for i in range(INDEX_ENTRIES)
        ]
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
        return self.add_doc(canonical(index), OCI_INDEX)

    def _variant_index(self, image: Image, variant: str) -> Doc:
        """`image` for amd64 plus the same for arm64/<variant> (its config agrees)."""
        arm = {"architecture": "arm64", "os": "linux", "variant": variant}
        return self.add_index(Index([image, Image(image.layers, image.config, arm)]))
