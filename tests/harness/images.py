"""Deterministic test images built in pure Python, written as OCI layouts, pushed by skopeo.

No Docker engine is available, and test images must not depend on the network, so images
are assembled here from the standard library: each layer is a tar with sorted entries,
mtime 0 and uid/gid 0, gzipped with mtime 0 and no file name, so the same inputs give the
same digests in every run (and in every process, which composition tests rely on).
`diff_id` is the sha256 of the uncompressed tar, as the image spec defines it.

The runnable base is busybox-static: `/bin/busybox` plus one relative symlink per applet.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import json
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.tools import require

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
IN_TOTO = "application/vnd.in-toto+json"
REF_NAME = "org.opencontainers.image.ref.name"
WRAPPER_LABEL = "org.goci.wrapper"
CREATED = "1970-01-01T00:00:00Z"
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
WRAPPER_SCRIPT = '#!/bin/sh\necho wrapper-says-hello\nexec "$@"\n'

AMD64 = {"architecture": "amd64", "os": "linux"}
ARM64 = {"architecture": "arm64", "os": "linux", "variant": "v8"}
UNKNOWN = {"architecture": "unknown", "os": "unknown"}


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical(value: Any) -> bytes:
    """Stable JSON bytes (sorted keys, no spaces): equal documents get equal digests."""
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


# -- layers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One tar member: a regular file, a directory or a symlink (path relative to /)."""

    path: str
    kind: str = "file"  # "file" | "dir" | "symlink"
    data: bytes = b""
    mode: int = 0o644
    target: str = ""


def file(path: str, data: bytes | str, mode: int = 0o644) -> Entry:
    return Entry(path.strip("/"), "file", data.encode() if isinstance(data, str) else data, mode)


def directory(path: str, mode: int = 0o755) -> Entry:
    return Entry(path.strip("/"), "dir", mode=mode)


def symlink(path: str, target: str) -> Entry:
    return Entry(path.strip("/"), "symlink", mode=0o777, target=target)


def _with_parents(entries: Iterable[Entry]) -> list[Entry]:
    """Add missing parent directories (0755) so unpackers never have to invent them."""
    by_path = {e.path: e for e in entries}
    for path in list(by_path):
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            by_path.setdefault("/".join(parts[:i]), directory("/".join(parts[:i])))
    return [by_path[p] for p in sorted(by_path)]


