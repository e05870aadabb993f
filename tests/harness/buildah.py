"""buildah, the client that builds FROM a registry image, with private storage.

CI systems build on top of images as often as they run them. buildah needs no daemon:
with `vfs` storage (plain directory copies, no overlay mounts) and `chroot` isolation
(no container runtime, no cgroups, host networking only) it pulls, runs
`RUN` steps and commits as root in a temp dir. Builds pull, so they run where only
loopback exists (`harness.netns.isolated`, the wanted ports relayed in); every buildah
command also runs in a mount namespace of its own (`unshare --mount`), so whatever
`chroot` isolation mounts for a `RUN` step goes away with it and none is left behind.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.clients import ToolError, run_tool
from harness.netns import isolated
from harness.tools import require

SYSTEM_STATE = Path("/var/lib/containers")


class Buildah:
    """buildah with storage, configuration and signature policy under `workdir`.

    The private `CONTAINERS_*` files keep the host's and the user's configuration out and
    disable short-name search, so a bad `FROM` fails instead of prompting or going online.
    """

    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir)
        for sub in ("root", "run", "tmp"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        registries = self.workdir / "registries.conf"
        registries.write_text('unqualified-search-registries = []\nshort-name-mode = "disabled"\n')
        storage = self.workdir / "storage.conf"
        storage.write_text(
            "[storage]\n"
            'driver = "vfs"\n'
            f'graphroot = "{self.workdir / "root"}"\n'
            f'runroot = "{self.workdir / "run"}"\n'
        )
        self.policy = self.workdir / "policy.json"
        self.policy.write_text('{"default": [{"type": "insecureAcceptAnything"}]}\n')
        (self.workdir / "auth.json").write_text("{}\n")
        self.env = {
            "CONTAINERS_REGISTRIES_CONF": str(registries),
            "CONTAINERS_STORAGE_CONF": str(storage),
            "REGISTRY_AUTH_FILE": str(self.workdir / "auth.json"),
            "TMPDIR": str(self.workdir / "tmp"),
            "BUILDAH_ISOLATION": "chroot",
        }
        self._builds = itertools.count(1)

    def argv(self, *args: str) -> list[str]:
        """buildah with its settings, in a mount namespace of its own (see the module doc).

        Whatever `--root` says, root's buildah keeps its blob-info cache in
        /var/lib/containers/cache; in the namespace a directory of `workdir` is bound over
        /var/lib/containers (when it exists), so that state stays in the test's too.
        """
        settings = [f"{key}={value}" for key, value in self.env.items()]
        command = [
            require("buildah"),
            "--root",
            str(self.workdir / "root"),
            "--runroot",
            str(self.workdir / "run"),
            "--storage-driver",
            "vfs",
            *args,
        ]
        if SYSTEM_STATE.is_dir():
            require("mount")
            shadow = self.workdir / "var-lib-containers"
            shadow.mkdir(exist_ok=True)
            bind = 'mount --bind "$1" "$2" && shift 2 && exec "$@"'
            command = ["sh", "-c", bind, "bind", str(shadow), str(SYSTEM_STATE), *command]
        unshare = [require("unshare"), "--mount", "--propagation", "private"]
        return ["env", *settings, *unshare, *command]

    def bud(
        self, context: Path, tag: str, ports: Sequence[int], timeout: float = 180
    ) -> subprocess.CompletedProcess[str]:
        """`buildah bud` of `context/Containerfile` as `tag`, pulling over plain HTTP where
        only loopback exists and only `ports` of this machine's 127.0.0.1 are reachable.
        Returns the output; raises `ToolError` if the build fails."""
        flags = ["--tls-verify=false", "--isolation", "chroot", "--network", "host"]
        # One commit at the end: all the build's own files are in the image's last layer.
        flags += ["--signature-policy", str(self.policy), "--layers=false"]
        argv = self.argv("bud", *flags, "-t", tag, "-f", str(context / "Containerfile"))
        relays = self.workdir / f"relays-{next(self._builds)}"  # the sockets outlive a build
        result = isolated([*argv, str(context)], ports, relays, timeout)
        if result.returncode != 0:
            raise ToolError(
                f"buildah bud exited {result.returncode}\n--- stdout ---\n"
                f"{result.stdout[-3000:]}\n--- stderr ---\n{result.stderr[-3000:]}"
            )
        return result

    def inspect_image(self, ref: str) -> dict[str, Any]:
        """`buildah inspect --type image`: the image's OCI config is under `OCIv1`."""
        return json.loads(run_tool(self.argv("inspect", "--type", "image", ref)).stdout)

    def push_oci(self, ref: str, layout_dir: Path) -> Path:
        """Copy a local image to an OCI layout directory (`oci:DIR:x`), no network needed."""
        policy = ["--signature-policy", str(self.policy)]
        run_tool(self.argv("push", *policy, ref, f"oci:{layout_dir}:x"))
        return layout_dir


def top_layer_file(layout_dir: Path, path: str) -> bytes:
    """The bytes of `path` in the last layer of the single image in an OCI layout: what the
    build's own step wrote, read from the layer tar without unpacking anything."""
    index = json.loads((layout_dir / "index.json").read_text())
    manifest = json.loads(_blob(layout_dir, index["manifests"][0]["digest"]))
    wanted = path.strip("/")
    with tarfile.open(_blob_path(layout_dir, manifest["layers"][-1]["digest"]), "r:*") as tar:
        for member in tar.getmembers():
            if member.name.removeprefix("./").strip("/") == wanted and member.isfile():
                extracted = tar.extractfile(member)
                assert extracted is not None
                return extracted.read()
    raise AssertionError(f"{path} is not in the image's last layer")


def _blob_path(layout_dir: Path, digest: str) -> Path:
    algorithm, hex_digest = digest.split(":", 1)
    return layout_dir / "blobs" / algorithm / hex_digest


def _blob(layout_dir: Path, digest: str) -> bytes:
    return _blob_path(layout_dir, digest).read_bytes()