def tar_bytes(entries: Iterable[Entry]) -> bytes:
    """An uncompressed, reproducible tar: sorted paths, mtime 0, root ownership."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in _with_parents(entries):
            info = tarfile.TarInfo(entry.path)
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mode = entry.mode
            if entry.kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif entry.kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = entry.target
                tar.addfile(info)
            else:
                info.size = len(entry.data)
                tar.addfile(info, io.BytesIO(entry.data))
    return buf.getvalue()


def gzip_bytes(data: bytes, compresslevel: int = 6) -> bytes:
    """gzip with mtime 0 and no embedded file name, so the output depends on `data` only
    (and `compresslevel`: 0 stores, 1 is fastest)."""
    buf = io.BytesIO()
    with gzip.GzipFile(
        filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=compresslevel
    ) as gz:
        gz.write(data)
    return buf.getvalue()


@dataclass(frozen=True)
class Layer:
    """A layer blob as pushed (`blob`, usually gzip) and its `diff_id` (uncompressed digest)."""

    blob: bytes
    diff_id: str
    media_type: str = OCI_LAYER_GZIP
    comment: str = ""

    @classmethod
    def from_entries(cls, entries: Iterable[Entry], comment: str = "") -> Layer:
        raw = tar_bytes(entries)
        return cls(gzip_bytes(raw), sha256(raw), OCI_LAYER_GZIP, comment)

    @classmethod
    def raw(cls, data: bytes, media_type: str, comment: str = "") -> Layer:
        """A non-tar blob (e.g. an in-toto statement in an attestation manifest)."""
        return cls(data, sha256(data), media_type, comment)

    @property
    def digest(self) -> str:
        return sha256(self.blob)

    @property
    def size(self) -> int:
        return len(self.blob)

    def descriptor(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


# -- images and indexes ---------------------------------------------------------------------


@dataclass
class Image:
    """A single-platform image: layers plus the `config` section of its image config."""

    layers: list[Layer]
    config: dict[str, Any]
    platform: dict[str, str] = field(default_factory=lambda: dict(AMD64))
    annotations: dict[str, str] = field(default_factory=dict)
    config_media_type: str = OCI_CONFIG

    def config_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "created": CREATED,
            "architecture": self.platform["architecture"],
            "os": self.platform["os"],
            "config": self.config,
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in self.layers]},
            "history": [
                {"created": CREATED, "created_by": layer.comment or f"harness layer {i}"}
                for i, layer in enumerate(self.layers)
            ],
        }
        if "variant" in self.platform:
            doc["variant"] = self.platform["variant"]
        return doc

    def config_bytes(self) -> bytes:
        return canonical(self.config_json())

    def manifest_json(self) -> dict[str, Any]:
        config = self.config_bytes()
        doc: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": self.config_media_type,
                "digest": sha256(config),
                "size": len(config),
            },
            "layers": [layer.descriptor() for layer in self.layers],
        }
        if self.annotations:
            doc["annotations"] = dict(self.annotations)
        return doc

    def manifest_bytes(self) -> bytes:
        return canonical(self.manifest_json())

    @property
    def digest(self) -> str:
        """Digest of the manifest exactly as written to the layout (and pushed unchanged)."""
        return sha256(self.manifest_bytes())

    def blobs(self) -> dict[str, bytes]:
        found = {sha256(self.config_bytes()): self.config_bytes()}
        found.update({layer.digest: layer.blob for layer in self.layers})
        found[self.digest] = self.manifest_bytes()
        return found


@dataclass
class Index:
    """A multi-platform image index: each entry's platform is the image's own platform."""

    images: list[Image]
    # Extra annotations per entry, e.g. the attestation markers BuildKit writes.
    entry_annotations: dict[int, dict[str, str]] = field(default_factory=dict)

    def index_json(self) -> dict[str, Any]:
        manifests = []
        for i, image in enumerate(self.images):
            desc: dict[str, Any] = {
                "mediaType": OCI_MANIFEST,
                "digest": image.digest,
                "size": len(image.manifest_bytes()),
                "platform": dict(image.platform),
            }
            if i in self.entry_annotations:
                desc["annotations"] = dict(self.entry_annotations[i])
            manifests.append(desc)
        return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}

    def index_bytes(self) -> bytes:
        return canonical(self.index_json())

    @property
    def digest(self) -> str:
        return sha256(self.index_bytes())

    def blobs(self) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        for image in self.images:
            found.update(image.blobs())
        found[self.digest] = self.index_bytes()
        return found


Artifact = Image | Index


def write_oci_layout(layout_dir: Path, images_by_ref: dict[str, Artifact]) -> Path:
    """Write an OCI image layout with one `index.json` entry per ref (`ref.name` annotation)."""
    root = Path(layout_dir)
    blob_dir = root / "blobs" / "sha256"
    blob_dir.mkdir(parents=True, exist_ok=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    entries = []
    for ref, artifact in sorted(images_by_ref.items()):
        for digest, data in artifact.blobs().items():
            path = blob_dir / digest.removeprefix("sha256:")
            if not path.exists():
                path.write_bytes(data)
        top = artifact.index_bytes() if isinstance(artifact, Index) else artifact.manifest_bytes()
        entries.append(
            {
                "mediaType": OCI_INDEX if isinstance(artifact, Index) else OCI_MANIFEST,
                "digest": sha256(top),
                "size": len(top),
                "annotations": {REF_NAME: ref},
            }
        )
    (root / "index.json").write_bytes(
        canonical({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
    )
    return root


def push(
    layout_dir: Path,
    ref: str,
    dest: str,
    format: str | None = None,
    all: bool = False,
    *,
    creds: str | None = None,
    timeout: float = 60,
) -> str:
    """`skopeo copy oci:LAYOUT:REF docker://DEST` (plain HTTP); returns the pushed digest.

    `format="v2s2"` converts to a Docker schema 2 manifest (new manifest digest, same
    config and layer bytes). Without it the OCI bytes are pushed unchanged, so the digest
    equals `Image.digest` / `Index.digest`.
    """
    require("skopeo")
    with tempfile.TemporaryDirectory(prefix="push-") as scratch:
        digest_file = Path(scratch) / "digest"
        argv: list[str | Path] = ["skopeo", "copy", "--quiet", "--dest-tls-verify=false"]
        argv += ["--digestfile", digest_file]
        if format:
            argv += ["--format", format]
        if all:
            argv += ["--all"]
        if creds:
            argv += ["--dest-creds", creds]
        argv += [f"oci:{layout_dir}:{ref}", f"docker://{dest}"]
        result = subprocess.run(
            [str(a) for a in argv], capture_output=True, text=True, timeout=timeout, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"skopeo push of {ref} to {dest} failed:\n{result.stderr}")
        return digest_file.read_text().strip()


# -- ready-made images ----------------------------------------------------------------------


def is_static_elf(data: bytes) -> bool:
    """True for a 64-bit little-endian ELF without a PT_INTERP (dynamic loader) header.

    A dynamically linked busybox (Debian's `busybox` rather than `busybox-static`) would
    build an image whose every command fails with "no such file or directory".
    """
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return False
    phoff, phentsize, phnum = (
        int.from_bytes(data[32:40], "little"),
        int.from_bytes(data[54:56], "little"),
        int.from_bytes(data[56:58], "little"),
    )
    for i in range(phnum):
        p_type = int.from_bytes(data[phoff + i * phentsize : phoff + i * phentsize + 4], "little")
        if p_type == 3:  # PT_INTERP
            return False
    return True


def busybox_rootfs_files() -> list[Entry]:
    """A runnable root: static busybox, a relative symlink per applet, passwd, /tmp 1777."""
    busybox = require("busybox")
    binary = Path(busybox).read_bytes()
    if not is_static_elf(binary):
        raise RuntimeError(f"{busybox} is not a static 64-bit ELF: install busybox-static")
    applets = subprocess.run(
        [busybox, "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    entries = [file("bin/busybox", binary, 0o755)]
    entries += [symlink(f"bin/{name}", "busybox") for name in applets if name != "busybox"]
    entries += [
        file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n"),
        file("etc/group", "root:x:0:\nnogroup:x:65534:\n"),
        directory("root", 0o700),
        directory("tmp", 0o1777),
        directory("usr/bin"),
    ]
    return entries


@functools.cache
def busybox_layer() -> Layer:
    """The busybox root layer, built once per process (it is ~1 MB of gzip work)."""
    return Layer.from_entries(busybox_rootfs_files(), "busybox-static rootfs")


def base_image(
    entrypoint: list[str] | None = None,
    cmd: list[str] | None = None,
    env: list[str] | None = None,
    platform: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
) -> Image:
    """A runnable busybox base; by default `Cmd ["sh","-c","echo base-cmd"]`, no Entrypoint."""
    config: dict[str, Any] = {
        "Env": env if env is not None else [f"PATH={BASE_PATH}", "BASE_VAR=base"],
        "Cmd": cmd if cmd is not None else ["sh", "-c", "echo base-cmd"],
        "WorkingDir": "/",
        "Labels": {"org.example.base": "busybox", **(labels or {})},
    }
    if entrypoint is not None:
        config["Entrypoint"] = entrypoint
    return Image([busybox_layer()], config, dict(platform or AMD64))


def base_entrypoint_image(platform: dict[str, str] | None = None) -> Image:
    """A base whose Entrypoint prints a marker, so composed entrypoints can be checked."""
    return base_image(entrypoint=["/bin/echo", "base-entrypoint"], cmd=[], platform=platform)


def wrapper_image(
    script_path: str = "/wrapper/run.sh",
    label: bool = True,
    layers: int = 1,
    platform: dict[str, str] | None = None,
) -> Image:
    """A wrapper: a script that greets then `exec "$@"`, labelled `org.goci.wrapper`.

    `layers=0` gives the "wrapper image has no layers" case; `layers=2` puts
    `/wrapper/extra.txt` in a second layer, more add `/wrapper/extra-N.txt`.
    """
    arch = (platform or AMD64)["architecture"]
    layer_list: list[Layer] = []
    if layers >= 1:
        layer_list.append(
            Layer.from_entries([file(script_path, WRAPPER_SCRIPT, 0o755)], "wrapper script")
        )
    for n in range(2, layers + 1):
        name = "extra.txt" if n == 2 else f"extra-{n}.txt"
        layer_list.append(
            Layer.from_entries([file(f"wrapper/{name}", f"extra {n} {arch}\n")], f"extra {n}")
        )
    config: dict[str, Any] = {
        "Env": ["WRAPPER_VAR=1", "PATH=/wrapper:/usr/bin"],
        "Labels": {"org.example.wrapper": "harness"},
    }
    if label:
        config["Labels"][WRAPPER_LABEL] = script_path
    return Image(layer_list, config, dict(platform or AMD64))


def attestation_for(image: Image) -> Image:
    """A BuildKit-style attestation manifest (platform unknown/unknown) about `image`."""
    statement = canonical(
        {
            "_type": "https://in-toto.io/Statement/v0.1",
            "predicateType": "https://spdx.dev/Document",
            "subject": [{"name": "harness", "digest": {"sha256": image.digest[7:]}}],
            "predicate": {"spdxVersion": "SPDX-2.3", "name": "harness"},
        }
    )
    layer = Layer.raw(statement, IN_TOTO, "attestation")
    return Image([layer], {}, dict(UNKNOWN))


def attestation_annotations(image: Image) -> dict[str, str]:
    return {
        "vnd.docker.reference.type": "attestation-manifest",
        "vnd.docker.reference.digest": image.digest,
    }


def multiarch_base_index(attestation: bool = True) -> Index:
    """amd64 + arm64 busybox bases (arm64 reuses the amd64 bytes: nothing runs it)."""
    amd64 = base_image(platform=AMD64)
    arm64 = base_image(platform=ARM64)
    images = [amd64, arm64]
    notes: dict[int, dict[str, str]] = {}
    if attestation:
        images.append(attestation_for(amd64))
        notes[2] = attestation_annotations(amd64)
    return Index(images, notes)


def multiarch_wrapper_index(attestation: bool = False) -> Index:
    """amd64 + arm64 wrappers whose extra layer differs by architecture."""
    amd64 = wrapper_image(layers=2, platform=AMD64)
    arm64 = wrapper_image(layers=2, platform=ARM64)
    images = [amd64, arm64]
    notes: dict[int, dict[str, str]] = {}
    if attestation:
        images.append(attestation_for(amd64))
        notes[2] = attestation_annotations(amd64)
    return Index(images, notes)


def standard_images() -> dict[str, Artifact]:
    """Every ready-made image, keyed by the layout ref the conftest pushes it from."""
    return {
        "base": base_image(),
        "base-entrypoint": base_entrypoint_image(),
        "base-multi": multiarch_base_index(),
        "wrapper": wrapper_image(),
        "wrapper-2layers": wrapper_image(layers=2),
        "wrapper-nolabel": wrapper_image(label=False),
        "wrapper-nolayers": wrapper_image(layers=0),
        "wrapper-multi": multiarch_wrapper_index(),
        "helm-chart": helm_chart_artifact(),
    }


def helm_chart_artifact() -> Image:
    """An OCI artifact that is not a container image (a Helm chart): nothing to wrap."""
    chart = Layer.raw(
        gzip_bytes(tar_bytes([file("chart/Chart.yaml", "name: demo\n")])),
        "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
        comment="helm chart",
    )
    return Image([chart], {}, config_media_type="application/vnd.cncf.helm.config.v1+json")


# -- big images -----------------------------------------------------------------------------

MIB = 1024 * 1024


def pseudo_random_bytes(size: int, seed: str) -> bytes:
    """`size` incompressible bytes that depend on `seed` only, on any machine and Python:
    SHAKE-256 of the seed and a block number, 1 MiB at a time."""
    blocks = []
    for number in range(-(-size // MIB)):
        blocks.append(hashlib.shake_256(f"{seed}/{number}".encode()).digest(MIB))
    return b"".join(blocks)[:size]


def incompressible_layer(size: int, seed: str, compresslevel: int = 1) -> Layer:
    """A layer holding one file of `size` random bytes (`/bench/<seed>.bin`), gzipped at
    `compresslevel` (1: fastest, 0: stored); the blob is a little larger than `size`."""
    name = seed.replace("/", "-")
    raw = tar_bytes([file(f"bench/{name}.bin", pseudo_random_bytes(size, seed))])
    return Layer(gzip_bytes(raw, compresslevel), sha256(raw), OCI_LAYER_GZIP, f"random {name}")


def incompressible_image(
    total_bytes: int, layers: int = 4, *, seed: str = "ociwrap-bench", compresslevel: int = 1
) -> Image:
    """A big base image for measuring pulls: `layers` layers of random bytes (gzip cannot
    shrink them, so every byte travels), together at least `total_bytes` as pushed.

    The same arguments give the same digests in every run. Not runnable (no shell): it
    is meant to be copied, e.g. by `skopeo copy`, not started.
    """
    if layers < 1 or total_bytes < layers:
        raise ValueError("need at least one layer and one byte per layer")
    each = -(-total_bytes // layers)
    layer_list = [
        incompressible_layer(each, f"{seed}/layer-{i}", compresslevel) for i in range(layers)
    ]
    config: dict[str, Any] = {
        "Env": [f"PATH={BASE_PATH}"],
        "Cmd": ["/bin/sh"],
        "Labels": {"org.example.bench": seed},
    }
    return Image(layer_list, config, dict(AMD64))


# -- the catalog the conftest pushes --------------------------------------------------------


@dataclass(frozen=True)
class Pushed:
    """One catalog entry as it sits on an upstream: where, what digest, built from what."""

    key: str
    repo: str
    tag: str
    digest: str
    artifact: Artifact
    format: str | None = None

    @property
    def ref(self) -> str:
        """`repo:tag`, without a host."""
        return f"{self.repo}:{self.tag}"

    def at(self, host: str) -> str:
        """`HOST/repo:tag` for a registry at `host` (`127.0.0.1:PORT`)."""
        return f"{host}/{self.repo}:{self.tag}"

    @property
    def path(self) -> str:
        """`repo/tag`: how a wrap path spells this image (the last component is the tag)."""
        return f"{self.repo}/{self.tag}"


# key -> (layout ref in `standard_images()`, repository, tag, skopeo --format)
CATALOG: dict[str, tuple[str, str, str, str | None]] = {
    "base": ("base", "library/busybox", "1", None),
    "base-v2s2": ("base", "library/busybox", "1-docker", "v2s2"),
    "base-multi": ("base-multi", "library/busybox", "multi", None),
    "base-entrypoint": ("base-entrypoint", "library/busybox-entrypoint", "1", None),
    "wrapper": ("wrapper", "tools/wrapper", "1", None),
    "wrapper-v2s2": ("wrapper", "tools/wrapper", "1-docker", "v2s2"),
    "wrapper-2layers": ("wrapper-2layers", "tools/wrapper", "2layers", None),
    "wrapper-multi": ("wrapper-multi", "tools/wrapper", "multi", None),
    "wrapper-nolabel": ("wrapper-nolabel", "tools/wrapper-nolabel", "1", None),
    "wrapper-nolayers": ("wrapper-nolayers", "tools/wrapper-nolayers", "1", None),
    "helm-chart": ("helm-chart", "charts/demo", "1", None),
}


def push_catalog(
    layout_dir: Path,
    host: str,
    artifacts: dict[str, Artifact],
    keys: Sequence[str] | None = None,
    *,
    creds: str | None = None,
) -> dict[str, Pushed]:
    """Push `CATALOG` entries (all, or `keys`) from a layout to the registry at `host`
    (`creds` as `user:password` for a registry that wants a login)."""
    pushed: dict[str, Pushed] = {}
    for key in keys or list(CATALOG):
        layout_ref, repo, tag, fmt = CATALOG[key]
        artifact = artifacts[layout_ref]
        digest = push(
            layout_dir,
            layout_ref,
            f"{host}/{repo}:{tag}",
            format=fmt,
            all=isinstance(artifact, Index),
            creds=creds,
        )
        pushed[key] = Pushed(key, repo, tag, digest, artifact, fmt)
    return pushed
